package loop

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reelrank/reelrank/ann"
	"github.com/reelrank/reelrank/engine"
	"github.com/reelrank/reelrank/eventlog"
	"github.com/reelrank/reelrank/features"
	"github.com/reelrank/reelrank/modeldir"
	"github.com/reelrank/reelrank/sim"
	"github.com/reelrank/reelrank/train"
)

const msPerDay = int64(24 * time.Hour / time.Millisecond)

// server is the engine seen by the simulator: a sim.Policy whose Choose
// asks the engine for a page of reels, whose Observe hands the served
// events back to the engine (and the uploads to its catalogue), and whose
// Advance retrains the models at every simulated midnight.
type server struct {
	ctx context.Context
	cfg Config
	dir string // the engine's folder
	w   *sim.World
	cat *train.Catalogue // the world's whole catalogue; reels in id order
	// oracle is the world's, for the nightly reports; it hides the world's
	// span, so that training takes the days of the log so far.
	oracle train.Oracle
	boot   sim.Policy
	eng    *engine.Engine
	now    atomic.Int64 // the simulated clock, ms

	serving atomic.Bool
	mu      sync.Mutex
	pages   map[int64]*page // per session

	failed    atomic.Int64 // requests the engine failed
	rejected  int64        // events the engine refused
	upserted  int          // reels of the world put in the engine's catalogue
	err       error        // the first error of Observe or Advance, which cannot return one
	failedRun atomic.Bool  // err is set

	shares  map[string]float64
	groupOf []uint8 // per user, from 1: the index of its arm in cfg.Arms
	models  []ModelInfo
	stats   *collector
}

// page is what the engine answered a session's last request, and how far
// the session has got through it.
type page struct {
	items []engine.Item
	arm   string
	next  int
}

func newServer(ctx context.Context, cfg Config, dir string) *server {
	s := &server{ctx: ctx, cfg: cfg, dir: dir, boot: sim.NewMixture(0.1), pages: map[int64]*page{}, shares: map[string]float64{}}
	for _, a := range cfg.Arms {
		s.shares[a] = 1 / float64(len(cfg.Arms))
	}
	return s
}

func (s *server) logf(format string, a ...any) {
	if s.cfg.Progress != nil {
		fmt.Fprintf(s.cfg.Progress, format+"\n", a...)
	}
}

func (s *server) close() {
	if s.eng != nil {
		s.eng.Close()
	}
}

// fail keeps the first error; the simulator cannot be told of it until
// Choose ends the sessions.
func (s *server) fail(err error) {
	if s.err == nil {
		s.err = err
		s.failedRun.Store(true)
	}
}

// Init implements sim.Policy: the engine starts with the catalogue
// uploaded by the world's start, and no model.
func (s *server) Init(w *sim.World) error {
	s.w = w
	s.cat = train.CatalogueOfWorld(w)
	s.oracle = struct{ train.Oracle }{train.WorldOracle(w)}
	s.now.Store(w.Start())
	s.stats = newCollector(w, s.cfg)
	tc := s.cfg.Train.Store
	tc.EmbedDim = w.Config().EmbedDim
	store, err := features.NewStore(tc)
	if err != nil {
		return fmt.Errorf("loop: %w", err)
	}
	start := *s.cat
	start.Reels = s.cat.Reels[:w.InitialReels()]
	if err := start.Load(store); err != nil {
		return fmt.Errorf("loop: %w", err)
	}
	s.upserted = w.InitialReels()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	ecfg := engine.Config{
		Dir: s.dir, Clock: func() time.Time { return time.UnixMilli(s.now.Load()) }, MaxLead: -1,
		CheckpointInterval: -1, ArchiveDir: "archive", Epsilon: s.cfg.Epsilon, Seed: s.cfg.Seed, ArmSalt: s.cfg.Seed ^ 0x6c6f6f70,
		HoldoutShare: s.shares[ArmHoldout], Logger: quiet,
		// The canary is judged on watch-through alone: the loop's latencies
		// are those of a machine busy simulating.
		Canary: engine.CanaryPolicy{Share: s.cfg.CanaryShare, PromoteImpressions: 2000, MinImpressions: 1000, P99Factor: 1e9},
	}
	if s.eng, err = engine.Open(ecfg, nil, func() (*features.Store, error) { return store, nil }); err != nil {
		return fmt.Errorf("loop: %w", err)
	}
	return s.boot.Init(w)
}

