package ranker

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/reelrank/reelrank/features"
	"github.com/reelrank/reelrank/kernels"
)

// smallSpec is a named spec of a few features of each kind.
func smallSpec() features.Spec {
	sp := features.Spec{EmbedDim: 4, Version: features.SpecVersion}
	for i := range 7 {
		sp.User = append(sp.User, fmt.Sprintf("u%d", i))
	}
	for i := range 5 {
		sp.Reel = append(sp.Reel, fmt.Sprintf("r%d", i))
	}
	for i := range 3 {
		sp.Cross = append(sp.Cross, fmt.Sprintf("x%d", i))
	}
	return sp
}

// storeSpec is the feature store's default spec: the real widths.
func storeSpec(tb testing.TB) features.Spec {
	tb.Helper()
	st, err := features.NewStore(features.Config{})
	if err != nil {
		tb.Fatal(err)
	}
	return st.Spec()
}

func randVec(rng *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.NormFloat64())
	}
	return v
}

func randInputs(sp features.Spec, n int, rng *rand.Rand) Inputs {
	return Inputs{
		User:  randVec(rng, len(sp.User)),
		Reel:  randVec(rng, n*len(sp.Reel)),
		Cross: randVec(rng, n*len(sp.Cross)),
		Emb:   randVec(rng, n*sp.EmbedDim),
		N:     n,
	}
}

// refDense is one layer in plain float64 loops.
func refDense(d *Dense, x []float64) []float64 {
	y := make([]float64, d.Out)
	for j := range d.Out {
		s := float64(d.B[j])
		for i := range d.In {
			s += x[i] * float64(d.W[i*d.Out+j])
		}
		switch d.Act {
		case kernels.ActReLU:
			s = max(s, 0)
		case kernels.ActSigmoid:
			s = 1 / (1 + math.Exp(-s))
		}
		y[j] = s
	}
	return y
}

func refMLP(m *MLP, x []float64) []float64 {
	for i := range m.Layers {
		x = refDense(&m.Layers[i], x)
	}
	return x
}

// refScore scores candidate i the slow, obvious way: the whole input
// concatenated, every layer in full, the mixture before the heads.
func refScore(m *Multitask, in Inputs, i int) (probs []float64, score float64) {
	sp := m.Spec
	var x []float64
	add := func(v []float32) {
		for _, f := range v {
			x = append(x, float64(f))
		}
	}
	nR, nC, nE := len(sp.Reel), len(sp.Cross), sp.EmbedDim
	add(in.User)
	add(in.Reel[i*nR : (i+1)*nR])
	add(in.Cross[i*nC : (i+1)*nC])
	add(in.Emb[i*nE : (i+1)*nE])
	for t := range m.Tasks {
		var h []float64
		if m.MMoE == nil {
			h = refMLP(&m.Bottom, x)
		} else {
			g := refDense(&m.MMoE.Gates[t], x)
			mx := g[0]
			for _, v := range g {
				mx = max(mx, v)
			}
			var sum float64
			for e := range g {
				g[e] = math.Exp(g[e] - mx)
				sum += g[e]
			}
			for e := range m.MMoE.Experts {
				o := refMLP(&m.MMoE.Experts[e], x)
				if h == nil {
					h = make([]float64, len(o))
				}
				for j := range o {
					h[j] += g[e] / sum * o[j]
				}
			}
		}
		p := refDense(&m.Heads[t], h)[0]
		probs = append(probs, p)
		score += float64(m.Weights[t]) * p
	}
	return probs, score
}

func newTestModel(t testing.TB, sp features.Spec, experts int, prec Precision, seed uint64) *Multitask {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	hidden := []int{40, 33, 17}
	if experts > 0 {
		hidden = []int{24, 19}
	}
	m, err := NewMultitask(sp, Config{Hidden: hidden, Experts: experts, Weights: []float32{1, 0.5, 2, -0.25, 3}, Precision: prec}, rng)
	if err != nil {
		t.Fatal(err)
	}
	// Non-zero biases, so that the hoisted bias is tested.
	for _, d := range allDense(m) {
		for j := range d.B {
			d.B[j] = float32(rng.NormFloat64() * 0.1)
		}
	}
	return m
}

