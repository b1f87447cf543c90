package engine

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"time"

	"github.com/reelrank/reelrank/ann"
	"github.com/reelrank/reelrank/drift"
	"github.com/reelrank/reelrank/eventlog"
)

// degenerateMin is how many requests a canary serves before its
// degenerate scores are judged.
const degenerateMin = 32

// checkEvery is how many canary requests, or impressions, pass between
// two checks of the canary's rules.
const checkEvery = 16

// tick counts n more canary requests or impressions, and checks the
// rules when a multiple of checkEvery was crossed.
func (e *Engine) tick(s *armStats, n int64) {
	v := s.checkTick.Add(n)
	if v/checkEvery != (v-n)/checkEvery && e.arms.mu.TryLock() {
		// A change in progress (its record written to disk) holds the
		// lock: the next tick checks. A request never waits for it.
		e.checkCanaryLocked()
		e.arms.mu.Unlock()
	}
}

// CheckCanary applies the canary policy now: it rolls the canary back
// when one of its rules fires, or promotes it once it has served
// CanaryPolicy.PromoteImpressions impressions. The engine calls it as
// requests and events arrive; it returns the action taken ("" for none).
func (e *Engine) CheckCanary() string {
	e.arms.mu.Lock()
	defer e.arms.mu.Unlock()
	return e.checkCanaryLocked()
}

// checkCanaryLocked is CheckCanary with the arms' lock held.
func (e *Engine) checkCanaryLocked() string {
	a := &e.arms
	if a.canary == nil || a.control == nil {
		return ""
	}
	p := a.policy
	c, k := a.canary.stats.snapshot(), a.control.stats.snapshot()
	// Scores NaN or the same for every candidate are no matter of
	// chance: most of a few dozen requests so, where the control has few,
	// is a broken model.
	if c.Requests >= degenerateMin && 2*c.Degenerate > c.Requests && 10*k.Degenerate <= max(k.Requests, 1) {
		e.rollbackLocked(fmt.Sprintf("scores: %d of the canary's %d requests scored NaN or the same for every candidate (the control's: %d of %d)",
			c.Degenerate, c.Requests, k.Degenerate, k.Requests))
		return "rollback"
	}
	if c.Requests >= p.MinRequests {
		if c.ErrorRate > k.ErrorRate+p.MaxErrorRate {
			e.rollbackLocked(fmt.Sprintf("errors: %.2f%% of the canary's %d requests failed or scored NaN or constant (%d, %d), the control's %.2f%%; the bound is +%.2f points",
				100*c.ErrorRate, c.Requests, c.Errors, c.Degenerate, 100*k.ErrorRate, 100*p.MaxErrorRate))
			return "rollback"
		}
		bound := k.P99ms*p.P99Factor + float64(p.P99Slack)/float64(time.Millisecond)
		if k.Requests >= p.MinRequests && c.P99ms > bound {
			e.rollbackLocked(fmt.Sprintf("latency: the canary's p99 %.2f ms over its last %d requests exceeds %.2f ms (the control's %.2f ms × %.2f + %v)",
				c.P99ms, min(c.Requests, latWindow), bound, k.P99ms, p.P99Factor, p.P99Slack))
			return "rollback"
		}
	}
	if c.Impressions >= p.MinImpressions && k.Impressions >= p.MinImpressions {
		pc, pk := c.WatchThrough.Value, k.WatchThrough.Value
		vc, vk := min(pc, 1), min(pk, 1)
		se := math.Sqrt(vc*(1-vc)/float64(c.Impressions) + vk*(1-vk)/float64(k.Impressions))
		z := math.Sqrt2 * math.Erfinv(2*p.Confidence-1)
		if se > 0 && (pk-pc-p.Margin)/se > z || se == 0 && pk-pc > p.Margin {
			e.rollbackLocked(fmt.Sprintf("watch-through: the canary's %.4f per impression over %d impressions is below the control's %.4f over %d by more than %.3f at %.0f%% confidence",
				pc, c.Impressions, pk, k.Impressions, p.Margin, 100*p.Confidence))
			return "rollback"
		}
	}
	if p.PromoteImpressions > 0 && c.Impressions >= p.PromoteImpressions && c.Requests >= p.MinRequests {
		e.promoteLocked(fmt.Sprintf("automatic after %d impressions: watch-through %s against the control's %s, error rate %.2f%% against %.2f%%",
			c.Impressions, c.WatchThrough, k.WatchThrough, 100*c.ErrorRate, 100*k.ErrorRate))
		return "promote"
	}
	return ""
}

