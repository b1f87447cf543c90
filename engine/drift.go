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

// driftRows computes the monitor's rows of the sampled impressions among
// events (every Config.DriftSample-th), as training computes its rows:
// features as of the impression's time from the store as it stands (the
// batch not yet applied), and the control model's probabilities. It
// returns the events' indexes and their rows (user vector, then reel,
// cross and heads), for observe once they are admitted.
func (e *Engine) driftRows(events []eventlog.Event) (idx []int, user, rows []float32, m *Model) {
	lv := e.live.Load()
	if lv == nil || lv.m.monitor == nil || e.cfg.DriftSample < 1 {
		return nil, nil, nil, nil
	}
	m = lv.m
	var s *scratch
	for i := range events {
		ev := &events[i]
		if ev.Type != eventlog.Impression || ev.Validate() != nil || e.driftN.Add(1)%uint64(e.cfg.DriftSample) != 0 {
			continue
		}
		if s == nil {
			s = e.getScratch()
			defer e.putScratch(s)
		}
		fr := &s.freq
		fr.User = ev.User
		s.profile = features.User{}
		fr.Context = features.Context{Time: ev.Time, Session: ev.Session, Position: int(ev.Position)}
		s.cands = append(s.cands[:0], ev.Reel)
		fr.Reels = s.cands
		fr.Embeddings = true
		if e.store.Features(fr) != nil {
			continue
		}
		sc, err := s.scorerFor(m.bundle.Ranker)
		if err != nil || sc.Score(fr, &s.scores) != nil {
			continue
		}
		idx = append(idx, i)
		user = append(user, fr.UserVec...)
		rows = append(rows, fr.ReelVec...)
		rows = append(rows, fr.CrossVec...)
		rows = append(rows, s.scores.Probs[:len(m.heads)]...)
	}
	return idx, user, rows, m
}

// observe adds the rows of the admitted sampled impressions to m's
// monitor; admitted says which events were.
func (e *Engine) observe(m *Model, idx []int, user, rows []float32, admitted func(int) bool) {
	if m == nil || len(idx) == 0 {
		return
	}
	nU := len(user) / len(idx)
	w := len(rows) / len(idx)
	keep := 0
	for k, i := range idx {
		if !admitted(i) {
			continue
		}
		copy(user[keep*nU:(keep+1)*nU], user[k*nU:(k+1)*nU])
		copy(rows[keep*w:(keep+1)*w], rows[k*w:(k+1)*w])
		keep++
	}
	m.monitor.AddRows(m.cols.user, user[:keep*nU])
	m.monitor.AddRows(m.cols.row, rows[:keep*w])
}

// probeContext is the context of a probe request for user at time at.
func (e *Engine) probeContext(user, at int64, prof *features.User) features.Context {
	*prof = features.User{ID: user, Country: -1, Language: -1, AgeBucket: -1, Device: -1}
	return features.Context{Time: at, Profile: prof}
}
