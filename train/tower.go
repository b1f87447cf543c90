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

// TowerConfig configures the two-tower retrieval model's training.
type TowerConfig struct {
	// Dim is the embedding dimension (default 64).
	Dim int
	// UserHidden and ReelHidden are the towers' hidden widths (default
	// 256 each); a linear layer to Dim follows.
	UserHidden, ReelHidden []int
	// Epochs are the passes over the training positives (default 4).
	Epochs int
	// Batch is the in-batch softmax's size (default 1024).
	Batch int
	// LR is Adam's learning rate (default 2e-3).
	LR float64
	// Temperature divides the cosine logits (default 0.05).
	Temperature float64
	// NoLogQ turns off the sampling-bias correction: by default each
	// in-batch logit has log q subtracted, q the reel's frequency among
	// the training positives, so popular reels are not over-punished as
	// negatives.
	NoLogQ bool
	// MinCount is the training positives a reel needs for an id vector
	// (default 2); the others get their content part alone.
	MinCount int
	// IDDropout is the fraction of training examples whose id vector is
	// left out (default 0.25), so that the content part alone is a useful
	// vector for new reels.
	IDDropout float64
}

func (c *TowerConfig) fill() {
	if c.Dim <= 0 {
		c.Dim = 64
	}
	if c.UserHidden == nil {
		c.UserHidden = []int{256}
	}
	if c.ReelHidden == nil {
		c.ReelHidden = []int{256}
	}
	if c.Epochs <= 0 {
		c.Epochs = 4
	}
	if c.Batch <= 0 {
		c.Batch = 1024
	}
	if c.LR <= 0 {
		c.LR = 2e-3
	}
	if c.Temperature <= 0 {
		c.Temperature = 0.05
	}
	if c.MinCount <= 0 {
		c.MinCount = 2
	}
	if c.IDDropout == 0 {
		c.IDDropout = 0.25
	}
}

func (c *TowerConfig) check() error {
	if c.Dim > 4096 || c.Batch < 2 || c.Batch > 1<<16 || !(c.IDDropout >= 0 && c.IDDropout <= 1) || c.Temperature > 100 {
		return fmt.Errorf("train: tower config out of range (dim %d, batch %d, id dropout %v, temperature %v)", c.Dim, c.Batch, c.IDDropout, c.Temperature)
	}
	for _, h := range append(slices.Clone(c.UserHidden), c.ReelHidden...) {
		if h < 1 || h > 4096 {
			return fmt.Errorf("train: tower hidden width %d outside [1, 4096]", h)
		}
	}
	return nil
}

// towerTrainer trains the user and reel towers with an in-batch sampled
// softmax over the training positives.
type towerTrainer struct {
	cfg        TowerConfig
	d          *dataset
	nu, nr     int // user features; reel features + embedding
	unz, rnz   normalizer
	tab        *reelTable
	user, reel *mlp
	ids        []int64         // reels with an id vector
	idRow      map[int64]int32 // reel → id vector row
	idEmb      []float32
	idAdam     adam
	logQ       map[int64]float32
	pos        []int // training positive rows
	workers    int
	uw, rw     []*mlpWork
	log        func(string, ...any)
}

