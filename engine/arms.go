package engine

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/reelrank/reelrank/internal/hashx"
)

// Arm roles. The control arm serves the incumbent model; a canary arm
// serves a candidate version to a share of users; the holdout arm serves a
// share of users by popularity alone, bypassing the ranker, so that the
// ranker's worth stays measured.
const (
	RoleControl    = "control"
	RoleCanary     = "canary"
	RoleHoldout    = "holdout"
	RoleExperiment = "experiment"
)

// HoldoutArm is the holdout arm's name in responses, impressions and
// metrics.
const HoldoutArm = "holdout"

// buckets is how many hash buckets the users are spread over: shares are
// set in steps of 1/buckets.
const buckets = 10_000

// ArmSettings are an arm's post-rank settings. The zero value of a field
// keeps the engine's Config.
type ArmSettings struct {
	// Weights overrides the final score's weight of the named heads for
	// this arm, over Config.Weights and the bundle's.
	Weights map[string]float32 `json:"weights,omitempty"`
	// Epsilon overrides Config.Epsilon for this arm (a negative value
	// turns exploration off); nil keeps the engine's.
	Epsilon *float64 `json:"epsilon,omitempty"`
	// Exploration overrides Config.Exploration: "epsilon-greedy" or
	// "thompson"; empty keeps the engine's.
	Exploration string `json:"exploration,omitempty"`
	// ExplorePool says which candidates an exploration slot picks among:
	// "uncertain" (empty; those with under Config.ExploreImpressions
	// impressions) or "fresh" (those uploaded within Config.FreshWindow
	// of the request, whatever their evidence): a fresh-reel share.
	ExplorePool string `json:"explore_pool,omitempty"`
}

// Explore pools of ArmSettings.ExplorePool.
const (
	PoolUncertain = "uncertain"
	PoolFresh     = "fresh"
)

// explorationOf parses an ArmSettings.Exploration.
func explorationOf(s string) (Exploration, error) {
	switch s {
	case EpsilonGreedy.String():
		return EpsilonGreedy, nil
	case Thompson.String():
		return Thompson, nil
	}
	return 0, fmt.Errorf("%w: exploration %q: want %q or %q", ErrBadRequest, s, EpsilonGreedy, Thompson)
}

// CanaryPolicy says when a canary is promoted or rolled back. The zero
// value of a field means its default.
type CanaryPolicy struct {
	// Share is the share of users a canary serves when loaded with none
	// given (default 0.1).
	Share float64
	// PromoteImpressions promotes the canary once it has served this many
	// impressions with none of the rollback rules firing (default 20,000;
	// negative: promote by hand only).
	PromoteImpressions int64
	// MinImpressions is how many impressions each of canary and control
	// needs before their watch-through rates are compared (default 2,000).
	MinImpressions int64
	// Margin and Confidence: the canary is rolled back when its
	// watch-through rate per impression is below the control's by more
	// than Margin (absolute; default 0.02) at one-sided confidence
	// Confidence (default 0.95).
	Margin, Confidence float64
	// MinRequests is how many Recommend requests the canary needs before
	// its errors and p99 are judged (default 200).
	MinRequests int64
	// MaxErrorRate rolls back a canary whose share of failed requests
	// (errors, and answers whose scores were NaN or constant over every
	// candidate) exceeds the control's by more than this (default 0.01).
	// Apart from it, a canary with most of its first 32 requests or more
	// scored NaN or constant, where the control has under a tenth, is
	// rolled back at once.
	MaxErrorRate float64
	// P99Factor and P99Slack roll back a canary whose p99 latency over its
	// recent requests exceeds the control's × P99Factor + P99Slack
	// (defaults 1.5 and 5 ms).
	P99Factor float64
	P99Slack  time.Duration
}