// Choose implements sim.Policy: the next reel of the session's page, or
// a new page from the engine.
func (s *server) Choose(slot *sim.Slot, r *sim.Rand) (int64, float64, string) {
	if s.failedRun.Load() {
		return 0, 0, "" // end every session: the loop stops
	}
	if !s.serving.Load() {
		return s.boot.Choose(slot, r)
	}
	s.mu.Lock()
	p := s.pages[slot.Session]
	s.mu.Unlock()
	for {
		if p == nil || p.next >= len(p.items) {
			resp, err := s.eng.Recommend(s.ctx, engine.RecommendRequest{User: slot.User, N: s.cfg.PageSize,
				Context: engine.Context{Time: slot.Time, Session: slot.Session, Position: int32(slot.Position), Recent: slot.Shown}})
			if err != nil || len(resp.Items) == 0 {
				s.failed.Add(1)
				return 0, 0, ""
			}
			p = &page{items: resp.Items, arm: resp.Arm}
			s.mu.Lock()
			s.pages[slot.Session] = p
			s.mu.Unlock()
		}
		it := p.items[p.next]
		p.next++
		// The engine knows only reels uploaded before the period began,
		// and leaves out the session's; a page asked for earlier may
		// hold a reel shown since only if the session asked twice.
		if it.Reel <= slot.Available && !slices.Contains(slot.Shown, it.Reel) {
			return it.Reel, min(max(it.Propensity, 1e-9), 1), p.arm
		}
	}
}

