package ann

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/reelrank/reelrank/kernels"
)

// clustered makes n vectors of dimension d around c random centres, with
// norms spread like popularity, the shape of reel embeddings.
func clustered(r *rand.Rand, n, d, c int) []float32 {
	centres := make([]float32, c*d)
	for i := range centres {
		centres[i] = float32(r.NormFloat64())
	}
	x := make([]float32, n*d)
	for i := range n {
		k := r.IntN(c)
		s := float32(math.Exp(0.25 * r.NormFloat64()))
		for j := range d {
			x[i*d+j] = s * (centres[k*d+j] + 0.8*float32(r.NormFloat64()))
		}
	}
	return x
}

// exactTopK is the brute-force oracle.
func exactTopK(x, q []float32, d, k int, metric kernels.Metric) []kernels.Result {
	n := len(x) / d
	scores := make([]float32, n)
	if metric == kernels.InnerProduct {
		kernels.DotBatch(scores, q, x)
	} else {
		kernels.L2SqBatch(scores, q, x)
	}
	return kernels.TopK(nil, scores, nil, k, metric.Largest())
}

func recallOf(got, want []kernels.Result) float64 {
	set := make(map[int64]bool, len(want))
	for _, w := range want {
		set[w.ID] = true
	}
	hit := 0
	for _, g := range got {
		if set[g.ID] {
			hit++
		}
	}
	return float64(hit) / float64(len(want))
}

func buildIndex(t testing.TB, x []float32, ids []int64, opt Options) *Index {
	t.Helper()
	ix, err := New(opt)
	if err != nil {
		t.Fatal(err)
	}
	if err := ix.Train(x); err != nil {
		t.Fatal(err)
	}
	if ids == nil {
		ids = make([]int64, len(x)/opt.Dim)
		for i := range ids {
			ids[i] = int64(i)
		}
	}
	if err := ix.Add(ids, x); err != nil {
		t.Fatal(err)
	}
	return ix
}

func TestRecall(t *testing.T) {
	const n, d, nq, k = 20000, 32, 50, 100
	r := rand.New(rand.NewPCG(1, 2))
	x := clustered(r, n, d, 40)
	qs := clustered(r, nq, d, 40)
	for _, c := range []struct {
		metric kernels.Metric
		bits   int
		refine Refine
		nprobe int
		min    float64
		resid  bool
	}{
		{kernels.InnerProduct, 4, RefineF16, 16, 0.86, false},
		{kernels.InnerProduct, 4, RefineF32, 64, 0.97, false},
		{kernels.L2, 4, RefineF16, 16, 0.91, false},
		{kernels.InnerProduct, 8, RefineNone, 16, 0.8, false},
		{kernels.L2, 8, RefineF32, 16, 0.91, false},
		{kernels.L2, 4, RefineNone, 16, 0.48, false},
		{kernels.L2, 4, RefineNone, 16, 0.58, true},
		{kernels.L2, 4, RefineF16, 16, 0.91, true},
		{kernels.InnerProduct, 4, RefineNone, 16, 0.3, false},
	} {
		name := fmt.Sprintf("%v/bits=%d/refine=%v/nprobe=%d/residual=%v", c.metric, c.bits, c.refine, c.nprobe, c.resid)
		t.Run(name, func(t *testing.T) {
			ix := buildIndex(t, x, nil, Options{Dim: d, Metric: c.metric, Lists: 64, M: 16, Bits: c.bits, Refine: c.refine, Seed: 7, Residual: c.resid})
			var sum float64
			for i := range nq {
				q := qs[i*d : (i+1)*d]
				got, err := ix.Search(q, SearchOptions{K: k, NProbe: c.nprobe, RefineFactor: 8})
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != k {
					t.Fatalf("query %d: %d results, want %d", i, len(got), k)
				}
				for j := 1; j < len(got); j++ {
					a, b := got[j-1], got[j]
					if c.metric.Largest() && a.Score < b.Score || !c.metric.Largest() && a.Score > b.Score {
						t.Fatalf("query %d: results out of order at %d", i, j)
					}
				}
				sum += recallOf(got, exactTopK(x, q, d, k, c.metric))
			}
			rec := sum / nq
			t.Logf("%s: recall@%d = %.3f", name, k, rec)
			if rec < c.min {
				t.Errorf("recall@%d = %.3f, want >= %.2f", k, rec, c.min)
			}
		})
	}
}