// allDense lists every layer of a model.
func allDense(m *Multitask) []*Dense {
	var out []*Dense
	mlps := []*MLP{&m.Bottom}
	if m.MMoE != nil {
		mlps = nil
		for e := range m.MMoE.Experts {
			mlps = append(mlps, &m.MMoE.Experts[e])
		}
		for g := range m.MMoE.Gates {
			out = append(out, &m.MMoE.Gates[g])
		}
	}
	for _, x := range mlps {
		for i := range x.Layers {
			out = append(out, &x.Layers[i])
		}
	}
	for h := range m.Heads {
		out = append(out, &m.Heads[h])
	}
	return out
}

func TestScoreMatchesReference(t *testing.T) {
	for _, experts := range []int{0, 3} {
		for _, sp := range []features.Spec{smallSpec(), storeSpec(t)} {
			name := fmt.Sprintf("experts=%d/user=%d", experts, len(sp.User))
			t.Run(name, func(t *testing.T) {
				m := newTestModel(t, sp, experts, F32, 7)
				rng := rand.New(rand.NewPCG(3, 4))
				var out Scores
				for _, n := range []int{1, 2, 31, 67} {
					in := randInputs(sp, n, rng)
					if err := m.ScoreInputs(in, &out); err != nil {
						t.Fatal(err)
					}
					if len(out.Probs) != n*5 || len(out.Score) != n || out.Tasks != 5 {
						t.Fatalf("n=%d: got %d probs, %d scores, %d tasks", n, len(out.Probs), len(out.Score), out.Tasks)
					}
					for i := range n {
						probs, score := refScore(m, in, i)
						for k, p := range probs {
							if d := math.Abs(p - float64(out.Prob(i, k))); d > 1e-4 {
								t.Fatalf("n=%d candidate %d task %s: got %v, reference %v", n, i, m.Tasks[k], out.Prob(i, k), p)
							}
						}
						if d := math.Abs(score - float64(out.Score[i])); d > 1e-4*(1+math.Abs(score)) {
							t.Fatalf("n=%d candidate %d: score %v, reference %v", n, i, out.Score[i], score)
						}
					}
				}
			})
		}
	}
}

// TestBF16Accuracy measures the bf16 path against f32 on random inputs at
// the real feature widths and the benchmark's shape.
func TestBF16Accuracy(t *testing.T) {
	sp := storeSpec(t)
	for _, experts := range []int{0, 4} {
		rng := rand.New(rand.NewPCG(11, 12))
		cfg := Config{Hidden: []int{256, 256, 128}, Experts: experts}
		if experts > 0 {
			cfg.Hidden = []int{256, 128}
		}
		m32, err := NewMultitask(sp, cfg, rng)
		if err != nil {
			t.Fatal(err)
		}
		// Full-scale heads, so that the probabilities spread over (0, 1)
		// instead of sitting near 0.5 where the sigmoid flattens errors.
		for t := range m32.Heads {
			for i := range m32.Heads[t].W {
				m32.Heads[t].W[i] *= 10
			}
		}
		m16 := cloneWithPrecision(m32, BF16)
		in := randInputs(sp, 1000, rng)
		var a, b Scores
		if err := m32.ScoreInputs(in, &a); err != nil {
			t.Fatal(err)
		}
		if err := m16.ScoreInputs(in, &b); err != nil {
			t.Fatal(err)
		}
		var maxd, sum, maxs float64
		lo, hi := float32(1), float32(0)
		for i := range a.Probs {
			d := math.Abs(float64(a.Probs[i] - b.Probs[i]))
			maxd = max(maxd, d)
			sum += d
			lo, hi = min(lo, a.Probs[i]), max(hi, a.Probs[i])
		}
		for i := range a.Score {
			maxs = max(maxs, math.Abs(float64(a.Score[i]-b.Score[i])))
		}
		t.Logf("experts=%d: bf16 vs f32 over %d probabilities in [%.3f, %.3f]: max abs diff %.2e, mean %.2e; weighted score max abs diff %.2e",
			experts, len(a.Probs), lo, hi, maxd, sum/float64(len(a.Probs)), maxs)
		if maxd > 0.02 {
			t.Errorf("experts=%d: bf16 probabilities differ from f32 by up to %v", experts, maxd)
		}
		if maxd == 0 {
			t.Errorf("experts=%d: bf16 gives exactly the f32 probabilities; is it running?", experts)
		}
	}
}

// cloneWithPrecision shares m's weights in a new model of another precision.
func cloneWithPrecision(m *Multitask, prec Precision) *Multitask {
	return &Multitask{Spec: m.Spec, Bottom: m.Bottom, MMoE: m.MMoE, Heads: m.Heads, Tasks: m.Tasks, Weights: m.Weights, Precision: prec}
}