// Prob implements sim.Policy for the reel Choose last returned.
func (s *server) Prob(slot *sim.Slot, reel int64) float64 {
	if !s.serving.Load() {
		return s.boot.Prob(slot, reel)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.pages[slot.Session]; p != nil && p.next > 0 && p.items[p.next-1].Reel == reel {
		return p.items[p.next-1].Propensity
	}
	return 0
}

// Observe implements sim.Policy: the reels uploaded join the engine's
// catalogue, then the events go to the engine's log and feature store.
func (s *server) Observe(evs []eventlog.Event) {
	s.boot.Observe(evs)
	s.stats.observe(evs)
	if s.err != nil {
		return
	}
	for i := range evs {
		ev := &evs[i]
		if ev.Type != eventlog.Upload || ev.Reel <= int64(s.upserted) {
			continue
		}
		for ; s.upserted < int(ev.Reel); s.upserted++ {
			r := s.cat.Reels[s.upserted]
			_, err := s.eng.Upsert(engine.Reel{ID: r.ID, Author: r.Author, Upload: r.Upload, Duration: r.Duration,
				Category: -1, Embedding: r.Embedding, Language: uint16(r.Language)})
			if err != nil {
				s.fail(fmt.Errorf("loop: upsert reel %d: %w", r.ID, err))
				return
			}
		}
	}
	if len(evs) > 0 {
		s.now.Store(max(s.now.Load(), evs[len(evs)-1].Time))
	}
	const batch = 4096
	for lo := 0; lo < len(evs); lo += batch {
		res, err := s.eng.Event(evs[lo:min(lo+batch, len(evs))])
		if err != nil {
			s.fail(fmt.Errorf("loop: events: %w", err))
			return
		}
		if res.Rejected > 0 {
			if s.rejected == 0 {
				s.logf("loop: the engine refused %d events: %s", res.Rejected, res.Reason)
			}
			s.rejected += int64(res.Rejected)
		}
	}
}

// Advance implements sim.Policy: the period ends; at midnight the day is
// recorded, and after the warm-up the models are retrained.
func (s *server) Advance(now int64) {
	s.boot.Advance(now)
	s.now.Store(now)
	s.mu.Lock()
	clear(s.pages)
	s.mu.Unlock()
	start := s.w.Start()
	if now <= start || (now-start)%msPerDay != 0 || s.err != nil {
		return
	}
	day := int((now - start) / msPerDay) // days ended
	s.stats.endDay(day - 1)
	line := fmt.Sprintf("loop: day %d/%d served: %s", day, s.cfg.World.Days, s.stats.summary(day-1))
	if f := s.failed.Swap(0); f > 0 {
		line += fmt.Sprintf("; %d requests failed", f)
	}
	s.logf("%s", line)
	if day < s.cfg.Warmup || day >= s.cfg.World.Days {
		return
	}
	if err := s.retrain(day, now); err != nil {
		s.fail(err)
	}
}

// retrain trains the models on the engine's log so far (every day but
// the last for training, the last for validation) and installs them: the
// first time as the control with the experiments; then the control's as
// a canary, which the engine promotes or rolls back, and the arm without
// inverse-propensity weights by a validated swap.
func (s *server) retrain(day int, now int64) error {
	t0 := time.Now()
	cat := *s.cat
	n, _ := slices.BinarySearchFunc(cat.Reels, now, func(r features.Reel, t int64) int {
		if r.Upload < t {
			return -1
		}
		return 1
	})
	cat.Reels = cat.Reels[:n]
	fit := func(ips bool) (*engine.Model, *train.Result, error) {
		tc := s.cfg.Train
		tc.IPS, tc.ValidDays, tc.TestDays = ips, 1, -1
		tc.Threads, tc.Seed = s.cfg.Threads, s.cfg.Seed+uint64(day)
		name := ArmEpsilon
		if !ips {
			name = ArmNoIPS
		}
		tc.Version = fmt.Sprintf("day%02d-%s", day, name)
		res, err := train.RunCatalogue(s.ctx, &cat, s.dir, s.oracle, tc)
		if err != nil {
			return nil, nil, fmt.Errorf("loop: night %d: train %s: %w", day, name, err)
		}
		opt := modeldir.DefaultIndexOptions()
		opt.Dim = res.Bundle.ReelTower.Dim
		opt.Lists = ann.DefaultLists(len(res.ReelIDs))
		ix, err := ann.Build(ann.Vectors{Dim: opt.Dim, Data: res.ReelVectors}, res.ReelIDs, opt)
		if err != nil {
			return nil, nil, fmt.Errorf("loop: night %d: index %s: %w", day, name, err)
		}
		m, err := engine.NewModel(res.Bundle, ix, ArmEpsilon)
		if err != nil {
			return nil, nil, fmt.Errorf("loop: night %d: %w", day, err)
		}
		return m, res, nil
	}
	m, res, err := fit(true)
	if err != nil {
		return err
	}
	info := ModelInfo{Night: day, Version: m.Version(), IPS: true, TrainSeconds: time.Since(t0).Seconds()}
	info.fill(res.Report)
	var noIPS *engine.Model
	if _, ok := s.shares[ArmNoIPS]; ok {
		t1 := time.Now()
		m2, res2, err := fit(false)
		if err != nil {
			return err
		}
		noIPS = m2
		i2 := ModelInfo{Night: day, Version: m2.Version(), TrainSeconds: time.Since(t1).Seconds()}
		i2.fill(res2.Report)
		i2.Outcome = "serves the noips arm"
		s.models = append(s.models, i2)
	}
	if !s.serving.Load() {
		if _, err := s.eng.Swap(m); err != nil {
			return fmt.Errorf("loop: night %d: %w", day, err)
		}
		info.Outcome = "installed as the first control"
	} else {
		if st := s.eng.ArmsStatus(false); hasCanary(st) {
			if err := s.eng.Promote("the end of its day with no rollback rule fired"); err != nil {
				return fmt.Errorf("loop: night %d: %w", day, err)
			}
			s.markPromoted("at the end of its day")
		}
		if err := s.eng.LoadCanary(m, engine.LoadOptions{Share: s.cfg.CanaryShare}); err != nil {
			info.Outcome = "refused: " + err.Error()
		} else {
			info.Outcome = "canary"
		}
	}
	var exps []engine.Experiment
	eps := s.cfg.Epsilon
	none := -1.0
	for _, a := range s.cfg.Arms {
		x := engine.Experiment{Name: a, Share: s.shares[a]}
		switch a {
		case ArmEpsilon, ArmHoldout:
			continue
		case ArmNone:
			x.Settings.Epsilon = &none
		case ArmThompson:
			x.Settings.Epsilon, x.Settings.Exploration = &eps, engine.Thompson.String()
		case ArmFresh:
			fs := s.cfg.FreshShare
			x.Settings.Epsilon, x.Settings.ExplorePool = &fs, engine.PoolFresh
		case ArmNoIPS:
			x.Model = noIPS
		}
		exps = append(exps, x)
	}
	if err := s.eng.SetExperiments(exps); err != nil {
		return fmt.Errorf("loop: night %d: experiments: %w", day, err)
	}
	s.models = append(s.models, info)
	if !s.serving.Load() {
		s.assignGroups()
		s.serving.Store(true)
	}
	s.logf("loop: night %d: trained %s in %.1f s (watch AUC %.4f, retrieval recall %.4f): %s",
		day, m.Version(), time.Since(t0).Seconds(), info.WatchAUC, info.TestRecall, info.Outcome)
	return nil
}

func hasCanary(st engine.Status) bool {
	return slices.ContainsFunc(st.Arms, func(a engine.ArmStatus) bool { return a.Role == engine.RoleCanary })
}

// markPromoted notes on the newest canary model that it was promoted.
func (s *server) markPromoted(how string) {
	for i := len(s.models) - 1; i >= 0; i-- {
		if s.models[i].Outcome == "canary" {
			s.models[i].Outcome = "canary, promoted " + how
			return
		}
	}
}

// assignGroups records each user's arm, as the engine assigns them with
// no canary loaded: the users a canary serves stay in the control's group.
func (s *server) assignGroups() {
	n := s.w.NumUsers()
	s.groupOf = make([]uint8, n+1)
	for u := 1; u <= n; u++ {
		a := s.eng.ArmOf(int64(u))
		if i := slices.Index(s.cfg.Arms, a); i >= 0 {
			s.groupOf[u] = uint8(i)
		}
	}
	s.stats.groupOf = s.groupOf
}
