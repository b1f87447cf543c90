package engine

import (
	"fmt"

	"github.com/reelrank/reelrank/drift"
	"github.com/reelrank/reelrank/eventlog"
	"github.com/reelrank/reelrank/features"
)

// Drift series are named by the part of the ranker's input they come
// from: "user/<feature>", "reel/<feature>", "cross/<feature>", and
// "head/<task>" for the ranker's predicted probabilities.
const (
	DriftUser  = "user/"
	DriftReel  = "reel/"
	DriftCross = "cross/"
	DriftHead  = "head/"
)

// driftCols maps a model's rows onto its monitor's series.
type driftCols struct {
	user []int // per Spec.User feature
	row  []int // per reel, cross feature, then per head
}

// DriftExempt are the series a model's monitor reports but never marks:
// the calendar features of the request's time (hour, day of the week),
// which cycle faster than a window while a reference spans days.
var DriftExempt = []string{DriftUser + "ctx_"}

// SetReference attaches the training reference ref to m: while m serves
// as the control, a sample of the impressions that come back (Event) is
// turned into rows as training turns them (the user's, the reel's and the
// cross features as of the impression's time, before it is applied, and
// m's probabilities for it), binned over a sliding window and compared
// with ref; Status and the metrics report each series' PSI. Call it
// before the model is handed to an engine. opt.Exempt defaults to
// DriftExempt. Series of ref the model has no input for are reported
// with no values.
func (m *Model) SetReference(ref *drift.Reference, opt drift.Options) error {
	if opt.Exempt == nil {
		opt.Exempt = DriftExempt
	}
	mon, err := drift.NewMonitor(ref, opt)
	if err != nil {
		return fmt.Errorf("engine: model %q: %w", m.version, err)
	}
	sp := m.bundle.Spec
	var c driftCols
	for _, n := range sp.User {
		c.user = append(c.user, mon.Index(DriftUser+n))
	}
	for _, n := range sp.Reel {
		c.row = append(c.row, mon.Index(DriftReel+n))
	}
	for _, n := range sp.Cross {
		c.row = append(c.row, mon.Index(DriftCross+n))
	}
	for _, n := range m.heads {
		c.row = append(c.row, mon.Index(DriftHead+n))
	}
	m.monitor, m.cols = mon, c
	return nil
}

// Drift returns the model's drift report, or nil when it has no
// reference.
func (m *Model) Drift() *DriftStatus {
	if m.monitor == nil {
		return nil
	}
	return driftStatus(m)
}

// driftBatch holds the drift monitor's rows of one event batch.
type driftBatch struct {
	m          *Model
	user, rows []float32
}

// applySampled applies admitted events as applyEvents does, and turns
// every Config.DriftSample-th impression among them into a row for the
// control model's drift monitor the way training turns one into a row:
// the features as of the impression's time from the store with every
// event before it applied (the batch is applied in pieces around the
// sampled impressions), and the model's probabilities. The caller holds
// writeMu; the rows go to the monitor with observe, after it is released.
func (e *Engine) applySampled(good []eventlog.Event) driftBatch {
	lv := e.live.Load()
	if lv == nil || lv.m.monitor == nil || e.cfg.DriftSample < 1 {
		e.applyEvents(good)
		return driftBatch{}
	}
	db := driftBatch{m: lv.m}
	var s *scratch
	lo := 0
	for i := range good {
		ev := &good[i]
		if ev.Type != eventlog.Impression || e.driftN.Add(1)%uint64(e.cfg.DriftSample) != 0 {
			continue
		}
		e.applyEvents(good[lo:i])
		lo = i
		if s == nil {
			s = e.getScratch()
			defer e.putScratch(s)
		}
		e.driftRow(s, &db, ev)
	}
	e.applyEvents(good[lo:])
	return db
}

// driftRow appends the row of impression ev to db.
func (e *Engine) driftRow(s *scratch, db *driftBatch, ev *eventlog.Event) {
	m := db.m
	fr := &s.freq
	fr.User = ev.User
	fr.Context = features.Context{Time: ev.Time, Session: ev.Session, Position: int(ev.Position)}
	s.cands = append(s.cands[:0], ev.Reel)
	fr.Reels = s.cands
	fr.Embeddings = true
	if e.store.Features(fr) != nil {
		return
	}
	sc, err := s.scorerFor(m.bundle.Ranker)
	if err != nil || sc.Score(fr, &s.scores) != nil {
		return
	}
	db.user = append(db.user, fr.UserVec...)
	db.rows = append(db.rows, fr.ReelVec...)
	db.rows = append(db.rows, fr.CrossVec...)
	db.rows = append(db.rows, s.scores.Probs[:len(m.heads)]...)
}

// observe adds a batch's rows to its model's monitor.
func (e *Engine) observe(db driftBatch) {
	if db.m == nil || len(db.user) == 0 {
		return
	}
	db.m.monitor.AddRows(db.m.cols.user, db.user)
	db.m.monitor.AddRows(db.m.cols.row, db.rows)
}

// probeContext is the context of a probe request for user at time at.
func (e *Engine) probeContext(user, at int64, prof *features.User) features.Context {
	*prof = features.User{ID: user, Country: -1, Language: -1, AgeBucket: -1, Device: -1}
	return features.Context{Time: at, Profile: prof}
}