func newTowerTrainer(cfg TowerConfig, d *dataset, train span, tab *reelTable, workers int, rng *rand.Rand, log func(string, ...any)) (*towerTrainer, error) {
	nu := len(d.spec.User)
	nr := len(d.spec.Reel) + d.spec.EmbedDim
	tt := &towerTrainer{cfg: cfg, d: d, nu: nu, nr: nr, tab: tab, workers: workers, log: log, idRow: map[int64]int32{}, logQ: map[int64]float32{}}
	count := map[int64]int{}
	for i := train.lo; i < train.hi; i++ {
		if _, ok := tab.row[d.reel[i]]; ok && d.labels[i]&(1<<headWatch) != 0 {
			tt.pos = append(tt.pos, i)
			count[d.reel[i]]++
		}
	}
	if len(tt.pos) < cfg.Batch {
		return nil, fmt.Errorf("train: towers: %d training positives, fewer than one batch of %d: %w", len(tt.pos), cfg.Batch, ErrNoData)
	}
	for id, c := range count {
		tt.logQ[id] = float32(math.Log(float64(c) / float64(len(tt.pos))))
		if c >= cfg.MinCount {
			tt.ids = append(tt.ids, id)
		}
	}
	slices.Sort(tt.ids)
	for i, id := range tt.ids {
		tt.idRow[id] = int32(i)
	}
	tt.idEmb = make([]float32, len(tt.ids)*cfg.Dim)
	tt.idAdam = newAdam(len(tt.idEmb))
	ps := span{0, len(tt.pos)}
	tt.unz = fitNormalizer(nu, ps, 200_000, rng, func(dst []float32, i int) { copy(dst, d.row(tt.pos[i])[:nu]) })
	tt.rnz = fitNormalizer(nr, ps, 200_000, rng, func(dst []float32, i int) { tt.rawReel(dst, tt.pos[i]) })
	tt.user = newMLP(nu, append(slices.Clone(cfg.UserHidden), cfg.Dim), kernels.ActNone, rng)
	tt.reel = newMLP(nr, append(slices.Clone(cfg.ReelHidden), cfg.Dim), kernels.ActNone, rng)
	per := (cfg.Batch + workers - 1) / workers
	for range workers {
		tt.uw = append(tt.uw, tt.user.newWork(per))
		tt.rw = append(tt.rw, tt.reel.newWork(per))
	}
	return tt, nil
}

// rawReel writes row i's reel input [reel features | content embedding],
// the features as of the table's instant.
func (tt *towerTrainer) rawReel(dst []float32, i int) {
	nr, D := len(tt.d.spec.Reel), tt.d.spec.EmbedDim
	k := int(tt.tab.row[tt.d.reel[i]])
	copy(dst, tt.tab.reelVec[k*nr:(k+1)*nr])
	copy(dst[nr:], tt.tab.emb[k*D:(k+1)*D])
}

// batchState is one in-batch softmax step's buffers.
type batchState struct {
	u, v       []float32 // B×Dim unit vectors
	un, vn     []float32 // B norms before normalising
	vt         []float32 // Dim×B
	s          []float32 // B×B logits, then softmax gradients
	st         []float32 // B×B transposed
	du, dv     []float32 // B×Dim
	useID      []bool
	idRows     []int32
	idGrad     map[int32][]float32
	rows       []int
	reelIDs    []int64
	lossPerRow []float64
	lq         []float32 // per column: log q of its reel
}

func (tt *towerTrainer) newBatchState() *batchState {
	B, D := tt.cfg.Batch, tt.cfg.Dim
	return &batchState{
		u: make([]float32, B*D), v: make([]float32, B*D), un: make([]float32, B), vn: make([]float32, B),
		vt: make([]float32, B*D), s: make([]float32, B*B), st: make([]float32, B*B),
		du: make([]float32, B*D), dv: make([]float32, B*D), useID: make([]bool, B), idRows: make([]int32, B),
		idGrad: map[int32][]float32{}, reelIDs: make([]int64, B), lossPerRow: make([]float64, B), lq: make([]float32, B),
	}
}