func (p CanaryPolicy) withDefaults() CanaryPolicy {
	if p.Share == 0 {
		p.Share = 0.1
	}
	if p.PromoteImpressions == 0 {
		p.PromoteImpressions = 20_000
	}
	if p.MinImpressions == 0 {
		p.MinImpressions = 2_000
	}
	if p.Margin == 0 {
		p.Margin = 0.02
	}
	if p.Confidence == 0 {
		p.Confidence = 0.95
	}
	if p.MinRequests == 0 {
		p.MinRequests = 200
	}
	if p.MaxErrorRate == 0 {
		p.MaxErrorRate = 0.01
	}
	if p.P99Factor == 0 {
		p.P99Factor = 1.5
	}
	if p.P99Slack == 0 {
		p.P99Slack = 5 * time.Millisecond
	}
	return p
}

func (p *CanaryPolicy) validate() error {
	switch {
	case !(p.Share > 0 && p.Share < 1):
		return fmt.Errorf("engine: canary share %v outside (0, 1)", p.Share)
	case p.MinImpressions < 1 || p.MinRequests < 1:
		return fmt.Errorf("engine: canary MinImpressions %d and MinRequests %d must be positive", p.MinImpressions, p.MinRequests)
	case !(p.Margin >= 0 && p.Margin < 1):
		return fmt.Errorf("engine: canary margin %v outside [0, 1)", p.Margin)
	case !(p.Confidence >= 0.5 && p.Confidence < 1):
		return fmt.Errorf("engine: canary confidence %v outside [0.5, 1)", p.Confidence)
	case !(p.MaxErrorRate > 0 && p.MaxErrorRate <= 1):
		return fmt.Errorf("engine: canary MaxErrorRate %v outside (0, 1]", p.MaxErrorRate)
	case !(p.P99Factor >= 1) || p.P99Slack < 0:
		return fmt.Errorf("engine: canary P99Factor %v under 1 or negative P99Slack %v", p.P99Factor, p.P99Slack)
	}
	return nil
}

// armEntry is one arm: its live model (the control's for the holdout),
// settings and statistics.
type armEntry struct {
	role     string
	lv       *live
	stats    *armStats
	settings ArmSettings
	since    time.Time
}

// armSet is what a request reads to find its arm: the arms in bucket
// order, each owning the buckets below its hi and above the previous one's.
type armSet struct {
	salt uint64
	arms []*armEntry
	hi   []uint32
}

// pick returns the arm of user.
func (s *armSet) pick(user int64) *armEntry {
	b := bucketOf(user, s.salt)
	for i, hi := range s.hi {
		if b < hi {
			return s.arms[i]
		}
	}
	return s.arms[len(s.arms)-1]
}

// bucketOf hashes a user id with the salt into [0, buckets).
func bucketOf(user int64, salt uint64) uint32 {
	return uint32(hashx.Mix64(uint64(user)^salt) % buckets)
}

// Change is one change of the arms, with its reason.
type Change struct {
	Time    time.Time `json:"time"`
	Action  string    `json:"action"` // load, promote, rollback, share, swap, refused
	Version string    `json:"version,omitempty"`
	Reason  string    `json:"reason"`
}

// maxHistory bounds the changes Status keeps.
const maxHistory = 64

// arms is the engine's arm state; mu guards it and serializes changes
// (taken after writeMu when both are).
type arms struct {
	mu      sync.Mutex
	policy  CanaryPolicy
	control *armEntry
	canary  *armEntry
	holdout *armEntry
	// canaryShare and holdoutShare are the shares in force.
	canaryShare, holdoutShare float64
	history                   []Change
	// experiments are the experiment arms, in bucket order.
	experiments []*experiment
	// prev is the control before the last promotion or swap, for a
	// rollback with no canary.
	prev *live
}

// experimentShare is the experiments' shares summed; the caller holds
// a.mu.
func (a *arms) experimentShare() float64 {
	t := 0.0
	for _, x := range a.experiments {
		t += x.Share
	}
	return t
}

// bucketsOf turns a share into buckets, rounding to the nearest.
func bucketsOf(share float64) uint32 {
	return uint32(math.Round(share * buckets))
}

