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
	// Epochs are the passes over the training positives (default 3).
	Epochs int
	// Batch is the in-batch softmax's size (default 1024).
	Batch int
	// LR is Adam's learning rate (default 7e-4): on the default world at
	// temperature 0.05 a larger rate lowered the training loss and
	// retrieved worse (2e-3: recall 0.151, 6e-3: 0.095), as did more
	// epochs (5: 0.165 against 3: 0.172); see BENCHMARKS.md. At 0.5 on the
	// serve world 1.4e-3 retrieves as 7e-4 does (notes: towers.md).
	LR float64
	// Temperature divides the cosine logits (default 0.05). The best one
	// depends on the world: on the serve world (51,942 reels) a softer one
	// retrieves more (recall@1000 of the oracle's top 100: 0.241 at 0.05,
	// 0.253 at 0.1, 0.267 at 0.2, 0.277 at 0.5, 0.274 at 1; popularity
	// 0.247), on the default world (513,702 reels) it collapses (0.053 at
	// 0.5, in a run that also trained on the validation day, against 0.171
	// at 0.05; popularity 0.155); notes: towers.md.
	Temperature float64
	// NoLogQ turns off the sampling-bias correction: by default each
	// in-batch logit has log q subtracted, q the reel's frequency among
	// the training positives, so popular reels are not over-punished as
	// negatives.
	NoLogQ bool
	// LogQWeight scales the correction (default 1: the unbiased one).
	LogQWeight float64
	// MinCount is the training positives a reel needs for an id vector
	// (default 2); the others get their content part alone.
	MinCount int
	// IDDropout is the fraction of training examples whose id vector is
	// left out (default 0.25), so that the content part alone is a useful
	// vector for new reels.
	IDDropout float64
	// UniformNegatives is the reels drawn uniformly from the catalogue as
	// extra negatives of every step (default 1024; negative: none).
	UniformNegatives int
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
		c.Epochs = 3
	}
	if c.Batch <= 0 {
		c.Batch = 1024
	}
	if c.LR <= 0 {
		c.LR = 7e-4
	}
	if c.Temperature <= 0 {
		c.Temperature = 0.05
	}
	if c.LogQWeight == 0 {
		c.LogQWeight = 1
	}
	if c.MinCount <= 0 {
		c.MinCount = 2
	}
	if c.IDDropout == 0 {
		c.IDDropout = 0.25
	}
	switch {
	case c.UniformNegatives == 0:
		c.UniformNegatives = 1024
	case c.UniformNegatives < 0:
		c.UniformNegatives = 0
	}
}

