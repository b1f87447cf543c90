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
