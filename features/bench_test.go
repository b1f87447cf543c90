package features

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/reelrank/reelrank/eventlog"
)

// benchStore builds a store the size of the default world: 100,000 users,
// 500,000 reels with 64-dimensional embeddings, 10,000 authors, and a
// million events of history.
func benchStore(b *testing.B) (*Store, int64) {
	b.Helper()
	s := newTestStore(b, Config{})
	rng := rand.New(rand.NewPCG(1, 1))
	const users, reels, authors = 100_000, 500_000, 10_000
	for u := int64(1); u <= users; u++ {
		s.PutUser(User{ID: u, Country: int(u % 20), Language: int(u % 9), AgeBucket: int(u % 6), Device: int(u % 3)})
	}
	e := make([]float32, 64)
	for r := int64(1); r <= reels; r++ {
		for j := range e {
			e[j] = float32(rng.NormFloat64())
		}
		s.PutReel(Reel{ID: r, Author: 1 + r%authors, Upload: t0 - r*1000, Duration: 30, Embedding: e, Category: int(r % 32)})
	}
	evs := make([]eventlog.Event, 0, 1<<16)
	tm := t0
	for range 1_000_000 / 2 {
		u, r := 1+rng.Int64N(users), 1+rng.Int64N(reels)
		evs = append(evs, impression(tm, u, r, 1+r%authors, u, 0), watch(tm+1000, u, r, 1+r%authors, u, 0, rng.Float32()))
		tm += 100
		if len(evs) == cap(evs) {
			s.Apply(evs)
			evs = evs[:0]
		}
	}
	s.Apply(evs)
	return s, tm
}

// BenchmarkFeatures is one ranking request: a user's features and 1,000
// random candidates' reel and cross features, with and without their
// embeddings, on a store the size of the default world.
func BenchmarkFeatures(b *testing.B) {
	s, now := benchStore(b)
	for _, emb := range []bool{false, true} {
		b.Run(fmt.Sprintf("emb=%v", emb), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(2, 2))
			r := &Request{User: 77, Context: Context{Time: now, Session: 77}, Reels: make([]int64, 1000), Embeddings: emb}
			for b.Loop() {
				for i := range r.Reels {
					r.Reels[i] = 1 + rng.Int64N(500_000)
				}
				r.User = 1 + rng.Int64N(100_000)
				if err := s.Features(r); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "us/request")
		})
	}
}

// BenchmarkApply applies a realistic event mix to the default-sized store.
func BenchmarkApply(b *testing.B) {
	s, now := benchStore(b)
	rng := rand.New(rand.NewPCG(3, 3))
	evs := make([]eventlog.Event, 0, 4096)
	for len(evs) < cap(evs) {
		u, r := 1+rng.Int64N(100_000), 1+rng.Int64N(500_000)
		evs = append(evs, impression(now, u, r, 1+r%10_000, u, 0))
		if rng.IntN(3) == 0 {
			sk := simple(eventlog.Skip, now+1, u, r, 1+r%10_000, u, 0)
			sk.Seconds = 1
			evs = append(evs, sk)
		} else {
			evs = append(evs, watch(now+1, u, r, 1+r%10_000, u, 0, rng.Float32()))
		}
		now += 10
	}
	b.ResetTimer()
	for b.Loop() {
		if err := s.Apply(evs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(evs))/b.Elapsed().Seconds(), "events/s")
}