// publish rebuilds the set requests read from the arm state; the caller
// holds a.mu.
func (e *Engine) publish() {
	a := &e.arms
	if a.control == nil {
		e.set.Store(nil)
		return
	}
	e.followControl()
	s := &armSet{salt: e.cfg.ArmSalt}
	lo := uint32(0)
	add := func(ent *armEntry, share float64) {
		n := bucketsOf(share)
		if ent == nil || n == 0 {
			return
		}
		lo = min(lo+n, buckets)
		s.arms = append(s.arms, ent)
		s.hi = append(s.hi, lo)
	}
	// The experiments first, so that they keep their buckets whatever the
	// holdout's and the canary's shares.
	for _, x := range a.experiments {
		add(x.ent, x.Share)
	}
	if a.holdout != nil {
		add(a.holdout, a.holdoutShare)
	}
	add(a.canary, a.canaryShare)
	s.arms = append(s.arms, a.control)
	s.hi = append(s.hi, buckets)
	e.set.Store(s)
	e.live.Store(a.control.lv)
}

// record appends a change to the history and logs it; the caller holds
// a.mu.
func (e *Engine) record(action, version, reason string) {
	a := &e.arms
	c := Change{Time: time.Now().UTC(), Action: action, Version: version, Reason: reason}
	a.history = append(a.history, c)
	if len(a.history) > maxHistory {
		a.history = slices.Delete(a.history, 0, len(a.history)-maxHistory)
	}
	e.cfg.Logger.Info("model change", "action", action, "version", version, "reason", reason)
	if e.cfg.OnArmsChange != nil {
		e.cfg.OnArmsChange(e.armsLocked())
	}
}

// newHoldout makes the holdout arm over the control's model.
func (e *Engine) newHoldout(control *live, stats *armStats) *armEntry {
	lv := *control
	lv.arm, lv.holdout = HoldoutArm, true
	if stats == nil {
		stats = newArmStats()
	}
	return &armEntry{role: RoleHoldout, lv: &lv, stats: stats, since: time.Now()}
}

// setControl installs lv as the control arm; the caller holds a.mu.
func (e *Engine) setControl(lv *live, settings ArmSettings) {
	a := &e.arms
	a.control = &armEntry{role: RoleControl, lv: lv, stats: newArmStats(), settings: settings, since: time.Now()}
	if a.holdout != nil || a.holdoutShare > 0 {
		a.holdout = e.newHoldout(lv, nil)
	}
}

// ErrNoCanary is the error of Promote and Rollback with no canary loaded.
var ErrNoCanary = errors.New("engine: no canary loaded")

// Validate runs the probe requests through m without serving it: every
// probe's candidates are scored, and the scores must be finite, within
// [0, 1] for each head, and not the same for every candidate; the index
// must answer. It returns why not.
func (e *Engine) Validate(m *Model) error {
	lv, err := e.newLive(m, ArmSettings{}, RoleCanary)
	if err != nil {
		return err
	}
	return e.probe(lv)
}

// LoadOptions tune LoadCanary.
type LoadOptions struct {
	// Share is the share of users the canary serves (0: the policy's).
	Share float64
	// Settings are the canary arm's post-rank settings.
	Settings ArmSettings
	// NoProbe skips the probe requests (the spec and dimension checks
	// still run): for drills of the canary's rollback rules with a model
	// the probes would refuse.
	NoProbe bool
}

