package ann

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/reelrank/reelrank/kernels"
)

func TestDefaultLists(t *testing.T) {
	for _, c := range []struct{ n, want int }{
		{0, 1}, {15, 1}, {300, 18}, {2000, 89}, {50_000, 447}, {1_000_000, 2000}, {10_000_000, 6324}, {100_000_000, 8192},
	} {
		if got := DefaultLists(c.n); got != c.want {
			t.Errorf("DefaultLists(%d) = %d, want %d", c.n, got, c.want)
		}
	}
}

func TestBuild(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const n, d = 500, 8
	v := Vectors{Dim: d, Data: make([]float32, n*d)}
	for i := range v.Data {
		v.Data[i] = float32(r.NormFloat64())
	}
	ids := make([]int64, n)
	for i := range ids {
		ids[i] = int64(1000 + i)
	}
	ix, err := Build(v, ids, Options{Metric: kernels.InnerProduct, Refine: RefineF32, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if ix.Len() != n || ix.Options().Lists != DefaultLists(n) || ix.Options().Dim != d || !ix.Contains(1000) || ix.Contains(0) {
		t.Fatalf("%d vectors, %d lists, dimension %d", ix.Len(), ix.Options().Lists, ix.Options().Dim)
	}
	res, err := ix.Search(v.Row(7), SearchOptions{K: 1, NProbe: ix.Options().Lists, RefineFactor: 4})
	if err != nil || len(res) != 1 {
		t.Fatalf("search: %v, %v", res, err)
	}
	// nil ids: the row numbers.
	ix, err = Build(v, nil, Options{Metric: kernels.L2, Lists: 4})
	if err != nil || !ix.Contains(0) || !ix.Contains(n-1) || ix.Options().Lists != 4 {
		t.Fatalf("row-number ids: %v", err)
	}
	if _, err := Build(v, ids[1:], Options{}); err == nil || !strings.Contains(err.Error(), "ids for") {
		t.Errorf("short ids: %v", err)
	}
	if _, err := Build(v, nil, Options{Dim: 4}); err == nil || !strings.Contains(err.Error(), "dimension 4") {
		t.Errorf("wrong dimension: %v", err)
	}
}