func (c *TowerConfig) check() error {
	if c.Dim > 4096 || c.Batch < 2 || c.Batch > 1<<16 || c.UniformNegatives > 1<<16 || !(c.IDDropout >= 0 && c.IDDropout <= 1) || c.Temperature > 100 {
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
	catalogue  []int64 // every reel of the table, for uniform negatives
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
	tt.rnz = fitNormalizer(nr, ps, 200_000, rng, func(dst []float32, i int) { tt.rawReel(dst, d.reel[tt.pos[i]]) })
	tt.user = newMLP(nu, append(slices.Clone(cfg.UserHidden), cfg.Dim), kernels.ActNone, rng)
	tt.reel = newMLP(nr, append(slices.Clone(cfg.ReelHidden), cfg.Dim), kernels.ActNone, rng)
	for id := range tab.row {
		tt.catalogue = append(tt.catalogue, id)
	}
	slices.Sort(tt.catalogue)
	per := (cfg.Batch + workers - 1) / workers
	perC := (cfg.Batch + cfg.UniformNegatives + workers - 1) / workers
	for range workers {
		tt.uw = append(tt.uw, tt.user.newWork(per))
		tt.rw = append(tt.rw, tt.reel.newWork(perC))
	}
	return tt, nil
}

// rawReel writes reel id's input [reel features | content embedding], the
// features as of the table's instant.
func (tt *towerTrainer) rawReel(dst []float32, id int64) {
	nr, D := len(tt.d.spec.Reel), tt.d.spec.EmbedDim
	k := int(tt.tab.row[id])
	copy(dst, tt.tab.reelVec[k*nr:(k+1)*nr])
	copy(dst[nr:], tt.tab.emb[k*D:(k+1)*D])
}

// batchState is one step's buffers: B rows (users and their positive
// reels) against C = B + U columns (the rows' reels, then U reels drawn
// uniformly from the catalogue).
type batchState struct {
	u, v    []float32 // B×Dim and C×Dim unit vectors
	un, vn  []float32 // norms before normalising
	vt      []float32 // Dim×C
	s       []float32 // B×C logits, then softmax gradients
	st      []float32 // C×B transposed
	du, dv  []float32 // B×Dim, C×Dim
	useID   []bool    // per column
	idRows  []int32
	idGrad  map[int32][]float32
	rows    []int
	reelIDs []int64   // per column
	lq      []float32 // per column: log of its expected count in the sample
}

func (tt *towerTrainer) newBatchState() *batchState {
	B, D := tt.cfg.Batch, tt.cfg.Dim
	C := B + tt.cfg.UniformNegatives
	return &batchState{
		u: make([]float32, B*D), v: make([]float32, C*D), un: make([]float32, B), vn: make([]float32, C),
		vt: make([]float32, C*D), s: make([]float32, B*C), st: make([]float32, B*C),
		du: make([]float32, B*D), dv: make([]float32, C*D), useID: make([]bool, C), idRows: make([]int32, C),
		idGrad: map[int32][]float32{}, reelIDs: make([]int64, C), lq: make([]float32, C),
	}
}

// forwardTowers embeds the B users and C reels of bs as unit vectors and
// leaves each worker's activations for the backward pass.
func (tt *towerTrainer) forwardTowers(bs *batchState, B, C int) {
	D := tt.cfg.Dim
	parallel(B, tt.workers, func(wi, lo, hi int) {
		uw := tt.uw[wi]
		m := hi - lo
		for r := range m {
			urow := uw.acts[0][r*tt.nu : (r+1)*tt.nu]
			copy(urow, tt.d.row(bs.rows[lo+r])[:tt.nu])
			tt.unz.apply(urow)
		}
		uo := tt.user.forward(uw, m)
		for r := range m {
			b := lo + r
			u := bs.u[b*D : (b+1)*D]
			copy(u, uo[r*D:(r+1)*D])
			bs.un[b] = normalize(u)
		}
	})
	parallel(C, tt.workers, func(wi, lo, hi int) {
		rw := tt.rw[wi]
		m := hi - lo
		for r := range m {
			rrow := rw.acts[0][r*tt.nr : (r+1)*tt.nr]
			tt.rawReel(rrow, bs.reelIDs[lo+r])
			tt.rnz.apply(rrow)
		}
		ro := tt.reel.forward(rw, m)
		for r := range m {
			c := lo + r
			v := bs.v[c*D : (c+1)*D]
			copy(v, ro[r*D:(r+1)*D])
			if bs.useID[c] {
				k := int(bs.idRows[c])
				addTo(v, tt.idEmb[k*D:(k+1)*D])
			}
			bs.vn[c] = normalize(v)
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

// step runs one sampled-softmax step on rows and returns the mean loss.
// Row i's positive is its own reel (column i); the negatives are the other
// rows' reels, which follow the positives' distribution, and U reels drawn
// uniformly from the catalogue (mixed negative sampling), so that reels
// nobody watched are pushed down too. Each column's logit has the log of
// its expected count in the sample subtracted (the sampling-bias
// correction): B·q for a row's reel, q its share of the positives, and
// U/N for a uniform draw from N reels.
func (tt *towerTrainer) step(bs *batchState, rows []int, rng *rand.Rand, h *adamHyper) float64 {
	B, D := len(rows), tt.cfg.Dim
	U := tt.cfg.UniformNegatives
	C := B + U
	invT := float32(1 / tt.cfg.Temperature)
	bs.rows = rows
	logB := float32(math.Log(float64(B)))
	uniformLQ := float32(math.Log(float64(U) / float64(len(tt.catalogue))))
	lqW := float32(tt.cfg.LogQWeight)
	for c := range C {
		var id int64
		if c < B {
			id = tt.d.reel[rows[c]]
		} else {
			id = tt.catalogue[rng.IntN(len(tt.catalogue))]
		}
		bs.reelIDs[c] = id
		k, ok := tt.idRow[id]
		bs.useID[c] = ok && rng.Float64() >= tt.cfg.IDDropout
		bs.idRows[c] = k
		switch {
		case tt.cfg.NoLogQ:
			bs.lq[c] = 0
		case c < B:
			bs.lq[c] = lqW * (logB + tt.logQ[id])
		default:
			bs.lq[c] = lqW * uniformLQ
		}
	}
	tt.user.refreshT()
	tt.reel.refreshT()
	tt.forwardTowers(bs, B, C)

	// Logits s_ij = u_i·v_j/τ - lq_j; a column holding row i's own reel
	// (a duplicate) is not a negative of row i.
	transpose(bs.vt[:D*C], bs.v[:C*D], C, D)
	s := bs.s[:B*C]
	kernels.Gemm(s, bs.u[:B*D], bs.vt[:D*C], nil, B, D, C, kernels.ActNone)
	var loss float64
	f := invT / float32(B)
	for i := range B {
		row := s[i*C : (i+1)*C]
		mx := float32(math.Inf(-1))
		own := bs.reelIDs[i]
		for j := range row {
			z := row[j]*invT - bs.lq[j]
			if j != i && bs.reelIDs[j] == own {
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
		for j := range row {
			row[j] *= f
		}
	}
	kernels.Gemm(bs.du[:B*D], s, bs.v[:C*D], nil, B, C, D, kernels.ActNone)
	transpose(bs.st[:C*B], s, B, C)
	kernels.Gemm(bs.dv[:C*D], bs.st[:C*B], bs.u[:B*D], nil, C, B, D, kernels.ActNone)

	// Back through the normalisation, the id vectors and both towers.
	clear(bs.idGrad)
	for b := range B {
		unnormGrad(bs.du[b*D:(b+1)*D], bs.u[b*D:(b+1)*D], bs.un[b])
	}
	for c := range C {
		dv := bs.dv[c*D : (c+1)*D]
		unnormGrad(dv, bs.v[c*D:(c+1)*D], bs.vn[c])
		if bs.useID[c] {
			g := bs.idGrad[bs.idRows[c]]
			if g == nil {
				g = make([]float32, D)
				bs.idGrad[bs.idRows[c]] = g
			}
			addTo(g, dv)
		}
	}
	parallel(B, tt.workers, func(wi, lo, hi int) {
		uw := tt.uw[wi]
		m := hi - lo
		tt.user.zeroGrads(uw)
		copy(uw.dacts[len(tt.user.layers)][:m*D], bs.du[lo*D:hi*D])
		tt.user.backward(uw, m, false)
	})
	parallel(C, tt.workers, func(wi, lo, hi int) {
		rw := tt.rw[wi]
		m := hi - lo
		tt.reel.zeroGrads(rw)
		copy(rw.dacts[len(tt.reel.layers)][:m*D], bs.dv[lo*D:hi*D])
		tt.reel.backward(rw, m, false)
	})
	h.t++
	uws, rws := tt.uw, tt.rw
	if B < 2*tt.workers {
		uws = uws[:1]
	}
	if C < 2*tt.workers {
		rws = rws[:1]
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
	ut := &ranker.UserTower{MLP: exportLayers(tt.user.layers, &tt.unz)}
	rt := &ranker.ReelTower{Dim: tt.cfg.Dim, IDs: slices.Clone(tt.ids), IDEmb: slices.Clone(tt.idEmb),
		ReelFeatures: len(tt.d.spec.Reel), Content: exportLayers(tt.reel.layers, &tt.rnz)}
	if err := ut.Validate(); err != nil {
		return nil, nil, fmt.Errorf("train: export user tower: %w", err)
	}
	if err := rt.Validate(); err != nil {
		return nil, nil, fmt.Errorf("train: export reel tower: %w", err)
	}
	return ut, rt, nil
}
