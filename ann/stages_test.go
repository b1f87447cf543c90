package ann

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/reelrank/reelrank/kernels"
)

// TestStages checks that a stage-timed search returns what an untimed one
// does, counts every search and charges time to the stages it ran.
func TestStages(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	const d, n = 16, 4000
	x := clustered(r, n, d, 20)
	for _, tc := range []struct {
		name string
		opt  Options
	}{
		{"ip-4bit-f16", Options{Dim: d, Metric: kernels.InnerProduct, Lists: 32, Refine: RefineF16}},
		{"l2-8bit-f32", Options{Dim: d, Metric: kernels.L2, Lists: 32, Bits: 8, Refine: RefineF32, Residual: true}},
		{"ip-4bit-none", Options{Dim: d, Metric: kernels.InnerProduct, Lists: 32}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ix := buildIndex(t, x, nil, tc.opt)
			var st Stages
			for i := range 20 {
				q := x[i*d : (i+1)*d]
				so := SearchOptions{K: 50, NProbe: 8}
				want, err := ix.Search(q, so)
				if err != nil {
					t.Fatal(err)
				}
				so.Stages = &st
				got, err := ix.Search(q, so)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(got, want) {
					t.Fatalf("query %d: a timed search answers differently", i)
				}
			}
			if st.Searches != 20 {
				t.Fatalf("Searches = %d, want 20", st.Searches)
			}
			if st.Probe <= 0 || st.Scan <= 0 || st.Select <= 0 {
				t.Fatalf("stages not charged: %+v", st)
			}
			if tc.opt.Refine != RefineNone && st.Refine <= 0 {
				t.Fatalf("refine not charged: %+v", st)
			}
			if st.Total() != st.Probe+st.Table+st.Scan+st.Reservoir+st.Gather+st.Refine+st.Select {
				t.Fatal("Total is not the sum of the stages")
			}
			var sum Stages
			sum.Add(st)
			sum.Add(st)
			if sum.Searches != 40 || sum.Total() != 2*st.Total() {
				t.Fatalf("Add: %+v", sum)
			}
		})
	}
}

// TestTiesAtTheCut fills an index with copies of a few vectors under
// shuffled ids, so that the K-th exact score ties with vectors left out and
// inside the answer; the answer must be the exact top K, ties by smaller id,
// with both refine copies and both metrics.
func TestTiesAtTheCut(t *testing.T) {
	const d, copies, distinct = 8, 60, 20
	r := rand.New(rand.NewPCG(9, 10))
	base := clustered(r, distinct, d, 4)
	n := copies * distinct
	x := make([]float32, 0, n*d)
	for i := range n {
		v := base[(i%distinct)*d : (i%distinct+1)*d]
		x = append(x, v...)
	}
	idList := make([]int64, n)
	for i, p := range r.Perm(n) {
		idList[i] = int64(p)*7 + 3
	}
	for _, metric := range []kernels.Metric{kernels.InnerProduct, kernels.L2} {
		for _, refine := range []Refine{RefineF32, RefineF16} {
			ix := buildIndex(t, x, idList, Options{Dim: d, Metric: metric, Lists: 4, M: 4, Refine: refine, Seed: 2})
			for _, k := range []int{1, 45, 60, 90, 130} {
				for qi := range 3 {
					q := base[qi*d : (qi+1)*d]
					got, err := ix.Search(q, SearchOptions{K: k, NProbe: 4, RefineFactor: n})
					if err != nil {
						t.Fatal(err)
					}
					// The oracle scores with the index's own refine copy.
					scores := make([]float32, n)
					for i := range n {
						row := x[i*d : (i+1)*d]
						if refine == RefineF16 {
							h := make([]kernels.F16, d)
							kernels.ToF16s(h, row)
							if metric == kernels.InnerProduct {
								scores[i] = kernels.DotF16(q, h)
							} else {
								scores[i] = kernels.L2SqF16(q, h)
							}
						} else if metric == kernels.InnerProduct {
							scores[i] = kernels.Dot(q, row)
						} else {
							scores[i] = kernels.L2Sq(q, row)
						}
					}
					want := kernels.TopK(nil, scores, idList, k, metric.Largest())
					if !slices.Equal(got, want) {
						t.Fatalf("%v %v k=%d query %d: got %v..., want %v...", metric, refine, k, qi, got[:min(4, len(got))], want[:min(4, len(want))])
					}
				}
			}
		}
	}
}
