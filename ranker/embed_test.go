package ranker

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/reelrank/reelrank/features"
)

// TestEmbedStore checks that embedding from the store, across chunk
// boundaries, gives what EmbedBatch gives on the store's features.
func TestEmbedStore(t *testing.T) {
	s, err := features.NewStore(features.Config{EmbedDim: 4})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	n := embedChunk + 7
	ids := make([]int64, n)
	for i := range ids {
		ids[i] = int64(i + 1)
		emb := []float32{float32(rng.NormFloat64()), float32(rng.NormFloat64()), float32(rng.NormFloat64()), 1}
		if err := s.PutReel(features.Reel{ID: ids[i], Author: int64(i % 50), Duration: 10, Embedding: emb, Category: -1}); err != nil {
			t.Fatal(err)
		}
	}
	tw := NewReelTower(s.Spec(), []int{8}, 3, ids[:10], rng)
	got := make([]float32, n*3)
	if err := tw.EmbedStore(got, s, ids, 1e12); err != nil {
		t.Fatal(err)
	}
	req := &features.Request{Reels: ids, Embeddings: true, Context: features.Context{Time: 1e12}}
	if err := s.Features(req); err != nil {
		t.Fatal(err)
	}
	want := make([]float32, n*3)
	if err := tw.EmbedBatch(ids, req.ReelVec, req.Emb, want); err != nil {
		t.Fatal(err)
	}
	for i := range got {
		if d := math.Abs(float64(got[i] - want[i])); d > 1e-5 {
			t.Fatalf("value %d: EmbedStore %v, EmbedBatch on the store's features %v", i, got[i], want[i])
		}
	}
	if err := tw.EmbedStore(got[:5], s, ids, 1e12); !errors.Is(err, ErrBadInput) {
		t.Errorf("a short dst: %v", err)
	}
	other, _ := features.NewStore(features.Config{EmbedDim: 5})
	if err := tw.EmbedStore(got, other, ids, 1e12); err == nil {
		t.Error("a store of another spec accepted")
	}
}
