package server

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/reelrank/reelrank/ann"
	"github.com/reelrank/reelrank/engine"
	"github.com/reelrank/reelrank/features"
	"github.com/reelrank/reelrank/ranker"
)

// testNow is the present of the test engine's world: 2026-01-05T00:00:00Z.
const testNow = int64(1767571200000)

// newTestEngine returns a real engine over a small random world: 300 reels
// by 30 authors, 20 users, embeddings of 8 dimensions, a random model and
// its index, a clock fixed at testNow. Small enough to build in a few
// milliseconds; the engine closes when the test ends.
func newTestEngine(tb testing.TB) *engine.Engine {
	tb.Helper()
	return newTestEngineWith(tb, engine.Config{})
}

// newTestEngineWith is newTestEngine with the engine's configuration
// (its clock and logger are the test's): the world and the model are
// the same whatever cfg says, so that engines serving shards of it agree
// on the catalogue.
func newTestEngineWith(tb testing.TB, cfg engine.Config) *engine.Engine {
	tb.Helper()
	const reels, users, dim = 300, 20, 8
	r := rand.New(rand.NewPCG(1, 2))
	store, err := features.NewStore(features.Config{EmbedDim: dim, Categories: 4})
	if err != nil {
		tb.Fatal(err)
	}
	for u := int64(1); u <= users; u++ {
		if err := store.PutUser(features.User{ID: u, Country: r.IntN(4), Language: r.IntN(3), AgeBucket: r.IntN(3),
			Device: r.IntN(2)}); err != nil {
			tb.Fatal(err)
		}
	}
	emb := make([]float32, dim)
	for id := int64(1); id <= reels; id++ {
		for j := range emb {
			emb[j] = float32(r.NormFloat64())
		}
		if err := store.PutReel(features.Reel{ID: id, Author: 1000 + id%30, Upload: testNow - 86400_000 - id*60_000,
			Duration: float32(5 + r.IntN(50)), Embedding: emb, Category: -1}); err != nil {
			tb.Fatal(err)
		}
	}
	if err := store.FitCategories(1); err != nil {
		tb.Fatal(err)
	}
	model := testModel(tb, store, "test-1", r)
	cfg.Clock, cfg.Logger = func() time.Time { return time.UnixMilli(testNow) }, quietLogger()
	e, err := engine.New(cfg, store, model)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { e.Close() })
	return e
}

// testModel returns a random model over store's catalogue.
func testModel(tb testing.TB, store *features.Store, version string, r *rand.Rand) *engine.Model {
	tb.Helper()
	spec := store.Spec()
	dim := 8
	rk, err := ranker.NewMultitask(spec, ranker.Config{Hidden: []int{16}}, r)
	if err != nil {
		tb.Fatal(err)
	}
	bundle := &ranker.Bundle{Version: version, Spec: spec, Ranker: rk,
		UserTower: ranker.NewUserTower(len(spec.User), []int{16}, dim, r),
		ReelTower: ranker.NewReelTower(spec, []int{16}, dim, nil, r)}
	ix, err := engine.BuildIndex(context.Background(), store, bundle.ReelTower, ann.Options{Refine: ann.RefineF32, Seed: 1}, testNow)
	if err != nil {
		tb.Fatal(err)
	}
	model, err := engine.NewModel(bundle, ix, "control")
	if err != nil {
		tb.Fatal(err)
	}
	return model
}
