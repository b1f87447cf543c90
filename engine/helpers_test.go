package engine

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/reelrank/reelrank/ann"
	"github.com/reelrank/reelrank/eventlog"
	"github.com/reelrank/reelrank/features"
	"github.com/reelrank/reelrank/ranker"
)

// t0 is the world's present: 2026-01-05T00:00:00Z.
const t0 = int64(1767571200000)

// The sizes of the tests' worlds and models, unless a worldConfig says.
const (
	testDim   = 16 // the towers' embeddings
	testEmbed = 16 // the content embeddings
)

// world is a small catalogue in a feature store, with the authors of its
// reels, and what a model for it needs.
type world struct {
	store  *features.Store
	reels  []int64
	author map[int64]int64
	now    int64
	seed   uint64
	cfg    worldConfig
}

type worldConfig struct {
	reels, users int
	// authors: reels share this many authors; 0 gives every reel its own.
	authors int
	// known: reels 1..known get 60 impressions an hour before now, enough
	// evidence to leave the exploration pool.
	known int
	// fresh: the last fresh reels were uploaded within the last hour.
	fresh int
	seed  uint64
	// embed, dim, hidden and towerHidden size the content embeddings,
	// the towers' output and the hidden layers (defaults testEmbed,
	// testDim, {32, 16}, {32}).
	embed, dim          int
	hidden, towerHidden []int
	// categories of the store (default 8).
	categories int
}

func newWorld(t testing.TB, c worldConfig) *world {
	t.Helper()
	if c.embed == 0 {
		c.embed = testEmbed
	}
	if c.dim == 0 {
		c.dim = testDim
	}
	if c.hidden == nil {
		c.hidden = []int{32, 16}
	}
	if c.towerHidden == nil {
		c.towerHidden = []int{32}
	}
	if c.categories == 0 {
		c.categories = 8
	}
	st, err := features.NewStore(features.Config{EmbedDim: c.embed, Categories: c.categories})
	if err != nil {
		t.Fatal(err)
	}
	w := &world{store: st, author: map[int64]int64{}, now: t0, seed: c.seed, cfg: c}
	r := rand.New(rand.NewPCG(c.seed, 7))
	for u := int64(1); u <= int64(c.users); u++ {
		if err := st.PutUser(features.User{ID: u, Country: r.IntN(12), Language: r.IntN(9), AgeBucket: r.IntN(6), Device: r.IntN(4)}); err != nil {
			t.Fatal(err)
		}
	}
	emb := make([]float32, c.embed)
	for id := int64(1); id <= int64(c.reels); id++ {
		a := 100000 + id
		if c.authors > 0 {
			a = 100000 + id%int64(c.authors)
		}
		up := t0 - int64(2+r.IntN(30*24))*3600_000
		if id > int64(c.reels-c.fresh) {
			up = t0 - int64(1+r.IntN(59))*60_000
		}
		for j := range emb {
			emb[j] = float32(r.NormFloat64())
		}
		if err := st.PutReel(features.Reel{ID: id, Author: a, Upload: up, Duration: float32(5 + r.IntN(60)),
			Embedding: emb, Category: -1}); err != nil {
			t.Fatal(err)
		}
		w.reels = append(w.reels, id)
		w.author[id] = a
	}
	if err := st.FitCategories(c.seed); err != nil {
		t.Fatal(err)
	}
	evs := make([]eventlog.Event, 0, 100*c.known)
	for id := int64(1); id <= int64(c.known); id++ {
		for k := range 60 {
			u := int64(1 + r.IntN(max(c.users, 1)))
			tm := t0 - 3600_000 + int64(k)
			evs = append(evs, eventlog.Event{Type: eventlog.Impression, Has: eventlog.Required(eventlog.Impression), Time: tm,
				User: u, Reel: id, Author: w.author[id], Session: u*1000 + int64(k), Propensity: 0.5, Arm: "seed"})
			if r.IntN(3) == 0 {
				evs = append(evs, eventlog.Event{Type: eventlog.Watch, Has: eventlog.Required(eventlog.Watch), Time: tm + 1,
					User: u, Reel: id, Author: w.author[id], Session: u*1000 + int64(k), Seconds: 10, Fraction: 1})
			}
		}
	}
	if err := st.Apply(evs); err != nil {
		t.Fatal(err)
	}
	return w
}

