package kernels

import "fmt"

// Dot returns the inner product of a and b, which must have the same length.
func Dot(a, b []float32) float32 {
	if len(a) != len(b) {
		panic(fmt.Sprintf("kernels: Dot: len(a) = %d, len(b) = %d", len(a), len(b)))
	}
	return dot(a, b)
}

// L2Sq returns the squared Euclidean distance between a and b, which must
// have the same length.
func L2Sq(a, b []float32) float32 {
	if len(a) != len(b) {
		panic(fmt.Sprintf("kernels: L2Sq: len(a) = %d, len(b) = %d", len(a), len(b)))
	}
	return l2Sq(a, b)
}

// DotBatch scores one query q against n = len(dst) rows stored one after the
// other in rows (len(rows) = n*len(q)): dst[i] = Dot(q, rows[i*d:(i+1)*d]).
func DotBatch(dst, q, rows []float32) {
	checkBatch("DotBatch", dst, q, rows)
	dotBatch(dst, q, rows)
}

// L2SqBatch is DotBatch for squared Euclidean distances:
// dst[i] = L2Sq(q, rows[i*d:(i+1)*d]).
func L2SqBatch(dst, q, rows []float32) {
	checkBatch("L2SqBatch", dst, q, rows)
	l2SqBatch(dst, q, rows)
}

// DotBatchMany scores m = len(queries)/d queries against n = len(rows)/d rows,
// both stored row after row with dimension d, into the m x n matrix dst:
// dst[i*n+j] = Dot(query i, row j). The rows are walked in blocks that stay
// in cache while every query visits them.
func DotBatchMany(dst, queries, rows []float32, d int) {
	m, n := checkMany("DotBatchMany", dst, queries, rows, d)
	batchMany(dst, queries, rows, m, n, d, dotBatch)
}

// L2SqBatchMany is DotBatchMany for squared Euclidean distances.
func L2SqBatchMany(dst, queries, rows []float32, d int) {
	m, n := checkMany("L2SqBatchMany", dst, queries, rows, d)
	batchMany(dst, queries, rows, m, n, d, l2SqBatch)
}

// manyBlockBytes is the size of the block of rows that every query of a
// DotBatchMany call scans before the next block: half of a 1 MiB L2 cache.
const manyBlockBytes = 512 << 10

func batchMany(dst, queries, rows []float32, m, n, d int, kernel func(dst, q, rows []float32)) {
	if m == 0 || n == 0 {
		return
	}
	if d == 0 {
		clear(dst[:m*n])
		return
	}
	block := max(4, manyBlockBytes/(4*d))
	for j0 := 0; j0 < n; j0 += block {
		j1 := min(n, j0+block)
		rb := rows[j0*d : j1*d]
		for i := range m {
			kernel(dst[i*n+j0:i*n+j1], queries[i*d:(i+1)*d], rb)
		}
	}
}

func checkBatch(name string, dst, q, rows []float32) {
	if len(rows) != len(dst)*len(q) {
		panic(fmt.Sprintf("kernels: %s: len(rows) = %d, want len(dst)*len(q) = %d*%d", name, len(rows), len(dst), len(q)))
	}
}

func checkMany(name string, dst, queries, rows []float32, d int) (m, n int) {
	if d < 0 {
		panic(fmt.Sprintf("kernels: %s: negative dimension %d", name, d))
	}
	if d == 0 {
		if len(queries) != 0 || len(rows) != 0 {
			panic(fmt.Sprintf("kernels: %s: dimension 0 with %d query and %d row values", name, len(queries), len(rows)))
		}
		return 0, 0
	}
	if len(queries)%d != 0 || len(rows)%d != 0 {
		panic(fmt.Sprintf("kernels: %s: len(queries) = %d and len(rows) = %d are not multiples of d = %d", name, len(queries), len(rows), d))
	}
	m, n = len(queries)/d, len(rows)/d
	if len(dst) != m*n {
		panic(fmt.Sprintf("kernels: %s: len(dst) = %d, want m*n = %d*%d", name, len(dst), m, n))
	}
	return m, n
}

// dotGeneric is the reference for every Dot path.
func dotGeneric(a, b []float32) float32 {
	var s float32
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

// l2SqGeneric is the reference for every L2Sq path.
func l2SqGeneric(a, b []float32) float32 {
	var s float32
	for i := range a {
		d := a[i] - b[i]
		s += d * d
	}
	return s
}

// dotBatchGeneric is the reference for every DotBatch path.
func dotBatchGeneric(dst, q, rows []float32) {
	d := len(q)
	for i := range dst {
		dst[i] = dotGeneric(q, rows[i*d:(i+1)*d])
	}
}

// l2SqBatchGeneric is the reference for every L2SqBatch path.
func l2SqBatchGeneric(dst, q, rows []float32) {
	d := len(q)
	for i := range dst {
		dst[i] = l2SqGeneric(q, rows[i*d:(i+1)*d])
	}
}
