package kernels

import (
	"fmt"
)

// PQCodebook holds the centroids of a product quantizer in the layout the
// table kernels want: M sub-quantizers of Ksub centroids of Dsub dimensions,
// stored transposed (M x Dsub x Ksub, 64-byte aligned), so that one vector
// register holds one dimension of 16 consecutive centroids and a table entry
// for 16 centroids takes Dsub FMAs with the query coordinate broadcast. This
// matters because Dsub is often tiny (2 for d = 128, M = 64), too short to
// vectorize along. Build it once per codebook with [NewPQCodebook].
type PQCodebook struct {
	M, Ksub, Dsub int
	t             []float32 // t[(m*Dsub+j)*Ksub + c] = centroid c of sub-quantizer m, dimension j
}

// NewPQCodebook builds a PQCodebook from centroids in the usual m-major
// layout (M x Ksub x Dsub floats: centroids[(m*ksub+c)*dsub + j], as FAISS
// stores them). m, ksub and dsub must be at least 1 and
// len(centroids) = m*ksub*dsub. Ksub 16 and 256 (any multiple of 16 on
// AVX-512, of 8 on AVX2) take the assembly paths.
func NewPQCodebook(centroids []float32, m, ksub, dsub int) *PQCodebook {
	if m < 1 || ksub < 1 || dsub < 1 {
		panic(fmt.Sprintf("kernels: NewPQCodebook: m = %d, ksub = %d, dsub = %d; want all >= 1", m, ksub, dsub))
	}
	if len(centroids) != m*ksub*dsub {
		panic(fmt.Sprintf("kernels: NewPQCodebook: len(centroids) = %d, want m*ksub*dsub = %d*%d*%d", len(centroids), m, ksub, dsub))
	}
	t := AlignedFloat32(m * ksub * dsub)
	for s := range m {
		for c := range ksub {
			for j := range dsub {
				t[(s*dsub+j)*ksub+c] = centroids[(s*ksub+c)*dsub+j]
			}
		}
	}
	return &PQCodebook{M: m, Ksub: ksub, Dsub: dsub, t: t}
}

// Dim is the dimension of the vectors the codebook quantizes: M*Dsub.
func (cb *PQCodebook) Dim() int { return cb.M * cb.Dsub }

// Table writes the distance table of query q to dst: for sub-quantizer m
// and centroid c, dst[m*Ksub + c] is the inner product <q_m, C_mc>
// (InnerProduct) or the squared distance ||q_m - C_mc||^2 (L2), where q_m is
// q[m*Dsub : (m+1)*Dsub]. Each entry sums over the Dsub dimensions in order
// (FMAs in the assembly paths, so results may differ from the generic path in
// the last bits). len(q) must be Dim() and len(dst) M*Ksub. For 4-bit
// fast-scan (Ksub = 16), pass dst to [QuantizeTable4]; for 8-bit codes
// (Ksub = 256), to [PQScan8].
func (cb *PQCodebook) Table(dst, q []float32, metric Metric) {
	if len(q) != cb.Dim() {
		panic(fmt.Sprintf("kernels: PQCodebook.Table: len(q) = %d, want M*Dsub = %d*%d", len(q), cb.M, cb.Dsub))
	}
	if len(dst) != cb.M*cb.Ksub {
		panic(fmt.Sprintf("kernels: PQCodebook.Table: len(dst) = %d, want M*Ksub = %d*%d", len(dst), cb.M, cb.Ksub))
	}
	pqTable(dst, q, cb.t, cb.M, cb.Ksub, cb.Dsub, metric == L2)
}

// pqTableGeneric is the reference for pqTable. t is the transposed codebook.
func pqTableGeneric(dst, q, t []float32, m, ksub, dsub int, l2 bool) {
	for s := range m {
		qs := q[s*dsub : (s+1)*dsub]
		out := dst[s*ksub : (s+1)*ksub]
		for c := range out {
			var acc float32
			for j, x := range qs {
				y := t[(s*dsub+j)*ksub+c]
				if l2 {
					d := x - y
					acc += d * d
				} else {
					acc += x * y
				}
			}
			out[c] = acc
		}
	}
}

// PQScan8 is the asymmetric distance scan of 8-bit PQ codes: for each of the
// n = len(dst) vectors, dst[i] = sum over s < m of table[s*256 + codes[i*m+s]],
// with table from [PQCodebook.Table] (Ksub = 256). len(codes) must be n*m and
// len(table) m*256.
//
// The sum is taken in one fixed order on every path, so that all paths give
// bit-identical results: 16 partial sums p[l] over the s with s%16 == l, each
// in increasing s, then p[l]+p[l+8] (l < 8), then +[l+4], +[l+2], +[l+1].
func PQScan8(dst []float32, codes []uint8, m int, table []float32) {
	if m < 1 {
		panic(fmt.Sprintf("kernels: PQScan8: m = %d, want m >= 1", m))
	}
	if len(codes) != len(dst)*m {
		panic(fmt.Sprintf("kernels: PQScan8: len(codes) = %d, want len(dst)*m = %d*%d", len(codes), len(dst), m))
	}
	if len(table) != m*256 {
		panic(fmt.Sprintf("kernels: PQScan8: len(table) = %d, want m*256 = %d*256", len(table), m))
	}
	if len(dst) == 0 {
		return
	}
	pqScan8(dst, codes, m, table)
}

// pqScan8Generic is the reference for pqScan8, in the documented order.
func pqScan8Generic(dst []float32, codes []uint8, m int, table []float32) {
	for i := range dst {
		var p [16]float32
		for s, c := range codes[i*m : (i+1)*m] {
			p[s%16] += table[s*256+int(c)]
		}
		for w := 8; w >= 1; w /= 2 {
			for l := range w {
				p[l] += p[l+w]
			}
		}
		dst[i] = p[0]
	}
}