// clock returns a clock fixed at the world's present.
func (w *world) clock() func() time.Time {
	return func() time.Time { return time.UnixMilli(w.now) }
}

// bundle returns a random model for the world; the reel tower has id
// vectors for the first half of the reels.
func (w *world) bundle(t testing.TB, version string, seed uint64) *ranker.Bundle {
	t.Helper()
	sp := w.store.Spec()
	r := rand.New(rand.NewPCG(seed, 11))
	mt, err := ranker.NewMultitask(sp, ranker.Config{Hidden: w.cfg.hidden}, r)
	if err != nil {
		t.Fatal(err)
	}
	return &ranker.Bundle{Version: version, Spec: sp, Ranker: mt,
		UserTower: ranker.NewUserTower(len(sp.User), w.cfg.towerHidden, w.cfg.dim, r),
		ReelTower: ranker.NewReelTower(sp, w.cfg.towerHidden, w.cfg.dim, w.reels[:len(w.reels)/2], r)}
}

// model returns a random model with an index of every reel.
func (w *world) model(t testing.TB, version, arm string, seed uint64) *Model {
	t.Helper()
	b := w.bundle(t, version, seed)
	ix, err := BuildIndex(context.Background(), w.store, b.ReelTower, ann.Options{Refine: ann.RefineF32, Seed: seed}, w.now)
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewModel(b, ix, arm)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// engine returns an engine over the world serving m, with the world's
// clock.
func (w *world) engine(t testing.TB, cfg Config, m *Model) *Engine {
	t.Helper()
	if cfg.Clock == nil {
		cfg.Clock = w.clock()
	}
	e, err := New(cfg, w.store, m)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// request returns a request for user at the world's present.
func (w *world) request(user int64, n int) RecommendRequest {
	return RecommendRequest{User: user, N: n, Context: Context{Time: w.now, Session: user*7 + 1}}
}

// checkResponse asserts what holds of every response: unique reels, none
// of the forbidden ones, probabilities of every head, propensities in
// (0, 1], the model's version and arm, and author diversity over every
// window of the given width (recent authors first).
func checkResponse(t *testing.T, w *world, resp *Response, forbidden map[int64]bool, window int, recent []int64) {
	t.Helper()
	seen := map[int64]bool{}
	var authors []int64
	for _, id := range recent {
		authors = append(authors, w.author[id])
	}
	for j, it := range resp.Items {
		if seen[it.Reel] {
			t.Fatalf("item %d: reel %d twice", j, it.Reel)
		}
		seen[it.Reel] = true
		if forbidden[it.Reel] {
			t.Fatalf("item %d: reel %d is excluded, recent or deleted", j, it.Reel)
		}
		if len(it.Probs) != len(resp.Heads) {
			t.Fatalf("item %d: %d probabilities for %d heads", j, len(it.Probs), len(resp.Heads))
		}
		for _, p := range it.Probs {
			if !(p >= 0 && p <= 1) {
				t.Fatalf("item %d: probability %v", j, p)
			}
		}
		if !(it.Propensity > 0 && it.Propensity <= 1) {
			t.Fatalf("item %d: propensity %v outside (0, 1]", j, it.Propensity)
		}
		if math.IsNaN(float64(it.Score)) {
			t.Fatalf("item %d: score NaN", j)
		}
		a := w.author[it.Reel]
		for k := max(0, len(authors)-(window-1)); k < len(authors); k++ {
			if authors[k] == a {
				t.Fatalf("item %d: author %d again within %d slots", j, a, window)
			}
		}
		authors = append(authors, a)
	}
	if resp.ModelVersion == "" {
		t.Fatal("no model version")
	}
}
