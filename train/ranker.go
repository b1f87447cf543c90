package train

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/reelrank/reelrank/kernels"
	"github.com/reelrank/reelrank/ranker"
)

// normalizer standardises input columns: (x - mean)·inv. Training runs on
// standardised inputs; exporting folds the standardisation into the first
// layer, so the served model reads the store's raw features.
type normalizer struct{ mean, inv []float32 }

// fitNormalizer measures the mean and spread of each column that cols
// writes, over up to sample rows of s.
func fitNormalizer(width int, s span, sample int, rng *rand.Rand, cols func(dst []float32, i int)) normalizer {
	n := min(sample, s.len())
	sum := make([]float64, width)
	sq := make([]float64, width)
	row := make([]float32, width)
	for range n {
		i := s.lo + rng.IntN(s.len())
		cols(row, i)
		for j, v := range row {
			sum[j] += float64(v)
			sq[j] += float64(v) * float64(v)
		}
	}
	nz := normalizer{mean: make([]float32, width), inv: make([]float32, width)}
	for j := range width {
		m := sum[j] / float64(max(n, 1))
		v := sq[j]/float64(max(n, 1)) - m*m
		nz.mean[j] = float32(m)
		if v > 1e-10 {
			nz.inv[j] = float32(1 / math.Sqrt(v))
		} else {
			nz.inv[j] = 1 // a constant column: centred, not scaled
		}
	}
	return nz
}

func (nz *normalizer) apply(row []float32) {
	for j, v := range row {
		row[j] = (v - nz.mean[j]) * nz.inv[j]
	}
}

// fold returns a first layer that reads raw inputs: W'[i][j] = W[i][j]·inv[i]
// and b'[j] = b[j] - Σ_i mean[i]·inv[i]·W[i][j].
func (nz *normalizer) fold(l *layer) ranker.Dense {
	d := ranker.Dense{In: l.in, Out: l.out, W: make([]float32, len(l.w)), B: slices.Clone(l.b), Act: l.act}
	bias := make([]float64, l.out)
	for j := range bias {
		bias[j] = float64(l.b[j])
	}
	for i := range l.in {
		s := nz.inv[i]
		for j := range l.out {
			w := l.w[i*l.out+j] * s
			d.W[i*l.out+j] = w
			bias[j] -= float64(nz.mean[i]) * float64(w)
		}
	}
	for j := range bias {
		d.B[j] = float32(bias[j])
	}
	return d
}

// exportLayers returns layers as a ranker.MLP that reads raw inputs: the
// first layer with nz folded in, the others as they are.
func exportLayers(layers []*layer, nz *normalizer) ranker.MLP {
	var out ranker.MLP
	for i, l := range layers {
		if i == 0 {
			out.Layers = append(out.Layers, nz.fold(l))
		} else {
			out.Layers = append(out.Layers, exportLayer(l))
		}
	}
	return out
}

func exportLayer(l *layer) ranker.Dense {
	return ranker.Dense{In: l.in, Out: l.out, W: slices.Clone(l.w), B: slices.Clone(l.b), Act: l.act}
}

// RankerConfig configures the multitask ranker's training.
type RankerConfig struct {
	// Hidden are the shared bottom's widths (default 256, 256, 128).
	Hidden []int
	// Epochs bounds the passes over the training days (default 8); training
	// stops earlier when the validation loss has not improved for
	// Patience epochs (default 2: one epoch's validation loss is noisy
	// enough to stop a run that was still improving), and keeps the best
	// epoch's weights.
	Epochs, Patience int
	// Batch is the rows per Adam step (default 1024).
	Batch int
	// LR is Adam's learning rate (default 1e-3), decayed by LRDecay per
	// epoch (default 0.7).
	LR, LRDecay float64
	// LossWeights weigh each head's binary cross-entropy (default 1 each),
	// in the order watch, like, comment, share, follow.
	LossWeights []float32
	// ScoreWeights are the final score's weights in the bundle (default
	// watch 1, like 2, comment 3, share 4, follow 5).
	ScoreWeights []float32
	// Experts > 0 trains an MMoE of that many experts instead of the
	// shared bottom, each an MLP of ExpertHidden widths (default 128, 64),
	// with one softmax gate per head.
	Experts      int
	ExpertHidden []int
	// NoPosition trains without the position features (PositionFeatures):
	// their columns are zero in training, and the served ranker gives them
	// no weight, so it scores a candidate alike at every position. It is
	// the ablation that measures what the position feature is worth.
	NoPosition bool
	// FixPosition makes the bundle's ranker score every candidate as if
	// at session position ServePosition (0: the first slot), whatever the
	// slot the request fills: a model trained with the position feature
	// then ranks on what a reel is worth free of the position's bias
	// (fatigue, skips deeper in a session), and its probabilities are
	// those of that slot. Without it the ranker reads the request's
	// position.
	FixPosition   bool
	ServePosition int
}

// PositionFeatures are the user features that say where in the session a
// request is: the slot's position, and the seconds since the session
// began, which grows with it. NoPosition zeroes them.
var PositionFeatures = []string{"sess_log_pos", "sess_log_secs"}

