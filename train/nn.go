package train

import (
	"math"
	"math/rand/v2"
	"sync"

	"github.com/reelrank/reelrank/kernels"
)

// The trainer's small neural-network core: dense layers with a forward
// pass on the kernels' GEMM, the backward pass as two more GEMMs on
// explicit transposes, and Adam. A step splits its batch between workers,
// each with its own activations and gradients, and sums the gradients.

// layer is one dense layer y = act(x·W + b), W In×Out row-major.
type layer struct {
	in, out int
	act     kernels.Activation
	w, b    []float32
	wt      []float32 // Wᵀ, refreshed before each backward pass
	adamW   adam
	adamB   adam
}

func newLayer(in, out int, act kernels.Activation, rng *rand.Rand) *layer {
	l := &layer{in: in, out: out, act: act, w: make([]float32, in*out), b: make([]float32, out), wt: make([]float32, in*out)}
	// He initialisation for ReLU layers, Glorot for linear ones.
	scale := math.Sqrt(2 / float64(in))
	if act != kernels.ActReLU {
		scale = math.Sqrt(2 / float64(in+out))
	}
	for i := range l.w {
		l.w[i] = float32(rng.NormFloat64() * scale)
	}
	l.adamW = newAdam(len(l.w))
	l.adamB = newAdam(len(l.b))
	return l
}

func (l *layer) refreshT() { transpose(l.wt, l.w, l.in, l.out) }

// grads holds one worker's gradients of one layer.
type grads struct{ w, b []float32 }

func (l *layer) newGrads() grads {
	return grads{w: make([]float32, l.in*l.out), b: make([]float32, l.out)}
}

// forward computes y = act(x·W + b) for m rows.
func (l *layer) forward(y, x []float32, m int) {
	kernels.Gemm(y[:m*l.out], x[:m*l.in], l.w, l.b, m, l.in, l.out, l.act)
}

// backward takes dy (m×out, the loss's gradient at y, overwritten with
// the gradient before the activation), accumulates the weight gradients
// into g, and writes dx (m×in) unless dx is nil. xt is scratch of m·in.
func (l *layer) backward(g grads, dx, dy, x, y, xt, tmp []float32, m int) {
	dy = dy[:m*l.out]
	if l.act == kernels.ActReLU {
		for i, v := range y[:m*l.out] {
			if v <= 0 {
				dy[i] = 0
			}
		}
	}
	for r := range m {
		row := dy[r*l.out : (r+1)*l.out]
		for j, v := range row {
			g.b[j] += v
		}
	}
	transpose(xt[:m*l.in], x[:m*l.in], m, l.in)
	tmp = tmp[:l.in*l.out]
	kernels.Gemm(tmp, xt[:m*l.in], dy, nil, l.in, m, l.out, kernels.ActNone)
	for i, v := range tmp {
		g.w[i] += v
	}
	if dx != nil {
		kernels.Gemm(dx[:m*l.in], dy, l.wt, nil, m, l.out, l.in, kernels.ActNone)
	}
}

// transpose writes the c×r transpose of the r×c matrix src into dst.
func transpose(dst, src []float32, r, c int) {
	const bs = 32
	for i0 := 0; i0 < r; i0 += bs {
		i1 := min(i0+bs, r)
		for j0 := 0; j0 < c; j0 += bs {
			j1 := min(j0+bs, c)
			for i := i0; i < i1; i++ {
				row := src[i*c : i*c+c]
				for j := j0; j < j1; j++ {
					dst[j*r+i] = row[j]
				}
			}
		}
	}
}

// adam holds Adam's moment estimates for one parameter vector.
type adam struct{ m, v []float32 }

func newAdam(n int) adam { return adam{m: make([]float32, n), v: make([]float32, n)} }

// adamHyper are Adam's hyper-parameters at one step.
type adamHyper struct {
	lr, b1, b2, eps float64
	t               int // the step, from 1
	decay           float64
}

// update applies one Adam step of gradient g to p.
func (a *adam) update(p, g []float32, h adamHyper) {
	c1 := 1 - math.Pow(h.b1, float64(h.t))
	c2 := 1 - math.Pow(h.b2, float64(h.t))
	lr := float32(h.lr * math.Sqrt(c2) / c1)
	b1, b2 := float32(h.b1), float32(h.b2)
	eps := float32(h.eps * math.Sqrt(c2))
	dec := float32(h.lr * h.decay)
	for i, gi := range g {
		m := b1*a.m[i] + (1-b1)*gi
		v := b2*a.v[i] + (1-b2)*gi*gi
		a.m[i], a.v[i] = m, v
		p[i] -= lr*m/(float32(math.Sqrt(float64(v)))+eps) + dec*p[i]
	}
}

