package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

func BenchmarkDot(b *testing.B) {
	for _, d := range []int{16, 128, 784} {
		r := rand.New(rand.NewPCG(1, uint64(d)))
		x, y := randFloats(r, d, 0), randFloats(r, d, 0)
		b.Run(fmt.Sprintf("d=%d", d), func(b *testing.B) {
			benchLevels(b, func(b *testing.B) {
				b.SetBytes(int64(8 * d))
				var s float32
				for b.Loop() {
					s += Dot(x, y)
				}
				sinkF32 = s
			})
		})
	}
}

func BenchmarkL2Sq(b *testing.B) {
	const d = 128
	r := rand.New(rand.NewPCG(2, d))
	x, y := randFloats(r, d, 0), randFloats(r, d, 0)
	b.Run(fmt.Sprintf("d=%d", d), func(b *testing.B) {
		benchLevels(b, func(b *testing.B) {
			b.SetBytes(8 * d)
			var s float32
			for b.Loop() {
				s += L2Sq(x, y)
			}
			sinkF32 = s
		})
	})
}

var sinkF32 float32

// BenchmarkDotBatchInCache scans 2,000 rows of d=128 (1 MB): the rows stay in L2.
func BenchmarkDotBatchInCache(b *testing.B) {
	const d, n = 128, 2000
	r := rand.New(rand.NewPCG(3, 3))
	q, rows, dst := randFloats(r, d, 0), randFloats(r, n*d, 0), make([]float32, n)
	for _, k := range []struct {
		name string
		f    func(dst, q, rows []float32)
	}{{"dot", DotBatch}, {"l2", L2SqBatch}} {
		b.Run("metric="+k.name, func(b *testing.B) {
			benchLevels(b, func(b *testing.B) {
				b.SetBytes(n * d * 4)
				for b.Loop() {
					k.f(dst, q, rows)
				}
			})
		})
	}
}

// BenchmarkOutOfCache compares DotBatch over 1,000,000 rows of d=128 (512 MB,
// far out of cache) with a single-core copy of the same 512 MB in the same
// run. Both report MB/s of the 512 MB they go through.
func BenchmarkOutOfCache(b *testing.B) {
	if testing.Short() {
		b.Skip("allocates 1.5 GB")
	}
	const d, n = 128, 1_000_000
	const size = n * d * 4
	r := rand.New(rand.NewPCG(4, 4))
	rows := AlignedFloat32(n * d)
	for i := range rows {
		rows[i] = r.Float32()
	}
	q, dst := randFloats(r, d, 0), make([]float32, n)
	b.Run("kernel=copy", func(b *testing.B) {
		dstBuf := AlignedFloat32(n * d)
		copy(dstBuf, rows) // fault the pages in before timing
		b.SetBytes(size)
		for b.Loop() {
			copy(dstBuf, rows)
		}
	})
	b.Run("kernel=dotbatch", func(b *testing.B) {
		benchLevels(b, func(b *testing.B) {
			b.SetBytes(size)
			for b.Loop() {
				DotBatch(dst, q, rows)
			}
		})
	})
	b.Run("kernel=l2batch", func(b *testing.B) {
		benchLevels(b, func(b *testing.B) {
			b.SetBytes(size)
			for b.Loop() {
				L2SqBatch(dst, q, rows)
			}
		})
	})
}

// BenchmarkDotBatchMany: 64 queries against 100,000 rows of d=128, blocked so
// each block of rows is read from memory once for all 64 queries.
func BenchmarkDotBatchMany(b *testing.B) {
	const d, m, n = 128, 64, 100_000
	r := rand.New(rand.NewPCG(5, 5))
	qs, rows, dst := randFloats(r, m*d, 0), randFloats(r, n*d, 0), make([]float32, m*n)
	benchLevels(b, func(b *testing.B) {
		for b.Loop() {
			DotBatchMany(dst, qs, rows, d)
		}
		b.ReportMetric(float64(2*m*n*d)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	})
}
