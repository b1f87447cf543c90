package train

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/reelrank/reelrank/eventlog"
	"github.com/reelrank/reelrank/sim"
)

// ceilingWorld opens the world REELRANK_WORLD names, or the tests' small
// world, and returns it with its folder.
func ceilingWorld(t *testing.T) (*sim.World, string) {
	dir := os.Getenv("REELRANK_WORLD")
	if dir == "" {
		return openSmallWorld(t), smallWorld.dir
	}
	w, err := sim.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w, dir
}

// TestCeiling measures how much of the oracle's ranking power survives
// when the latent truth is known only up to noise, as any model must
// learn it from the log: a reel's quality from its few impressions, a
// user's interest from their history. It scores the last two days'
// impressions with the oracle's own shared score z (interest in the
// reel's topics, reel and author quality, language, position) built from
// the latent truth plus Gaussian noise, and reports the expected AUC of
// the watch-through label (each impression a positive with the oracle's
// probability p and a negative with 1-p). Set REELRANK_WORLD to a world
// folder for the default world's figures (BENCHMARKS.md); by default it
// runs on the tests' small world.
func TestCeiling(t *testing.T) {
	w, dir := ceilingWorld(t)
	cfg := w.Config()
	o := cfg.Oracle
	from := cfg.Start.UnixMilli() + int64(cfg.Days-2)*int64(24*3600*1000)
	f, err := os.Open(filepath.Join(dir, sim.FileEvents))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rd := eventlog.NewReader(f, eventlog.Options{})
	reels, users := w.Reels(), w.Users()
	aq := map[int64]float64{}
	for _, a := range w.Authors() {
		aq[a.ID] = a.Quality
	}
	rng := rand.New(rand.NewPCG(7, 8))
	qNoise := make([]float64, len(reels)+1)
	for i := range qNoise {
		qNoise[i] = rng.NormFloat64()
	}
	T := cfg.Topics
	uNoise := make([]float64, (len(users)+1)*T)
	for i := range uNoise {
		uNoise[i] = rng.NormFloat64()
	}
	type variant struct {
		name           string
		oracle         bool
		qSigma, aSigma float64 // noise on reel quality and on each topic interest, in their own standard deviations
	}
	variants := []variant{
		{name: "oracle", oracle: true},
		{name: "latent z, exact"},
		{name: "quality noise 0.5", qSigma: 0.5},
		{name: "quality noise 1", qSigma: 1},
		{name: "quality noise 1, interest noise 0.5", qSigma: 1, aSigma: 0.5},
		{name: "quality noise 1.5, interest noise 1", qSigma: 1.5, aSigma: 1},
	}
	scores := make([][]float32, len(variants))
	var labels []bool
	var weights []float32
	prev := map[int64]int64{}
	seenReel := map[int64]int{} // impressions before the test days
	seenUser := map[int64]int{}
	var reelSeen, userSeen []int
	var interest []float32
	keep := 1
	if len(reels) > 100_000 {
		keep = 4 // a quarter of the default world's test impressions is plenty
	}
	for {
		evs, rerr := rd.Next()
		for i := range evs {
			e := &evs[i]
			if e.Type != eventlog.Impression {
				continue
			}
			p0 := prev[e.Session]
			prev[e.Session] = e.Reel
			if e.Time < from {
				seenReel[e.Reel]++
				seenUser[e.User]++
				continue
			}
			if rng.IntN(keep) != 0 {
				continue
			}
			reelSeen = append(reelSeen, seenReel[e.Reel])
			userSeen = append(userSeen, seenUser[e.User])
			p := w.Probs(e.User, e.Reel, sim.Context{Time: e.Time, Position: int(e.Position), Prev: p0}).WatchThrough(0.8)
			r := &reels[e.Reel-1]
			u := &users[e.User-1]
			interest = w.Interest(e.User, e.Time, interest)
			lang := 0.0
			if r.Language != u.Language {
				lang = o.LanguageMismatch
			}
			rest := o.AuthorQuality*aq[r.Author] - lang - o.Fatigue*math.Log1p(float64(e.Position))
			for k, v := range variants {
				s := p
				if !v.oracle {
					var a float64
					for j, tp := range r.Topics {
						a += r.TopicWeights[j] * (float64(interest[tp]) + v.aSigma*uNoise[int(e.User)*T+tp])
					}
					s = o.Affinity*a + o.ReelQuality*(r.Quality+v.qSigma*qNoise[e.Reel]) + rest
				}
				scores[k] = append(scores[k], float32(s), float32(s))
			}
			labels = append(labels, true, false)
			weights = append(weights, float32(p), float32(1-p))
		}
		if rerr != nil {
			break
		}
	}
	if len(labels) == 0 {
		t.Fatal("no test impressions")
	}
	slices.Sort(reelSeen)
	slices.Sort(userSeen)
	t.Logf("a test impression's reel had %d impressions before the test days at the median (%d at the 90th percentile), its user %d (%d)",
		reelSeen[len(reelSeen)/2], reelSeen[len(reelSeen)*9/10], userSeen[len(userSeen)/2], userSeen[len(userSeen)*9/10])
	aucs := make([]float64, len(variants))
	for k, v := range variants {
		a, err := AUC(scores[k], labels, weights)
		if err != nil {
			t.Fatal(err)
		}
		aucs[k] = a
		t.Logf("%-40s expected watch-through AUC %.4f  (%.0f%% of the oracle's lift)", v.name, a, 100*(a-0.5)/(aucs[0]-0.5))
	}
	for k := 2; k < len(aucs); k++ {
		if aucs[k] > aucs[1]+1e-3 {
			t.Errorf("%s scores above the exact latent score: %.4f > %.4f", variants[k].name, aucs[k], aucs[1])
		}
	}
	if aucs[len(aucs)-1] > aucs[3]+1e-3 || aucs[3] > aucs[2]+1e-3 {
		t.Errorf("more noise scored higher: %v", aucs)
	}
	if aucs[1] > aucs[0]+1e-3 {
		t.Errorf("the partial latent score beats the oracle: %.4f > %.4f", aucs[1], aucs[0])
	}
}

