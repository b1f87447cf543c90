package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkPQTable is the cost of one query's distance table for d = 128,
// M = 64 (dsub = 2), 16 and 256 centroids per sub-quantizer.
func BenchmarkPQTable(b *testing.B) {
	const d, m = 128, 64
	for _, ksub := range []int{16, 256} {
		for _, metric := range []Metric{L2, InnerProduct} {
			r := rand.New(rand.NewPCG(4, 4))
			cb := NewPQCodebook(randNorm(r, m*ksub*(d/m)), m, ksub, d/m)
			q := randNorm(r, d)
			dst := AlignedFloat32(m * ksub)
			b.Run(fmt.Sprintf("d=%d/M=%d/ksub=%d/metric=%v", d, m, ksub, metric), func(b *testing.B) {
				benchLevels(b, func(b *testing.B) {
					for b.Loop() {
						cb.Table(dst, q, metric)
					}
				})
			})
		}
	}
}

// BenchmarkPQScan8 is the 8-bit ADC scan at M = 64 (64-byte codes), to set
// beside BenchmarkFastScan4 at M = 64 (32-byte codes): run both with
// -bench 'PQScan8|FastScan4$' and compare vectors/s. gather=true is the
// VGATHERDPS kernel, gather=false the default scalar one.
func BenchmarkPQScan8(b *testing.B) {
	const m = 64
	for _, n := range []int{4096, 1_000_000} {
		r := rand.New(rand.NewPCG(5, 5))
		codes := AlignedBytes(n * m)
		for i := range codes {
			codes[i] = uint8(r.IntN(256))
		}
		table := randNorm(r, m*256)
		dst := make([]float32, n)
		b.Run(fmt.Sprintf("m=%d/n=%d", m, n), func(b *testing.B) {
			for _, gather := range []bool{false, true} {
				b.Run(fmt.Sprintf("gather=%v", gather), func(b *testing.B) {
					pqScan8Gather = gather
					defer func() { pqScan8Gather = false }()
					benchLevels(b, func(b *testing.B) {
						b.SetBytes(int64(len(codes)))
						for b.Loop() {
							PQScan8(dst, codes, m, table)
						}
						reportScanRates(b, n, m)
					})
				})
			}
		})
	}
}