// LoadCanary validates m (see Validate) and serves it beside the control
// to a share of the users, with its own post-rank settings. Its index is
// first caught up with the catalogue's changes as Swap does. A canary
// already loaded is replaced. A model refused leaves the arms as they
// were, and the refusal in the history.
func (e *Engine) LoadCanary(m *Model, opt LoadOptions) error {
	if m == nil {
		return errors.New("engine: load canary: nil model")
	}
	share, settings := opt.Share, opt.Settings
	if share == 0 {
		share = e.arms.policy.Share
	}
	if !(share > 0 && share < 1) {
		return fmt.Errorf("%w: load canary: share %v outside (0, 1)", ErrBadRequest, share)
	}
	lv, err := e.newLive(m, settings, RoleCanary)
	if err != nil {
		e.refused(m.version, err)
		return err
	}
	probed := "not probed"
	if !opt.NoProbe {
		if err := e.probe(lv); err != nil {
			err = fmt.Errorf("engine: load canary %q: %w", m.version, err)
			e.refused(m.version, err)
			return err
		}
		probed = fmt.Sprintf("validated on %d probe requests", probeCount)
	}
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	if err := e.catchUp(m); err != nil {
		e.refused(m.version, err)
		return err
	}
	a := &e.arms
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.control == nil {
		return fmt.Errorf("%w: load canary: no control model", ErrUnavailable)
	}
	if a.control.lv.m.version == m.version {
		return fmt.Errorf("%w: load canary: %s is the control's version", ErrBadRequest, m.version)
	}
	if share+a.holdoutShare+a.experimentShare() >= 1 {
		return fmt.Errorf("%w: load canary: share %v with the holdout's %v and the experiments' %v leaves the control nothing",
			ErrBadRequest, share, a.holdoutShare, a.experimentShare())
	}
	replaced := ""
	if a.canary != nil {
		replaced = fmt.Sprintf(", replacing %s", a.canary.lv.m.version)
	}
	a.canary = &armEntry{role: RoleCanary, lv: lv, stats: newArmStats(), settings: settings, since: time.Now()}
	a.canaryShare = share
	e.publish()
	e.record("load", m.version, fmt.Sprintf("%s; serving %.1f%% of users%s", probed, 100*share, replaced))
	return nil
}

// refused records a version that was not loaded.
func (e *Engine) refused(version string, err error) {
	a := &e.arms
	a.mu.Lock()
	defer a.mu.Unlock()
	e.record("refused", version, err.Error())
}

// Promote makes the canary the control, for every user outside the
// holdout. The statistics of both start over.
func (e *Engine) Promote(reason string) error {
	a := &e.arms
	a.mu.Lock()
	defer a.mu.Unlock()
	return e.promoteLocked(reason)
}

func (e *Engine) promoteLocked(reason string) error {
	a := &e.arms
	if a.canary == nil {
		return ErrNoCanary
	}
	c := a.canary
	lv := *c.lv
	lv.arm = a.control.lv.arm
	old := a.control.lv.m.version
	a.prev = a.control.lv
	e.setControl(&lv, c.settings)
	a.canary, a.canaryShare = nil, 0
	e.publish()
	if reason == "" {
		reason = "by hand"
	}
	e.record("promote", lv.m.version, fmt.Sprintf("%s (control was %s)", reason, old))
	return nil
}

// Rollback stops serving the canary; its users go back to the control.
// With no canary loaded, it reinstates the control before the last
// promotion or Swap (its index caught up with the catalogue first).
func (e *Engine) Rollback(reason string) error {
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	a := &e.arms
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.canary != nil {
		return e.rollbackLocked(reason)
	}
	if a.prev == nil {
		return fmt.Errorf("%w: nothing to roll back to", ErrNoCanary)
	}
	if err := e.catchUp(a.prev.m); err != nil {
		return err
	}
	prev, cur := a.prev, a.control
	lv := *prev
	lv.arm = cur.lv.arm
	a.prev = cur.lv
	e.setControl(&lv, cur.settings)
	e.publish()
	if reason == "" {
		reason = "by hand"
	}
	e.record("rollback", lv.m.version, fmt.Sprintf("%s: the control goes back from %s", reason, cur.lv.m.version))
	return nil
}

func (e *Engine) rollbackLocked(reason string) error {
	a := &e.arms
	if a.canary == nil {
		return ErrNoCanary
	}
	v := a.canary.lv.m.version
	a.canary, a.canaryShare = nil, 0
	e.publish()
	if reason == "" {
		reason = "by hand"
	}
	e.record("rollback", v, reason)
	return nil
}

