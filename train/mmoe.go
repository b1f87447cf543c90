package train

import (
	"math"
	"math/rand/v2"
	"slices"

	"github.com/reelrank/reelrank/kernels"
	"github.com/reelrank/reelrank/ranker"
)

// rankNet is a multitask ranker being trained: a shared bottom (one MLP
// whose last layer gives a logit per head) or an MMoE.
type rankNet interface {
	newWork(rows int) rankWork
	refreshT()
	forward(w rankWork, m int)
	backward(w rankWork, m int)
	zeroGrads(w rankWork)
	step(ws []rankWork, scale float32, h adamHyper)
	params() [][]float32
	setHeadBias(h int, b float32)
	scaleHeads(f float32)
	export(nz *normalizer, m *ranker.Multitask)
}

// rankWork is one worker's buffers: the standardised input rows, the
// logits (m×heads) and the loss's gradient at them.
type rankWork interface {
	input() []float32
	logits() []float32
	dlogits() []float32
}

// bottomNet is the shared bottom: ReLU layers, then a linear layer with one
// logit per head.
type bottomNet struct{ *mlp }

func (n bottomNet) newWork(rows int) rankWork { return n.mlp.newWork(rows) }
func (n bottomNet) forward(w rankWork, m int) { n.mlp.forward(w.(*mlpWork), m) }
func (n bottomNet) backward(w rankWork, m int) {
	n.mlp.backward(w.(*mlpWork), m, false)
}
func (n bottomNet) zeroGrads(w rankWork) { n.mlp.zeroGrads(w.(*mlpWork)) }
func (n bottomNet) step(ws []rankWork, scale float32, h adamHyper) {
	mw := make([]*mlpWork, len(ws))
	for i, w := range ws {
		mw[i] = w.(*mlpWork)
	}
	n.mlp.step(mw, scale, h)
}

func (n bottomNet) params() [][]float32 {
	var p [][]float32
	for _, l := range n.layers {
		p = append(p, l.w, l.b)
	}
	return p
}

func (n bottomNet) last() *layer { return n.layers[len(n.layers)-1] }

func (n bottomNet) setHeadBias(h int, b float32) { n.last().b[h] = b }

func (n bottomNet) scaleHeads(f float32) { scaleBy(n.last().w, f) }

func (n bottomNet) export(nz *normalizer, m *ranker.Multitask) {
	m.Bottom = exportLayers(n.layers[:len(n.layers)-1], nz)
	last := n.last()
	for h := range last.out {
		d := ranker.Dense{In: last.in, Out: 1, W: make([]float32, last.in), B: []float32{last.b[h]}, Act: kernels.ActSigmoid}
		for i := range last.in {
			d.W[i] = last.w[i*last.out+h]
		}
		m.Heads = append(m.Heads, d)
	}
}

func (w *mlpWork) input() []float32   { return w.acts[0] }
func (w *mlpWork) logits() []float32  { return w.acts[len(w.acts)-1] }
func (w *mlpWork) dlogits() []float32 { return w.dacts[len(w.dacts)-1] }

// mmoeNet is a multi-gate mixture of experts: E expert MLPs (ReLU
// throughout) read the input; task t mixes their outputs with the softmax
// of its gate's logits and puts a linear head on the mix.
type mmoeNet struct {
	in, E, T, W int
	experts     []*mlp
	gates       *mlp // one layer, in → T·E logits
	hw, hb      []float32
	hwAdam      adam
	hbAdam      adam
}

type mmoeWork struct {
	x          []float32
	ew         []*mlpWork
	gw         *mlpWork
	g          []float32 // m×T×E gate weights
	mixed      []float32 // m×T×W
	logit, dl  []float32 // m×T
	ghw, ghb   []float32
	dmix, dgte []float32
}

func newMMoE(in, experts int, hidden []int, tasks int, rng *rand.Rand) *mmoeNet {
	n := &mmoeNet{in: in, E: experts, T: tasks, W: hidden[len(hidden)-1]}
	for range experts {
		n.experts = append(n.experts, newMLP(in, hidden, kernels.ActReLU, rng))
	}
	n.gates = newMLP(in, []int{tasks * experts}, kernels.ActNone, rng)
	scaleBy(n.gates.layers[0].w, 0.1)
	n.hw = make([]float32, tasks*n.W)
	n.hb = make([]float32, tasks)
	for i := range n.hw {
		n.hw[i] = float32(rng.NormFloat64() * math.Sqrt(2/float64(n.W+1)))
	}
	n.hwAdam, n.hbAdam = newAdam(len(n.hw)), newAdam(len(n.hb))
	return n
}

func (n *mmoeNet) newWork(rows int) rankWork {
	w := &mmoeWork{x: make([]float32, rows*n.in), gw: n.gates.newWork(rows),
		g: make([]float32, rows*n.T*n.E), mixed: make([]float32, rows*n.T*n.W),
		logit: make([]float32, rows*n.T), dl: make([]float32, rows*n.T),
		ghw: make([]float32, len(n.hw)), ghb: make([]float32, len(n.hb)),
		dmix: make([]float32, n.W), dgte: make([]float32, n.E)}
	w.gw.acts[0] = w.x // every part reads the same input rows
	for _, e := range n.experts {
		ew := e.newWork(rows)
		ew.acts[0] = w.x
		w.ew = append(w.ew, ew)
	}
	return w
}

func (w *mmoeWork) input() []float32   { return w.x }
func (w *mmoeWork) logits() []float32  { return w.logit }
func (w *mmoeWork) dlogits() []float32 { return w.dl }

