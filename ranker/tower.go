package ranker

import (
	"fmt"
	"sync"
	"sync/atomic"
)

// The two towers of retrieval: a user's embedding and a reel's embedding,
// both L2-normalised, whose dot product ranks reels for the user in the
// ANN index. Like [Multitask], a tower validates and packs itself on first
// use; it must not change after that (call Prepare again if it does), and
// a prepared tower is safe for concurrent use.

// UserTower maps the feature store's user vector to a unit embedding.
type UserTower struct {
	// MLP takes len(Spec.User) features; its output width is the embedding
	// dimension. Its last layer is usually linear (kernels.ActNone).
	MLP MLP

	mu   sync.Mutex
	plan atomic.Pointer[mlpPlan]
}

// ReelTower maps a reel to a unit embedding: a learned per-reel-id vector
// plus an MLP over the reel's features and content embedding. A reel with
// no id vector (new, unseen in training) gets the content part alone.
type ReelTower struct {
	// Dim is the embedding dimension.
	Dim int
	// IDs lists the reels with an id vector; IDs[i] owns
	// IDEmb[i*Dim:(i+1)*Dim].
	IDs   []int64
	IDEmb []float32
	// ReelFeatures is the number of reel features (len(Spec.Reel)); the
	// rest of Content's input is the content embedding.
	ReelFeatures int
	// Content maps [reel features | content embedding] to Dim values.
	Content MLP

	mu   sync.Mutex
	plan atomic.Pointer[reelPlan]
}

// mlpPlan is a validated MLP packed for the kernels, with pooled scratch.
type mlpPlan struct {
	in, out, maxH int
	layers        []*packed
	pool          sync.Pool // of *mlpScratch
}

type mlpScratch struct{ x, a, b []float32 }

func newMLPPlan(m *MLP) *mlpPlan {
	p := &mlpPlan{in: m.In(), out: m.Out(), layers: packMLP(m, F32)}
	for i := range m.Layers {
		p.maxH = max(p.maxH, m.Layers[i].Out)
	}
	return p
}

func (p *mlpPlan) scratch() *mlpScratch {
	s, _ := p.pool.Get().(*mlpScratch)
	if s == nil {
		s = &mlpScratch{}
	}
	return s
}

// Dim is the embedding dimension.
func (t *UserTower) Dim() int { return t.MLP.Out() }

// Validate checks the tower's MLP.
func (t *UserTower) Validate() error {
	if err := t.MLP.Validate(); err != nil {
		return fmt.Errorf("user tower: %w", err)
	}
	return nil
}

// Prepare validates the tower and packs its weights; Embed calls it on
// first use. Call it again after changing the tower (never while Embed
// runs).
func (t *UserTower) Prepare() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	p, err := t.build()
	if err != nil {
		return err
	}
	t.plan.Store(p)
	return nil
}

func (t *UserTower) build() (*mlpPlan, error) {
	if err := t.Validate(); err != nil {
		return nil, err
	}
	return newMLPPlan(&t.MLP), nil
}

func (t *UserTower) prepared() (*mlpPlan, error) {
	if p := t.plan.Load(); p != nil {
		return p, nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if p := t.plan.Load(); p != nil {
		return p, nil
	}
	p, err := t.build()
	if err != nil {
		return nil, err
	}
	t.plan.Store(p)
	return p, nil
}

// Embed writes the unit embedding of one user vector to dst (Dim values).
func (t *UserTower) Embed(userVec, dst []float32) error {
	return t.EmbedBatch(userVec, dst, 1)
}

// EmbedBatch embeds n user vectors (n rows of the tower's input width) into
// dst (n rows of Dim).
func (t *UserTower) EmbedBatch(userVecs, dst []float32, n int) error {
	p, err := t.prepared()
	if err != nil {
		return err
	}
	if n < 0 || n > maxCandidates || len(userVecs) != n*p.in || len(dst) != n*p.out {
		return fmt.Errorf("%w: user tower: %d rows, %d user values (want %d), %d outputs (want %d)", ErrBadInput, n, len(userVecs), n*p.in, len(dst), n*p.out)
	}
	if i := firstNonFinite(userVecs); i >= 0 {
		return fmt.Errorf("%w: user tower: row %d: feature %d is %v", ErrBadInput, i/p.in, i%p.in, userVecs[i])
	}
	if n == 0 {
		return nil
	}
	s := p.scratch()
	s.a = grow(s.a, n*p.maxH)
	s.b = grow(s.b, n*p.maxH)
	copy(dst, forward(p.layers, userVecs, n, s.a, s.b))
	p.pool.Put(s)
	for i := range n {
		l2Normalize(dst[i*p.out : (i+1)*p.out])
	}
	return nil
}

// reelPlan is a prepared reel tower.
type reelPlan struct {
	mlp   *mlpPlan
	nR    int
	index map[int64]int32
	emb   []float32
	dim   int
}

// Validate checks the content MLP, the id table and their widths.
func (t *ReelTower) Validate() error {
	if t.Dim <= 0 || t.Dim > maxDim {
		return invalid("reel tower: dimension %d out of range [1, %d]", t.Dim, maxDim)
	}
	if err := t.Content.Validate(); err != nil {
		return fmt.Errorf("reel tower: content: %w", err)
	}
	if t.Content.Out() != t.Dim {
		return invalid("reel tower: content gives %d values, want %d", t.Content.Out(), t.Dim)
	}
	if t.ReelFeatures < 0 || t.ReelFeatures > t.Content.In() {
		return invalid("reel tower: %d reel features but content takes %d inputs", t.ReelFeatures, t.Content.In())
	}
	if len(t.IDEmb) != len(t.IDs)*t.Dim {
		return invalid("reel tower: %d ids need %d id-embedding values, have %d", len(t.IDs), len(t.IDs)*t.Dim, len(t.IDEmb))
	}
	if i := firstNonFinite(t.IDEmb); i >= 0 {
		return invalid("reel tower: id embedding of reel %d: value %d is %v", t.IDs[i/t.Dim], i%t.Dim, t.IDEmb[i])
	}
	return nil
}

// Prepare validates the tower, packs its weights and indexes the ids;
// Embed calls it on first use. Call it again after changing the tower
// (never while Embed runs).
func (t *ReelTower) Prepare() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	p, err := t.build()
	if err != nil {
		return err
	}
	t.plan.Store(p)
	return nil
}