func TestScoreRequest(t *testing.T) {
	sp := smallSpec()
	m := newTestModel(t, sp, 0, F32, 1)
	rng := rand.New(rand.NewPCG(1, 2))
	in := randInputs(sp, 3, rng)
	req := &features.Request{Reels: []int64{10, 11, 12}, Embeddings: true, UserVec: in.User, ReelVec: in.Reel, CrossVec: in.Cross, Emb: in.Emb}
	var a, b Scores
	if err := m.Score(req, &a); err != nil {
		t.Fatal(err)
	}
	if err := m.ScoreInputs(in, &b); err != nil {
		t.Fatal(err)
	}
	for i := range a.Score {
		if a.Score[i] != b.Score[i] {
			t.Fatalf("candidate %d: Score %v, ScoreInputs %v", i, a.Score[i], b.Score[i])
		}
	}
	req.Embeddings = false
	if err := m.Score(req, &a); !errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), "Embeddings") {
		t.Fatalf("request without embeddings: got %v", err)
	}
	if err := m.Score(nil, &a); !errors.Is(err, ErrBadInput) {
		t.Fatalf("nil request: got %v", err)
	}
}

func TestScoreBadInputs(t *testing.T) {
	sp := smallSpec()
	m := newTestModel(t, sp, 2, F32, 1)
	rng := rand.New(rand.NewPCG(5, 6))
	good := randInputs(sp, 4, rng)
	var out Scores
	cases := []struct {
		name string
		edit func(in *Inputs)
		want string
	}{
		{"short user", func(in *Inputs) { in.User = in.User[1:] }, "user vector has 6 values, want 7"},
		{"long reel", func(in *Inputs) { in.Reel = append(in.Reel, 1) }, "reel vector has 21 values"},
		{"short cross", func(in *Inputs) { in.Cross = in.Cross[:3] }, "cross vector"},
		{"no emb", func(in *Inputs) { in.Emb = nil }, "embedding vector has 0 values"},
		{"negative n", func(in *Inputs) { in.N = -1 }, "-1 candidates"},
		{"n too big", func(in *Inputs) { in.N = 5 }, "reel vector"},
		{"NaN user", func(in *Inputs) { in.User[2] = float32(math.NaN()) }, `user feature "u2" is NaN`},
		{"Inf reel", func(in *Inputs) { in.Reel[2*5+3] = float32(math.Inf(1)) }, `candidate 2: reel feature "r3" is +Inf`},
		{"NaN cross", func(in *Inputs) { in.Cross[3*3+1] = float32(math.NaN()) }, `candidate 3: cross feature "x1" is NaN`},
		{"NaN emb", func(in *Inputs) { in.Emb[1*4+2] = float32(math.NaN()) }, "candidate 1: embedding[2] is NaN"},
	}
	for _, c := range cases {
		in := good
		in.User = append([]float32(nil), good.User...)
		in.Reel = append([]float32(nil), good.Reel...)
		in.Cross = append([]float32(nil), good.Cross...)
		in.Emb = append([]float32(nil), good.Emb...)
		c.edit(&in)
		err := m.ScoreInputs(in, &out)
		if !errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want ErrBadInput containing %q", c.name, err, c.want)
		}
	}
	if err := m.ScoreInputs(Inputs{User: good.User}, &out); err != nil || len(out.Score) != 0 {
		t.Errorf("no candidates: got %v, %d scores", err, len(out.Score))
	}
}