func (n *mmoeNet) refreshT() {
	for _, e := range n.experts {
		e.refreshT()
	}
	n.gates.refreshT()
}

func (n *mmoeNet) forward(rw rankWork, m int) {
	w := rw.(*mmoeWork)
	E, T, W := n.E, n.T, n.W
	outs := make([][]float32, E)
	for e, x := range n.experts {
		outs[e] = x.forward(w.ew[e], m)
	}
	z := n.gates.forward(w.gw, m)
	for r := range m {
		for t := range T {
			g := w.g[(r*T+t)*E : (r*T+t+1)*E]
			zt := z[(r*T+t)*E : (r*T+t+1)*E]
			mx := slices.Max(zt)
			var sum float32
			for e := range E {
				g[e] = float32(math.Exp(float64(zt[e] - mx)))
				sum += g[e]
			}
			mix := w.mixed[(r*T+t)*W : (r*T+t+1)*W]
			clear(mix)
			for e := range E {
				g[e] /= sum
				o := outs[e][r*W : (r+1)*W]
				for j, v := range o {
					mix[j] += g[e] * v
				}
			}
			w.logit[r*T+t] = kernels.Dot(mix, n.hw[t*W:(t+1)*W]) + n.hb[t]
		}
	}
}

func (n *mmoeNet) backward(rw rankWork, m int) {
	w := rw.(*mmoeWork)
	E, T, W := n.E, n.T, n.W
	L := len(n.experts[0].layers)
	for e := range E {
		clear(w.ew[e].dacts[L][:m*W])
	}
	dz := w.gw.dacts[1]
	for r := range m {
		for t := range T {
			dl := w.dl[r*T+t]
			mix := w.mixed[(r*T+t)*W : (r*T+t+1)*W]
			hw := n.hw[t*W : (t+1)*W]
			ghw := w.ghw[t*W : (t+1)*W]
			for j := range W {
				ghw[j] += dl * mix[j]
				w.dmix[j] = dl * hw[j]
			}
			w.ghb[t] += dl
			g := w.g[(r*T+t)*E : (r*T+t+1)*E]
			var dot float32
			for e := range E {
				o := w.ew[e].acts[L][r*W : (r+1)*W]
				do := w.ew[e].dacts[L][r*W : (r+1)*W]
				for j := range W {
					do[j] += g[e] * w.dmix[j]
				}
				w.dgte[e] = kernels.Dot(w.dmix, o)
				dot += g[e] * w.dgte[e]
			}
			for e := range E {
				dz[(r*T+t)*E+e] = g[e] * (w.dgte[e] - dot)
			}
		}
	}
	for e, x := range n.experts {
		x.backward(w.ew[e], m, false)
	}
	n.gates.backward(w.gw, m, false)
}

func (n *mmoeNet) zeroGrads(rw rankWork) {
	w := rw.(*mmoeWork)
	for e, x := range n.experts {
		x.zeroGrads(w.ew[e])
	}
	n.gates.zeroGrads(w.gw)
	clear(w.ghw)
	clear(w.ghb)
}

func (n *mmoeNet) step(ws []rankWork, scale float32, h adamHyper) {
	for e, x := range n.experts {
		mw := make([]*mlpWork, len(ws))
		for i, w := range ws {
			mw[i] = w.(*mmoeWork).ew[e]
		}
		x.step(mw, scale, h)
	}
	gw := make([]*mlpWork, len(ws))
	for i, w := range ws {
		gw[i] = w.(*mmoeWork).gw
	}
	n.gates.step(gw, scale, h)
	rest := make([]grads, len(ws)-1)
	for k, rw := range ws[1:] {
		w := rw.(*mmoeWork)
		rest[k] = grads{w: w.ghw, b: w.ghb}
	}
	w0 := ws[0].(*mmoeWork)
	stepParams(n.hw, n.hb, &n.hwAdam, &n.hbAdam, grads{w: w0.ghw, b: w0.ghb}, rest, scale, h)
}

func (n *mmoeNet) params() [][]float32 {
	var p [][]float32
	for _, x := range append(slices.Clone(n.experts), n.gates) {
		for _, l := range x.layers {
			p = append(p, l.w, l.b)
		}
	}
	return append(p, n.hw, n.hb)
}

func (n *mmoeNet) setHeadBias(h int, b float32) { n.hb[h] = b }

func (n *mmoeNet) scaleHeads(f float32) { scaleBy(n.hw, f) }

func (n *mmoeNet) export(nz *normalizer, m *ranker.Multitask) {
	mm := &ranker.MMoE{}
	for _, x := range n.experts {
		mm.Experts = append(mm.Experts, exportLayers(x.layers, nz))
	}
	all := nz.fold(n.gates.layers[0]) // in × T·E
	for t := range n.T {
		d := ranker.Dense{In: n.in, Out: n.E, W: make([]float32, n.in*n.E), B: slices.Clone(all.B[t*n.E : (t+1)*n.E]), Act: kernels.ActNone}
		for i := range n.in {
			copy(d.W[i*n.E:(i+1)*n.E], all.W[i*n.T*n.E+t*n.E:i*n.T*n.E+(t+1)*n.E])
		}
		mm.Gates = append(mm.Gates, d)
	}
	m.MMoE = mm
	for t := range n.T {
		m.Heads = append(m.Heads, ranker.Dense{In: n.W, Out: 1, W: slices.Clone(n.hw[t*n.W : (t+1)*n.W]), B: []float32{n.hb[t]}, Act: kernels.ActSigmoid})
	}
}