// TestExactWhenExhaustive: probing every list and re-ranking every vector
// with float32 copies is exact search, ties by id included.
func TestExactWhenExhaustive(t *testing.T) {
	const n, d, k = 3000, 16, 50
	r := rand.New(rand.NewPCG(3, 4))
	x := clustered(r, n, d, 10)
	for _, metric := range []kernels.Metric{kernels.InnerProduct, kernels.L2} {
		ix := buildIndex(t, x, nil, Options{Dim: d, Metric: metric, Lists: 8, M: 8, Refine: RefineF32, Seed: 1})
		for i := range 20 {
			q := x[i*d : (i+1)*d]
			got, err := ix.Search(q, SearchOptions{K: k, NProbe: 8, RefineFactor: n / k})
			if err != nil {
				t.Fatal(err)
			}
			want := exactTopK(x, q, d, k, metric)
			if !slices.Equal(ids(got), ids(want)) {
				t.Fatalf("%v query %d: got %v, want %v", metric, i, ids(got)[:5], ids(want)[:5])
			}
		}
	}
}

func ids(r []kernels.Result) []int64 {
	out := make([]int64, len(r))
	for i, x := range r {
		out[i] = x.ID
	}
	return out
}

func TestFiltersAndDelete(t *testing.T) {
	const n, d, k = 4000, 16, 200
	r := rand.New(rand.NewPCG(5, 6))
	x := clustered(r, n, d, 10)
	idsIn := make([]int64, n)
	for i := range idsIn {
		idsIn[i] = int64(1000 + 3*i) // sparse external ids
	}
	ix := buildIndex(t, x, idsIn, Options{Dim: d, Metric: kernels.InnerProduct, Lists: 16, M: 8, Refine: RefineF16, Seed: 2})
	q := x[:d]
	all, err := ix.Search(q, SearchOptions{K: k, NProbe: 16, RefineFactor: 20})
	if err != nil {
		t.Fatal(err)
	}
	// Exclude the first half of what came back: k results still come back, none excluded.
	excl := ids(all[:k/2])
	got, err := ix.Search(q, SearchOptions{K: k, NProbe: 16, RefineFactor: 20, Exclude: excl})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != k {
		t.Fatalf("with exclusions: %d results, want %d", len(got), k)
	}
	for _, g := range got {
		if slices.Contains(excl, g.ID) {
			t.Fatalf("excluded id %d came back", g.ID)
		}
	}
	// Allow only ids divisible by 2 (every other vector).
	allow := NewBitmap(0)
	for _, id := range idsIn {
		if id%2 == 0 {
			allow.Set(id)
		}
	}
	got, err = ix.Search(q, SearchOptions{K: k, NProbe: 16, RefineFactor: 20, Allow: allow})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != k {
		t.Fatalf("with allow bitmap: %d results, want %d", len(got), k)
	}
	for _, g := range got {
		if g.ID%2 != 0 {
			t.Fatalf("id %d not in the allow bitmap came back", g.ID)
		}
	}
	// Delete the best 50: they never come back; Compact keeps it so.
	del := ids(all[:50])
	if err := ix.Delete(del...); err != nil {
		t.Fatal(err)
	}
	if ix.Len() != n-50 {
		t.Fatalf("Len = %d after deleting 50 of %d", ix.Len(), n)
	}
	if err := ix.Delete(del[0], 7); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleting again: %v, want ErrNotFound", err)
	}
	for round := range 2 {
		got, err = ix.Search(q, SearchOptions{K: k, NProbe: 16, RefineFactor: 20})
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range got {
			if slices.Contains(del, g.ID) {
				t.Fatalf("round %d: deleted id %d came back", round, g.ID)
			}
		}
		if !slices.Equal(ids(got)[:k-50], ids(all[50:k])) {
			t.Fatalf("round %d: results after delete differ from the survivors", round)
		}
		if round == 0 {
			if freed := ix.Compact(); freed != 50 {
				t.Fatalf("Compact freed %d, want 50", freed)
			}
			if st := ix.Stats(); st.Deleted != 0 || st.Vectors != n-50 {
				t.Fatalf("stats after compact: %+v", st)
			}
		}
	}
	// Re-adding a deleted id is allowed; adding a live one is not.
	if err := ix.Add(del[:1], x[:d]); err != nil {
		t.Fatalf("re-adding a deleted id: %v", err)
	}
	if err := ix.Add(del[:1], x[:d]); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("adding a live id: %v, want ErrDuplicate", err)
	}
}