// TestRetrievalCeiling is TestCeiling for retrieval: recall@1000 of the
// oracle's top 100 at the start of the test days, for scores built from
// the latent truth (interest in the reel's topics, reel and author
// quality, language) with noise on quality and interest.
func TestRetrievalCeiling(t *testing.T) {
	w, _ := ceilingWorld(t)
	cfg := w.Config()
	o := cfg.Oracle
	at := cfg.Start.UnixMilli() + int64(cfg.Days-2)*int64(24*3600*1000)
	reels, users := w.Reels(), w.Users()
	var ids []int64
	for _, r := range reels {
		if r.Upload <= at {
			ids = append(ids, r.ID)
		}
	}
	aq := map[int64]float64{}
	for _, a := range w.Authors() {
		aq[a.ID] = a.Quality
	}
	rng := rand.New(rand.NewPCG(9, 10))
	qNoise := make([]float64, len(reels)+1)
	for i := range qNoise {
		qNoise[i] = rng.NormFloat64()
	}
	variants := []struct {
		name           string
		qSigma, aSigma float64
	}{
		{"latent, exact", 0, 0},
		{"interest only", -1, 0},
		{"quality only", 0, -1},
		{"quality noise 1", 1, 0},
		{"quality noise 1, interest noise 0.5", 1, 0.5},
		{"quality noise 1.5, interest noise 1", 1.5, 1},
	}
	nUsers := 100
	if len(ids) < 100_000 {
		nUsers = 50
	}
	recall := make([]float64, len(variants))
	scores := make([]float32, len(ids))
	var oracle, interest []float32
	noisy := make([]float64, cfg.Topics)
	for range nUsers {
		u := &users[rng.IntN(len(users))]
		oracle = w.ScoreAll(u.ID, at, 0.8, oracle)
		best := TopK(oracle, ids, retrievalOracle)
		interest = w.Interest(u.ID, at, interest)
		for k, v := range variants {
			for tp := range noisy {
				noisy[tp] = float64(interest[tp]) + math.Max(v.aSigma, 0)*rng.NormFloat64()
			}
			for i, id := range ids {
				r := &reels[id-1]
				var s float64
				if v.aSigma >= 0 {
					for j, tp := range r.Topics {
						s += o.Affinity * r.TopicWeights[j] * noisy[tp]
					}
				}
				if v.qSigma >= 0 {
					s += o.ReelQuality*(r.Quality+v.qSigma*qNoise[id]) + o.AuthorQuality*aq[r.Author]
				}
				if r.Language != u.Language {
					s -= o.LanguageMismatch
				}
				scores[i] = float32(s)
			}
			got := TopK(scores, ids, retrievalK)
			rc, err := RecallAtK(got, best, retrievalK)
			if err != nil {
				t.Fatal(err)
			}
			recall[k] += rc / float64(nUsers)
		}
	}
	for k, v := range variants {
		t.Logf("%-40s recall@1000 of the oracle's top 100 %.3f", v.name, recall[k])
	}
	if recall[0] < recall[3]-0.02 || recall[3] < recall[5]-0.02 {
		t.Errorf("more noise recalled more: %v", recall)
	}
}
