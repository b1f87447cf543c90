package engine_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/reelrank/reelrank/ann"
	"github.com/reelrank/reelrank/engine"
	"github.com/reelrank/reelrank/features"
	"github.com/reelrank/reelrank/ranker"
)

// Serve a catalogue of 2,000 reels with a random model: recommend to a
// user the store has never seen, show a reel uploaded a minute ago, and
// meet the typed errors.
func Example() {
	ctx := context.Background()
	now := int64(1767571200000) // 2026-01-05T00:00:00Z
	r := rand.New(rand.NewPCG(1, 2))

	// The feature store's catalogue: 2,000 reels by 200 authors, uploaded
	// one a minute until a day ago.
	store, err := features.NewStore(features.Config{EmbedDim: 8, Categories: 4})
	if err != nil {
		panic(err)
	}
	randomEmbedding := func() []float32 {
		e := make([]float32, 8)
		for j := range e {
			e[j] = float32(r.NormFloat64())
		}
		return e
	}
	for id := int64(1); id <= 2000; id++ {
		err := store.PutReel(features.Reel{ID: id, Author: 1000 + id%200, Upload: now - 86400_000 - id*60_000,
			Duration: 20, Embedding: randomEmbedding(), Category: -1})
		if err != nil {
			panic(err)
		}
	}
	if err := store.FitCategories(1); err != nil {
		panic(err)
	}

	// A model: a random ranker and towers, and the index of the reels.
	spec := store.Spec()
	rk, err := ranker.NewMultitask(spec, ranker.Config{Hidden: []int{32}}, r)
	if err != nil {
		panic(err)
	}
	bundle := &ranker.Bundle{Version: "demo-1", Spec: spec, Ranker: rk,
		UserTower: ranker.NewUserTower(len(spec.User), []int{16}, 8, r),
		ReelTower: ranker.NewReelTower(spec, []int{16}, 8, nil, r)}
	ix, err := engine.BuildIndex(ctx, store, bundle.ReelTower, ann.Options{Refine: ann.RefineF32, Seed: 1}, now)
	if err != nil {
		panic(err)
	}
	model, err := engine.NewModel(bundle, ix, "control")
	if err != nil {
		panic(err)
	}
	e, err := engine.New(engine.Config{Clock: func() time.Time { return time.UnixMilli(now) }}, store, model)
	if err != nil {
		panic(err)
	}
	defer e.Close()

	// A user the store does not know, from country code 3.
	resp, err := e.Recommend(ctx, engine.RecommendRequest{User: 42, N: 10, Context: engine.Context{Session: 1, Country: 3}})
	if err != nil {
		panic(err)
	}
	fmt.Println(len(resp.Items), "items from", resp.ModelVersion, "arm", resp.Arm, "heads", resp.Heads)

	// A reel uploaded a minute ago joins the index and the fresh pool, whose
	// newest reels are candidates of every request.
	if _, err := e.Upsert(engine.Reel{ID: 5000, Author: 7, Upload: now - 60_000, Duration: 9,
		Category: -1, Embedding: randomEmbedding()}); err != nil {
		panic(err)
	}
	resp, err = e.Recommend(ctx, engine.RecommendRequest{User: 42, N: 10})
	if err != nil {
		panic(err)
	}
	st := e.Stats()
	fmt.Println("fresh pool:", st.FreshPool, "indexed:", st.IndexSize, "served:", len(resp.Items))

	// Typed errors.
	_, err = e.Score(ctx, 42, engine.Context{}, []int64{1, 99999})
	fmt.Println(errors.Is(err, engine.ErrNotFound), err)
	_, err = e.Search(ctx, []float32{1, 2}, 5, 0, nil)
	fmt.Println(errors.Is(err, engine.ErrBadRequest), err)
	// Output:
	// 10 items from demo-1 arm control heads [watch like comment share follow]
	// fresh pool: 1 indexed: 2001 served: 10
	// true engine: not found: score: reel 99999
	// true engine: bad request: search: vector of dimension 2, the index has 8
}
