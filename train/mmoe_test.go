package train

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/reelrank/reelrank/features"
	"github.com/reelrank/reelrank/kernels"
	"github.com/reelrank/reelrank/ranker"
)

// TestMMoEGradients checks the MMoE's backward pass against finite
// differences of L = Σ c·logits for random c.
func TestMMoEGradients(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	const rows, in, T = 3, 6, 2
	n := newMMoE(in, 3, []int{5, 4}, T, rng)
	for i := range n.hb {
		n.hb[i] = float32(rng.NormFloat64())
	}
	w := n.newWork(rows).(*mmoeWork)
	for i := range w.x {
		w.x[i] = float32(rng.NormFloat64())
	}
	c := make([]float32, rows*T)
	for i := range c {
		c[i] = float32(rng.NormFloat64())
	}
	loss := func() float64 {
		n.forward(w, rows)
		var s float64
		for i, v := range w.logit[:rows*T] {
			s += float64(c[i] * v)
		}
		return s
	}
	loss()
	copy(w.dl, c)
	n.refreshT()
	n.zeroGrads(w)
	n.backward(w, rows)
	check := func(name string, p, g []float32) {
		checkGradient(t, name, p, g, []int{0, len(p) / 2, len(p) - 1}, loss)
	}
	check("head weights", n.hw, w.ghw)
	check("head biases", n.hb, w.ghb)
	check("gate weights", n.gates.layers[0].w, w.gw.g[0].w)
	check("gate biases", n.gates.layers[0].b, w.gw.g[0].b)
	for e := range n.experts {
		for li, l := range n.experts[e].layers {
			check("expert weights", l.w, w.ew[e].g[li].w)
		}
	}
}

// TestExportMatchesTraining checks that the exported ranker, reading raw
// features, gives the probabilities the trained net gives on standardised
// ones, for the shared bottom and the MMoE.
func TestExportMatchesTraining(t *testing.T) {
	s, err := features.NewStore(features.Config{EmbedDim: 4, Categories: 2, Countries: 2, Languages: 2, AgeBuckets: 2, Devices: 2, Windows: []time.Duration{time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	spec := s.Spec()
	d := newDataset(spec)
	in := d.width + spec.EmbedDim
	rng := rand.New(rand.NewPCG(7, 8))
	nz := normalizer{mean: make([]float32, in), inv: make([]float32, in)}
	for i := range in {
		nz.mean[i] = float32(rng.NormFloat64())
		nz.inv[i] = float32(0.5 + rng.Float64())
	}
	raw := make([]float32, in)
	for i := range raw {
		raw[i] = float32(rng.NormFloat64() * 3)
	}
	for name, net := range map[string]rankNet{
		"bottom": bottomNet{newMLP(in, []int{8, 6, numHeads}, kernels.ActNone, rng)},
		"mmoe":   newMMoE(in, 3, []int{8, 6}, numHeads, rng),
	} {
		w := net.newWork(1)
		copy(w.input(), raw)
		nz.apply(w.input()[:in])
		net.forward(w, 1)
		m := &ranker.Multitask{Spec: spec, Tasks: headNames[:], Weights: []float32{1, 1, 1, 1, 1}}
		net.export(&nz, m)
		if err := m.Validate(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		nu, nr, nc := len(spec.User), len(spec.Reel), len(spec.Cross)
		var sc ranker.Scores
		err := m.ScoreInputs(ranker.Inputs{User: raw[:nu], Reel: raw[nu : nu+nr], Cross: raw[nu+nr : nu+nr+nc], Emb: raw[nu+nr+nc:], N: 1}, &sc)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for h := range numHeads {
			want := sigmoid(w.logits()[h])
			if got := sc.Probs[h]; math.Abs(float64(got-want)) > 1e-4 {
				t.Errorf("%s head %d: exported %v, trained %v", name, h, got, want)
			}
		}
	}
}
