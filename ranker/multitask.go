package ranker

import (
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/reelrank/reelrank/features"
	"github.com/reelrank/reelrank/kernels"
)

// DefaultTasks returns the ranker's usual tasks, in head order.
func DefaultTasks() []string {
	return []string{"watch", "like", "comment", "share", "follow"}
}

// MMoE is a multi-gate mixture of experts: every expert MLP reads the whole
// input, and task t's tower input is the mix Σ_e softmax(Gates[t](x))_e ·
// Experts[e](x).
type MMoE struct {
	// Experts all take the full input and give the same width.
	Experts []MLP
	// Gates holds one layer per task, input → len(Experts) logits, with
	// kernels.ActNone; the softmax is applied by the model.
	Gates []Dense
}

// Multitask is the ranker: input x = [user | reel | cross | emb] (the
// feature store's vectors and the reel's content embedding), a shared
// bottom MLP or an MMoE over x, and one sigmoid head per task. The score of
// a candidate is Σ_t Weights[t]·p_t.
//
// Fill the exported fields (or call [NewMultitask]), then score. The first
// Score call validates the model and packs its weights; from then on the
// model must not change (call [Multitask.Prepare] again, with no Score
// running, if it does; Scorers made before keep the old weights). A
// prepared model is safe for concurrent use.
type Multitask struct {
	// Spec is the feature spec the model was trained on; it fixes the
	// input widths.
	Spec features.Spec
	// Bottom is the shared bottom; leave it empty when MMoE is set.
	Bottom MLP
	// MMoE replaces Bottom when not nil.
	MMoE *MMoE
	// Heads holds one layer per task: Out 1, kernels.ActSigmoid.
	Heads []Dense
	// Tasks names the heads ("watch", "like", ...).
	Tasks []string
	// Weights holds the final score's weight per task.
	Weights []float32
	// Precision of the GEMMs.
	Precision Precision
	// FixPosition says the model scores every candidate as if at session
	// position ServePosition, whatever slot a request fills: the
	// features' Context.Position is Position(the request's). A model
	// trained with the position feature then ranks free of the
	// position's bias, and its probabilities are those of that slot.
	FixPosition   bool
	ServePosition int

	mu   sync.Mutex
	plan atomic.Pointer[plan]
}

// Position returns the session position to compute a request's features
// at: ServePosition when the model fixes it, else the request's own.
func (m *Multitask) Position(requested int) int {
	if m.FixPosition {
		return m.ServePosition
	}
	return requested
}

// InputDim is the width of x: user + reel + cross + embedding.
func (m *Multitask) InputDim() int {
	return len(m.Spec.User) + len(m.Spec.Reel) + len(m.Spec.Cross) + m.Spec.EmbedDim
}