// countEvents attributes admitted events to the arms: an impression to
// the arm it names when that arm serves, else to its user's arm, and the
// other events to their user's arm.
func (e *Engine) countEvents(good []eventlog.Event) {
	s := e.set.Load()
	if s == nil {
		return
	}
	// One tally per arm serving: the control, the canary, the holdout and
	// the experiments.
	tl := make([]tally, len(s.arms))
	theta := e.store.Config().WatchThrough
	for i := range good {
		ev := &good[i]
		var a *armEntry
		if ev.Type == eventlog.Impression && ev.Arm != "" {
			a = s.armByName(ev.Arm)
		}
		if a == nil {
			a = s.pick(ev.User)
		}
		if j := slices.Index(s.arms, a); j >= 0 {
			tl[j].add(ev, theta)
		}
	}
	for j, a := range s.arms {
		if tl[j] == (tally{}) {
			continue
		}
		a.stats.addTally(&tl[j])
		if a.role == RoleCanary && tl[j].impressions > 0 {
			e.tick(a.stats, tl[j].impressions)
		}
	}
}

// probeCount is how many probe requests Validate runs, probeK the
// candidates each recalls and scores, probeGap the pause before each.
// A probe is a fraction of a request's work, cut by yields into pieces of
// well under a millisecond, so that loading a model beside the served one
// does not hold up serving even on one core.
const (
	probeCount = 16
	probeK     = 64
	probeGap   = 3 * time.Millisecond
)

// noteUser remembers a user that asked, for the probes.
func (e *Engine) noteUser(user int64) {
	i := e.probeN.Add(1) % uint64(len(e.probeUsers))
	e.probeUsers[i].Store(user)
}

// probeUserIDs returns up to probeCount distinct users that asked
// recently, or the users 1..probeCount when none did.
func (e *Engine) probeUserIDs() []int64 {
	seen := map[int64]bool{}
	var out []int64
	for i := range e.probeUsers {
		u := e.probeUsers[i].Load()
		if u > 0 && !seen[u] {
			seen[u] = true
			out = append(out, u)
			if len(out) == probeCount {
				break
			}
		}
	}
	for u := int64(1); len(out) < probeCount; u++ {
		if !seen[u] {
			out = append(out, u)
		}
	}
	return out
}

// probe runs the probe requests through lv without serving it.
func (e *Engine) probe(lv *live) error {
	m := lv.m
	if m.index.Len() == 0 {
		return errors.New("validate: the index holds no reels")
	}
	s := e.getScratch()
	defer e.putScratch(s)
	T := len(m.heads)
	lo, hi := make([]float32, T), make([]float32, T)
	for t := range lo {
		lo[t], hi[t] = float32(math.Inf(1)), float32(math.Inf(-1))
	}
	answered := 0
	at := e.embedTime()
	for _, user := range e.probeUserIDs() {
		// Each probe costs a request's work: spread them out, so that a
		// load does not burst onto a small machine's serving.
		time.Sleep(probeGap)
		fr := &s.freq
		fr.User = user
		fr.Context = e.probeContext(user, at, &s.profile)
		fr.Reels = nil
		fr.Embeddings = true
		if err := e.store.Features(fr); err != nil {
			return fmt.Errorf("validate: user %d features: %w", user, err)
		}
		s.query = grow(s.query, m.bundle.UserTower.Dim())
		if err := m.bundle.UserTower.Embed(fr.UserVec, s.query); err != nil {
			return fmt.Errorf("validate: user %d tower: %w", user, err)
		}
		for _, v := range s.query {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return fmt.Errorf("validate: user %d: the user tower's query holds %v", user, v)
			}
		}
		runtime.Gosched()
		res, err := m.index.Search(s.query, ann.SearchOptions{K: min(e.cfg.K, probeK), NProbe: lv.nprobe})
		if err != nil && !errors.Is(err, ann.ErrEmpty) {
			return fmt.Errorf("validate: user %d: the index: %w", user, err)
		}
		if len(res) == 0 {
			continue
		}
		answered++
		s.cands = s.cands[:0]
		for _, r := range res {
			s.cands = append(s.cands, r.ID)
		}
		fr.Reels = s.cands
		runtime.Gosched()
		if err := e.store.Features(fr); err != nil {
			return fmt.Errorf("validate: user %d candidate features: %w", user, err)
		}
		runtime.Gosched()
		sc, err := s.scorerFor(m.bundle.Ranker)
		if err != nil {
			return fmt.Errorf("validate: ranker: %w", err)
		}
		if err := sc.Score(fr, &s.scores); err != nil {
			return fmt.Errorf("validate: user %d ranker: %w", user, err)
		}
		for i, p := range s.scores.Probs[:len(s.cands)*T] {
			t := i % T
			if !(p >= 0 && p <= 1) {
				return fmt.Errorf("validate: user %d: head %s scores reel %d %v, outside [0, 1]", user, m.heads[t], s.cands[i/T], p)
			}
			lo[t], hi[t] = min(lo[t], p), max(hi[t], p)
		}
	}
	if answered == 0 {
		return fmt.Errorf("validate: the index answered none of %d probe requests", probeCount)
	}
	for t := range lo {
		if hi[t]-lo[t] < 1e-6 {
			return fmt.Errorf("validate: head %s scores every probe candidate %v: constant", m.heads[t], lo[t])
		}
	}
	return nil
}

