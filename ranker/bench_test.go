package ranker

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/reelrank/reelrank/features"
	"github.com/reelrank/reelrank/kernels"
)

// BenchmarkScore scores 1,000 candidates per request on one goroutine at
// the feature store's real widths, reporting the mean and the p99 latency
// of a request.
func BenchmarkScore(b *testing.B) {
	sp := storeSpec(b)
	models := []struct {
		name string
		cfg  Config
	}{
		{"shared", Config{Hidden: []int{256, 256, 128}}},
		{"mmoe", Config{Hidden: []int{256, 128}, Experts: 4}},
	}
	for _, mc := range models {
		for _, prec := range []Precision{F32, BF16} {
			for _, n := range []int{1000} {
				b.Run(fmt.Sprintf("model=%s/prec=%s/n=%d", mc.name, prec, n), func(b *testing.B) {
					rng := rand.New(rand.NewPCG(1, 2))
					cfg := mc.cfg
					cfg.Precision = prec
					m, err := NewMultitask(sp, cfg, rng)
					if err != nil {
						b.Fatal(err)
					}
					benchScore(b, m, sp, n, rng)
				})
			}
		}
	}
}

func benchScore(b *testing.B, m *Multitask, sp features.Spec, n int, rng *rand.Rand) {
	in := randInputs(sp, n, rng)
	req := &features.Request{Reels: make([]int64, n), Embeddings: true,
		UserVec: in.User, ReelVec: in.Reel, CrossVec: in.Cross, Emb: in.Emb}
	s, err := m.NewScorer()
	if err != nil {
		b.Fatal(err)
	}
	var out Scores
	if err := s.Score(req, &out); err != nil {
		b.Fatal(err)
	}
	lat := make([]time.Duration, 0, 1<<16)
	start := time.Now()
	for b.Loop() {
		t0 := time.Now()
		if err := s.Score(req, &out); err != nil {
			b.Fatal(err)
		}
		if len(lat) < cap(lat) {
			lat = append(lat, time.Since(t0))
		}
	}
	total := time.Since(start)
	slices.Sort(lat)
	p99 := lat[min(len(lat)-1, len(lat)*99/100)]
	b.ReportMetric(float64(total.Microseconds())/float64(b.N), "us/req")
	b.ReportMetric(float64(p99.Nanoseconds())/1e3, "p99-us")
	b.ReportMetric(float64(n)*float64(b.N)/total.Seconds()/1e6, "Mcand/s")
}

// BenchmarkTowers embeds a batch of 1,000 users and of 1,000 reels.
func BenchmarkTowers(b *testing.B) {
	sp := storeSpec(b)
	rng := rand.New(rand.NewPCG(3, 4))
	const n, d = 1000, 64
	b.Run("tower=user/n=1000", func(b *testing.B) {
		ut := NewUserTower(len(sp.User), []int{256}, d, rng)
		users := randVec(rng, n*len(sp.User))
		dst := make([]float32, n*d)
		for b.Loop() {
			if err := ut.EmbedBatch(users, dst, n); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("tower=reel/n=1000", func(b *testing.B) {
		ids := make([]int64, n)
		for i := range ids {
			ids[i] = int64(i)
		}
		rt := NewReelTower(sp, []int{256}, d, ids[:n/2], rng)
		reels := randVec(rng, n*len(sp.Reel))
		embs := randVec(rng, n*sp.EmbedDim)
		dst := make([]float32, n*d)
		for b.Loop() {
			if err := rt.EmbedBatch(ids, reels, embs, dst); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkFirstLayer compares the first layer of the shared bottom
// computed as Score does (the user part once, as the GEMM's bias) with the
// plain way (every candidate's full input row through the full W1).
func BenchmarkFirstLayer(b *testing.B) {
	sp := storeSpec(b)
	rng := rand.New(rand.NewPCG(1, 2))
	const n, h = 1000, 256
	m, err := NewMultitask(sp, Config{Hidden: []int{h, 256, 128}}, rng)
	if err != nil {
		b.Fatal(err)
	}
	in := randInputs(sp, n, rng)
	l1 := &m.Bottom.Layers[0]
	nu, nr := len(sp.User), l1.In-len(sp.User)
	b.Run("hoist=on/n=1000", func(b *testing.B) {
		userW, rest := splitFirst(l1, nu, F32)
		x := make([]float32, n*nr)
		z := make([]float32, h)
		c := make([]float32, n*h)
		for b.Loop() {
			for i := range n {
				row := x[i*nr : (i+1)*nr]
				copy(row, in.Reel[i*len(sp.Reel):(i+1)*len(sp.Reel)])
				copy(row[len(sp.Reel):], in.Cross[i*len(sp.Cross):(i+1)*len(sp.Cross)])
				copy(row[len(sp.Reel)+len(sp.Cross):], in.Emb[i*sp.EmbedDim:(i+1)*sp.EmbedDim])
			}
			kernels.GemmPacked(z, in.User, 1, userW, l1.B, kernels.ActNone)
			rest.run(c, x, n, z)
		}
	})
	b.Run("hoist=off/n=1000", func(b *testing.B) {
		full := pack(l1.W, l1.In, h, l1.B, l1.Act, F32)
		x := make([]float32, n*l1.In)
		c := make([]float32, n*h)
		for b.Loop() {
			for i := range n {
				row := x[i*l1.In : (i+1)*l1.In]
				copy(row, in.User)
				copy(row[nu:], in.Reel[i*len(sp.Reel):(i+1)*len(sp.Reel)])
				copy(row[nu+len(sp.Reel):], in.Cross[i*len(sp.Cross):(i+1)*len(sp.Cross)])
				copy(row[nu+len(sp.Reel)+len(sp.Cross):], in.Emb[i*sp.EmbedDim:(i+1)*sp.EmbedDim])
			}
			full.run(c, x, n, nil)
		}
	})
}
