//go:build amd64 && gc && !purego && !noasm

package kernels

// pqTableAVX512 is pqTableGeneric on AVX-512 F with FMA: 16 centroids per
// register, 64 per step. ksub % 16 == 0.
//
//go:noescape
func pqTableAVX512(dst, q, t []float32, m, ksub, dsub int, l2 bool)

// pqTableAVX2 is pqTableGeneric on AVX2 and FMA3: 8 centroids per
// register, 32 per step. ksub % 8 == 0.
//
//go:noescape
func pqTableAVX2(dst, q, t []float32, m, ksub, dsub int, l2 bool)

// pqScan8AVX512 is pqScan8Generic with VPMOVZXBD and 16-lane VGATHERDPS.
//
//go:noescape
func pqScan8AVX512(dst []float32, codes []uint8, m int, table []float32)

// pqScan8AVX2 is pqScan8Generic with VPMOVZXBD and two 8-lane VGATHERDPS.
//
//go:noescape
func pqScan8AVX2(dst []float32, codes []uint8, m int, table []float32)

// pqScan8Scalar is pqScan8Generic with scalar loads and VADDSS (AVX).
//
//go:noescape
func pqScan8Scalar(dst []float32, codes []uint8, m int, table []float32)

// pqScan8Gather selects the gather kernels over pqScan8Scalar (tests and
// benchmarks set it). The scalar kernel is the default on both levels
// because it measured faster on Zen 5 (M = 64, 4096 vectors in cache: 77.5M
// vectors/s, against 45.6M with 16-lane and 46.1M with 8-lane VGATHERDPS):
// VGATHERDPS costs about 20 cycles per 16 entries there, while scalar
// loads and VADDSS from memory keep several ports busy.
var pqScan8Gather = false

func pqTable(dst, q, t []float32, m, ksub, dsub int, l2 bool) {
	switch {
	case cpu.level >= AVX512 && ksub%16 == 0:
		pqTableAVX512(dst, q, t, m, ksub, dsub, l2)
	case cpu.level >= AVX2 && ksub%8 == 0:
		pqTableAVX2(dst, q, t, m, ksub, dsub, l2)
	default:
		pqTableGeneric(dst, q, t, m, ksub, dsub, l2)
	}
}

func pqScan8(dst []float32, codes []uint8, m int, table []float32) {
	switch {
	case cpu.level >= AVX512 && pqScan8Gather:
		pqScan8AVX512(dst, codes, m, table)
	case cpu.level >= AVX2 && pqScan8Gather:
		pqScan8AVX2(dst, codes, m, table)
	case cpu.level >= AVX2:
		pqScan8Scalar(dst, codes, m, table)
	default:
		pqScan8Generic(dst, codes, m, table)
	}
}
