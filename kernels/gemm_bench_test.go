package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// Run under the shared benchmark lock:
//
//	flock /tmp/reelrank-bench.lock go test -run '^$' -bench 'FMAPeak|Gemm' -benchtime 1s ./kernels

// BenchmarkFMAPeak measures the single-core multiply-add peak that the GEMM
// figures are measured against: register-only loops of 12 (ymm) or 24 (zmm)
// independent FMAs, and 24 independent VDPBF16PS.
func BenchmarkFMAPeak(b *testing.B) {
	benchLevels(b, func(b *testing.B) {
		for _, kind := range []string{"f32", "bf16"} {
			b.Run("type="+kind, func(b *testing.B) {
				probe, flops := gemmPeakProbe(cpu.level, kind)
				if probe == nil {
					b.Skipf("no %s probe at %s", kind, cpu.level)
				}
				const iters = 1 << 14
				for b.Loop() {
					probe(iters)
				}
				b.ReportMetric(float64(iters)*float64(flops)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	})
}

// gemmBenchShapes are the ranker's layer shapes (m candidates × k inputs →
// n outputs), one request (m = 1) and a large square case.
var gemmBenchShapes = [][3]int{
	{1000, 256, 256},
	{1000, 256, 128},
	{1000, 512, 256},
	{1, 256, 256},
	{64, 256, 256},
	{2048, 2048, 2048},
}

// BenchmarkGemm: type=f32 is Gemm (packs B each call), type=packed is
// GemmPacked, type=bf16 is GemmBF16; no bias, no activation (see
// BenchmarkGemmAct). GFLOP/s counts 2mkn.
func BenchmarkGemm(b *testing.B) {
	benchLevels(b, func(b *testing.B) {
		for _, kind := range []string{"f32", "packed", "bf16"} {
			for _, s := range gemmBenchShapes {
				m, k, n := s[0], s[1], s[2]
				b.Run(fmt.Sprintf("type=%s/m=%d/k=%d/n=%d", kind, m, k, n), func(b *testing.B) {
					if cpu.level == Generic && m*k*n > 1<<28 {
						b.Skip("too slow in generic code")
					}
					benchGemm(b, kind, m, k, n, nil, ActNone)
				})
			}
		}
	})
}

// BenchmarkGemmAct is the main ranker shape with bias and each activation.
func BenchmarkGemmAct(b *testing.B) {
	benchLevels(b, func(b *testing.B) {
		for _, kind := range []string{"packed", "bf16"} {
			for _, act := range []Activation{ActNone, ActReLU, ActSigmoid} {
				b.Run(fmt.Sprintf("type=%s/act=%v", kind, act), func(b *testing.B) {
					bias := make([]float32, 256)
					benchGemm(b, kind, 1000, 256, 256, bias, act)
				})
			}
		}
	})
}

func benchGemm(b *testing.B, kind string, m, k, n int, bias []float32, act Activation) {
	rng := rand.New(rand.NewPCG(1, 1))
	a := unalignedRandom(rng, m*k)
	w := unalignedRandom(rng, k*n)
	c := AlignedFloat32(m * n)
	var pb *PackedB
	var hb *PackedBF16
	switch kind {
	case "packed":
		pb = PackB(w, k, n)
	case "bf16":
		hb = PackBF16(w, k, n)
	}
	for b.Loop() {
		switch kind {
		case "f32":
			Gemm(c, a, w, bias, m, k, n, act)
		case "packed":
			GemmPacked(c, a, m, pb, bias, act)
		case "bf16":
			GemmBF16(c, a, m, hb, bias, act)
		}
	}
	b.ReportMetric(2*float64(m)*float64(k)*float64(n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}