// SetShares sets the canary's and the holdout's shares of users live
// (a negative value leaves that share as it is). A canary share needs a
// canary loaded; the holdout arm exists while its share is positive.
func (e *Engine) SetShares(canary, holdout float64) error {
	if math.IsNaN(canary) || math.IsNaN(holdout) {
		return fmt.Errorf("%w: set shares: NaN", ErrBadRequest)
	}
	a := &e.arms
	a.mu.Lock()
	defer a.mu.Unlock()
	c, h := a.canaryShare, a.holdoutShare
	if canary >= 0 {
		c = canary
	}
	if holdout >= 0 {
		h = holdout
	}
	switch {
	case math.IsNaN(c) || math.IsNaN(h) || c > 1 || h > 1:
		return fmt.Errorf("%w: shares %v and %v", ErrBadRequest, c, h)
	case c > 0 && a.canary == nil:
		return fmt.Errorf("%w: set shares: no canary loaded", ErrBadRequest)
	case c+h+a.experimentShare() >= 1:
		return fmt.Errorf("%w: set shares: canary %v and holdout %v with the experiments' %v leave the control nothing", ErrBadRequest, c, h, a.experimentShare())
	case a.control == nil:
		return fmt.Errorf("%w: set shares: no model", ErrUnavailable)
	}
	if c == 0 && a.canary != nil {
		return fmt.Errorf("%w: set shares: a canary share of 0: roll the canary back instead", ErrBadRequest)
	}
	a.canaryShare, a.holdoutShare = c, h
	if h > 0 && a.holdout == nil {
		a.holdout = e.newHoldout(a.control.lv, nil)
	}
	if h == 0 {
		a.holdout = nil
	}
	e.publish()
	e.record("share", "", fmt.Sprintf("canary %.2f%%, holdout %.2f%%", 100*c, 100*h))
	return nil
}

// armFor returns the live model serving user and its arm.
func (e *Engine) armFor(user int64) (*live, *armEntry) {
	s := e.set.Load()
	if s == nil {
		return e.live.Load(), nil
	}
	a := s.pick(user)
	return a.lv, a
}

// ArmOf returns the name of the arm that serves user now ("" with no
// model).
func (e *Engine) ArmOf(user int64) string {
	lv, _ := e.armFor(user)
	if lv == nil {
		return ""
	}
	return lv.arm
}

// armByName returns the arm named name among those serving, or nil.
func (s *armSet) armByName(name string) *armEntry {
	for _, a := range s.arms {
		if a.lv.arm == name {
			return a
		}
	}
	return nil
}

// liveModels returns the models whose indexes the catalogue's changes
// reach: the control's and the canary's.
func (e *Engine) liveModels() []*Model {
	if s := e.set.Load(); s != nil {
		out := make([]*Model, 0, 2)
		for _, a := range s.arms {
			if a.role != RoleHoldout && !slices.Contains(out, a.lv.m) {
				out = append(out, a.lv.m)
			}
		}
		return out
	}
	if lv := e.live.Load(); lv != nil {
		return []*Model{lv.m}
	}
	return nil
}

// ArmsState is what a restart needs to serve the same arms: the versions
// and shares. OnArmsChange receives it after every change.
type ArmsState struct {
	Control      string      `json:"control"`
	Canary       string      `json:"canary,omitempty"`
	CanaryShare  float64     `json:"canary_share,omitempty"`
	HoldoutShare float64     `json:"holdout_share,omitempty"`
	Settings     ArmSettings `json:"settings,omitempty"`
	// CanarySettings are the canary's post-rank settings.
	CanarySettings ArmSettings `json:"canary_settings,omitempty"`
}

// armsLocked returns the state; the caller holds a.mu.
func (e *Engine) armsLocked() ArmsState {
	a := &e.arms
	var st ArmsState
	if a.control != nil {
		st.Control, st.Settings = a.control.lv.m.version, a.control.settings
	}
	if a.canary != nil {
		st.Canary, st.CanaryShare, st.CanarySettings = a.canary.lv.m.version, a.canaryShare, a.canary.settings
	}
	st.HoldoutShare = a.holdoutShare
	return st
}
