package features

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/reelrank/reelrank/eventlog"
)

// Source yields batches of events in time order; *eventlog.Reader is one.
// Next returns io.EOF after the last batch.
type Source interface {
	Next() ([]eventlog.Event, error)
}

// Labels are what followed an impression within the label window.
type Labels struct {
	// Outcome is set when a watch or a skip of the impression was seen.
	Outcome  bool
	Skip     bool
	Seconds  float32
	Fraction float32
	Like     bool
	Comment  bool
	Share    bool
	Follow   bool
}

// RowBatch holds training rows: per impression, the features as of the
// impression's time (before the impression itself was applied) and the
// labels that followed. Row i's features are User[i*len(Spec.User):],
// Reel[i*len(Spec.Reel):], Cross[i*len(Spec.Cross):].
type RowBatch struct {
	N           int
	Impressions []eventlog.Event
	Labels      []Labels
	User        []float32
	Reel        []float32
	Cross       []float32
	// Emb holds each row's reel content embedding when
	// ReplayOptions.Embeddings is set.
	Emb []float32
}

// ReplayOptions configures Replay.
type ReplayOptions struct {
	// LabelWindow is how long after an impression its watch, skip, like,
	// comment, share and follow still count as its labels (default 30 min).
	LabelWindow time.Duration
	// Rows chooses the impressions that become rows; nil means all. Every
	// event is applied whatever it says. It runs with the store locked: it
	// must not call the store.
	Rows func(e *eventlog.Event) bool
	// BatchSize is the number of rows per Emit call (default 4096).
	BatchSize int
	// Embeddings adds each row's reel content embedding.
	Embeddings bool
	// Emit receives complete rows in impression order; the batch is reused
	// once Emit returns. An error stops the replay.
	Emit func(b *RowBatch) error
	// Progress, when set, is called after every source batch with the
	// newest event time applied.
	Progress func(applied int64, newest int64)
}

// ReplayStats sums up a replay.
type ReplayStats struct {
	Events    int64 // events read
	Applied   int64 // events applied
	Refused   int64 // events that failed validation (also in the returned error)
	Rows      int64 // rows emitted
	NoOutcome int64 // rows whose impression saw no watch or skip in the window
	Orphans   int64 // outcome events that matched no pending impression
	Elapsed   time.Duration
}

type pendingKey struct{ session, reel int64 }

type pendingRow struct {
	b *RowBatch
	i int
}

// Replay applies the events of src in time order and turns impressions into
// training rows: a row's features are computed as of the impression's
// time, from the events applied before it, so they contain nothing from
// after it. Labels come from the outcome events of the same session and
// reel within the label window. Refused events are counted, reported in
// an *ApplyError at the end, and skipped; the replay goes on. An event
// older than one already applied is refused too: src must deliver the log
// in time order, as an eventlog.Reader does. Replay does not move the
// checkpoint ApplyLog keeps.
func (s *Store) Replay(src Source, opt ReplayOptions) (ReplayStats, error) {
	start := time.Now()
	if opt.LabelWindow <= 0 {
		opt.LabelWindow = 30 * time.Minute
	}
	if opt.BatchSize <= 0 {
		opt.BatchSize = 4096
	}
	if opt.Emit == nil {
		opt.Emit = func(*RowBatch) error { return nil }
	}
	win := opt.LabelWindow.Milliseconds()
	rp := &replayer{s: s, opt: opt, pending: map[pendingKey]pendingRow{}}
	var st ReplayStats
	var refused *ApplyError
	req := &Request{Reels: make([]int64, 1), Embeddings: opt.Embeddings}
	for {
		events, err := src.Next()
		if err != nil && !errors.Is(err, io.EOF) {
			st.Elapsed = time.Since(start)
			return st, fmt.Errorf("features: replay: %w", err)
		}
		st.Events += int64(len(events))
		s.mu.Lock()
		for i := range events {
			e := &events[i]
			verr := e.Validate()
			if verr == nil && s.set && e.Time < s.newest {
				// Applying it now would put it in the rows of impressions
				// that came before it.
				verr = fmt.Errorf("ts %d before %d, an event already applied: replay needs the log in time order (an eventlog.Reader with a tolerance gives it)", e.Time, s.newest)
			}
			if verr != nil {
				st.Refused++
				if refused == nil {
					refused = &ApplyError{}
				}
				refused.Bad++
				if len(refused.First) < keepBadEvents {
					refused.First = append(refused.First, BadEvent{Index: int(st.Events) - len(events) + i, Line: e.Line, Reason: verr.Error()})
				}
				continue
			}
			// Rows whose label window closed before this event are final.
			rp.flush(e.Time-win, false)
			switch e.Type {
			case eventlog.Impression:
				if opt.Rows == nil || opt.Rows(e) {
					req.User = e.User
					req.Reels[0] = e.Reel
					req.Context = Context{Time: e.Time, Session: e.Session, Position: int(e.Position)}
					s.features(req)
					rp.add(e, req)
				}
			case eventlog.Watch, eventlog.Skip, eventlog.Like, eventlog.Comment, eventlog.Share, eventlog.Follow:
				if !rp.label(e, win) && e.Type != eventlog.Follow {
					st.Orphans++
				}
			}
			s.touch(e.Time)
			s.apply1(e)
			st.Applied++
		}
		newest := s.newest
		s.mu.Unlock()
		if eerr := rp.emit(); eerr != nil {
			st.Elapsed = time.Since(start)
			return st, eerr
		}
		if opt.Progress != nil {
			opt.Progress(st.Applied, newest)
		}
		if errors.Is(err, io.EOF) {
			break
		}
	}
	rp.flush(0, true)
	ferr := rp.emit()
	st.Rows, st.NoOutcome = rp.rows, rp.noOutcome
	st.Elapsed = time.Since(start)
	if ferr != nil {
		return st, ferr
	}
	if refused != nil {
		refused.Total = int(st.Events)
		return st, refused
	}
	return st, nil
}

