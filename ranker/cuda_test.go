//go:build cuda

package ranker

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/reelrank/reelrank/kernels/cuda"
)

func cudaScorerOrSkip(t *testing.T, m *Multitask) *CUDAScorer {
	t.Helper()
	g, err := NewCUDAScorer(m, 0)
	if errors.Is(err, cuda.ErrNoDevice) {
		t.Skip("no CUDA device:", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return g
}

// TestCUDAScorerMatchesCPU: the store's widths, f32 and bf16, batches of
// 1..512 requests of odd sizes; outputs poisoned before each pass.
func TestCUDAScorerMatchesCPU(t *testing.T) {
	for _, prec := range []Precision{F32, BF16} {
		m := newTestModel(t, storeSpec(t), 0, prec, 11)
		g := cudaScorerOrSkip(t, m)
		rng := rand.New(rand.NewPCG(2, 3))
		tol := 2e-4
		if prec == BF16 {
			tol = 2e-2 // the CPU's bf16 and the tensor cores round alike, sum differently
		}
		for _, R := range []int{1, 2, 5, 31, 128, 257, 512} {
			ins := make([]Inputs, R)
			outs := make([]*Scores, R)
			for r := range ins {
				ins[r] = randInputs(m.Spec, rng.IntN(130), rng)
				outs[r] = &Scores{Probs: []float32{float32(math.NaN())}}
			}
			if err := g.ScoreBatch(ins, outs); err != nil {
				t.Fatalf("%v R=%d: %v", prec, R, err)
			}
			for r := range ins {
				var want Scores
				if err := m.ScoreInputs(ins[r], &want); err != nil {
					t.Fatal(err)
				}
				if len(outs[r].Probs) != len(want.Probs) {
					t.Fatalf("%v R=%d request %d: %d probabilities, want %d", prec, R, r, len(outs[r].Probs), len(want.Probs))
				}
				for i, w := range want.Probs {
					if d := math.Abs(float64(outs[r].Probs[i] - w)); !(d <= tol) {
						t.Fatalf("%v R=%d request %d: prob %d = %v, CPU %v", prec, R, r, i, outs[r].Probs[i], w)
					}
				}
			}
		}
	}
}

func TestCUDABatcher(t *testing.T) {
	m := newTestModel(t, storeSpec(t), 0, F32, 12)
	g := cudaScorerOrSkip(t, m)
	b, err := NewBatcher(m, g, BatcherConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ins := randRequests(m, 1000, 3, 999, 1, 0, 500)
	res := submit(context.Background(), b, ins)()
	for i, r := range res {
		if r.err != nil {
			t.Fatal(r.err)
		}
		var want Scores
		if err := m.ScoreInputs(r.in, &want); err != nil {
			t.Fatal(err)
		}
		for j, w := range want.Score {
			if math.Abs(float64(r.out.Score[j]-w)) > 1e-3 {
				t.Fatalf("request %d candidate %d: %v, CPU %v", i, j, r.out.Score[j], w)
			}
		}
	}
	// A closed device is a lost backend: the batcher goes on, on the CPU.
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	res = submit(context.Background(), b, ins[:2])()
	for _, r := range res {
		if r.err != nil || r.tm.Backend != "cpu" {
			t.Fatalf("after the device closed: %+v, %v", r.tm, r.err)
		}
	}
	if !b.Stats().Down {
		t.Fatal("the batcher did not take the device as down")
	}
}
