package ann

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"

	"github.com/reelrank/reelrank/kernels"
)

func randVecs(rng *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.NormFloat64())
	}
	return v
}

// exactRef scores every row in float64 over the f16-rounded vectors and
// sorts them: the plain reference of TopK.
func exactRef(vecs, q []float32, dim int, metric kernels.Metric) (rows []int32, scores []float64) {
	n := len(vecs) / dim
	s := make([]float64, n)
	for r := range n {
		var acc float64
		for i := range dim {
			x := float64(kernels.ToF16(vecs[r*dim+i]).Float32())
			if metric == kernels.L2 {
				d := x - float64(q[i])
				acc -= d * d
			} else {
				acc += x * float64(q[i])
			}
		}
		s[r] = acc
		rows = append(rows, int32(r))
	}
	sort.SliceStable(rows, func(a, b int) bool { return s[rows[a]] > s[rows[b]] })
	for _, r := range rows {
		scores = append(scores, s[r])
	}
	return rows, scores
}

func TestExactCPUTopK(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, metric := range []kernels.Metric{kernels.InnerProduct, kernels.L2} {
		for _, c := range []struct{ n, dim, k, nq int }{{1, 1, 1, 1}, {37, 7, 5, 3}, {500, 33, 100, 2}, {10, 4, 16, 2}} {
			vecs := randVecs(rng, c.n*c.dim)
			e, err := NewExactCPU(vecs, c.dim, metric)
			if err != nil {
				t.Fatal(err)
			}
			qs := randVecs(rng, c.nq*c.dim)
			rows := make([]int32, c.nq*c.k)
			scores := make([]float32, c.nq*c.k)
			if err := e.TopK(qs, c.k, rows, scores); err != nil {
				t.Fatal(err)
			}
			for qi := range c.nq {
				wantR, wantS := exactRef(vecs, qs[qi*c.dim:(qi+1)*c.dim], c.dim, metric)
				gotR, gotS := rows[qi*c.k:(qi+1)*c.k], scores[qi*c.k:(qi+1)*c.k]
				for i := range c.k {
					if i >= c.n {
						if gotR[i] != -1 || !math.IsInf(float64(gotS[i]), -1) {
							t.Fatalf("%v %+v: entry %d past the catalogue is %d, %v", metric, c, i, gotR[i], gotS[i])
						}
						continue
					}
					if math.Abs(float64(gotS[i])-wantS[i]) > 1e-3*(1+math.Abs(wantS[i])) {
						t.Fatalf("%v %+v query %d: score %d is %v, want %v", metric, c, qi, i, gotS[i], wantS[i])
					}
					if i > 0 && gotS[i] > gotS[i-1] {
						t.Fatalf("%v %+v: scores not in order at %d", metric, c, i)
					}
				}
				// The same set of rows, up to ties at float32 precision.
				n := min(c.k, c.n)
				if got, want := slices.Sorted(slices.Values(gotR[:n])), slices.Sorted(slices.Values(wantR[:n])); !slices.Equal(got, want) && math.Abs(wantS[n-1]-wantS[min(n, c.n-1)]) > 1e-4 {
					t.Fatalf("%v %+v query %d: rows %v, want %v", metric, c, qi, gotR[:n], wantR[:n])
				}
			}
		}
	}
}

func TestExactCPURescore(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const n, dim = 50, 16
	vecs := randVecs(rng, n*dim)
	e, err := NewExactCPU(vecs, dim, kernels.InnerProduct)
	if err != nil {
		t.Fatal(err)
	}
	qs := randVecs(rng, 2*dim)
	cand := []int32{4, 0, 49, 7, 7, 3}
	out := make([]float32, len(cand))
	if err := e.Rescore(qs, cand, out); err != nil {
		t.Fatal(err)
	}
	for i, r := range cand {
		qi := i / 3
		_, s := exactRef(vecs[int(r)*dim:(int(r)+1)*dim], qs[qi*dim:(qi+1)*dim], dim, kernels.InnerProduct)
		if math.Abs(float64(out[i])-s[0]) > 1e-3 {
			t.Fatalf("candidate %d: %v, want %v", i, out[i], s[0])
		}
	}
}

func TestExactCPUBadInput(t *testing.T) {
	if _, err := NewExactCPU([]float32{1, 2, 3}, 2, kernels.InnerProduct); !errors.Is(err, ErrBadQuery) {
		t.Fatalf("ragged catalogue: %v", err)
	}
	if _, err := NewExactCPU([]float32{1, float32(math.NaN())}, 2, kernels.InnerProduct); !errors.Is(err, ErrBadQuery) {
		t.Fatalf("NaN catalogue: %v", err)
	}
	e, err := NewExactCPU(make([]float32, 8), 2, kernels.L2)
	if err != nil {
		t.Fatal(err)
	}
	nan := []float32{0, float32(math.Inf(1))}
	for name, err := range map[string]error{
		"short query":   e.TopK([]float32{1}, 1, make([]int32, 1), make([]float32, 1)),
		"inf query":     e.TopK(nan, 1, make([]int32, 1), make([]float32, 1)),
		"k 0":           e.TopK([]float32{1, 2}, 0, nil, nil),
		"k too big":     e.TopK([]float32{1, 2}, MaxExactK+1, make([]int32, MaxExactK+1), make([]float32, MaxExactK+1)),
		"short out":     e.TopK([]float32{1, 2}, 2, make([]int32, 1), make([]float32, 2)),
		"row range":     e.Rescore([]float32{1, 2}, []int32{4}, make([]float32, 1)),
		"negative row":  e.Rescore([]float32{1, 2}, []int32{-1}, make([]float32, 1)),
		"rescore shape": e.Rescore([]float32{1, 2, 3, 4}, []int32{1}, make([]float32, 1)),
	} {
		if !errors.Is(err, ErrBadQuery) {
			t.Errorf("%s: err = %v, want ErrBadQuery", name, err)
		}
	}
}