type replayer struct {
	s       *Store
	opt     ReplayOptions
	open    *RowBatch   // filling
	sealed  []*RowBatch // full, waiting for their label windows
	ready   []*RowBatch // final, to emit once the lock is released
	free    []*RowBatch
	pending map[pendingKey]pendingRow

	rows, noOutcome int64
}

func (rp *replayer) newBatch() *RowBatch {
	if n := len(rp.free); n > 0 {
		b := rp.free[n-1]
		rp.free = rp.free[:n-1]
		b.N = 0
		b.Impressions, b.Labels = b.Impressions[:0], b.Labels[:0]
		b.User, b.Reel, b.Cross, b.Emb = b.User[:0], b.Reel[:0], b.Cross[:0], b.Emb[:0]
		return b
	}
	return &RowBatch{}
}

func (rp *replayer) add(e *eventlog.Event, req *Request) {
	if rp.open == nil {
		rp.open = rp.newBatch()
	}
	b := rp.open
	imp := *e
	imp.Arm = string([]byte(e.Arm)) // the source may reuse its strings
	b.Impressions = append(b.Impressions, imp)
	b.Labels = append(b.Labels, Labels{})
	b.User = append(b.User, req.UserVec...)
	b.Reel = append(b.Reel, req.ReelVec...)
	b.Cross = append(b.Cross, req.CrossVec...)
	if rp.opt.Embeddings {
		b.Emb = append(b.Emb, req.Emb...)
	}
	rp.pending[pendingKey{e.Session, e.Reel}] = pendingRow{b, b.N}
	b.N++
	if b.N == rp.opt.BatchSize {
		rp.sealed = append(rp.sealed, b)
		rp.open = nil
	}
}

// label records an outcome event against its impression; it reports
// whether one was pending.
func (rp *replayer) label(e *eventlog.Event, win int64) bool {
	if e.Has&(eventlog.FSession|eventlog.FReel) != eventlog.FSession|eventlog.FReel {
		return false
	}
	p, ok := rp.pending[pendingKey{e.Session, e.Reel}]
	if !ok {
		return false
	}
	imp := &p.b.Impressions[p.i]
	if e.Time-imp.Time > win || e.User != imp.User {
		return false
	}
	l := &p.b.Labels[p.i]
	switch e.Type {
	case eventlog.Watch:
		l.Outcome, l.Skip, l.Seconds, l.Fraction = true, false, e.Seconds, e.Fraction
	case eventlog.Skip:
		l.Outcome, l.Skip, l.Seconds, l.Fraction = true, true, e.Seconds, 0
	case eventlog.Like:
		l.Like = true
	case eventlog.Comment:
		l.Comment = true
	case eventlog.Share:
		l.Share = true
	case eventlog.Follow:
		l.Follow = true
	}
	return true
}

// flush makes final the sealed batches whose last impression is older than
// before, or every row when all is set.
func (rp *replayer) flush(before int64, all bool) {
	if all && rp.open != nil && rp.open.N > 0 {
		rp.sealed = append(rp.sealed, rp.open)
		rp.open = nil
	}
	for len(rp.sealed) > 0 {
		b := rp.sealed[0]
		if !all && b.Impressions[b.N-1].Time >= before {
			return
		}
		rp.sealed = rp.sealed[1:]
		for i := range b.N {
			imp := &b.Impressions[i]
			k := pendingKey{imp.Session, imp.Reel}
			if p, ok := rp.pending[k]; ok && p.b == b && p.i == i {
				delete(rp.pending, k)
			}
			if !b.Labels[i].Outcome {
				rp.noOutcome++
			}
		}
		rp.rows += int64(b.N)
		rp.ready = append(rp.ready, b)
	}
}

// emit hands the ready batches to Emit, outside the store's lock.
func (rp *replayer) emit() error {
	for i, b := range rp.ready {
		if err := rp.opt.Emit(b); err != nil {
			rp.ready = rp.ready[:0]
			return fmt.Errorf("features: replay: emit: %w", err)
		}
		rp.ready[i] = nil
		rp.free = append(rp.free, b)
	}
	rp.ready = rp.ready[:0]
	return nil
}
