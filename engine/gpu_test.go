package engine

import (
	"context"
	"slices"
	"testing"

	"github.com/reelrank/reelrank/ranker"
)

// TestDeviceCUDAWithoutGPU: an engine asked for the GPU where there is
// none (this build, or no device) scores on the CPU and answers as the
// CPU engine does, with no GPU share in its timings.
func TestDeviceCUDAWithoutGPU(t *testing.T) {
	if _, _, err := ranker.ResolveDevice(ranker.CUDA); err == nil {
		t.Skip("a GPU is present: the GPU path is tested by the cuda build's tests")
	}
	w := newWorld(t, worldConfig{reels: 300, users: 20, seed: 5})
	m := w.model(t, "v1", "control", 5)
	cpu := w.engine(t, Config{Seed: 9, Epsilon: -1}, m)
	gpu := w.engine(t, Config{Seed: 9, Epsilon: -1, Device: ranker.CUDA}, m)
	for u := range int64(5) {
		want, err := cpu.Recommend(context.Background(), w.request(u, 10))
		if err != nil {
			t.Fatal(err)
		}
		got, err := gpu.Recommend(context.Background(), w.request(u, 10))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.EqualFunc(got.Items, want.Items, func(a, b Item) bool { return a.Reel == b.Reel && a.Score == b.Score }) {
			t.Fatalf("user %d: the engine without a GPU answers differently", u)
		}
		if got.Timings.RankDevice != 0 {
			t.Fatalf("user %d: GPU share %v without a GPU", u, got.Timings.RankDevice)
		}
	}
	if st := gpu.Stats(); st.Recommend.RankDevice != 0 {
		t.Fatalf("stats: GPU share %v", st.Recommend.RankDevice)
	}
}

func TestDeviceValidated(t *testing.T) {
	w := newWorld(t, worldConfig{reels: 50, users: 5, seed: 1})
	m := w.model(t, "v1", "control", 1)
	if _, err := New(Config{Device: ranker.Auto, Clock: w.clock()}, w.store, m); err == nil {
		t.Fatal("an unresolved auto device was taken")
	}
}