func TestBadInput(t *testing.T) {
	for _, o := range []Options{
		{Dim: 0, Metric: kernels.L2},
		{Dim: 10, Metric: kernels.L2, M: 3},
		{Dim: 8, Metric: kernels.L2, Bits: 5},
		{Dim: 8, Metric: kernels.Metric(9)},
		{Dim: 8, Metric: kernels.L2, Lists: -1},
		{Dim: 8, Metric: kernels.L2, Refine: Refine(7)},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) gave no error", o)
		}
	}
	const d = 8
	ix, err := New(Options{Dim: d, Metric: kernels.InnerProduct, Lists: 4, M: 4})
	if err != nil {
		t.Fatal(err)
	}
	q := make([]float32, d)
	if _, err := ix.Search(q, SearchOptions{K: 1, NProbe: 1}); !errors.Is(err, ErrNotTrained) {
		t.Errorf("search untrained: %v", err)
	}
	if err := ix.Add([]int64{1}, q); !errors.Is(err, ErrNotTrained) {
		t.Errorf("add untrained: %v", err)
	}
	r := rand.New(rand.NewPCG(7, 8))
	x := clustered(r, 500, d, 4)
	if err := ix.Train(x[:3*d]); err == nil || !strings.Contains(err.Error(), "need at least one per list") {
		t.Errorf("train on too few: %v", err)
	}
	bad := slices.Clone(x)
	bad[17] = float32(math.NaN())
	if err := ix.Train(bad); !errors.Is(err, ErrBadVector) || !strings.Contains(err.Error(), "vector 2") {
		t.Errorf("train with NaN: %v", err)
	}
	if err := ix.Train(x[:len(x)-1]); err == nil {
		t.Error("train on a ragged batch gave no error")
	}
	if err := ix.Train(x); err != nil {
		t.Fatal(err)
	}
	if err := ix.Train(x); err == nil {
		t.Error("training twice gave no error")
	}
	if _, err := ix.Search(q, SearchOptions{K: 1, NProbe: 1}); !errors.Is(err, ErrEmpty) {
		t.Errorf("search empty: %v", err)
	}
	if err := ix.Add([]int64{1, 2}, x[:d]); err == nil {
		t.Error("add with more ids than vectors gave no error")
	}
	if err := ix.Add([]int64{1, 1}, x[:2*d]); !errors.Is(err, ErrDuplicate) {
		t.Errorf("add with a repeated id: %v", err)
	}
	inf := slices.Clone(x[:d])
	inf[3] = float32(math.Inf(-1))
	if err := ix.Add([]int64{1}, inf); !errors.Is(err, ErrBadVector) {
		t.Errorf("add Inf: %v", err)
	}
	if ix.Len() != 0 {
		t.Fatalf("failed adds left %d vectors", ix.Len())
	}
	if err := ix.Add([]int64{1}, x[:d]); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		q    []float32
		opt  SearchOptions
		want string
	}{
		{make([]float32, d+1), SearchOptions{K: 1, NProbe: 1}, "dimension 9"},
		{inf, SearchOptions{K: 1, NProbe: 1}, "Inf"},
		{q, SearchOptions{K: 0, NProbe: 1}, "k = 0"},
		{q, SearchOptions{K: 5000, NProbe: 1}, "k = 5000"},
		{q, SearchOptions{K: 1, NProbe: 0}, "nprobe = 0"},
		{q, SearchOptions{K: 1, NProbe: 5}, "nprobe = 5, want 1..4"},
		{q, SearchOptions{K: 1, NProbe: 1, RefineFactor: -1}, "refine factor"},
	} {
		if _, err := ix.Search(c.q, c.opt); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("search %+v: %v, want an error with %q", c.opt, err, c.want)
		}
	}
	got, err := ix.Search(q, SearchOptions{K: 10, NProbe: 4})
	if err != nil || len(got) != 1 || got[0].ID != 1 {
		t.Errorf("search of a one-vector index: %v, %v", got, err)
	}
}

// TestConcurrent adds and deletes while searches run; run it with -race.
func TestConcurrent(t *testing.T) {
	const n, d = 6000, 16
	r := rand.New(rand.NewPCG(9, 10))
	x := clustered(r, n, d, 8)
	ix, err := New(Options{Dim: d, Metric: kernels.L2, Lists: 16, M: 8, Refine: RefineF16, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	if err := ix.Train(x); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	deleted := make(chan int64, n)
	for g := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				q := x[((i*7+g)%n)*d:][:d]
				if _, err := ix.Search(q, SearchOptions{K: 20, NProbe: 4}); err != nil && !errors.Is(err, ErrEmpty) {
					t.Error(err)
					return
				}
			}
		}()
	}
	for lo := 0; lo < n; lo += 500 {
		batch := make([]int64, 500)
		for i := range batch {
			batch[i] = int64(lo + i)
		}
		if err := ix.Add(batch, x[lo*d:(lo+500)*d]); err != nil {
			t.Fatal(err)
		}
		if err := ix.Delete(int64(lo)); err != nil {
			t.Fatal(err)
		}
		deleted <- int64(lo)
		if lo == n/2 {
			ix.Compact()
		}
	}
	close(stop)
	wg.Wait()
	close(deleted)
	if ix.Len() != n-n/500 {
		t.Fatalf("Len = %d, want %d", ix.Len(), n-n/500)
	}
	for id := range deleted {
		got, err := ix.Search(x[id*int64(d):][:d], SearchOptions{K: 10, NProbe: 16})
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range got {
			if g.ID == id {
				t.Fatalf("deleted id %d came back", id)
			}
		}
	}
}

