//go:build !amd64 || !gc || purego || noasm

package kernels

func gemm(c, a, b, bias []float32, m, k, n int, act Activation) {
	gemmGeneric(c, a, b, bias, m, k, n, act)
}

func gemmPacked(c, a []float32, m int, b *PackedB, bias []float32, act Activation) {
	gemmPackedGeneric(c, a, m, b, bias, act)
}

func gemmBF16(c, a []float32, m int, b *PackedBF16, bias []float32, act Activation) {
	gemmBF16Generic(c, a, m, b, bias, act)
}

// gemmPeakProbe: no probes without the assembly.
func gemmPeakProbe(Level, string) (func(n int), int) { return nil, 0 }
