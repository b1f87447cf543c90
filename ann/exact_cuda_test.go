//go:build cuda

package ann

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/reelrank/reelrank/kernels"
	"github.com/reelrank/reelrank/kernels/cuda"
)

// TestExactCUDAMatchesCPU: the GPU's top-k and re-scoring against the CPU
// reference over the same f16 vectors.
func TestExactCUDAMatchesCPU(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	const n, dim, k, nq = 9001, 65, 300, 4
	vecs := randVecs(rng, n*dim)
	g, err := NewExactCUDA(vecs, dim, kernels.InnerProduct, 0)
	if errors.Is(err, cuda.ErrNoDevice) {
		t.Skip("no CUDA device:", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	c, err := NewExactCPU(vecs, dim, kernels.InnerProduct)
	if err != nil {
		t.Fatal(err)
	}
	q := randVecs(rng, nq*dim)
	gr, gs := make([]int32, nq*k), make([]float32, nq*k)
	cr, cs := make([]int32, nq*k), make([]float32, nq*k)
	if err := g.TopK(q, k, gr, gs); err != nil {
		t.Fatal(err)
	}
	if err := c.TopK(q, k, cr, cs); err != nil {
		t.Fatal(err)
	}
	for i := range gs {
		if math.Abs(float64(gs[i]-cs[i])) > 1e-3 {
			t.Fatalf("entry %d: GPU %v (row %d), CPU %v (row %d)", i, gs[i], gr[i], cs[i], cr[i])
		}
	}
	out := make([]float32, len(gr))
	if err := g.Rescore(q, gr, out); err != nil {
		t.Fatal(err)
	}
	for i := range out {
		if math.Abs(float64(out[i]-gs[i])) > 1e-3 {
			t.Fatalf("rescore %d: %v, top-k said %v", i, out[i], gs[i])
		}
	}
	if err := g.TopK(q, MaxExactK+1, nil, nil); !errors.Is(err, ErrBadQuery) {
		t.Fatalf("k too big: %v", err)
	}
}
