package bench

import (
	"io"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reelrank/reelrank/ann"
	"github.com/reelrank/reelrank/kernels"
)

// writeSet writes a small data set with exact ground truth to dir.
func writeSet(t *testing.T, dir string, n, nq, d, gtK int) (base, query, gt string) {
	t.Helper()
	r := rand.New(rand.NewPCG(1, 2))
	mk := func(n int) ann.Vectors {
		v := ann.Vectors{Data: make([]float32, n*d), Dim: d}
		for i := range v.Data {
			v.Data[i] = float32(r.NormFloat64())
		}
		return v
	}
	b, q := mk(n), mk(nq)
	truth := make([]int32, nq*gtK)
	scores := make([]float32, n)
	for i := range nq {
		kernels.DotBatch(scores, q.Row(i), b.Data)
		for j, res := range kernels.TopK(nil, scores, nil, gtK, true) {
			truth[i*gtK+j] = int32(res.ID)
		}
	}
	base, query, gt = filepath.Join(dir, "b.fvecs"), filepath.Join(dir, "q.fvecs"), filepath.Join(dir, "gt.ivecs")
	if err := ann.WriteFvecs(base, b); err != nil {
		t.Fatal(err)
	}
	if err := ann.WriteFvecs(query, q); err != nil {
		t.Fatal(err)
	}
	if err := ann.WriteIvecs(gt, truth, gtK); err != nil {
		t.Fatal(err)
	}
	return base, query, gt
}

func TestRunANN(t *testing.T) {
	dir := t.TempDir()
	base, query, gt := writeSet(t, dir, 3000, 20, 16, 100)
	cfg := ANNConfig{
		Base: base, Query: query, GT: gt, K: 10, NProbes: []int{1, 8}, RefineFactor: 300,
		Index:      ann.Options{Metric: kernels.InnerProduct, Lists: 8, M: 8, Refine: ann.RefineF32, Seed: 1},
		AddVectors: 500, AddBatch: 100,
	}
	rows, add, err := RunANNWithAdds(cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 {
		t.Fatalf("%d rows, want 2", len(rows))
	}
	for _, r := range rows {
		if r.QPS1Thread <= 0 || r.QPSBatch <= 0 || r.P99us < r.P50us || r.BytesPerVector <= 0 || r.Vectors != 3000 || r.Queries != 20 {
			t.Errorf("bad row %+v", r)
		}
	}
	// Every list probed and every vector re-ranked exactly: exact search.
	if rows[1].RecallAtK != 1 || rows[1].RecallAt10 != 1 {
		t.Errorf("exhaustive search recall %+v, want 1", rows[1])
	}
	if rows[0].RecallAtK > rows[1].RecallAtK {
		t.Errorf("recall fell with more probes: %v then %v", rows[0].RecallAtK, rows[1].RecallAtK)
	}
	if add == nil || add.Added != 500 || add.AddPerS <= 0 || add.Batch != 100 {
		t.Errorf("add row %+v", add)
	}

	// Saved and reopened, the same index gives the same recall.
	path := filepath.Join(dir, "x.idx")
	b, err := ann.ReadFvecs(base, 0)
	if err != nil {
		t.Fatal(err)
	}
	ix, _, err := BuildIndex(b, cfg.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := ix.Save(path); err != nil {
		t.Fatal(err)
	}
	cfg.IndexPath, cfg.AddVectors = path, 0
	again, err := RunANN(cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if again[0].RecallAtK != rows[0].RecallAtK {
		t.Errorf("reopened index recall %v, built %v", again[0].RecallAtK, rows[0].RecallAtK)
	}
}

func TestRunANNBadInput(t *testing.T) {
	dir := t.TempDir()
	base, query, gt := writeSet(t, dir, 300, 5, 8, 20)
	good := ANNConfig{Base: base, Query: query, GT: gt, K: 10, NProbes: []int{1},
		Index: ann.Options{Metric: kernels.L2, Lists: 4, M: 4}}
	for _, c := range []struct {
		edit func(*ANNConfig)
		want string
	}{
		{func(c *ANNConfig) { c.K = 0 }, "k = 0"},
		{func(c *ANNConfig) { c.K = 50 }, "ground truth has 20"},
		{func(c *ANNConfig) { c.NProbes = nil }, "no nprobe"},
		{func(c *ANNConfig) { c.NProbes = []int{9} }, "nprobe = 9"},
		{func(c *ANNConfig) { c.Query = filepath.Join(dir, "missing.fvecs") }, "missing.fvecs"},
		{func(c *ANNConfig) { c.GT = base }, "ground-truth rows"},
		{func(c *ANNConfig) { c.IndexPath = base }, "b.fvecs"},
		{func(c *ANNConfig) { c.Index.M = 3 }, "does not divide"},
	} {
		cfg := good
		c.edit(&cfg)
		if _, err := RunANN(cfg, io.Discard); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want one with %q", cfg, err, c.want)
		}
	}
	if _, _, err := RunANNWithAdds(good, io.Discard); err == nil {
		t.Error("RunANNWithAdds without vectors to add gave no error")
	}
}
