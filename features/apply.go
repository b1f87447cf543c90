package features

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/reelrank/reelrank/eventlog"
)

// ApplyError reports the events of a batch that were not applied because
// they failed eventlog's validation; every other event of the batch was.
type ApplyError struct {
	Bad   int        // events refused
	First []BadEvent // the first few, with reasons
	Total int        // events in the batch
}

// BadEvent is one refused event: its position in the batch, its log line
// (0 when it did not come from a log) and the reason.
type BadEvent struct {
	Index  int
	Line   int64
	Reason string
}

func (e *ApplyError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "features: %d of %d events refused", e.Bad, e.Total)
	for i, f := range e.First {
		if i == 3 {
			b.WriteString("; ...")
			break
		}
		if f.Line > 0 {
			fmt.Fprintf(&b, "; line %d: %s", f.Line, f.Reason)
		} else {
			fmt.Fprintf(&b, "; event %d: %s", f.Index, f.Reason)
		}
	}
	return b.String()
}

const keepBadEvents = 16

// Apply applies a batch of events in order. Events that fail validation
// are refused and reported in an *ApplyError; the others are applied.
// Events may arrive slightly out of time order: the counters do not depend
// on the order, only the session features do (a session starts at its
// first impression seen). Apply does not move the log checkpoint that
// ApplyLog keeps: a store fed both ways must not be given the same events
// twice.
func (s *Store) Apply(events []eventlog.Event) error {
	if len(events) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.applyLocked(events, false)
}

// applyLocked applies events; validated says that they come from an
// eventlog.Reader, which delivers only events that passed Validate. It
// applies every valid event whatever its time: what is admitted is
// decided once, by Admit, when an event is first accepted, so that a log
// replayed later gives the same state whatever the clock says then.
func (s *Store) applyLocked(events []eventlog.Event, validated bool) error {
	var bad *ApplyError
	for i := range events {
		if i%warmBatch == 0 {
			s.warm(events[i:min(i+warmBatch, len(events))])
		}
		e := &events[i]
		if !validated {
			if err := e.Validate(); err != nil {
				if bad == nil {
					bad = &ApplyError{Total: len(events)}
				}
				bad.Bad++
				if len(bad.First) < keepBadEvents {
					bad.First = append(bad.First, BadEvent{Index: i, Line: e.Line, Reason: err.Error()})
				}
				continue
			}
		}
		s.touch(e.Time)
		s.apply1(e)
	}
	if bad != nil {
		return bad
	}
	return nil
}

// Horizon returns the oldest event time the store can still apply: an
// event older than its newest event by more than horizonTaus of its
// slowest decay constant would add less than float32's resolution to
// every counter (exp(-17) < 2^-24), so it would move nothing but the
// count of events applied. Zero before any event.
func (s *Store) Horizon() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.horizonLocked()
}

// horizonTaus is ln(2^24) rounded up: past it, a decayed count is below
// float32's resolution.
const horizonTaus = 17

func (s *Store) horizonLocked() int64 {
	if !s.set {
		return 0
	}
	slowest := 0.0
	for _, t := range s.tau {
		slowest = math.Max(slowest, t)
	}
	return s.newest - int64(horizonTaus*slowest)
}

// Admit is the one rule of what the store takes, applied when an event is
// first accepted (the engine checks every live event with it before
// logging it; a log replayed later is applied whole, without it): the
// event must pass eventlog's Validate, lie at most lead after now (a
// client whose clock runs years ahead would otherwise move every decayed
// counter's landmark and every later request would lie in the store's
// past; lead <= 0 turns this off), and lie within the store's Horizon.
// now and the event times are Unix milliseconds.
func (s *Store) Admit(e *eventlog.Event, now int64, lead time.Duration) error {
	if err := e.Validate(); err != nil {
		return err
	}
	if lead > 0 && e.Time > now+lead.Milliseconds() {
		return fmt.Errorf("%s: ts %d is %v after the clock, over the lead of %v", e.Type, e.Time,
			time.Duration(e.Time-now)*time.Millisecond, lead)
	}
	if h := s.Horizon(); e.Time < h {
		return fmt.Errorf("%s: ts %d is older than the store can apply (before %d, %v before its newest event)",
			e.Type, e.Time, h, time.Duration(s.Stats().Newest-h)*time.Millisecond)
	}
	return nil
}

// warmBatch is how many events warm touches ahead of applying them.
const warmBatch = 128

// warm loads, ahead of applying a batch of events, the records the events
// will update: its loops have independent iterations, so the CPU overlaps
// their cache misses, where applying one event after the other would wait
// on each in turn. It changes nothing.
func (s *Store) warm(events []eventlog.Event) {
	var ri, ui [warmBatch]int32
	for i := range events {
		ri[i], ui[i] = -1, -1
		if events[i].Type == eventlog.Skip {
			continue // moves nothing
		}
		if r, ok := s.reels.index.get(events[i].Reel); ok {
			ri[i] = r
		}
		if u, ok := s.users.index.get(events[i].User); ok {
			ui[i] = u
		}
	}
	var sink float32
	var ai [warmBatch]int32
	d, cs := s.cfg.EmbedDim, s.cs
	for i := range events {
		ai[i] = -1
		if r := ri[i]; r >= 0 {
			rec := &s.reels.recs[r]
			ai[i] = rec.author
			sink += rec.ctr[maxCtr-1]
			if events[i].Type == eventlog.Watch && rec.hasEmb {
				for j := int(r) * d; j < int(r+1)*d; j += 16 {
					sink += s.reels.emb[j]
				}
			}
		}
		if u := ui[i]; u >= 0 {
			sink += s.users.ctr[int(u)*cs] + s.users.ctr[int(u+1)*cs-1] + float32(s.users.sess[u].histW)
			sink += float32(s.users.lastCats[int(u)*s.cfg.LastReels])
			if events[i].Type == eventlog.Watch {
				for j := int(u) * d; j < int(u+1)*d; j += 16 {
					sink += s.users.hist[j]
				}
			}
		}
	}
	for _, a := range ai[:len(events)] {
		if a >= 0 {
			rec := &s.authors.recs[a]
			sink += rec.ctr[0] + rec.ctr[maxCtr-1]
		}
	}
	s.warmSink = sink
}

