package kernels

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// BenchmarkTopK selects k of n random scores and compares with sorting all n:
// sort=pairs sorts (score, id) pairs by the same order TopK uses, and
// sort=floats sorts the bare scores (the cheapest full sort there is).
func BenchmarkTopK(b *testing.B) {
	const n = 100_000
	r := rand.New(rand.NewPCG(21, 22))
	scores := randScores(r, n, false, false)
	for _, k := range []int{10, 1000, 4096} {
		b.Run(fmt.Sprintf("n=%d/k=%d", n, k), func(b *testing.B) {
			benchLevels(b, func(b *testing.B) {
				s := NewSelector(k, true)
				var dst []Result
				for b.Loop() {
					s.Reset()
					s.Push(scores, nil)
					dst = s.Results(dst)
				}
				b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "scores/s")
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e3, "us/op")
			})
		})
	}
	b.Run(fmt.Sprintf("n=%d/sort=pairs", n), func(b *testing.B) {
		buf := make([]Result, n)
		for b.Loop() {
			for i, v := range scores {
				buf[i] = Result{int64(i), v}
			}
			slices.SortFunc(buf, func(x, y Result) int {
				if x.Score != y.Score {
					return cmp.Compare(y.Score, x.Score)
				}
				return cmp.Compare(x.ID, y.ID)
			})
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e3, "us/op")
	})
	b.Run(fmt.Sprintf("n=%d/sort=floats", n), func(b *testing.B) {
		buf := make([]float32, n)
		for b.Loop() {
			copy(buf, scores)
			slices.Sort(buf)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e3, "us/op")
	})
}
