package ranker_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"

	"github.com/reelrank/reelrank/features"
	"github.com/reelrank/reelrank/ranker"
)

func Example() {
	store, err := features.NewStore(features.Config{})
	if err != nil {
		panic(err)
	}
	spec := store.Spec()
	rng := rand.New(rand.NewPCG(1, 2))

	// A random ranker on the store's features (training replaces the weights).
	m, err := ranker.NewMultitask(spec, ranker.Config{
		Hidden:  []int{64, 32},
		Weights: []float32{1, 0.5, 0.5, 0.5, 2},
	}, rng)
	if err != nil {
		panic(err)
	}

	// One user, three candidates: the vectors a features.Request carries.
	req := &features.Request{Reels: []int64{11, 12, 13}, Embeddings: true}
	req.UserVec = make([]float32, len(spec.User))
	req.ReelVec = make([]float32, 3*len(spec.Reel))
	req.CrossVec = make([]float32, 3*len(spec.Cross))
	req.Emb = make([]float32, 3*spec.EmbedDim)
	for i := range req.ReelVec {
		req.ReelVec[i] = float32(rng.NormFloat64())
	}
	var scores ranker.Scores
	if err := m.Score(req, &scores); err != nil {
		panic(err)
	}
	fmt.Println("tasks:", m.Tasks)
	fmt.Println("probabilities per candidate:", scores.Tasks)
	inRange := true
	for _, p := range scores.Probs {
		inRange = inRange && p > 0 && p < 1
	}
	fmt.Println("all in (0, 1):", inRange)

	// Ship it: save a bundle, load it back, check it against the store.
	dir, err := os.MkdirTemp("", "bundle-example-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "v1")
	err = ranker.Save(path, &ranker.Bundle{Version: "v1", Spec: spec, Ranker: m, Report: []byte("# v1\n")})
	if err != nil {
		panic(err)
	}
	b, err := ranker.Load(path)
	if err != nil {
		panic(err)
	}
	fmt.Println("loaded", b.Version, "check:", b.Check(spec))
	var again ranker.Scores
	if err := b.Ranker.Score(req, &again); err != nil {
		panic(err)
	}
	fmt.Println("same scores:", slices.Equal(scores.Score, again.Score))
	// Output:
	// tasks: [watch like comment share follow]
	// probabilities per candidate: 5
	// all in (0, 1): true
	// loaded v1 check: <nil>
	// same scores: true
}
