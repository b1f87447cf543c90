package engine

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reelrank/reelrank/features"
	"github.com/reelrank/reelrank/kernels"
	"github.com/reelrank/reelrank/ranker"
)

// Engine answers the requests of one shard: Recommend, Score, Search,
// Upsert, Delete, Event, Stats and Health. All its methods are safe for
// concurrent use.
type Engine struct {
	cfg   Config
	store *features.Store
	spec  features.Spec
	// prior is the store's PriorStrength: the pseudo-impressions of the
	// smoothed rates, which the Beta posteriors of Thompson sampling read
	// back.
	prior float64
	// impCol and wtCol are the columns of the reel features that hold the
	// log impressions and the smoothed watch-through rate of the longest
	// window.
	impCol, wtCol int
	// logExplore is log1p(Config.ExploreImpressions), the threshold on
	// the log-impressions feature.
	logExplore float32
	// knownCol and ageCol are the reel features "reel_known" and
	// "reel_log_age_h" (-1 when the spec lacks them), and logFresh the
	// age feature of a reel as old as Config.FreshWindow: a fresh-pool
	// arm's exploration reads them.
	knownCol, ageCol int
	logFresh         float32

	// live is the control arm's model; set the arms requests pick from
	// (nil until a model is served); arms their state.
	live atomic.Pointer[live]
	set  atomic.Pointer[armSet]
	arms arms

	// probeUsers remembers users that asked recently, for the probe
	// requests that validate a model before it serves.
	probeUsers [64]atomic.Int64
	probeN     atomic.Uint64
	// driftN counts impressions, for the drift monitor's sample.
	driftN atomic.Uint64

	// writeMu orders the writes (Event, Upsert, Delete) and Swap: each
	// sees the others' changes whole, and writes are logged in the order
	// they are applied.
	writeMu  sync.Mutex
	upserted map[int64]struct{} // reels upserted since start, for Swap to catch an index up

	delMu   sync.RWMutex
	deleted map[int64]struct{}

	fresh   freshPool
	explore explorePool

	// dur is the engine's folder (Config.Dir), or nil. keys is the
	// ledger of idempotency keys; writeMu guards it.
	dur  *durable
	keys *ledger

	scratch sync.Pool // *scratch
	seq     atomic.Uint64
	started time.Time
	ctr     counters
	gpu     gpuBatchers
}

// live is the model being served with what the engine derives from it.
type live struct {
	m       *Model
	weights []float32 // the final score's weight per head
	nprobe  int
	// arm names the arm in responses and impressions; holdout says the
	// arm ranks by popularity, bypassing the ranker.
	arm     string
	holdout bool
	// The arm's exploration: the probability of an exploration slot
	// (0: none), how it picks, and whether it picks among the fresh
	// reels rather than the uncertain ones.
	eps       float64
	mode      Exploration
	freshPool bool
}

// New returns an engine over store (which must already hold the catalogue
// and the events applied so far) serving model. model may be nil: the
// engine then answers ErrUnavailable until Swap installs one. With
// Config.Dir set it is Open with store as the base.
func New(cfg Config, store *features.Store, model *Model) (*Engine, error) {
	if store == nil {
		return nil, errors.New("engine: nil store")
	}
	if cfg.Dir != "" {
		return Open(cfg, model, func() (*features.Store, error) { return store, nil })
	}
	return newEngine(cfg, store, model)
}