func (t *ReelTower) build() (*reelPlan, error) {
	if err := t.Validate(); err != nil {
		return nil, err
	}
	p := &reelPlan{mlp: newMLPPlan(&t.Content), nR: t.ReelFeatures, emb: t.IDEmb, dim: t.Dim,
		index: make(map[int64]int32, len(t.IDs))}
	for i, id := range t.IDs {
		if _, dup := p.index[id]; dup {
			return nil, invalid("reel tower: reel id %d listed twice", id)
		}
		p.index[id] = int32(i)
	}
	return p, nil
}

func (t *ReelTower) prepared() (*reelPlan, error) {
	if p := t.plan.Load(); p != nil {
		return p, nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if p := t.plan.Load(); p != nil {
		return p, nil
	}
	p, err := t.build()
	if err != nil {
		return nil, err
	}
	t.plan.Store(p)
	return p, nil
}

// Known reports whether the reel has an id vector.
func (t *ReelTower) Known(reelID int64) (bool, error) {
	p, err := t.prepared()
	if err != nil {
		return false, err
	}
	_, ok := p.index[reelID]
	return ok, nil
}

// Embed writes the unit embedding of one reel to dst (Dim values): its
// reel features and content embedding through the content MLP, plus its id
// vector when the tower has one for reelID.
func (t *ReelTower) Embed(reelID int64, reelVec, emb, dst []float32) error {
	ids := [1]int64{reelID}
	return t.EmbedBatch(ids[:], reelVec, emb, dst)
}

// EmbedBatch embeds len(ids) reels: reelVecs holds a row of reel features
// per id, embs a row of content embedding per id, dst a row of Dim per id.
func (t *ReelTower) EmbedBatch(ids []int64, reelVecs, embs, dst []float32) error {
	p, err := t.prepared()
	if err != nil {
		return err
	}
	n, nR, nE, d := len(ids), p.nR, p.mlp.in-p.nR, p.dim
	if n > maxCandidates || len(reelVecs) != n*nR || len(embs) != n*nE || len(dst) != n*d {
		return fmt.Errorf("%w: reel tower: %d ids with %d reel values (want %d), %d embedding values (want %d), %d outputs (want %d)",
			ErrBadInput, n, len(reelVecs), n*nR, len(embs), n*nE, len(dst), n*d)
	}
	if i := firstNonFinite(reelVecs); i >= 0 {
		return fmt.Errorf("%w: reel tower: reel %d: feature %d is %v", ErrBadInput, ids[i/nR], i%nR, reelVecs[i])
	}
	if i := firstNonFinite(embs); i >= 0 {
		return fmt.Errorf("%w: reel tower: reel %d: embedding value %d is %v", ErrBadInput, ids[i/nE], i%nE, embs[i])
	}
	if n == 0 {
		return nil
	}
	s := p.mlp.scratch()
	in := p.mlp.in
	s.x = grow(s.x, n*in)
	for i := range n {
		copy(s.x[i*in:], reelVecs[i*nR:(i+1)*nR])
		copy(s.x[i*in+nR:], embs[i*nE:(i+1)*nE])
	}
	s.a = grow(s.a, n*p.mlp.maxH)
	s.b = grow(s.b, n*p.mlp.maxH)
	copy(dst, forward(p.mlp.layers, s.x, n, s.a, s.b))
	p.mlp.pool.Put(s)
	for i, id := range ids {
		row := dst[i*d : (i+1)*d]
		if j, ok := p.index[id]; ok {
			for k, v := range p.emb[int(j)*d : int(j+1)*d] {
				row[k] += v
			}
		}
		l2Normalize(row)
	}
	return nil
}
