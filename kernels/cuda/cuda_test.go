//go:build cuda

package cuda

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/reelrank/reelrank/kernels"
)

// openOrSkip opens GPU 0, or skips where there is none.
func openOrSkip(t *testing.T) *Device {
	t.Helper()
	d, err := Open(0)
	if errors.Is(err, ErrNoDevice) {
		t.Skip("no CUDA device:", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Error(err)
		}
	})
	t.Log(d.Name())
	return d
}

func randF(rng *rand.Rand, n int, scale float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.NormFloat64() * scale)
	}
	return v
}

func randLayer(rng *rand.Rand, in, out int, act kernels.Activation) Layer {
	return Layer{In: in, Out: out, W: randF(rng, in*out, 1/math.Sqrt(float64(in))), B: randF(rng, out, 0.1), Act: act}
}

// refRun is the MLP's math in float64 loops.
func refRun(sp *MLPSpec, R, M int, user, rest []float32, seg []int32) (probs, score []float64) {
	act := func(x float64, a kernels.Activation) float64 {
		switch a {
		case kernels.ActReLU:
			return max(x, 0)
		case kernels.ActSigmoid:
			return 1 / (1 + math.Exp(-x))
		}
		return x
	}
	h1 := sp.First.Out
	z := make([]float64, R*h1)
	for r := range R {
		for j := range h1 {
			acc := float64(sp.First.B[j])
			for k := range sp.UserIn {
				acc += float64(user[r*sp.UserIn+k]) * float64(sp.UserW[k*h1+j])
			}
			z[r*h1+j] = acc
		}
	}
	T := sp.Tasks()
	probs, score = make([]float64, M*T), make([]float64, M)
	for i := range M {
		h := make([]float64, h1)
		for j := range h1 {
			acc := z[int(seg[i])*h1+j]
			for k := range sp.First.In {
				acc += float64(rest[i*sp.First.In+k]) * float64(sp.First.W[k*h1+j])
			}
			h[j] = act(acc, sp.First.Act)
		}
		for _, l := range sp.Layers {
			y := make([]float64, l.Out)
			for j := range l.Out {
				acc := float64(l.B[j])
				for k := range l.In {
					acc += h[k] * float64(l.W[k*l.Out+j])
				}
				y[j] = act(acc, l.Act)
			}
			h = y
		}
		for t := range T {
			acc := float64(sp.HeadB[t])
			for k := range h {
				acc += h[k] * float64(sp.Heads[k*T+t])
			}
			probs[i*T+t] = act(acc, kernels.ActSigmoid)
			score[i] += float64(sp.Weights[t]) * probs[i*T+t]
		}
	}
	return probs, score
}