// newEngine returns an engine over store with nothing durable.
func newEngine(cfg Config, store *features.Store, model *Model) (*Engine, error) {
	if store == nil {
		return nil, errors.New("engine: nil store")
	}
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	e := &Engine{cfg: cfg, store: store, spec: store.Spec(), prior: store.Config().PriorStrength,
		upserted: map[int64]struct{}{}, deleted: map[int64]struct{}{}, started: time.Now(),
		logExplore: float32(math.Log1p(cfg.ExploreImpressions)), keys: newLedger(cfg.MaxKeys)}
	var err error
	if e.impCol, e.wtCol, err = rateColumns(store); err != nil {
		return nil, err
	}
	e.knownCol, e.ageCol = slices.Index(e.spec.Reel, "reel_known"), slices.Index(e.spec.Reel, "reel_log_age_h")
	e.logFresh = float32(math.Log1p(cfg.FreshWindow.Hours()))
	e.arms.policy = cfg.Canary
	e.arms.holdoutShare = cfg.HoldoutShare
	if model != nil {
		lv, err := e.newLive(model, cfg.ControlSettings, RoleControl)
		if err != nil {
			return nil, err
		}
		e.ownIndex(model)
		e.arms.mu.Lock()
		e.setControl(lv, cfg.ControlSettings)
		e.publish()
		e.arms.mu.Unlock()
	}
	// The pools, from what the store holds now.
	now := cfg.Clock().UnixMilli()
	oldest := now - cfg.FreshWindow.Milliseconds()
	for _, r := range store.ListReels(nil, func(r *features.ReelInfo) bool {
		return cfg.Shard.Owns(r.ID) && (r.Impressions < cfg.ExploreImpressions || (r.Upload >= oldest && r.Upload <= now))
	}) {
		if r.Upload >= oldest && r.Upload <= now {
			e.fresh.add(r.ID, r.Upload, oldest, false)
		}
		if r.Impressions < cfg.ExploreImpressions {
			e.explore.add(r.ID)
		}
	}
	e.scratch.New = func() any { return newScratch() }
	return e, nil
}

// Store returns the engine's feature store: with Config.Dir, the one its
// checkpoint was loaded into, or the base.
func (e *Engine) Store() *features.Store { return e.store }

// rateColumns finds the reel features of the longest window that
// exploration reads: log impressions and the smoothed watch-through rate.
func rateColumns(store *features.Store) (imp, wt int, err error) {
	ws := store.Config().Windows
	w := 0
	for i, d := range ws {
		if d > ws[w] {
			w = i
		}
	}
	nth := func(prefix string) int {
		k := 0
		for j, name := range store.Spec().Reel {
			if strings.HasPrefix(name, prefix) {
				if k == w {
					return j
				}
				k++
			}
		}
		return -1
	}
	imp, wt = nth("reel_log_imp_"), nth("reel_wt_rate_")
	if imp < 0 || wt < 0 {
		return 0, 0, errors.New("engine: the store's reel features lack reel_log_imp_* or reel_wt_rate_*")
	}
	return imp, wt, nil
}