func (c *RankerConfig) fill() {
	if len(c.Hidden) == 0 {
		c.Hidden = []int{256, 256, 128}
	}
	if c.Epochs <= 0 {
		c.Epochs = 8
	}
	if c.Patience <= 0 {
		c.Patience = 2
	}
	if c.Batch <= 0 {
		c.Batch = 1024
	}
	if c.LR <= 0 {
		c.LR = 1e-3
	}
	if c.LRDecay <= 0 {
		c.LRDecay = 0.7
	}
	if len(c.LossWeights) == 0 {
		c.LossWeights = []float32{1, 1, 1, 1, 1}
	}
	if len(c.ScoreWeights) == 0 {
		c.ScoreWeights = []float32{1, 2, 3, 4, 5}
	}
	if c.Experts > 0 && len(c.ExpertHidden) == 0 {
		c.ExpertHidden = []int{128, 64}
	}
}

func (c *RankerConfig) check() error {
	if c.FixPosition && (c.ServePosition < 0 || c.ServePosition > 1<<20) {
		return fmt.Errorf("train: serve position %d outside [0, %d]", c.ServePosition, 1<<20)
	}
	if c.Experts < 0 || c.Experts > 64 {
		return fmt.Errorf("train: %d experts outside [0, 64]", c.Experts)
	}
	for _, h := range append(slices.Clone(c.Hidden), c.ExpertHidden...) {
		if h < 1 || h > 4096 {
			return fmt.Errorf("train: ranker hidden width %d outside [1, 4096]", h)
		}
	}
	if len(c.LossWeights) != numHeads || len(c.ScoreWeights) != numHeads {
		return fmt.Errorf("train: ranker wants %d loss weights and %d score weights, got %d and %d",
			numHeads, numHeads, len(c.LossWeights), len(c.ScoreWeights))
	}
	for _, w := range append(slices.Clone(c.LossWeights), c.ScoreWeights...) {
		if !(w >= 0 && w < 1e6) {
			return fmt.Errorf("train: ranker weight %v outside [0, 1e6)", w)
		}
	}
	return nil
}

// rankerTrainer trains the shared-bottom multitask net.
type rankerTrainer struct {
	cfg     RankerConfig
	d       *dataset
	nz      normalizer
	net     rankNet
	in      int
	workers int
	works   []rankWork
	weights []float32 // per row
	posCols []int     // the position features' input columns, zeroed under NoPosition
	log     func(format string, args ...any)
}

func newRankerTrainer(cfg RankerConfig, d *dataset, train span, weights []float32, workers int, rng *rand.Rand, log func(string, ...any)) *rankerTrainer {
	D := d.spec.EmbedDim
	in := d.width + D
	rt := &rankerTrainer{cfg: cfg, d: d, in: in, workers: workers, weights: weights, log: log}
	if cfg.NoPosition {
		rt.posCols = positionColumns(d.spec.User)
	}
	rt.nz = fitNormalizer(in, train, 200_000, rng, rt.rawRow)
	if cfg.Experts > 0 {
		rt.net = newMMoE(in, cfg.Experts, cfg.ExpertHidden, numHeads, rng)
	} else {
		rt.net = bottomNet{newMLP(in, append(slices.Clone(cfg.Hidden), numHeads), kernels.ActNone, rng)}
	}
	// Start the heads at the base rates, so the first steps learn ranking
	// rather than the bias.
	rt.net.scaleHeads(0.1)
	var pos [numHeads]float64
	for i := train.lo; i < train.hi; i++ {
		for h := range numHeads {
			if d.labels[i]&(1<<h) != 0 {
				pos[h]++
			}
		}
	}
	for h := range numHeads {
		p := (pos[h] + 1) / (float64(train.len()) + 2)
		rt.net.setHeadBias(h, float32(math.Log(p/(1-p))))
	}
	per := (cfg.Batch + workers - 1) / workers
	for range workers {
		rt.works = append(rt.works, rt.net.newWork(per))
	}
	return rt
}

// positionColumns returns the indices of PositionFeatures among the user
// features, which lead the ranker's input.
func positionColumns(user []string) []int {
	var cols []int
	for j, name := range user {
		if slices.Contains(PositionFeatures, name) {
			cols = append(cols, j)
		}
	}
	return cols
}

// rawRow writes row i's raw input [user | reel | cross | emb], the
// position features zeroed under NoPosition.
func (rt *rankerTrainer) rawRow(dst []float32, i int) {
	copy(dst, rt.d.row(i))
	copy(dst[rt.d.width:], rt.d.embRow(i))
	for _, j := range rt.posCols {
		dst[j] = 0
	}
}

// fill writes the standardised inputs of rows idx into w's input.
func (rt *rankerTrainer) fill(w rankWork, idx []int) {
	x := w.input()
	for r, i := range idx {
		row := x[r*rt.in : (r+1)*rt.in]
		rt.rawRow(row, i)
		rt.nz.apply(row)
	}
}

