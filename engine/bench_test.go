package engine

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"
)

// benchReels is the catalogue of the benchmarks: REELRANK_ENGINE_REELS
// reels (default 20,000, so that setting up stays quick).
func benchReels(b *testing.B) int {
	n := 20_000
	if v := os.Getenv("REELRANK_ENGINE_REELS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1000 {
			b.Fatalf("REELRANK_ENGINE_REELS=%q: want a number of reels of at least 1000", v)
		}
	}
	return n
}

// benchWorld is a catalogue of n reels with the serving sizes of the
// store and the models: 64-dimensional content embeddings and towers, 32
// categories, a 256-256-128 ranker, half the reels with enough evidence to
// leave the exploration pool.
func benchWorld(b *testing.B, n int) (*world, *Model) {
	w := newWorld(b, worldConfig{reels: n, users: 2000, authors: max(n/20, 50), known: min(n/2, 20_000), fresh: 100, seed: 1,
		embed: 64, dim: 64, categories: 32, hidden: []int{256, 256, 128}, towerHidden: []int{256}})
	return w, w.model(b, "bench", "A", 1)
}

// BenchmarkRecommend serves top-20 requests one at a time (K = 1000
// recalled, every candidate ranked) and reports the mean time of each
// stage and the candidates per request.
func BenchmarkRecommend(b *testing.B) {
	n := benchReels(b)
	w, m := benchWorld(b, n)
	for _, mode := range []Exploration{EpsilonGreedy, Thompson} {
		b.Run(fmt.Sprintf("reels=%d/explore=%s", n, mode), func(b *testing.B) {
			e := w.engine(b, Config{Exploration: mode}, m)
			var out Response
			var sum Timings
			var ranked uint64
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				req := w.request(int64(1+i%2500), 20) // users past 2000 are unknown
				i++
				if err := e.RecommendInto(context.Background(), &req, &out); err != nil {
					b.Fatal(err)
				}
				t := out.Timings
				sum.Features += t.Features
				sum.Tower += t.Tower
				sum.ANN += t.ANN
				sum.Rank += t.Rank
				sum.Postrank += t.Postrank
				sum.Total += t.Total
				ranked += uint64(t.Ranked)
			}
			per := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(i) }
			b.ReportMetric(per(sum.Features), "features-µs/op")
			b.ReportMetric(per(sum.Tower), "tower-µs/op")
			b.ReportMetric(per(sum.ANN), "ann-µs/op")
			b.ReportMetric(per(sum.Rank), "rank-µs/op")
			b.ReportMetric(per(sum.Postrank), "postrank-µs/op")
			b.ReportMetric(per(sum.Total), "total-µs/op")
			b.ReportMetric(float64(ranked)/float64(i), "ranked/op")
		})
	}
}

// BenchmarkRecommendParallel serves requests from GOMAXPROCS goroutines:
// the throughput of the machine.
func BenchmarkRecommendParallel(b *testing.B) {
	n := benchReels(b)
	w, m := benchWorld(b, n)
	b.Run(fmt.Sprintf("reels=%d", n), func(b *testing.B) {
		e := w.engine(b, Config{}, m)
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			var out Response
			i := 0
			for pb.Next() {
				req := w.request(int64(1+i%2500), 20)
				i++
				if err := e.RecommendInto(context.Background(), &req, &out); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkThompsonDraw times the draws of one request's Thompson rounds:
// 32 rounds over an exploration set of 100 reels.
func BenchmarkThompsonDraw(b *testing.B) {
	p := &postranker{rounds: 32}
	n := 100
	p.reset(n)
	for i := range n {
		p.alpha[i], p.beta[i] = 2+float64(i%7), 20+float64(i%13)
		p.eset = append(p.eset, int32(i))
	}
	r := rand.New(rand.NewPCG(1, 2))
	for b.Loop() {
		p.draw(r)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n*p.rounds), "ns/draw")
}