// TestMLPMatchesReference: random models of odd widths, batches of 1 to
// 512 requests of odd sizes, f32 and bf16; every output written (the
// device output is poisoned with NaN before each pass).
func TestMLPMatchesReference(t *testing.T) {
	d := openOrSkip(t)
	rng := rand.New(rand.NewPCG(1, 2))
	for _, prec := range []Precision{F32, BF16} {
		for _, shape := range []struct{ nu, nr, h1, h2, T int }{{7, 13, 40, 17, 5}, {0, 33, 65, 31, 3}, {230, 143, 256, 128, 5}} {
			sp := MLPSpec{UserIn: shape.nu, UserW: randF(rng, shape.nu*shape.h1, 0.2),
				First:  randLayer(rng, shape.nr, shape.h1, kernels.ActReLU),
				Layers: []Layer{randLayer(rng, shape.h1, shape.h2, kernels.ActReLU)},
				Heads:  randF(rng, shape.h2*shape.T, 0.3), HeadB: randF(rng, shape.T, 0.1),
				Weights: randF(rng, shape.T, 1), Precision: prec}
			m, err := d.NewMLP(sp)
			if err != nil {
				t.Fatal(err)
			}
			tol := 2e-4
			if prec == BF16 {
				tol = 3e-2
			}
			for _, R := range []int{1, 2, 3, 7, 64, 255, 512} {
				sizes := make([]int, R)
				M := 0
				for r := range sizes {
					sizes[r] = rng.IntN(67) // 0 included
					M += sizes[r]
				}
				if M == 0 {
					sizes[0], M = 1, 1
				}
				b, err := m.NewBatch(R, M)
				if err != nil {
					t.Fatal(err)
				}
				copy(b.User, randF(rng, R*sp.UserIn, 1))
				copy(b.Rest, randF(rng, M*sp.RestIn(), 1))
				row := 0
				for r, n := range sizes {
					for range n {
						b.Seg[row] = int32(r)
						row++
					}
				}
				for i := range b.Probs {
					b.Probs[i] = float32(math.NaN())
				}
				if err := m.Run(b); err != nil {
					t.Fatalf("%v %+v R=%d: %v", prec, shape, R, err)
				}
				wantP, wantS := refRun(&sp, R, M, b.User, b.Rest, b.Seg)
				for i, w := range wantP {
					if g := float64(b.Probs[i]); !(math.Abs(g-w) <= tol) {
						t.Fatalf("%v %+v R=%d: prob %d = %v, want %v", prec, shape, R, i, g, w)
					}
				}
				for i, w := range wantS {
					if g := float64(b.Score[i]); !(math.Abs(g-w) <= tol*float64(shape.T)*4) {
						t.Fatalf("%v %+v R=%d: score %d = %v, want %v", prec, shape, R, i, g, w)
					}
				}
			}
			if err := m.Close(); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestMLPBadBatch(t *testing.T) {
	d := openOrSkip(t)
	rng := rand.New(rand.NewPCG(3, 4))
	sp := MLPSpec{UserIn: 2, UserW: randF(rng, 2*8, 1), First: randLayer(rng, 3, 8, kernels.ActReLU),
		Heads: randF(rng, 8*2, 1), HeadB: randF(rng, 2, 1), Weights: []float32{1, 1}}
	m, err := d.NewMLP(sp)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, err := m.NewBatch(0, 5); !errors.Is(err, ErrBadInput) {
		t.Fatalf("rows without requests: %v", err)
	}
	b, err := m.NewBatch(2, 3)
	if err != nil {
		t.Fatal(err)
	}
	b.Seg[1] = 2
	if err := m.Run(b); !errors.Is(err, ErrBadInput) {
		t.Fatalf("segment out of range: %v", err)
	}
	bad := sp
	bad.Heads = bad.Heads[:3]
	if _, err := d.NewMLP(bad); !errors.Is(err, ErrBadInput) {
		t.Fatalf("bad spec: %v", err)
	}
}

func TestCatalogueTopK(t *testing.T) {
	d := openOrSkip(t)
	rng := rand.New(rand.NewPCG(5, 6))
	for _, metric := range []kernels.Metric{kernels.InnerProduct, kernels.L2} {
		for _, c := range []struct{ n, dim, k, nq int }{{1, 3, 1, 1}, {100, 7, 10, 3}, {4095, 16, 100, 2}, {4097, 16, 2048, 1}, {50_001, 128, 1000, 5}} {
			vecs := randF(rng, c.n*c.dim, 1)
			cat, err := d.NewCatalogue(vecs, c.dim, metric)
			if err != nil {
				t.Fatal(err)
			}
			q := randF(rng, c.nq*c.dim, 1)
			rows := make([]int32, c.nq*c.k)
			scores := make([]float32, c.nq*c.k)
			if err := cat.TopK(q, c.k, rows, scores); err != nil {
				t.Fatal(err)
			}
			// Each query's list: in order, exact scores of its rows, and no
			// row outside it better than its last.
			h := make([]kernels.F16, len(vecs))
			kernels.ToF16s(h, vecs)
			for qi := range c.nq {
				qq := q[qi*c.dim : (qi+1)*c.dim]
				ref := func(r int32) float32 {
					if metric == kernels.L2 {
						return -kernels.L2SqF16(qq, h[int(r)*c.dim:(int(r)+1)*c.dim])
					}
					return kernels.DotF16(qq, h[int(r)*c.dim:(int(r)+1)*c.dim])
				}
				seen := map[int32]bool{}
				gr, gs := rows[qi*c.k:(qi+1)*c.k], scores[qi*c.k:(qi+1)*c.k]
				for i, r := range gr {
					if i >= c.n {
						if r != -1 {
							t.Fatalf("%+v: entry %d past the catalogue is row %d", c, i, r)
						}
						continue
					}
					if r < 0 || int(r) >= c.n || seen[r] {
						t.Fatalf("%+v: row %d at %d (out of range or twice)", c, r, i)
					}
					seen[r] = true
					if math.Abs(float64(gs[i]-ref(r))) > 1e-3*(1+math.Abs(float64(ref(r)))) {
						t.Fatalf("%+v: row %d score %v, CPU %v", c, r, gs[i], ref(r))
					}
					if i > 0 && gs[i] > gs[i-1] {
						t.Fatalf("%+v: out of order at %d", c, i)
					}
				}
				last := gs[min(c.k, c.n)-1]
				for r := range int32(c.n) {
					if !seen[r] && ref(r) > last+1e-3 {
						t.Fatalf("%+v: row %d (%v) left out, better than the last kept (%v)", c, r, ref(r), last)
					}
				}
			}
			cand := []int32{0, int32(c.n - 1)}
			out := make([]float32, len(cand))
			if err := cat.Rescore(q[:c.dim], cand, out); err != nil {
				t.Fatal(err)
			}
			if err := cat.Rescore(q[:c.dim], []int32{int32(c.n)}, out[:1]); !errors.Is(err, ErrBadInput) {
				t.Fatalf("row out of range: %v", err)
			}
			if err := cat.Close(); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestOutOfMemory: an allocation past the device's memory is a typed
// error, and the device goes on working.
func TestOutOfMemory(t *testing.T) {
	d := openOrSkip(t)
	_, total, err := d.MemInfo()
	if err != nil {
		t.Fatal(err)
	}
	err = d.do("test", func() error {
		_, err := d.pool.get(total * 2)
		return err
	})
	if !errors.Is(err, ErrOutOfMemory) {
		t.Fatalf("err = %v, want ErrOutOfMemory", err)
	}
	if _, _, err := d.MemInfo(); err != nil {
		t.Fatalf("after an out-of-memory: %v", err)
	}
}

func TestClosedDevice(t *testing.T) {
	d := openOrSkip(t)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := d.NewCatalogue([]float32{1}, 1, kernels.InnerProduct); !errors.Is(err, ErrClosed) {
		t.Fatalf("err = %v, want ErrClosed", err)
	}
}