// lossGrad puts the gradient of the weighted per-head cross-entropy at the
// logits into w's output gradient and returns the loss summed over rows.
func (rt *rankerTrainer) lossGrad(w rankWork, idx []int, weighted bool) float64 {
	logits := w.logits()
	grad := w.dlogits()
	var loss float64
	for r, i := range idx {
		y := rt.d.labels[i]
		wt := float32(1)
		if weighted {
			wt = rt.weights[i]
		}
		for h := range numHeads {
			z := logits[r*numHeads+h]
			p := sigmoid(z)
			lw := rt.cfg.LossWeights[h] * wt
			t := float32(0)
			if y&(1<<h) != 0 {
				t = 1
			}
			grad[r*numHeads+h] = (p - t) * lw
			loss += float64(lw) * bce(z, t)
		}
	}
	return loss
}

// bce is the binary cross-entropy of logit z against target t, stable.
func bce(z, t float32) float64 {
	zf := float64(z)
	return math.Max(zf, 0) - zf*float64(t) + math.Log1p(math.Exp(-math.Abs(zf)))
}

// epoch runs one pass over perm and returns the mean training loss.
func (rt *rankerTrainer) epoch(ctx context.Context, perm []int, h *adamHyper) (float64, error) {
	B := rt.cfg.Batch
	var total float64
	losses := make([]float64, rt.workers)
	for b0 := 0; b0 < len(perm); b0 += B {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		batch := perm[b0:min(b0+B, len(perm))]
		rt.net.refreshT()
		parallel(len(batch), rt.workers, func(wi, lo, hi int) {
			w := rt.works[wi]
			idx := batch[lo:hi]
			rt.net.zeroGrads(w)
			rt.fill(w, idx)
			rt.net.forward(w, len(idx))
			losses[wi] = rt.lossGrad(w, idx, true)
			rt.net.backward(w, len(idx))
		})
		works := rt.works
		if len(batch) < 2*rt.workers {
			works = works[:1]
		}
		for wi := range works {
			total += losses[wi]
			losses[wi] = 0
		}
		h.t++
		rt.net.step(works, 1/float32(len(batch)), *h)
	}
	return total / float64(max(len(perm), 1)), nil
}

// validLoss is the mean loss over the rows of s, unweighted.
func (rt *rankerTrainer) validLoss(s span) float64 {
	B := rt.cfg.Batch
	per := len(rt.works[0].input()) / rt.in
	sums := make([]float64, rt.workers)
	idx := make([][]int, rt.workers)
	for b0 := s.lo; b0 < s.hi; b0 += B {
		b1 := min(b0+B, s.hi)
		parallel(b1-b0, rt.workers, func(wi, lo, hi int) {
			w := rt.works[wi]
			for c0 := b0 + lo; c0 < b0+hi; c0 += per {
				c1 := min(c0+per, b0+hi)
				idx[wi] = idx[wi][:0]
				for i := c0; i < c1; i++ {
					idx[wi] = append(idx[wi], i)
				}
				rt.fill(w, idx[wi])
				rt.net.forward(w, len(idx[wi]))
				sums[wi] += rt.lossGrad(w, idx[wi], false)
			}
		})
	}
	var t float64
	for _, v := range sums {
		t += v
	}
	return t / float64(max(s.len(), 1))
}

// snapshot copies the net's weights.
func (rt *rankerTrainer) snapshot() [][]float32 {
	var out [][]float32
	for _, p := range rt.net.params() {
		out = append(out, slices.Clone(p))
	}
	return out
}

func (rt *rankerTrainer) restore(s [][]float32) {
	for i, p := range rt.net.params() {
		copy(p, s[i])
	}
}

// rankerEpoch is one epoch's record for the report.
type rankerEpoch struct {
	Epoch     int     `json:"epoch"`
	TrainLoss float64 `json:"train_loss"`
	ValidLoss float64 `json:"valid_loss"`
	Seconds   float64 `json:"seconds"`
}

// export returns the trained net as a ranker.Multitask reading raw
// features.
func (rt *rankerTrainer) export(prec ranker.Precision) (*ranker.Multitask, error) {
	m := &ranker.Multitask{Spec: rt.d.spec, Tasks: headNames[:], Weights: slices.Clone(rt.cfg.ScoreWeights), Precision: prec,
		FixPosition: rt.cfg.FixPosition, ServePosition: rt.cfg.ServePosition}
	rt.net.export(&rt.nz, m)
	// Trained on zeros, the position columns' first-layer weights are
	// their initial values: served, they would read the live position.
	// Zero weights make the served model ignore it, as training did.
	for _, j := range rt.posCols {
		layers := []*ranker.Dense{}
		if m.MMoE == nil {
			layers = append(layers, &m.Bottom.Layers[0])
		} else {
			for e := range m.MMoE.Experts {
				layers = append(layers, &m.MMoE.Experts[e].Layers[0])
			}
			for g := range m.MMoE.Gates {
				layers = append(layers, &m.MMoE.Gates[g])
			}
		}
		for _, l := range layers {
			clear(l.W[j*l.Out : (j+1)*l.Out])
		}
	}
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("train: export ranker: %w", err)
	}
	return m, nil
}