// Validate checks that the parts fit the spec and each other, and that
// every weight is finite.
func (m *Multitask) Validate() error {
	in := m.InputDim()
	if in == 0 {
		return invalid("feature spec is empty")
	}
	if m.Spec.EmbedDim < 0 {
		return invalid("feature spec has embedding dimension %d", m.Spec.EmbedDim)
	}
	T := len(m.Tasks)
	if T == 0 {
		return invalid("no tasks")
	}
	for i, t := range m.Tasks {
		if t == "" {
			return invalid("task %d has no name", i)
		}
		if slices.Index(m.Tasks, t) != i {
			return invalid("task %q named twice", t)
		}
	}
	if len(m.Heads) != T || len(m.Weights) != T {
		return invalid("%d tasks but %d heads and %d score weights", T, len(m.Heads), len(m.Weights))
	}
	if i := firstNonFinite(m.Weights); i >= 0 {
		return invalid("score weight of %q is %v", m.Tasks[i], m.Weights[i])
	}
	if m.Precision > BF16 {
		return invalid("unknown precision %d", m.Precision)
	}
	if m.FixPosition && (m.ServePosition < 0 || m.ServePosition > math.MaxInt32) {
		return invalid("serve position %d outside [0, %d]", m.ServePosition, math.MaxInt32)
	}
	var width int
	if m.MMoE == nil {
		if err := m.Bottom.Validate(); err != nil {
			return fmt.Errorf("bottom: %w", err)
		}
		if m.Bottom.In() != in {
			return invalid("bottom takes %d inputs, the spec gives %d", m.Bottom.In(), in)
		}
		width = m.Bottom.Out()
	} else {
		if len(m.Bottom.Layers) != 0 {
			return invalid("both a shared bottom and an MMoE")
		}
		E := len(m.MMoE.Experts)
		if E == 0 {
			return invalid("MMoE has no experts")
		}
		for e := range m.MMoE.Experts {
			x := &m.MMoE.Experts[e]
			if err := x.Validate(); err != nil {
				return fmt.Errorf("expert %d: %w", e, err)
			}
			if x.In() != in {
				return invalid("expert %d takes %d inputs, the spec gives %d", e, x.In(), in)
			}
			if e > 0 && x.Out() != width {
				return invalid("expert %d gives %d outputs, expert 0 gives %d", e, x.Out(), width)
			}
			width = x.Out()
		}
		if len(m.MMoE.Gates) != T {
			return invalid("%d tasks but %d gates", T, len(m.MMoE.Gates))
		}
		for t := range m.MMoE.Gates {
			g := &m.MMoE.Gates[t]
			if err := g.Validate(); err != nil {
				return fmt.Errorf("gate %q: %w", m.Tasks[t], err)
			}
			if g.In != in || g.Out != E || g.Act != kernels.ActNone {
				return invalid("gate %q is %d×%d %v, want %d×%d none", m.Tasks[t], g.In, g.Out, g.Act, in, E)
			}
		}
	}
	for t := range m.Heads {
		h := &m.Heads[t]
		if err := h.Validate(); err != nil {
			return fmt.Errorf("head %q: %w", m.Tasks[t], err)
		}
		if h.In != width || h.Out != 1 || h.Act != kernels.ActSigmoid {
			return invalid("head %q is %d×%d %v, want %d×1 sigmoid", m.Tasks[t], h.In, h.Out, h.Act, width)
		}
	}
	return nil
}

// Prepare validates the model and packs its weights for inference. Score
// calls it on first use; call it yourself to see errors early, or again
// after changing the model (never while Score runs).
func (m *Multitask) Prepare() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.Validate(); err != nil {
		return err
	}
	m.plan.Store(m.newPlan())
	return nil
}