// add adds one decayed count of counter c at weights g to ctr.
func (s *Store) add(ctr []float32, c int, g []float64, by float64) {
	for w := range s.nw {
		ctr[w*nCounters+c] += float32(g[w] * by)
	}
}

func (s *Store) addGlobal(c int, g []float64, by float64) {
	for w := range s.nw {
		s.global[w*nCounters+c] += g[w] * by
	}
}

func (s *Store) apply1(e *eventlog.Event) {
	if e.Time > s.newest {
		s.newest = e.Time
	}
	s.applied++
	if e.Type == eventlog.Skip {
		// A skip is an impression not watched: the rates count it through
		// their denominators, and no counter moves.
		return
	}
	// The weights of the windows, and of the category and history sums for
	// the events that move them.
	var gbuf [maxWindows + 2]float64
	n := s.nw
	if e.Type == eventlog.Impression || e.Type == eventlog.Watch {
		n += 2
	}
	g := s.expo(gbuf[:0], e.Time, 1, n)
	cs := s.cs
	switch e.Type {
	case eventlog.Upload:
		r := s.reel(e.Reel)
		a := s.author(e.Author)
		s.placeReel(r, a, e.Time)
		return
	case eventlog.Follow:
		u := s.user(e.User)
		a := s.author(e.Author)
		if s.addFollow(u, e.Author) {
			s.authors.recs[a].follows++
		}
		s.addGlobal(cFollow, g, 1)
		s.add(s.authors.recs[a].ctr[:cs], cFollow, g, 1)
		s.add(s.users.ctr[int(u)*cs:int(u+1)*cs], cFollow, g, 1)
		if e.Has&eventlog.FReel != 0 {
			r := s.reel(e.Reel)
			s.add(s.reels.recs[r].ctr[:cs], cFollow, g, 1)
		}
		return
	}
	r := s.reel(e.Reel)
	u := s.user(e.User)
	m := &s.reels.recs[r].reelMeta
	a := m.author
	if a < 0 || s.authors.recs[a].id != e.Author {
		a = s.author(e.Author)
		s.placeReel(r, a, m.upload)
	}
	rc := s.reels.recs[r].ctr[:cs]
	ac := s.authors.recs[a].ctr[:cs]
	uc := s.users.ctr[int(u)*cs : int(u+1)*cs]
	count := func(c int, by float64) {
		// The global, reel, author and user counters, window by window.
		for w := range s.nw {
			v := g[w] * by
			s.global[w*nCounters+c] += v
			f := float32(v)
			j := w*nCounters + c
			rc[j] += f
			ac[j] += f
			uc[j] += f
		}
	}
	cat := int(m.cat)
	k := s.cfg.Categories
	switch e.Type {
	case eventlog.Impression:
		count(cImp, 1)
		if cat >= 0 {
			s.users.catImp[int(u)*k+cat] += float32(g[s.nw])
		}
		s.sessionImpression(u, e, cat)
	case eventlog.Watch:
		frac := min(float64(e.Fraction), 1)
		count(cWatch, 1)
		count(cFrac, frac)
		if e.Fraction >= s.cfg.WatchThrough {
			count(cWT, 1)
			s.sourceWatchThrough(r, u, g[s.src.pw])
			if cat >= 0 {
				s.users.catWT[int(u)*k+cat] += float32(g[s.nw])
			}
			if s.users.sess[u].id == e.Session {
				s.users.sess[u].wt++
			}
		}
		if m.hasEmb && frac > 0 {
			d := s.cfg.EmbedDim
			w := frac * g[s.nw+1]
			h := s.users.hist[int(u)*d : int(u+1)*d]
			emb := s.reels.emb[int(r)*d : int(r+1)*d]
			wf := float32(w)
			for j := range h {
				h[j] += wf * emb[j]
			}
			s.users.sess[u].histW += w
		}
	case eventlog.Like:
		count(cLike, 1)
	case eventlog.Comment:
		count(cComment, 1)
	case eventlog.Share:
		count(cShare, 1)
	}
}

// sessionImpression moves the user's session state past an impression.
func (s *Store) sessionImpression(u int32, e *eventlog.Event, cat int) {
	us := &s.users
	if us.sess[u].id != e.Session {
		us.sess[u].id = e.Session
		us.sess[u].at = e.Time
		us.sess[u].n = 0
		us.sess[u].wt = 0
		for j := range s.cfg.LastReels {
			us.lastCats[int(u)*s.cfg.LastReels+j] = -1
		}
	}
	us.sess[u].n++
	last := us.lastCats[int(u)*s.cfg.LastReels : int(u+1)*s.cfg.LastReels]
	copy(last[1:], last[:len(last)-1])
	last[0] = int16(cat)
}

// IsApplyError reports whether err is (or wraps) an *ApplyError, which
// means the rest of the batch was applied.
func IsApplyError(err error) bool {
	var ae *ApplyError
	return errors.As(err, &ae)
}