// forwardTowers embeds the rows of bs (both towers, unit vectors) and
// leaves each worker's activations for the backward pass.
func (tt *towerTrainer) forwardTowers(bs *batchState, B int) {
	D := tt.cfg.Dim
	parallel(B, tt.workers, func(wi, lo, hi int) {
		uw, rw := tt.uw[wi], tt.rw[wi]
		m := hi - lo
		for r := range m {
			i := bs.rows[lo+r]
			urow := uw.acts[0][r*tt.nu : (r+1)*tt.nu]
			copy(urow, tt.d.row(i)[:tt.nu])
			tt.unz.apply(urow)
			rrow := rw.acts[0][r*tt.nr : (r+1)*tt.nr]
			tt.rawReel(rrow, i)
			tt.rnz.apply(rrow)
		}
		uo := tt.user.forward(uw, m)
		ro := tt.reel.forward(rw, m)
		for r := range m {
			b := lo + r
			u := bs.u[b*D : (b+1)*D]
			copy(u, uo[r*D:(r+1)*D])
			v := bs.v[b*D : (b+1)*D]
			copy(v, ro[r*D:(r+1)*D])
			if bs.useID[b] {
				k := int(bs.idRows[b])
				addTo(v, tt.idEmb[k*D:(k+1)*D])
			}
			bs.un[b] = normalize(u)
			bs.vn[b] = normalize(v)
		}
	})
}

// normalize scales v to unit length and returns its former norm (at least
// a tiny floor, so that the backward pass stays finite).
func normalize(v []float32) float32 {
	n := float32(math.Sqrt(float64(kernels.Dot(v, v))))
	n = max(n, 1e-6)
	inv := 1 / n
	for i := range v {
		v[i] *= inv
	}
	return n
}

// unnormGrad turns the gradient g at a unit vector u = a/|a| into the
// gradient at a: (g - u(u·g))/|a|, in place.
func unnormGrad(g, u []float32, norm float32) {
	ug := kernels.Dot(u, g)
	inv := 1 / norm
	for i := range g {
		g[i] = (g[i] - u[i]*ug) * inv
	}
}

// step runs one in-batch softmax step on rows and returns the mean loss.
func (tt *towerTrainer) step(bs *batchState, rows []int, rng *rand.Rand, h *adamHyper) float64 {
	B, D := len(rows), tt.cfg.Dim
	invT := float32(1 / tt.cfg.Temperature)
	bs.rows = rows
	for b, i := range rows {
		id := tt.d.reel[i]
		bs.reelIDs[b] = id
		k, ok := tt.idRow[id]
		bs.useID[b] = ok && rng.Float64() >= tt.cfg.IDDropout
		bs.idRows[b] = k
		if !tt.cfg.NoLogQ {
			bs.lq[b] = tt.logQ[id]
		}
	}
	tt.user.refreshT()
	tt.reel.refreshT()
	tt.forwardTowers(bs, B)

	// Logits s_ij = u_i·v_j/τ - log q_j; a column holding row i's own reel
	// (a duplicate in the batch) is not a negative of row i.
	transpose(bs.vt[:D*B], bs.v[:B*D], B, D)
	s := bs.s[:B*B]
	kernels.Gemm(s, bs.u[:B*D], bs.vt[:D*B], nil, B, D, B, kernels.ActNone)
	var loss float64
	for i := range B {
		row := s[i*B : (i+1)*B]
		mx := float32(math.Inf(-1))
		for j := range row {
			z := row[j]*invT - bs.lq[j]
			if j != i && bs.reelIDs[j] == bs.reelIDs[i] {
				z = float32(math.Inf(-1))
			}
			row[j] = z
			mx = max(mx, z)
		}
		var sum float64
		for j, z := range row {
			e := math.Exp(float64(z - mx))
			row[j] = float32(e)
			sum += e
		}
		loss += -math.Log(float64(row[i]) / sum)
		inv := float32(1 / sum)
		for j := range row {
			row[j] *= inv
		}
		row[i] -= 1
		// d loss/d (u_i·v_j) = (p_ij - [i=j]) / τ / B
		f := invT / float32(B)
		for j := range row {
			row[j] *= f
		}
	}
	kernels.Gemm(bs.du[:B*D], s, bs.v[:B*D], nil, B, B, D, kernels.ActNone)
	transpose(bs.st[:B*B], s, B, B)
	kernels.Gemm(bs.dv[:B*D], bs.st[:B*B], bs.u[:B*D], nil, B, B, D, kernels.ActNone)

	// Back through the normalisation, the id vectors and both towers.
	clear(bs.idGrad)
	for b := range B {
		unnormGrad(bs.du[b*D:(b+1)*D], bs.u[b*D:(b+1)*D], bs.un[b])
		dv := bs.dv[b*D : (b+1)*D]
		unnormGrad(dv, bs.v[b*D:(b+1)*D], bs.vn[b])
		if bs.useID[b] {
			g := bs.idGrad[bs.idRows[b]]
			if g == nil {
				g = make([]float32, D)
				bs.idGrad[bs.idRows[b]] = g
			}
			addTo(g, dv)
		}
	}
	parallel(B, tt.workers, func(wi, lo, hi int) {
		uw, rw := tt.uw[wi], tt.rw[wi]
		m := hi - lo
		tt.user.zeroGrads(uw)
		tt.reel.zeroGrads(rw)
		copy(uw.dacts[len(tt.user.layers)][:m*D], bs.du[lo*D:hi*D])
		copy(rw.dacts[len(tt.reel.layers)][:m*D], bs.dv[lo*D:hi*D])
		tt.user.backward(uw, m, false)
		tt.reel.backward(rw, m, false)
	})
	h.t++
	uws, rws := tt.uw, tt.rw
	if B < 2*tt.workers {
		uws, rws = uws[:1], rws[:1]
	}
	tt.user.step(uws, 1, *h)
	tt.reel.step(rws, 1, *h)
	// Lazy Adam on the id vectors a batch touched.
	for k, g := range bs.idGrad {
		lo := int(k) * D
		a := adam{m: tt.idAdam.m[lo : lo+D], v: tt.idAdam.v[lo : lo+D]}
		a.update(tt.idEmb[lo:lo+D], g, *h)
	}
	return loss / float64(B)
}

