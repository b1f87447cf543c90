package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkFastScan4 scans n vectors of m 4-bit codes: n = 4096 stays in
// cache (128 KiB of codes at m = 64), n = 1,000,000 does not (32 MB).
// codes/s counts one 4-bit sub-quantizer index as one code.
func BenchmarkFastScan4(b *testing.B) {
	for _, m := range []int{16, 32, 64} {
		for _, n := range []int{4096, 1_000_000} {
			r := rand.New(rand.NewPCG(1, 1))
			codes := randCodes4(r, n, m)
			packed := AlignedBytes(FastScan4Size(n, m))
			PackCodes4(packed, codes, n, m)
			lut := randLUT4(r, m)
			dst := make([]uint16, n)
			b.Run(fmt.Sprintf("m=%d/n=%d", m, n), func(b *testing.B) {
				benchLevels(b, func(b *testing.B) {
					b.SetBytes(int64(len(packed)))
					for b.Loop() {
						FastScan4(dst, packed, m, lut)
					}
					reportScanRates(b, n, m)
				})
			})
		}
	}
}

// BenchmarkFastScan4Filter is the fused scan with a threshold that keeps
// about 1% of the vectors, as a top-k reservoir would after warming up.
func BenchmarkFastScan4Filter(b *testing.B) {
	const m = 64
	for _, n := range []int{4096, 1_000_000} {
		r := rand.New(rand.NewPCG(2, 2))
		codes := randCodes4(r, n, m)
		packed := AlignedBytes(FastScan4Size(n, m))
		PackCodes4(packed, codes, n, m)
		lut := randLUT4(r, m)
		sums := make([]uint16, n)
		FastScan4(sums, packed, m, lut)
		thresh := percentile(sums, 0.01)
		ids := make([]int32, n)
		dists := make([]uint16, n)
		b.Run(fmt.Sprintf("m=%d/n=%d/keep=1%%", m, n), func(b *testing.B) {
			benchLevels(b, func(b *testing.B) {
				b.SetBytes(int64(len(packed)))
				for b.Loop() {
					FastScan4Filter(ids, dists, packed, n, m, lut, thresh, 0)
				}
				reportScanRates(b, n, m)
			})
		})
	}
}

func percentile(s []uint16, p float64) uint16 {
	var hist [65536]int
	for _, v := range s {
		hist[v]++
	}
	want := int(p * float64(len(s)))
	for v, c := range hist {
		want -= c
		if want < 0 {
			return uint16(v)
		}
	}
	return 65535
}

func reportScanRates(b *testing.B, n, m int) {
	sec := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(float64(n)*float64(m)/sec, "codes/s")
	b.ReportMetric(float64(n)/sec, "vectors/s")
}

// BenchmarkQuantizeTable4 is the cost of turning a float table into the uint8 lut.
func BenchmarkQuantizeTable4(b *testing.B) {
	const m = 64
	r := rand.New(rand.NewPCG(3, 3))
	table := make([]float32, m*16)
	for i := range table {
		table[i] = r.Float32()
	}
	lut := make([]uint8, FastScan4LUTSize(m))
	b.Run(fmt.Sprintf("m=%d", m), func(b *testing.B) {
		for b.Loop() {
			QuantizeTable4(lut, table, m, L2)
		}
	})
}