// ArmStatus is one arm's state and metrics.
type ArmStatus struct {
	Name     string      `json:"name"`
	Role     string      `json:"role"`
	Version  string      `json:"version"`
	Share    float64     `json:"share"`
	Since    time.Time   `json:"since"`
	Settings ArmSettings `json:"settings,omitempty"`
	Metrics  ArmMetrics  `json:"metrics"`
}

// DriftStatus is the control model's drift monitor: every series worst
// first, and how many are at each level.
type DriftStatus struct {
	Version string               `json:"version"`
	Drifted int                  `json:"drifted"`
	Shifted int                  `json:"shifted"`
	Series  []drift.SeriesReport `json:"series"`
}

// Status is the arms, the canary policy, the history of changes and the
// drift of the control model.
type Status struct {
	Arms    []ArmStatus   `json:"arms"`
	Policy  PolicyStatus  `json:"policy"`
	History []Change      `json:"history"`
	Drift   *DriftStatus  `json:"drift,omitempty"`
	Salt    uint64        `json:"salt"`
	Uptime  time.Duration `json:"uptime_ns"`
}

// PolicyStatus is the canary policy in force, for Status.
type PolicyStatus struct {
	Share              float64 `json:"share"`
	PromoteImpressions int64   `json:"promote_impressions"`
	MinImpressions     int64   `json:"min_impressions"`
	Margin             float64 `json:"margin"`
	Confidence         float64 `json:"confidence"`
	MinRequests        int64   `json:"min_requests"`
	MaxErrorRate       float64 `json:"max_error_rate"`
	P99Factor          float64 `json:"p99_factor"`
	P99SlackMs         float64 `json:"p99_slack_ms"`
}

// ArmsStatus returns the arms' state and metrics, the policy and the
// history (oldest first); with drift, the control's drift report too.
func (e *Engine) ArmsStatus(withDrift bool) Status {
	a := &e.arms
	a.mu.Lock()
	p := a.policy
	st := Status{Salt: e.cfg.ArmSalt, Uptime: time.Since(e.started), History: append([]Change(nil), a.history...),
		Policy: PolicyStatus{Share: p.Share, PromoteImpressions: p.PromoteImpressions, MinImpressions: p.MinImpressions, Margin: p.Margin,
			Confidence: p.Confidence, MinRequests: p.MinRequests, MaxErrorRate: p.MaxErrorRate, P99Factor: p.P99Factor,
			P99SlackMs: float64(p.P99Slack) / float64(time.Millisecond)}}
	add := func(ent *armEntry, share float64) {
		if ent != nil {
			st.Arms = append(st.Arms, ArmStatus{Name: ent.lv.arm, Role: ent.role, Version: ent.lv.m.version, Share: share,
				Since: ent.since.UTC(), Settings: ent.settings, Metrics: ent.stats.snapshot()})
		}
	}
	var control *Model
	if a.control != nil {
		control = a.control.lv.m
		add(a.control, 1-a.canaryShare-a.holdoutShare-a.experimentShare())
	}
	for _, x := range a.experiments {
		add(x.ent, x.Share)
	}
	add(a.canary, a.canaryShare)
	if a.holdoutShare > 0 {
		add(a.holdout, a.holdoutShare)
	}
	a.mu.Unlock()
	if withDrift && control != nil && control.monitor != nil {
		st.Drift = driftStatus(control)
	}
	return st
}

// driftStatus is m's drift report, in the monitor's order: judged series
// worst first (their levels follow their PSI), then those not judged.
func driftStatus(m *Model) *DriftStatus {
	ds := &DriftStatus{Version: m.version, Series: m.monitor.Report()}
	for _, s := range ds.Series {
		switch s.Level {
		case drift.Drift:
			ds.Drifted++
		case drift.Shift:
			ds.Shifted++
		}
	}
	return ds
}
