package ranker

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/reelrank/reelrank/features"
	"github.com/reelrank/reelrank/kernels"
	"github.com/reelrank/reelrank/kernels/cuda"
)

func activate(x float32, act kernels.Activation) float32 {
	switch act {
	case kernels.ActReLU:
		return max(x, 0)
	case kernels.ActSigmoid:
		return float32(1 / (1 + math.Exp(-float64(x))))
	}
	return x
}

// specForward runs a CUDASpec over a staged batch on the CPU, in the
// kernels' order of operations: the reference the GPU is tested against
// and the proof that the spec and the staging say what the model says.
func specForward(sp *cuda.MLPSpec, R, M int, user, rest []float32, seg []int32, probs, score []float32) {
	h1 := sp.First.Out
	z := make([]float32, R*h1)
	for r := range R {
		for j := range h1 {
			acc := sp.First.B[j]
			for k := range sp.UserIn {
				acc += user[r*sp.UserIn+k] * sp.UserW[k*h1+j]
			}
			z[r*h1+j] = acc
		}
	}
	dense := func(x []float32, k, n int, w, bias []float32, segBias bool, act kernels.Activation) []float32 {
		y := make([]float32, M*n)
		for i := range M {
			for j := range n {
				var acc float32
				for p := range k {
					acc += x[i*k+p] * w[p*n+j]
				}
				if segBias {
					acc += bias[int(seg[i])*n+j]
				} else {
					acc += bias[j]
				}
				y[i*n+j] = activate(acc, act)
			}
		}
		return y
	}
	h := dense(rest, sp.First.In, h1, sp.First.W, z, true, sp.First.Act)
	k := h1
	for _, l := range sp.Layers {
		h = dense(h, k, l.Out, l.W, l.B, false, l.Act)
		k = l.Out
	}
	T := sp.Tasks()
	for i := range M {
		var s float32
		for t := range T {
			acc := sp.HeadB[t]
			for p := range k {
				acc += h[i*k+p] * sp.Heads[p*T+t]
			}
			pr := activate(acc, kernels.ActSigmoid)
			probs[i*T+t] = pr
			s += sp.Weights[t] * pr
		}
		score[i] = s
	}
}

// stageInputs stages a batch the way the GPU scorer does.
func stageInputs(m *Multitask, ins []Inputs) (R, M int, user, rest []float32, seg []int32) {
	sp := m.Spec
	nu, nR, nC, nE := len(sp.User), len(sp.Reel), len(sp.Cross), sp.EmbedDim
	R = len(ins)
	for _, in := range ins {
		M += in.N
	}
	user = make([]float32, R*nu)
	rest = make([]float32, M*(nR+nC+nE))
	seg = make([]int32, M)
	stageBatch(ins, nu, nR, nC, nE, user, rest, seg)
	return R, M, user, rest, seg
}

// TestCUDASpecMatchesScorer checks the GPU's form of the model, batched
// over requests with the user's share of the first layer per request,
// gives the CPU Scorer's scores.
func TestCUDASpecMatchesScorer(t *testing.T) {
	for _, c := range []struct {
		name string
		spec features.Spec
		seed uint64
	}{{"small", smallSpec(), 7}, {"store", storeSpec(t), 8}} {
		t.Run(c.name, func(t *testing.T) {
			m := newTestModel(t, c.spec, 0, F32, c.seed)
			cs, err := m.CUDASpec()
			if err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(c.seed, 5))
			var ins []Inputs
			for _, n := range []int{3, 0, 1, 17, 9} {
				ins = append(ins, randInputs(m.Spec, n, rng))
			}
			R, M, user, rest, seg := stageInputs(m, ins)
			T := cs.Tasks()
			probs, score := make([]float32, M*T), make([]float32, M)
			specForward(&cs, R, M, user, rest, seg, probs, score)
			row := 0
			for r, in := range ins {
				var want Scores
				if err := m.ScoreInputs(in, &want); err != nil {
					t.Fatal(err)
				}
				for i := range in.N {
					for k := range T {
						if d := math.Abs(float64(probs[row*T+k] - want.Probs[i*T+k])); d > 1e-5 {
							t.Fatalf("request %d candidate %d task %d: %v, CPU %v", r, i, k, probs[row*T+k], want.Probs[i*T+k])
						}
					}
					if d := math.Abs(float64(score[row] - want.Score[i])); d > 1e-4 {
						t.Fatalf("request %d candidate %d score %v, CPU %v", r, i, score[row], want.Score[i])
					}
					row++
				}
			}
		})
	}
}

func TestCUDASpecRefusesMMoE(t *testing.T) {
	m := newTestModel(t, smallSpec(), 2, F32, 3)
	if _, err := m.CUDASpec(); !errors.Is(err, ErrInvalidModel) {
		t.Fatalf("err = %v, want ErrInvalidModel", err)
	}
	bf := newTestModel(t, smallSpec(), 0, BF16, 3)
	cs, err := bf.CUDASpec()
	if err != nil || cs.Precision != cuda.BF16 {
		t.Fatalf("bf16 spec: %v, precision %v", err, cs.Precision)
	}
}

func TestParseResolveDevice(t *testing.T) {
	for s, want := range map[string]Device{"": CPU, "cpu": CPU, "cuda": CUDA, "auto": Auto} {
		if d, err := ParseDevice(s); err != nil || d != want {
			t.Fatalf("ParseDevice(%q) = %q, %v", s, d, err)
		}
	}
	if _, err := ParseDevice("tpu"); err == nil {
		t.Fatal("ParseDevice(tpu) did not fail")
	}
	if d, note, err := ResolveDevice(CPU); d != CPU || note != "" || err != nil {
		t.Fatalf("ResolveDevice(cpu) = %q, %q, %v", d, note, err)
	}
}