// mlp is a stack of layers.
type mlp struct{ layers []*layer }

func newMLP(in int, widths []int, lastAct kernels.Activation, rng *rand.Rand) *mlp {
	m := &mlp{}
	for i, w := range widths {
		act := kernels.ActReLU
		if i == len(widths)-1 {
			act = lastAct
		}
		m.layers = append(m.layers, newLayer(in, w, act, rng))
		in = w
	}
	return m
}

func (m *mlp) out() int { return m.layers[len(m.layers)-1].out }

func (m *mlp) maxWidth() int {
	w := m.layers[0].in
	for _, l := range m.layers {
		w = max(w, l.out)
	}
	return w
}

// mlpWork is one worker's activations and gradients for an mlp.
type mlpWork struct {
	acts    [][]float32 // acts[0] is the input, acts[i+1] layer i's output
	dacts   [][]float32
	g       []grads
	xt, tmp []float32
}

func (m *mlp) newWork(rows int) *mlpWork {
	w := &mlpWork{}
	w.acts = append(w.acts, make([]float32, rows*m.layers[0].in))
	w.dacts = append(w.dacts, make([]float32, rows*m.layers[0].in))
	mw := m.maxWidth()
	for _, l := range m.layers {
		w.acts = append(w.acts, make([]float32, rows*l.out))
		w.dacts = append(w.dacts, make([]float32, rows*l.out))
		w.g = append(w.g, l.newGrads())
	}
	w.xt = make([]float32, rows*mw)
	w.tmp = make([]float32, mw*mw)
	return w
}

// forward runs the mlp on the m rows in w.acts[0] and returns the output.
func (m *mlp) forward(w *mlpWork, rows int) []float32 {
	for i, l := range m.layers {
		l.forward(w.acts[i+1], w.acts[i], rows)
	}
	return w.acts[len(m.layers)][:rows*m.out()]
}

// backward takes the output gradient in w.dacts[last] and accumulates the
// weight gradients; it fills w.dacts[0] with the input's gradient when
// wantInput is set.
func (m *mlp) backward(w *mlpWork, rows int, wantInput bool) {
	for i := len(m.layers) - 1; i >= 0; i-- {
		l := m.layers[i]
		var dx []float32
		if i > 0 || wantInput {
			dx = w.dacts[i]
		}
		l.backward(w.g[i], dx, w.dacts[i+1], w.acts[i], w.acts[i+1], w.xt, w.tmp, rows)
	}
}

func (m *mlp) zeroGrads(w *mlpWork) {
	for _, g := range w.g {
		clear(g.w)
		clear(g.b)
	}
}

func (m *mlp) refreshT() {
	for _, l := range m.layers {
		l.refreshT()
	}
}

// step sums the workers' gradients into the first worker's, scales them
// and applies Adam.
func (m *mlp) step(works []*mlpWork, scale float32, h adamHyper) {
	for i, l := range m.layers {
		rest := make([]grads, len(works)-1)
		for k, w := range works[1:] {
			rest[k] = w.g[i]
		}
		stepParams(l.w, l.b, &l.adamW, &l.adamB, works[0].g[i], rest, scale, h)
	}
}

// stepParams sums the other workers' gradients into g, scales them and
// takes an Adam step on the weights w (with weight decay) and the biases b
// (without).
func stepParams(w, b []float32, aw, ab *adam, g grads, rest []grads, scale float32, h adamHyper) {
	for _, r := range rest {
		addTo(g.w, r.w)
		addTo(g.b, r.b)
	}
	scaleBy(g.w, scale)
	scaleBy(g.b, scale)
	aw.update(w, g.w, h)
	hb := h
	hb.decay = 0
	ab.update(b, g.b, hb)
}

func addTo(dst, src []float32) {
	for i, v := range src {
		dst[i] += v
	}
}

func scaleBy(v []float32, s float32) {
	if s == 1 {
		return
	}
	for i := range v {
		v[i] *= s
	}
}

// parallel runs f(worker, lo, hi) over [0, n) split between workers.
func parallel(n, workers int, f func(w, lo, hi int)) {
	if workers <= 1 || n < 2*workers {
		f(0, 0, n)
		return
	}
	var wg sync.WaitGroup
	per := (n + workers - 1) / workers
	for w := range workers {
		lo, hi := w*per, min(n, (w+1)*per)
		if lo >= hi {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(w, lo, hi)
		}()
	}
	wg.Wait()
}

// sigmoid is the logistic function, safe for large |x|.
func sigmoid(x float32) float32 {
	if x >= 0 {
		return float32(1 / (1 + math.Exp(-float64(x))))
	}
	e := math.Exp(float64(x))
	return float32(e / (1 + e))
}