// newLive checks a model against the store and the configuration, for
// the arm of role with its settings.
func (e *Engine) newLive(m *Model, settings ArmSettings, role string) (*live, error) {
	if m == nil {
		return nil, errors.New("engine: nil model")
	}
	if err := m.bundle.Check(e.spec); err != nil {
		return nil, fmt.Errorf("engine: model %q: %w", m.version, err)
	}
	if d := m.index.Options().Dim; d != m.bundle.ReelTower.Dim {
		return nil, fmt.Errorf("engine: model %q: the index has dimension %d, the towers %d", m.version, d, m.bundle.ReelTower.Dim)
	}
	r := m.bundle.Ranker
	lv := &live{m: m, weights: append([]float32(nil), r.Weights...), arm: m.arm}
	if role == RoleCanary {
		lv.arm = RoleCanary
	}
	for _, over := range []map[string]float32{e.cfg.Weights, settings.Weights} {
		for name, w := range over {
			i := indexOf(r.Tasks, name)
			if i < 0 {
				return nil, fmt.Errorf("engine: model %q has no head %q to weigh (heads %v)", m.version, name, r.Tasks)
			}
			if math.IsNaN(float64(w)) || math.IsInf(float64(w), 0) {
				return nil, fmt.Errorf("%w: weight of head %q is %v", ErrBadRequest, name, w)
			}
			lv.weights[i] = w
		}
	}
	lv.eps, lv.mode = max(e.cfg.Epsilon, 0), e.cfg.Exploration
	if settings.Epsilon != nil {
		x := *settings.Epsilon
		if math.IsNaN(x) || x > 1 {
			return nil, fmt.Errorf("%w: arm epsilon %v outside [0, 1] (negative: none)", ErrBadRequest, x)
		}
		lv.eps = max(x, 0)
	}
	if settings.Exploration != "" {
		mode, err := explorationOf(settings.Exploration)
		if err != nil {
			return nil, err
		}
		lv.mode = mode
	}
	switch settings.ExplorePool {
	case "", PoolUncertain:
	case PoolFresh:
		lv.freshPool = true
	default:
		return nil, fmt.Errorf("%w: explore pool %q: want %q or %q", ErrBadRequest, settings.ExplorePool, PoolUncertain, PoolFresh)
	}
	lists := m.index.Options().Lists
	lv.nprobe = e.cfg.Nprobe
	if lv.nprobe == 0 {
		lv.nprobe = max(1, lists/8)
	}
	lv.nprobe = min(lv.nprobe, lists)
	return lv, nil
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

// Model returns the model being served, or nil.
func (e *Engine) Model() *Model {
	if lv := e.live.Load(); lv != nil {
		return lv.m
	}
	return nil
}

// Swap installs m as the served model and returns the one it replaces
// (nil if none). Requests already running finish with the old model; the
// next ones use m. Before installing it, Swap catches m's index up with
// the engine's changes: the reels upserted since the engine started that
// the index lacks are embedded with m's reel tower and added, and deleted
// reels are removed. It is the seam for hot reload, rollback and A/B arms.
func (e *Engine) Swap(m *Model) (*Model, error) {
	if m == nil {
		return nil, errors.New("engine: swap: nil model")
	}
	lv, err := e.newLive(m, ArmSettings{}, RoleControl)
	if err != nil {
		return nil, err
	}
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	if err := e.catchUp(m); err != nil {
		return nil, err
	}
	a := &e.arms
	a.mu.Lock()
	defer a.mu.Unlock()
	var old *Model
	settings := ArmSettings{}
	if a.control != nil {
		old, settings = a.control.lv.m, a.control.settings
		a.prev = a.control.lv
	}
	e.setControl(lv, settings)
	e.publish()
	e.record("swap", m.version, "installed as the control")
	return old, nil
}

// catchUp brings m's index up to the engine's catalogue: the reels
// upserted since the engine started that it lacks are embedded with m's
// reel tower and added, and deleted reels are removed. The caller holds
// writeMu.
func (e *Engine) catchUp(m *Model) error {
	e.ownIndex(m)
	ix := m.index
	if ix.Trained() {
		var add []int64
		for id := range e.upserted {
			if !ix.Contains(id) {
				add = append(add, id)
			}
		}
		if len(add) > 0 {
			vecs, err := EmbedReels(e.store, m.bundle.ReelTower, add, e.embedTime())
			if err != nil {
				return fmt.Errorf("engine: catch %q up: %w", m.version, err)
			}
			if err := ix.Add(add, vecs); err != nil {
				return fmt.Errorf("engine: catch %q up: %w", m.version, err)
			}
		}
		for _, id := range e.fresh.pinnedIDs() {
			if ix.Contains(id) {
				e.fresh.unpin(id)
			}
		}
	}
	e.delMu.RLock()
	for id := range e.deleted {
		if ix.Contains(id) {
			ix.Delete(id) // known to be there: no error
		}
	}
	e.delMu.RUnlock()
	return nil
}

// embedTime is the time reel features are computed as of for the index:
// now, or the newest event when the store's events lie ahead of the clock
// (a simulated world).
func (e *Engine) embedTime() int64 {
	return max(e.cfg.Clock().UnixMilli(), e.store.Stats().Newest)
}

// Close stops the checkpoints and closes the logs (it takes no
// checkpoint: call Checkpoint first for a short replay at the next start).
// The engine must not be used after.
func (e *Engine) Close() error {
	e.gpu.close()
	if e.dur != nil {
		return e.dur.close()
	}
	return nil
}

// StageStats are cumulative counters of Recommend since the engine
// started, for the server to export.
type StageStats struct {
	// Requests counts Recommend calls; Errors those that failed, Deadline
	// those among them that failed on their context.
	Requests, Errors, Deadline uint64
	// The time spent per stage, summed over the requests that reached it.
	Features, Tower, ANN, Rank, Postrank, Total time.Duration
	// RankWait and RankDevice are the parts of Rank queued for a GPU
	// batch and in the batch's GPU pass (Timings.RankWait, RankDevice).
	RankWait, RankDevice time.Duration
	// Candidates per source, ranked, served, and the slots filled by an
	// exploration draw, summed.
	ANNCandidates, FreshCandidates, ExploreCandidates, Ranked, Items, ExploreSlots uint64
}

// Stats are the engine's counters and sizes.
type Stats struct {
	ModelVersion, Arm string
	// IndexSize counts the live reels of the served model's index.
	IndexSize int
	// Users and Reels count what the feature store holds; Events the
	// events it has applied.
	Users, Reels int
	Events       int64
	// EventsAccepted and EventsRejected count Event's verdicts since start.
	EventsAccepted, EventsRejected uint64
	// FreshPool counts the reels uploaded within the fresh window (as of
	// the last upload) and Pinned those waiting for an index;
	// ExplorePool the reels with little evidence; Deleted the reels
	// deleted since start.
	FreshPool, Pinned, ExplorePool, Deleted int
	// Shard is the part of the catalogue the engine serves.
	Shard Shard
	// Scores, Searches, Upserts and Deletes count those calls.
	Scores, Searches, Upserts, Deletes uint64
	Recommend                          StageStats
	Uptime                             time.Duration
}

// counters are the atomics behind Stats.
type counters struct {
	requests, errors, deadline                        atomic.Uint64
	features, tower, ann, rank, postrank, total       atomic.Int64
	rankWait, rankDevice                              atomic.Int64
	annC, freshC, exploreC, ranked, items, exploreSlt atomic.Uint64
	scores, searches, upserts, deletes                atomic.Uint64
	accepted, rejected                                atomic.Uint64
}

func (c *counters) record(t *Timings, items, explored int, err error) {
	c.requests.Add(1)
	if err != nil {
		c.errors.Add(1)
		if isCtxErr(err) {
			c.deadline.Add(1)
		}
	}
	c.features.Add(int64(t.Features))
	c.tower.Add(int64(t.Tower))
	c.ann.Add(int64(t.ANN))
	c.rank.Add(int64(t.Rank))
	c.rankWait.Add(int64(t.RankWait))
	c.rankDevice.Add(int64(t.RankDevice))
	c.postrank.Add(int64(t.Postrank))
	c.total.Add(int64(t.Total))
	c.annC.Add(uint64(t.ANNCandidates))
	c.freshC.Add(uint64(t.FreshCandidates))
	c.exploreC.Add(uint64(t.ExploreCandidates))
	c.ranked.Add(uint64(t.Ranked))
	c.items.Add(uint64(items))
	c.exploreSlt.Add(uint64(explored))
}

// Stats returns the engine's counters and sizes.
func (e *Engine) Stats() Stats {
	c := &e.ctr
	st := Stats{
		EventsAccepted: c.accepted.Load(), EventsRejected: c.rejected.Load(),
		Scores: c.scores.Load(), Searches: c.searches.Load(), Upserts: c.upserts.Load(), Deletes: c.deletes.Load(),
		Recommend: StageStats{
			Requests: c.requests.Load(), Errors: c.errors.Load(), Deadline: c.deadline.Load(),
			Features: time.Duration(c.features.Load()), Tower: time.Duration(c.tower.Load()), ANN: time.Duration(c.ann.Load()),
			Rank: time.Duration(c.rank.Load()), RankWait: time.Duration(c.rankWait.Load()), RankDevice: time.Duration(c.rankDevice.Load()),
			Postrank: time.Duration(c.postrank.Load()), Total: time.Duration(c.total.Load()),
			ANNCandidates: c.annC.Load(), FreshCandidates: c.freshC.Load(), ExploreCandidates: c.exploreC.Load(),
			Ranked: c.ranked.Load(), Items: c.items.Load(), ExploreSlots: c.exploreSlt.Load(),
		},
		Uptime: time.Since(e.started),
		Shard:  e.cfg.Shard,
	}
	if lv := e.live.Load(); lv != nil {
		st.ModelVersion, st.Arm = lv.m.version, lv.arm
		st.IndexSize = lv.m.index.Len()
	}
	ss := e.store.Stats()
	st.Users, st.Reels, st.Events = ss.Users, ss.Reels, ss.Applied
	st.FreshPool, st.Pinned = e.fresh.size()
	st.ExplorePool = e.explore.size()
	e.delMu.RLock()
	st.Deleted = len(e.deleted)
	e.delMu.RUnlock()
	return st
}

// Health says whether the engine can serve: it needs a model, and reels
// to recommend (in the index or the pools).
func (e *Engine) Health() Health {
	lv := e.live.Load()
	if lv == nil {
		return Health{Status: "no model"}
	}
	if e.dur != nil {
		if why := e.dur.logHealth(); why != "" {
			return Health{Status: why}
		}
	}
	n := lv.m.index.Len()
	fresh, pinned := e.fresh.size()
	shard := ""
	if e.cfg.Shard.Sharded() {
		shard = ", shard " + e.cfg.Shard.String()
	}
	if n == 0 && fresh+pinned == 0 && e.explore.size() == 0 {
		return Health{Status: fmt.Sprintf("model %s (arm %q): no reels to recommend%s", lv.m.version, lv.arm, shard)}
	}
	return Health{OK: true, Status: fmt.Sprintf("serving model %s (arm %q), %d reels indexed%s", lv.m.version, lv.arm, n, shard)}
}

// scratch is the per-request state, pooled.
type scratch struct {
	freq    features.Request
	profile features.User
	query   []float32
	cands   []int64
	src     []Source
	seen    map[int64]int32
	annEx   []int64
	annRes  []kernels.Result // the index's answer, reused
	pool    []int64
	sources []features.Candidate // the feature store's candidate sources
	exclude func(int64) bool     // what the sources leave out (sources.go)
	scores  ranker.Scores
	scorers []scorerOf
	grad    []int64 // exploration-pool reels that have gathered enough evidence
	pcg     *rand.PCG
	rng     *rand.Rand
	pr      postranker
	// degenerate says the last postrank saw NaN scores, or the same score
	// for every candidate.
	degenerate bool
}

func newScratch() *scratch {
	s := &scratch{seen: make(map[int64]int32), pcg: rand.NewPCG(0, 0)}
	s.rng = rand.New(s.pcg)
	return s
}

// scorerFor returns the scratch's Scorer for ranker m, making one the
// first time. A scratch keeps the Scorers of the last few rankers it
// served, since the arms' models take turns on the same scratches.
func (s *scratch) scorerFor(m *ranker.Multitask) (*ranker.Scorer, error) {
	for i := range s.scorers {
		if s.scorers[i].m == m {
			return s.scorers[i].sc, nil
		}
	}
	sc, err := m.NewScorer()
	if err != nil {
		return nil, err
	}
	if len(s.scorers) == maxScorers {
		copy(s.scorers, s.scorers[1:]) // the oldest goes
		s.scorers = s.scorers[:maxScorers-1]
	}
	s.scorers = append(s.scorers, scorerOf{m, sc})
	return sc, nil
}

// maxScorers is how many rankers' Scorers a scratch keeps: the control's,
// a canary's, and one passing through (Validate, a model swapped out).
const maxScorers = 3

// scorerOf is a ranker's Scorer.
type scorerOf struct {
	m  *ranker.Multitask
	sc *ranker.Scorer
}

// maxRetained bounds the candidates a pooled scratch keeps memory for.
const maxRetained = 1 << 14

func (e *Engine) getScratch() *scratch { return e.scratch.Get().(*scratch) }

func (e *Engine) putScratch(s *scratch) {
	if cap(s.cands) > maxRetained || len(s.seen) > maxRetained {
		return // a request far over the usual size: let it go
	}
	s.freq.Reels = nil
	s.freq.Context.Recent = nil
	s.freq.Context.Profile = nil
	e.scratch.Put(s)
}