func (m *Multitask) prepared() (*plan, error) {
	if p := m.plan.Load(); p != nil {
		return p, nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if p := m.plan.Load(); p != nil {
		return p, nil
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	p := m.newPlan()
	m.plan.Store(p)
	return p, nil
}

// expertPlan is one MLP over x with its first layer split by input rows:
// W1 = [W1u; W1rest].
type expertPlan struct {
	h1     int
	userW  *kernels.PackedB // nu×h1, float32; nil when nu == 0
	b1     []float32
	rest   *packed   // nr×h1 with layer 1's activation; its bias is z per request
	layers []*packed // layers 2...
	heads  *packed   // width×T: every head's weights side by side
}

// plan is a validated model packed for the kernels.
type plan struct {
	nu, nR, nC, nE, nr int
	tasks              int
	spec               *features.Spec
	experts            []expertPlan
	mmoe               bool
	gateU              *kernels.PackedB // nu×(T·E), nil when nu == 0
	gateB              []float32        // T·E
	gateRest           *packed          // nr×(T·E)
	headB              []float32        // MMoE: the heads' biases
	weights            []float32
	maxH               int
	pool               sync.Pool // of *Scorer
}

// splitFirst packs the first layer of mlp split at input row nu.
func splitFirst(l *Dense, nu int, prec Precision) (userW *kernels.PackedB, rest *packed) {
	if nu > 0 {
		userW = kernels.PackB(l.W[:nu*l.Out], nu, l.Out)
	}
	rest = pack(l.W[nu*l.Out:], l.In-nu, l.Out, nil, l.Act, prec)
	return userW, rest
}

// headsMatrix lays the heads' weight columns side by side: width×T.
func headsMatrix(heads []Dense) (w, b []float32) {
	T, width := len(heads), heads[0].In
	w = make([]float32, width*T)
	b = make([]float32, T)
	for t := range heads {
		for p := range width {
			w[p*T+t] = heads[t].W[p]
		}
		b[t] = heads[t].B[0]
	}
	return w, b
}

func (m *Multitask) newPlan() *plan {
	sp := m.Spec
	p := &plan{
		nu: len(sp.User), nR: len(sp.Reel), nC: len(sp.Cross), nE: sp.EmbedDim,
		tasks: len(m.Tasks),
		spec: &features.Spec{
			User: slices.Clone(sp.User), Reel: slices.Clone(sp.Reel), Cross: slices.Clone(sp.Cross),
			EmbedDim: sp.EmbedDim, Version: sp.Version,
		},
		weights: slices.Clone(m.Weights),
		mmoe:    m.MMoE != nil,
	}
	p.nr = p.nR + p.nC + p.nE
	experts := []MLP{m.Bottom}
	if m.MMoE != nil {
		experts = m.MMoE.Experts
	}
	hw, hb := headsMatrix(m.Heads)
	for e := range experts {
		x := &experts[e]
		l1 := &x.Layers[0]
		var ep expertPlan
		ep.h1 = l1.Out
		ep.b1 = slices.Clone(l1.B)
		ep.userW, ep.rest = splitFirst(l1, p.nu, m.Precision)
		for i := 1; i < len(x.Layers); i++ {
			l := &x.Layers[i]
			ep.layers = append(ep.layers, pack(l.W, l.In, l.Out, l.B, l.Act, m.Precision))
		}
		for i := range x.Layers {
			p.maxH = max(p.maxH, x.Layers[i].Out)
		}
		if p.mmoe {
			ep.heads = pack(hw, x.Out(), p.tasks, nil, kernels.ActNone, m.Precision)
		} else {
			ep.heads = pack(hw, x.Out(), p.tasks, hb, kernels.ActSigmoid, m.Precision)
		}
		p.experts = append(p.experts, ep)
	}
	if p.mmoe {
		p.headB = hb
		// All gates side by side: column t*E+e is gate t's logit for expert e.
		E, T, in := len(experts), p.tasks, m.InputDim()
		gw := make([]float32, in*T*E)
		p.gateB = make([]float32, T*E)
		for t := range m.MMoE.Gates {
			g := &m.MMoE.Gates[t]
			for i := range in {
				copy(gw[i*T*E+t*E:i*T*E+t*E+E], g.W[i*E:i*E+E])
			}
			copy(p.gateB[t*E:t*E+E], g.B)
		}
		gate := Dense{In: in, Out: T * E, W: gw, B: p.gateB, Act: kernels.ActNone}
		p.gateU, p.gateRest = splitFirst(&gate, p.nu, m.Precision)
	}
	return p
}

// Inputs are the model's input vectors for one user and N candidates, laid
// out as in features.Request.
type Inputs struct {
	// User holds len(Spec.User) features.
	User []float32
	// Reel holds N rows of len(Spec.Reel) features.
	Reel []float32
	// Cross holds N rows of len(Spec.Cross) features.
	Cross []float32
	// Emb holds N rows of Spec.EmbedDim values.
	Emb []float32
	// N is the number of candidates.
	N int
}

// Scores is the output of scoring: per candidate, the probability of each
// task and the weighted score. Its slices are reused across calls.
type Scores struct {
	// Tasks is the number of tasks, the row width of Probs.
	Tasks int
	// Probs holds N rows of Tasks probabilities, in the model's task order.
	Probs []float32
	// Score holds N weighted scores.
	Score []float32
}

// Prob returns candidate i's probability of task t.
func (s *Scores) Prob(i, t int) float32 { return s.Probs[i*s.Tasks+t] }

// Scorer holds the scratch buffers of one goroutine's scoring; the model
// it reads is shared. A Scorer is not safe for concurrent use.
type Scorer struct {
	p    *plan
	z    [][]float32 // per expert: u·W1u + b1
	gz   []float32   // u·Wg_u + bg, T·E
	x    []float32   // n rows of [reel | cross | emb]
	a, b []float32   // n rows of hidden activations
	proj [][]float32 // MMoE: per expert n×T head projections
	g    []float32   // MMoE: n×T·E gate logits, then weights
}

// NewScorer prepares the model if needed and returns a Scorer with its own
// scratch. Use one per goroutine, or call [Multitask.Score], which keeps a
// pool of them.
func (m *Multitask) NewScorer() (*Scorer, error) {
	p, err := m.prepared()
	if err != nil {
		return nil, err
	}
	return p.newScorer(), nil
}

func (p *plan) newScorer() *Scorer {
	s := &Scorer{p: p}
	s.z = make([][]float32, len(p.experts))
	for e := range p.experts {
		s.z[e] = kernels.AlignedFloat32(p.experts[e].h1)
	}
	if p.mmoe {
		s.gz = kernels.AlignedFloat32(p.tasks * len(p.experts))
		s.proj = make([][]float32, len(p.experts))
	}
	return s
}

// Score scores the candidates of a request the feature store filled (with
// Embeddings set when the spec has an embedding). out's slices are grown
// as needed and reused.
func (m *Multitask) Score(req *features.Request, out *Scores) error {
	p, err := m.prepared()
	if err != nil {
		return err
	}
	s, _ := p.pool.Get().(*Scorer)
	if s == nil {
		s = p.newScorer()
	}
	err = s.Score(req, out)
	p.pool.Put(s)
	return err
}

// ScoreInputs is Score on bare vectors.
func (m *Multitask) ScoreInputs(in Inputs, out *Scores) error {
	p, err := m.prepared()
	if err != nil {
		return err
	}
	s, _ := p.pool.Get().(*Scorer)
	if s == nil {
		s = p.newScorer()
	}
	err = s.ScoreInputs(in, out)
	p.pool.Put(s)
	return err
}

// Score is [Multitask.Score] with this Scorer's scratch.
func (s *Scorer) Score(req *features.Request, out *Scores) error {
	if req == nil {
		return fmt.Errorf("%w: nil request", ErrBadInput)
	}
	n := len(req.Reels)
	in := Inputs{User: req.UserVec, Reel: req.ReelVec, Cross: req.CrossVec, N: n}
	if s.p.nE > 0 {
		if !req.Embeddings {
			return fmt.Errorf("%w: the model reads content embeddings but the request was made without Embeddings", ErrBadInput)
		}
		in.Emb = req.Emb
	}
	return s.ScoreInputs(in, out)
}

// maxCandidates bounds N so that the row counts cannot overflow.
const maxCandidates = 1 << 24

func (s *Scorer) check(in *Inputs) error {
	p := s.p
	if in.N < 0 || in.N > maxCandidates {
		return fmt.Errorf("%w: %d candidates, want 0 to %d", ErrBadInput, in.N, maxCandidates)
	}
	parts := []struct {
		name  string
		v     []float32
		width int
		rows  int
		names []string
	}{
		{"user", in.User, p.nu, 1, p.spec.User},
		{"reel", in.Reel, p.nR, in.N, p.spec.Reel},
		{"cross", in.Cross, p.nC, in.N, p.spec.Cross},
		{"embedding", in.Emb, p.nE, in.N, nil},
	}
	for _, part := range parts {
		if len(part.v) != part.width*part.rows {
			return fmt.Errorf("%w: %s vector has %d values, want %d (%d rows of %d)", ErrBadInput, part.name, len(part.v), part.width*part.rows, part.rows, part.width)
		}
	}
	for _, part := range parts {
		i := firstNonFinite(part.v)
		if i < 0 {
			continue
		}
		row, col := i/part.width, i%part.width
		feat := fmt.Sprintf("%s[%d]", part.name, col)
		if part.names != nil {
			feat = fmt.Sprintf("%s feature %q", part.name, part.names[col])
		}
		if part.rows == 1 {
			return fmt.Errorf("%w: %s is %v", ErrBadInput, feat, part.v[i])
		}
		return fmt.Errorf("%w: candidate %d: %s is %v", ErrBadInput, row, feat, part.v[i])
	}
	return nil
}

// ScoreInputs is [Multitask.ScoreInputs] with this Scorer's scratch.
func (s *Scorer) ScoreInputs(in Inputs, out *Scores) error {
	if err := s.check(&in); err != nil {
		return err
	}
	p, n := s.p, in.N
	T := p.tasks
	out.Tasks = T
	out.Probs = grow(out.Probs, n*T)
	out.Score = grow(out.Score, n)
	if n == 0 {
		return nil
	}

	// The per-candidate part of x: [reel | cross | emb] rows.
	s.x = grow(s.x, n*p.nr)
	for i := range n {
		row := s.x[i*p.nr : (i+1)*p.nr]
		copy(row, in.Reel[i*p.nR:(i+1)*p.nR])
		copy(row[p.nR:], in.Cross[i*p.nC:(i+1)*p.nC])
		copy(row[p.nR+p.nC:], in.Emb[i*p.nE:(i+1)*p.nE])
	}
	s.a = grow(s.a, n*p.maxH)
	s.b = grow(s.b, n*p.maxH)

	for e := range p.experts {
		ep := &p.experts[e]
		// The user part of layer 1, once per request: z = u·W1u + b1.
		z := s.z[e]
		if ep.userW != nil {
			kernels.GemmPacked(z, in.User, 1, ep.userW, ep.b1, kernels.ActNone)
		} else {
			copy(z, ep.b1)
		}
		// Layer 1 for every candidate: act(x_rest·W1rest + z), z as the bias.
		ep.rest.run(s.a, s.x, n, z)
		h := forward(ep.layers, s.a[:n*ep.h1], n, s.b, s.a)
		if !p.mmoe {
			ep.heads.run(out.Probs, h, n, nil)
			break
		}
		s.proj[e] = grow(s.proj[e], n*T)
		ep.heads.run(s.proj[e], h, n, nil)
	}
	if p.mmoe {
		s.mix(in.User, n, out.Probs)
	}

	w := p.weights
	for i := range n {
		probs := out.Probs[i*T : (i+1)*T]
		var sc float32
		for t, pr := range probs {
			sc += w[t] * pr
		}
		out.Score[i] = sc
	}
	return nil
}

// mix computes the MMoE heads: the head is linear before its sigmoid, so
// head_t(Σ_e g_te·o_e) = sigmoid(Σ_e g_te·(o_e·w_t) + b_t), and s.proj
// already holds o_e·w_t for every expert.
func (s *Scorer) mix(user []float32, n int, probs []float32) {
	p := s.p
	T, E := p.tasks, len(p.experts)
	if p.gateU != nil {
		kernels.GemmPacked(s.gz, user, 1, p.gateU, p.gateB, kernels.ActNone)
	} else {
		copy(s.gz, p.gateB)
	}
	s.g = grow(s.g, n*T*E)
	p.gateRest.run(s.g, s.x, n, s.gz)
	for i := range n {
		for t := range T {
			logits := s.g[(i*T+t)*E : (i*T+t+1)*E]
			mx := logits[0]
			for _, v := range logits[1:] {
				mx = max(mx, v)
			}
			var sum, acc float64
			for e, v := range logits {
				w := math.Exp(float64(v - mx))
				sum += w
				acc += w * float64(s.proj[e][i*T+t])
			}
			probs[i*T+t] = float32(1 / (1 + math.Exp(-(acc/sum + float64(p.headB[t])))))
		}
	}
}
