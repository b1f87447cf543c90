package train

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/reelrank/reelrank/kernels"
	"github.com/reelrank/reelrank/ranker"
	"github.com/reelrank/reelrank/sim"
)

// testTemp is a folder for the package's tests, removed after them.
var testTemp string

func TestMain(m *testing.M) {
	var err error
	testTemp, err = os.MkdirTemp("", "reelrank-train-")
	if err != nil {
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(testTemp)
	os.Exit(code)
}

// smallWorld is one simulated world shared by the tests that train.
var smallWorld struct {
	once sync.Once
	dir  string
	err  error
}

func openSmallWorld(t *testing.T) *sim.World {
	t.Helper()
	smallWorld.once.Do(func() {
		cfg := sim.DefaultConfig()
		cfg.Users, cfg.Reels, cfg.Days, cfg.Seed = 3000, 3000, 6, 11
		cfg.SessionsPerDay = 1
		smallWorld.dir = filepath.Join(testTemp, "world")
		_, smallWorld.err = sim.Generate(context.Background(), cfg, smallWorld.dir, sim.GenerateOptions{})
	})
	if smallWorld.err != nil {
		t.Fatal(smallWorld.err)
	}
	w, err := sim.Open(smallWorld.dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

func smallConfig() Config {
	var cfg Config
	cfg.Ranker = RankerConfig{Hidden: []int{32, 16}, Epochs: 3, Batch: 256, LR: 3e-3}
	cfg.Towers = TowerConfig{Dim: 16, UserHidden: []int{32}, ReelHidden: []int{32}, Epochs: 2, Batch: 128}
	cfg.RetrievalUsers = 50
	cfg.Seed = 3
	return cfg
}

func TestRunSmallWorld(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a model")
	}
	w := openSmallWorld(t)
	res, err := Run(context.Background(), w, filepath.Join(smallWorld.dir, sim.FileEvents), smallConfig())
	if err != nil {
		t.Fatal(err)
	}
	rep := res.Report
	if len(rep.Heads) != numHeads {
		t.Fatalf("%d heads in the report", len(rep.Heads))
	}
	watch := rep.Heads[0]
	t.Logf("watch: AUC %.4f oracle %.4f popularity %.4f ECE %.4f; recall %.3f (popularity %.3f)",
		watch.AUC, watch.OracleAUC, watch.PopularityAUC, watch.ECE, rep.Retrieval.Recall, rep.Retrieval.PopularityRecall)
	if !(watch.AUC > 0.6) || !(watch.OracleAUC > watch.AUC) || !(watch.ECE < 0.1) {
		t.Errorf("watch head: AUC %v, oracle %v, ECE %v", watch.AUC, watch.OracleAUC, watch.ECE)
	}
	if rep.Data.TrainRows == 0 || rep.Data.ValidRows == 0 || rep.Data.TestRows == 0 ||
		rep.Data.TrainRows+rep.Data.ValidRows+rep.Data.TestRows != rep.Data.Rows {
		t.Errorf("split %+v", rep.Data)
	}
	if !(rep.Data.TrainFrom < rep.Data.ValidFrom && rep.Data.ValidFrom < rep.Data.TestFrom) {
		t.Errorf("split is not in time order: %+v", rep.Data)
	}
	if rep.Retrieval.Users == 0 || !(rep.Retrieval.Recall > 0) {
		t.Errorf("retrieval %+v", rep.Retrieval)
	}
	// report.json holds the fields the issue names.
	var js struct {
		Retrieval map[string]any
	}
	if err := json.Unmarshal(res.Bundle.ReportJSON, &js); err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(res.Bundle.ReportJSON, &raw); err != nil {
		t.Fatal(err)
	}
	h0 := raw["heads"].([]any)[0].(map[string]any)
	for _, k := range []string{"head", "auc", "oracle_auc", "popularity_auc", "ece"} {
		if _, ok := h0[k]; !ok {
			t.Errorf("report.json's head lacks %q", k)
		}
	}
	for _, k := range []string{"recall_at_1000_of_oracle_top100", "popularity_recall_at_1000_of_oracle_top100"} {
		if _, ok := js.Retrieval[k]; !ok {
			t.Errorf("report.json's retrieval lacks %q", k)
		}
	}
	// The bundle round-trips and matches the store it was trained with.
	dir := filepath.Join(t.TempDir(), "bundle")
	if err := ranker.Save(dir, res.Bundle); err != nil {
		t.Fatal(err)
	}
	b, err := ranker.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Check(res.Store.Spec()); err != nil {
		t.Fatal(err)
	}
	if b.Version != res.Bundle.Version || string(b.Report) != string(res.Bundle.Report) {
		t.Error("the loaded bundle differs")
	}
	if len(res.ReelIDs) != len(w.Reels()) || len(res.ReelVectors) != len(res.ReelIDs)*res.Bundle.ReelTower.Dim {
		t.Errorf("%d reel ids and %d vector values for %d reels", len(res.ReelIDs), len(res.ReelVectors), len(w.Reels()))
	}
	for i := range min(len(res.ReelIDs), 100) {
		v := res.ReelVectors[i*16 : (i+1)*16]
		if n := kernels.Dot(v, v); math.Abs(float64(n)-1) > 1e-3 {
			t.Fatalf("reel vector %d has squared norm %v", i, n)
		}
	}
}

func TestRunRefusesBadConfig(t *testing.T) {
	w := openSmallWorld(t)
	events := filepath.Join(smallWorld.dir, sim.FileEvents)
	for name, mod := range map[string]func(*Config){
		"theta":      func(c *Config) { c.Theta = 1.5 },
		"days":       func(c *Config) { c.TestDays = 6 },
		"hidden":     func(c *Config) { c.Ranker.Hidden = []int{0} },
		"weights":    func(c *Config) { c.Ranker.ScoreWeights = []float32{1} },
		"nan weight": func(c *Config) { c.Ranker.LossWeights = []float32{1, 1, float32(math.NaN()), 1, 1} },
		"dropout":    func(c *Config) { c.Towers.IDDropout = 2 },
		"precision":  func(c *Config) { c.Precision = 9 },
	} {
		cfg := smallConfig()
		mod(&cfg)
		if _, err := Run(context.Background(), w, events, cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := Run(context.Background(), w, filepath.Join(t.TempDir(), "missing.jsonl"), smallConfig()); err == nil {
		t.Error("a missing log accepted")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Run(ctx, w, events, smallConfig()); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled run: %v", err)
	}
}

// TestLayerGradients checks the backward pass against finite differences.
func TestLayerGradients(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const rows, in = 5, 7
	m := newMLP(in, []int{6, 3}, kernels.ActNone, rng)
	w := m.newWork(rows)
	x := make([]float32, rows*in)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	target := make([]float32, rows*3)
	for i := range target {
		target[i] = float32(rng.NormFloat64())
	}
	// loss = ½ Σ (y - target)²
	loss := func() float64 {
		copy(w.acts[0], x)
		y := m.forward(w, rows)
		var s float64
		for i, v := range y {
			d := float64(v - target[i])
			s += d * d / 2
		}
		return s
	}
	loss()
	y := w.acts[len(m.layers)]
	for i := range rows * 3 {
		w.dacts[len(m.layers)][i] = y[i] - target[i]
	}
	m.refreshT()
	m.zeroGrads(w)
	m.backward(w, rows, true)
	for li, l := range m.layers {
		checkGradient(t, fmt.Sprintf("layer %d weight", li), l.w, w.g[li].w, []int{0, len(l.w) / 2, len(l.w) - 1}, loss)
	}
	// The input gradient too.
	dx := append([]float32(nil), w.dacts[0][:rows*in]...)
	checkGradient(t, "input", x, dx, []int{0, 13, rows*in - 1}, loss)
}

// checkGradient compares g[k] with the central finite difference of loss
// in p[k], for each k.
func checkGradient(t *testing.T, name string, p, g []float32, ks []int, loss func() float64) {
	t.Helper()
	for _, k := range ks {
		orig := p[k]
		const h = 1e-2
		p[k] = orig + h
		up := loss()
		p[k] = orig - h
		down := loss()
		p[k] = orig
		num := (up - down) / (2 * h)
		if got := float64(g[k]); math.Abs(got-num) > 2e-2*math.Max(1, math.Abs(num)) {
			t.Errorf("%s %d: gradient %v, finite difference %v", name, k, got, num)
		}
	}
}

// TestFoldNormalizer checks that a folded first layer on raw inputs gives
// what the layer gives on standardised ones.
func TestFoldNormalizer(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const in, out = 9, 4
	l := newLayer(in, out, kernels.ActReLU, rng)
	for i := range l.b {
		l.b[i] = float32(rng.NormFloat64())
	}
	nz := normalizer{mean: make([]float32, in), inv: make([]float32, in)}
	for i := range in {
		nz.mean[i] = float32(rng.NormFloat64() * 5)
		nz.inv[i] = float32(0.1 + rng.Float64())
	}
	d := nz.fold(l)
	x := make([]float32, in)
	for i := range x {
		x[i] = float32(rng.NormFloat64() * 10)
	}
	std := append([]float32(nil), x...)
	nz.apply(std)
	want := make([]float32, out)
	l.forward(want, std, 1)
	got := make([]float32, out)
	kernels.Gemm(got, x, d.W, d.B, 1, in, out, d.Act)
	for j := range out {
		if math.Abs(float64(got[j]-want[j])) > 1e-3*math.Max(1, math.Abs(float64(want[j]))) {
			t.Errorf("output %d: folded %v, standardised %v", j, got[j], want[j])
		}
	}
}

func TestIPSWeights(t *testing.T) {
	d := &dataset{n: 5, prop: []float32{0.5, 0.25, 0.1, 0.01, 1e-6}}
	w := ipsWeights(d, span{0, 5}, 10)
	// 1/p = 2, 4, 10, 100, 1e6; median 10, clip 100.
	raw := []float64{2, 4, 10, 100, 100}
	var sum float64
	for _, v := range raw {
		sum += v
	}
	for i, v := range raw {
		if want := v * 5 / sum; math.Abs(float64(w[i])-want) > 1e-5 {
			t.Errorf("weight %d = %v, want %v", i, w[i], want)
		}
	}
}

func TestSplitAt(t *testing.T) {
	d := &dataset{n: 5, time: []int64{1, 2, 2, 5, 9}}
	for _, c := range []struct {
		t    int64
		want int
	}{{0, 0}, {1, 0}, {2, 1}, {3, 3}, {9, 4}, {10, 5}} {
		if got := d.splitAt(c.t); got != c.want {
			t.Errorf("splitAt(%d) = %d, want %d", c.t, got, c.want)
		}
	}
}