func TestValidate(t *testing.T) {
	sp := smallSpec()
	cases := []struct {
		name string
		edit func(m *Multitask)
		want string
	}{
		{"NaN weight", func(m *Multitask) { m.Bottom.Layers[1].W[5] = float32(math.NaN()) }, "bottom: layer 1: ranker: invalid model: dense 40×33: weight W[0][5] = NaN"},
		{"Inf bias", func(m *Multitask) { m.Heads[2].B[0] = float32(math.Inf(-1)) }, `head "comment"`},
		{"short W", func(m *Multitask) { m.Bottom.Layers[0].W = m.Bottom.Layers[0].W[1:] }, "weights"},
		{"chain", func(m *Multitask) { m.Bottom.Layers = append(m.Bottom.Layers[:1], m.Bottom.Layers[2:]...) }, "layer 1 takes 33 inputs but layer 0 gives 40"},
		{"spec", func(m *Multitask) { m.Spec.Cross = m.Spec.Cross[1:] }, "bottom takes 19 inputs, the spec gives 18"},
		{"heads", func(m *Multitask) { m.Heads = m.Heads[1:] }, "5 tasks but 4 heads"},
		{"dup task", func(m *Multitask) { m.Tasks[1] = "watch" }, `task "watch" named twice`},
		{"head act", func(m *Multitask) { m.Heads[0].Act = kernels.ActReLU }, "want 17×1 sigmoid"},
		{"score weight", func(m *Multitask) { m.Weights[4] = float32(math.NaN()) }, `score weight of "follow" is NaN`},
		{"precision", func(m *Multitask) { m.Precision = 9 }, "unknown precision"},
		{"activation", func(m *Multitask) { m.Bottom.Layers[0].Act = 7 }, "unknown activation 7"},
	}
	for _, c := range cases {
		m := newTestModel(t, sp, 0, F32, 1)
		c.edit(m)
		err := m.Validate()
		if !errors.Is(err, ErrInvalidModel) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want ErrInvalidModel containing %q", c.name, err, c.want)
		}
		var out Scores
		if err2 := m.ScoreInputs(randInputs(sp, 1, rand.New(rand.NewPCG(1, 1))), &out); !errors.Is(err2, ErrInvalidModel) {
			t.Errorf("%s: Score on an invalid model: got %v", c.name, err2)
		}
	}
	m := newTestModel(t, sp, 3, F32, 1)
	m.MMoE.Gates[1].Out = 2
	if err := m.Validate(); !errors.Is(err, ErrInvalidModel) {
		t.Errorf("bad gate: got %v", err)
	}
}

func TestScoreNoAllocs(t *testing.T) {
	if raceEnabled || puregoBuild {
		t.Skip("allocation counts differ under the race detector and with the generic kernels")
	}
	sp := storeSpec(t)
	for _, experts := range []int{0, 2} {
		m := newTestModel(t, sp, experts, F32, 1)
		in := randInputs(sp, 100, rand.New(rand.NewPCG(1, 1)))
		var out Scores
		s, err := m.NewScorer()
		if err != nil {
			t.Fatal(err)
		}
		if err := s.ScoreInputs(in, &out); err != nil {
			t.Fatal(err)
		}
		if a := testing.AllocsPerRun(20, func() { _ = s.ScoreInputs(in, &out) }); a != 0 {
			t.Errorf("experts=%d: Scorer.ScoreInputs allocates %v times per call", experts, a)
		}
		req := &features.Request{Reels: make([]int64, in.N), Embeddings: true, UserVec: in.User, ReelVec: in.Reel, CrossVec: in.Cross, Emb: in.Emb}
		if err := m.Score(req, &out); err != nil {
			t.Fatal(err)
		}
		if a := testing.AllocsPerRun(20, func() { _ = m.Score(req, &out) }); a != 0 {
			t.Errorf("experts=%d: Multitask.Score (pooled scratch) allocates %v times per call", experts, a)
		}
	}
}

// TestScoreConcurrent shares one model between goroutines, from the first
// (lazily preparing) call on; run it with -race.
func TestScoreConcurrent(t *testing.T) {
	sp := smallSpec()
	for _, experts := range []int{0, 2} {
		m := newTestModel(t, sp, experts, F32, 3)
		rng := rand.New(rand.NewPCG(1, 2))
		inputs := make([]Inputs, 8)
		for i := range inputs {
			inputs[i] = randInputs(sp, 1+i*5, rng)
		}
		want := make([][]float32, len(inputs))
		ref := newTestModel(t, sp, experts, F32, 3)
		for i, in := range inputs {
			var out Scores
			if err := ref.ScoreInputs(in, &out); err != nil {
				t.Fatal(err)
			}
			want[i] = out.Score
		}
		errs := make(chan error, 4)
		for g := range 4 {
			go func() {
				var out Scores
				for r := range 20 {
					i := (g + r) % len(inputs)
					if err := m.ScoreInputs(inputs[i], &out); err != nil {
						errs <- err
						return
					}
					for j := range want[i] {
						if out.Score[j] != want[i][j] {
							errs <- fmt.Errorf("goroutine %d input %d candidate %d: %v, want %v", g, i, j, out.Score[j], want[i][j])
							return
						}
					}
				}
				errs <- nil
			}()
		}
		for range 4 {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
	}
}
