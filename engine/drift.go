package engine

import (
	"fmt"

	"github.com/reelrank/reelrank/drift"
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

// SetReference attaches the training reference ref to m: while m serves
// as the control or a canary, the user features, the served items' reel
// and cross features and the heads' probabilities are binned over a
// sliding window and compared with ref (Status and the metrics report
// each series' PSI). Call it before the model is handed to an engine.
// Series of ref the model has no input for are reported with no values.
func (m *Model) SetReference(ref *drift.Reference, opt drift.Options) error {
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

// observe adds a served response's rows to the model's monitor: the
// user's features, then per served item its reel and cross features and
// its probabilities.
func (e *Engine) observe(s *scratch, m *Model, out *Response) {
	mon := m.monitor
	if mon == nil || len(out.Items) == 0 {
		return
	}
	fr := &s.freq
	mon.AddRows(m.cols.user, fr.UserVec)
	nR, nC, T := len(e.spec.Reel), len(e.spec.Cross), len(m.heads)
	w := nR + nC + T
	s.drow = grow(s.drow, len(out.Items)*w)
	rows := s.drow[:0]
	for _, it := range out.Items {
		i, ok := s.seen[it.Reel]
		if !ok || i < 0 {
			continue
		}
		rows = append(rows, fr.ReelVec[int(i)*nR:int(i+1)*nR]...)
		rows = append(rows, fr.CrossVec[int(i)*nC:int(i+1)*nC]...)
		rows = append(rows, it.Probs...)
	}
	mon.AddRows(m.cols.row, rows)
}

// probeContext is the context of a probe request for user at time at.
func (e *Engine) probeContext(user, at int64, prof *features.User) features.Context {
	*prof = features.User{ID: user, Country: -1, Language: -1, AgeBucket: -1, Device: -1}
	return features.Context{Time: at, Profile: prof}
}
