//go:build amd64 && gc && !purego && !noasm

package kernels

// Assembly in dot_amd64.s. Each computes what its generic reference in
// dot.go computes, in a different summation order. Lengths are checked by
// the exported wrappers: len(a) == len(b); len(rows) == len(dst)*len(q).

//go:noescape
func dotAVX512(a, b []float32) float32 // reference: dotGeneric

//go:noescape
func dotAVX2(a, b []float32) float32 // reference: dotGeneric

//go:noescape
func l2SqAVX512(a, b []float32) float32 // reference: l2SqGeneric

//go:noescape
func l2SqAVX2(a, b []float32) float32 // reference: l2SqGeneric

//go:noescape
func dotBatchAVX512(dst, q, rows []float32) // reference: dotBatchGeneric

//go:noescape
func dotBatchAVX2(dst, q, rows []float32) // reference: dotBatchGeneric

//go:noescape
func l2SqBatchAVX512(dst, q, rows []float32) // reference: l2SqBatchGeneric

//go:noescape
func l2SqBatchAVX2(dst, q, rows []float32) // reference: l2SqBatchGeneric

func dot(a, b []float32) float32 {
	switch {
	case cpu.level >= AVX512:
		return dotAVX512(a, b)
	case cpu.level >= AVX2:
		return dotAVX2(a, b)
	}
	return dotGeneric(a, b)
}

func l2Sq(a, b []float32) float32 {
	switch {
	case cpu.level >= AVX512:
		return l2SqAVX512(a, b)
	case cpu.level >= AVX2:
		return l2SqAVX2(a, b)
	}
	return l2SqGeneric(a, b)
}

func dotBatch(dst, q, rows []float32) {
	switch {
	case cpu.level >= AVX512:
		dotBatchAVX512(dst, q, rows)
	case cpu.level >= AVX2:
		dotBatchAVX2(dst, q, rows)
	default:
		dotBatchGeneric(dst, q, rows)
	}
}

func l2SqBatch(dst, q, rows []float32) {
	switch {
	case cpu.level >= AVX512:
		l2SqBatchAVX512(dst, q, rows)
	case cpu.level >= AVX2:
		l2SqBatchAVX2(dst, q, rows)
	default:
		l2SqBatchGeneric(dst, q, rows)
	}
}
