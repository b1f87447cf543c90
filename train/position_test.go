package train

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reelrank/reelrank/features"
	"github.com/reelrank/reelrank/ranker"
	"github.com/reelrank/reelrank/sim"
)

// randomDataset returns a dataset of n rows of random features, labels
// and embeddings, one hour apart from t0.
func randomDataset(t *testing.T, n int, t0 int64, rng *rand.Rand) *dataset {
	t.Helper()
	s, err := features.NewStore(features.Config{EmbedDim: 4, Categories: 2, Countries: 2, Languages: 2, AgeBuckets: 2, Devices: 2, Windows: []time.Duration{time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	d := newDataset(s.Spec())
	D := d.spec.EmbedDim
	for i := range n {
		if d.n%chunkRows == 0 {
			d.x = append(d.x, make([]float32, 0, chunkRows*d.width))
		}
		c := &d.x[len(d.x)-1]
		for range d.width {
			*c = append(*c, float32(rng.NormFloat64()))
		}
		d.emb = append(d.emb, int32(len(d.embTab)/D))
		for range D {
			d.embTab = append(d.embTab, float32(rng.NormFloat64()))
		}
		d.time = append(d.time, t0+int64(i)*3_600_000)
		d.labels = append(d.labels, uint8(rng.IntN(1<<numHeads)))
		d.prop = append(d.prop, 1)
		d.n++
	}
	return d
}

// TestNoPosition checks that a ranker trained without the position
// features scores a candidate alike whatever the position features read,
// and that one trained with them does not.
func TestNoPosition(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	d := randomDataset(t, 512, 0, rng)
	cols := positionColumns(d.spec.User)
	if len(cols) != len(PositionFeatures) {
		t.Fatalf("position columns %v for %v", cols, PositionFeatures)
	}
	tr := span{0, d.n}
	for _, experts := range []int{0, 2} {
		for _, noPos := range []bool{false, true} {
			cfg := RankerConfig{Hidden: []int{8}, Batch: 64, Experts: experts, ExpertHidden: []int{8}, NoPosition: noPos}
			cfg.fill()
			rt := newRankerTrainer(cfg, d, tr, d.weights(tr, false, 0), 1, rng, func(string, ...any) {})
			h := adamHyper{lr: 1e-2, b1: 0.9, b2: 0.999, eps: 1e-8}
			perm := make([]int, d.n)
			for i := range perm {
				perm[i] = i
			}
			if _, err := rt.epoch(t.Context(), perm, &h); err != nil {
				t.Fatal(err)
			}
			m, err := rt.export(ranker.F32)
			if err != nil {
				t.Fatal(err)
			}
			nu, nr := len(d.spec.User), len(d.spec.Reel)
			row := slices.Clone(d.row(3))
			score := func(pos float32) float32 {
				for _, j := range cols {
					row[j] = pos
				}
				var sc ranker.Scores
				in := ranker.Inputs{User: row[:nu], Reel: row[nu : nu+nr], Cross: row[nu+nr:], Emb: d.embRow(3), N: 1}
				if err := m.ScoreInputs(in, &sc); err != nil {
					t.Fatal(err)
				}
				return sc.Probs[0]
			}
			a, b := score(0), score(3)
			if noPos && a != b {
				t.Errorf("experts %d, no position: %v at position 0, %v at position 3", experts, a, b)
			}
			if !noPos && a == b {
				t.Errorf("experts %d, with position: %v at positions 0 and 3", experts, a)
			}
		}
	}
}

func TestSplitSpans(t *testing.T) {
	d := &dataset{n: 6, time: []int64{1, 2, 5, 6, 9, 12}}
	tr, va, te := splitSpans(d, 5, 9, true)
	if tr != (span{0, 2}) || va != (span{2, 4}) || te != (span{4, 6}) {
		t.Errorf("with test days: %v %v %v", tr, va, te)
	}
	// Without test days the validation rows run to the end, the rows past
	// the last day's end included, and are evaluated.
	tr, va, te = splitSpans(d, 5, 9, false)
	if tr != (span{0, 2}) || va != (span{2, 6}) || te != va {
		t.Errorf("without test days: %v %v %v", tr, va, te)
	}
}

func TestConfigTestDays(t *testing.T) {
	for _, c := range []struct{ in, want, days int }{{0, 2, 2}, {3, 3, 3}, {-1, -1, 0}, {-5, -1, 0}} {
		cfg := Config{TestDays: c.in}
		cfg.fill(4)
		if cfg.TestDays != c.want || cfg.testDays() != c.days {
			t.Errorf("TestDays %d: filled %d (%d days), want %d (%d)", c.in, cfg.TestDays, cfg.testDays(), c.want, c.days)
		}
	}
	cfg := Config{TestDays: -1, ValidDays: 1}
	cfg.fill(4)
	if err := cfg.check(2); err != nil {
		t.Errorf("one validation day of two, no test day: %v", err)
	}
	if err := cfg.check(1); err == nil {
		t.Error("one validation day of one accepted")
	}
}

func TestDailyBaseLoss(t *testing.T) {
	const day = 24 * 3600 * 1000
	// Day 0: watch positive in 1 row of 4; day 1: in 2 of 2. Other heads
	// never positive.
	d := &dataset{n: 6, time: []int64{0, 1, 2, 3, day, day + 5}, labels: []uint8{1, 0, 0, 0, 1, 1}}
	got := dailyBaseLoss(d, span{0, 6})
	want := -(1*math.Log(0.25) + 3*math.Log(0.75)) / 6
	if math.Abs(got-want) > 1e-12 {
		t.Errorf("daily base loss %v, want %v", got, want)
	}
	if got := dailyBaseLoss(d, span{4, 6}); got != 0 {
		t.Errorf("a day of positives only: %v", got)
	}
}

// TestRunNoTestDays trains with no test day: every row before the last
// day trains, the last day validates and is what the report measures.
func TestRunNoTestDays(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a model")
	}
	w := openSmallWorld(t)
	cfg := smallConfig()
	cfg.TestDays = -1
	cfg.Ranker.Epochs, cfg.Towers.Epochs = 1, 1
	res, err := Run(t.Context(), w, filepath.Join(smallWorld.dir, sim.FileEvents), cfg)
	if err != nil {
		t.Fatal(err)
	}
	d := res.Report.Data
	if !d.NoTestDays || d.TestRows != 0 || d.TrainRows+d.ValidRows != d.Rows || d.TestFrom != d.ValidFrom {
		t.Errorf("split without test days: %+v", d)
	}
	var pos int
	for _, h := range res.Report.Heads {
		pos += h.Positives
	}
	if pos == 0 || !(res.Report.Heads[0].AUC > 0.5) {
		t.Errorf("heads measured on the validation days: %+v", res.Report.Heads)
	}
	if md := string(res.Bundle.Report); !strings.Contains(md, "no test day") || !strings.Contains(md, "## Ranker, validation days") {
		t.Errorf("the report does not say it measures the validation days:\n%s", md)
	}
}