// train runs the configured epochs over the positives.
func (tt *towerTrainer) train(ctx context.Context, rng *rand.Rand) ([]float64, error) {
	bs := tt.newBatchState()
	h := adamHyper{lr: tt.cfg.LR, b1: 0.9, b2: 0.999, eps: 1e-8}
	var losses []float64
	perm := slices.Clone(tt.pos)
	for ep := range tt.cfg.Epochs {
		rng.Shuffle(len(perm), func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
		var sum float64
		var n int
		for b0 := 0; b0+tt.cfg.Batch <= len(perm); b0 += tt.cfg.Batch {
			if err := ctx.Err(); err != nil {
				return losses, err
			}
			sum += tt.step(bs, perm[b0:b0+tt.cfg.Batch], rng, &h)
			n++
		}
		losses = append(losses, sum/float64(max(n, 1)))
		tt.log("towers: epoch %d: in-batch loss %.4f", ep+1, losses[ep])
		h.lr *= 0.7
	}
	return losses, nil
}

// export returns both towers reading raw features.
func (tt *towerTrainer) export() (*ranker.UserTower, *ranker.ReelTower, error) {
	fold := func(m *mlp, nz normalizer) ranker.MLP {
		var out ranker.MLP
		for i, l := range m.layers {
			if i == 0 {
				out.Layers = append(out.Layers, nz.fold(l))
			} else {
				out.Layers = append(out.Layers, exportLayer(l))
			}
		}
		return out
	}
	ut := &ranker.UserTower{MLP: fold(tt.user, tt.unz)}
	rt := &ranker.ReelTower{Dim: tt.cfg.Dim, IDs: slices.Clone(tt.ids), IDEmb: slices.Clone(tt.idEmb),
		ReelFeatures: len(tt.d.spec.Reel), Content: fold(tt.reel, tt.rnz)}
	if err := ut.Validate(); err != nil {
		return nil, nil, fmt.Errorf("train: export user tower: %w", err)
	}
	if err := rt.Validate(); err != nil {
		return nil, nil, fmt.Errorf("train: export reel tower: %w", err)
	}
	return ut, rt, nil
}
