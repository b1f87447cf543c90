//go:build amd64 && gc && !purego && !noasm

package kernels

// Assembly in f16_amd64.s: VCVTPH2PS widens eight or sixteen halves per
// instruction. The AVX-512 kernels mask their ragged tail; the AVX2 ones
// take whole groups of 8 and leave the rest to Go.

//go:noescape
func dotF16AVX512(q []float32, x []F16) float32 // reference: dotF16Generic

//go:noescape
func l2SqF16AVX512(q []float32, x []F16) float32 // reference: l2SqF16Generic

//go:noescape
func dotF16AVX2(q []float32, x []F16) float32 // reference: dotF16Generic (len a multiple of 8)

//go:noescape
func l2SqF16AVX2(q []float32, x []F16) float32 // reference: l2SqF16Generic (len a multiple of 8)

func dotF16(q []float32, x []F16) float32 {
	switch {
	case cpu.level >= AVX512:
		return dotF16AVX512(q, x)
	case cpu.level >= AVX2:
		n := len(x) &^ 7
		return dotF16AVX2(q[:n], x[:n]) + dotF16Generic(q[n:], x[n:])
	}
	return dotF16Generic(q, x)
}

func l2SqF16(q []float32, x []F16) float32 {
	switch {
	case cpu.level >= AVX512:
		return l2SqF16AVX512(q, x)
	case cpu.level >= AVX2:
		n := len(x) &^ 7
		return l2SqF16AVX2(q[:n], x[:n]) + l2SqF16Generic(q[n:], x[n:])
	}
	return l2SqF16Generic(q, x)
}

//go:noescape
func dotF16ManyAVX512(dst, q []float32, rows [][]F16) // reference: dotF16ManyGeneric

//go:noescape
func l2SqF16ManyAVX512(dst, q []float32, rows [][]F16) // reference: l2SqF16ManyGeneric

func dotF16Many(dst, q []float32, rows [][]F16) {
	switch {
	case cpu.level >= AVX512:
		dotF16ManyAVX512(dst, q, rows)
	case cpu.level >= AVX2:
		for i, r := range rows {
			dst[i] = dotF16(q, r)
		}
	default:
		dotF16ManyGeneric(dst, q, rows)
	}
}

func l2SqF16Many(dst, q []float32, rows [][]F16) {
	switch {
	case cpu.level >= AVX512:
		l2SqF16ManyAVX512(dst, q, rows)
	case cpu.level >= AVX2:
		for i, r := range rows {
			dst[i] = l2SqF16(q, r)
		}
	default:
		l2SqF16ManyGeneric(dst, q, rows)
	}
}