// TestOPQ: with the rotation learned, results are as good as without on
// isotropic data, queries and vectors go through the same rotation
// (exhaustive float32 re-ranking stays exact), and the rotation survives a
// save and open.
func TestOPQ(t *testing.T) {
	const n, d, k = 3000, 16, 20
	r := rand.New(rand.NewPCG(11, 12))
	x := clustered(r, n, d, 10)
	ix := buildIndex(t, x, nil, Options{Dim: d, Metric: kernels.InnerProduct, Lists: 8, M: 8, Refine: RefineF32, Seed: 1, OPQ: true, OPQIters: 3})
	if ix.rot == nil {
		t.Fatal("no rotation learned")
	}
	// R is orthogonal: R·Rᵀ = I.
	for i := range d {
		for j := range d {
			dot := kernels.Dot(ix.rot[i*d:(i+1)*d], ix.rot[j*d:(j+1)*d])
			want := float32(0)
			if i == j {
				want = 1
			}
			if math.Abs(float64(dot-want)) > 1e-4 {
				t.Fatalf("R·Rᵀ[%d][%d] = %v", i, j, dot)
			}
		}
	}
	path := t.TempDir() + "/opq.idx"
	if err := ix.Save(path); err != nil {
		t.Fatal(err)
	}
	ox, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ox.Close()
	if !ox.Options().OPQ || !slices.Equal(ox.rot, ix.rot) {
		t.Fatal("the rotation did not survive save and open")
	}
	for i := range 10 {
		q := x[i*d : (i+1)*d]
		got, err := ix.Search(q, SearchOptions{K: k, NProbe: 8, RefineFactor: n / k})
		if err != nil {
			t.Fatal(err)
		}
		want := exactTopK(x, q, d, k, kernels.InnerProduct)
		if rec := recallOf(got, want); rec < 1 {
			t.Fatalf("query %d: exhaustive recall %v with OPQ", i, rec)
		}
		again, err := ox.Search(q, SearchOptions{K: k, NProbe: 8, RefineFactor: n / k})
		if err != nil || !slices.Equal(ids(again), ids(got)) {
			t.Fatalf("query %d: reopened index answers %v, %v", i, ids(again), err)
		}
	}
}

// TestMetricsSideBySide: indexes of both metrics searched in turn with the
// same nprobe each answer by their own metric.
func TestMetricsSideBySide(t *testing.T) {
	const n, d, k = 2000, 8, 10
	r := rand.New(rand.NewPCG(13, 14))
	x := clustered(r, n, d, 5)
	ip := buildIndex(t, x, nil, Options{Dim: d, Metric: kernels.InnerProduct, Lists: 8, M: 4, Refine: RefineF32, Seed: 1})
	l2 := buildIndex(t, x, nil, Options{Dim: d, Metric: kernels.L2, Lists: 8, M: 4, Refine: RefineF32, Seed: 1})
	for i := range 20 {
		q := x[i*d : (i+1)*d]
		for _, c := range []struct {
			ix     *Index
			metric kernels.Metric
		}{{ip, kernels.InnerProduct}, {l2, kernels.L2}} {
			got, err := c.ix.Search(q, SearchOptions{K: k, NProbe: 8, RefineFactor: n / k})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(ids(got), ids(exactTopK(x, q, d, k, c.metric))) {
				t.Fatalf("%v query %d: not the exact answer", c.metric, i)
			}
		}
	}
}

func TestIDs(t *testing.T) {
	const n, d = 600, 8
	r := rand.New(rand.NewPCG(7, 8))
	x := clustered(r, n, d, 4)
	in := make([]int64, n)
	for i := range in {
		in[i] = int64(10 + 2*i)
	}
	ix := buildIndex(t, x, in, Options{Dim: d, Metric: kernels.InnerProduct, Lists: 4, M: 4, Seed: 1})
	if err := ix.Delete(in[:100]...); err != nil {
		t.Fatal(err)
	}
	got := ix.IDs(nil)
	slices.Sort(got)
	if !slices.Equal(got, in[100:]) {
		t.Fatalf("IDs: %d ids, want the %d live ones", len(got), n-100)
	}
	ix.Compact()
	if got := ix.IDs(nil); len(got) != n-100 {
		t.Fatalf("after Compact: %d ids, want %d", len(got), n-100)
	}
}
