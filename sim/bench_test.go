package sim

import (
	"context"
	"testing"
)

func BenchmarkProbs(b *testing.B) {
	w := memWorld(b, testConfig())
	at := w.startMS + msPerDay + 5*msPerHour
	type q struct {
		user, reel int64
		c          Context
	}
	qs := make([]q, 1024)
	r := NewRand(1)
	for i := range qs {
		qs[i] = q{1 + r.IntN(int64(w.NumUsers())), 1 + r.IntN(int64(w.NumReels())),
			Context{Time: at + r.IntN(msPerDay), Position: int(r.IntN(20)), Prev: r.IntN(int64(w.NumReels()))}}
	}
	var i int
	var sink float64
	for b.Loop() {
		x := &qs[i&1023]
		i++
		sink += w.Probs(x.user, x.reel, x.c).Like
	}
	_ = sink
}

func BenchmarkScoreAll(b *testing.B) {
	c := testConfig()
	c.Reels = 200_000
	w := memWorld(b, c)
	at := w.startMS + msPerDay
	dst := make([]float32, 0, w.NumReels())
	var u int64
	for b.Loop() {
		u++
		dst = w.ScoreAll(1+u%3000, at, 0.5, dst)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(dst)), "ns/reel")
}

func BenchmarkGenerate(b *testing.B) {
	c := testConfig()
	var s Summary
	for b.Loop() {
		var err error
		s, err = Generate(context.Background(), c, b.TempDir(), GenerateOptions{})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(s.Bytes)
	b.ReportMetric(float64(s.Counts.Impressions)*float64(b.N)/b.Elapsed().Seconds(), "impressions/s")
}
