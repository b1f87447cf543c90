package engine

import (
	"fmt"
	"strings"

	"github.com/reelrank/reelrank/eventlog"
	"github.com/reelrank/reelrank/features"
)

// Event is EventKeyed without a key.
func (e *Engine) Event(events []eventlog.Event) (EventResult, error) {
	return e.EventKeyed("", events)
}

// EventKeyed admits a batch of events, logs the admitted ones, applies
// them to the feature store, and puts uploaded reels in the fresh and
// exploration pools.
//
// One rule says what is admitted (features.Store.Admit): a valid event,
// stamped at most Config.MaxLead after the engine's clock and within what
// the store can apply. An event stamped 0 (a client leaving the time to
// the server) takes the engine's clock first. The others are counted as
// rejected, with the first one's reason, and neither logged nor applied.
// With Config.Dir the admitted events are appended to the event log and
// applied in one step, in the log's order, and the call returns once an
// fsync holds them (concurrent batches share one); a restart applies the
// logged events again, all of them, in the same order, whatever their
// time and the clock then say.
//
// A non-empty key (at most MaxKey bytes) makes the batch idempotent: a
// batch with a key the engine has seen is not applied again but answered
// with the first one's result, Replayed set (after waiting for that one's
// fsync). The error is only for a log that cannot be written (wrapping
// ErrUnavailable, and ErrNoSpace for a full disk): then nothing of the
// batch was acknowledged.
func (e *Engine) EventKeyed(key string, events []eventlog.Event) (EventResult, error) {
	if len(key) > MaxKey {
		return EventResult{}, badRequest("event", "key of %d bytes, over %d", len(key), MaxKey)
	}
	e.writeMu.Lock()
	if ent, ok := e.keys.get(key); ok {
		e.writeMu.Unlock()
		return e.replayedEvent(key, ent)
	}
	var res EventResult
	now := e.cfg.Clock().UnixMilli()
	good := events[:0:0]
	for i := range events {
		ev := events[i]
		if ev.Time == 0 {
			ev.Time = now
			ev.Has |= eventlog.FTime
		}
		if ev.Type == eventlog.Impression && (ev.Has&eventlog.FArm == 0 || ev.Arm == "") {
			// Every logged impression carries its arm: the one that serves
			// its user now, when the client did not say.
			if arm := e.ArmOf(ev.User); arm != "" {
				ev.Arm = arm
				ev.Has |= eventlog.FArm
			}
		}
		normalize(&ev)
		if err := e.store.Admit(&ev, now, e.cfg.MaxLead); err != nil {
			if res.Rejected == 0 {
				res.Reason = fmt.Sprintf("event %d: %v", i, err)
			}
			res.Rejected++
			continue
		}
		good = append(good, ev)
	}
	res.Accepted = uint32(len(good))
	if len(good) == 0 {
		e.writeMu.Unlock()
		e.ctr.rejected.Add(uint64(res.Rejected))
		return res, nil
	}
	var next uint64
	if d := e.dur; d != nil {
		buf := appendBatch(nil, good, key, &res)
		var err error
		if _, next, err = d.events.Append(buf); err != nil {
			e.writeMu.Unlock()
			return e.failedEvents(events, err)
		}
	}
	db := e.applySampled(good)
	e.keys.put(key, ledgerEntry{kind: keyEvent, durable: next, accepted: res.Accepted, rejected: res.Rejected, reason: res.Reason})
	e.writeMu.Unlock()
	if d := e.dur; d != nil {
		if err := d.events.Sync(next); err != nil {
			return e.failedEvents(events, err)
		}
		d.afterWrite()
	}
	e.ctr.accepted.Add(uint64(res.Accepted))
	e.ctr.rejected.Add(uint64(res.Rejected))
	e.countEvents(good)
	e.observe(db)
	return res, nil
}

// replayedEvent answers a batch whose key the ledger holds.
func (e *Engine) replayedEvent(key string, ent ledgerEntry) (EventResult, error) {
	if ent.kind != keyEvent {
		return EventResult{}, badRequest("event", "key %q named another kind of write", key)
	}
	if d := e.dur; d != nil && ent.durable > 0 {
		if err := d.events.Sync(ent.durable); err != nil {
			return EventResult{}, e.logFailure(0, err)
		}
	}
	return EventResult{Accepted: ent.accepted, Rejected: ent.rejected, Reason: ent.reason, Replayed: true}, nil
}

func (e *Engine) failedEvents(events []eventlog.Event, err error) (EventResult, error) {
	err = e.logFailure(0, err)
	e.ctr.rejected.Add(uint64(len(events)))
	return EventResult{Rejected: uint32(len(events)), Reason: err.Error()}, err
}

// normalize clears what the log does not keep of an event (the fields its
// Has leaves out, an arm's invalid UTF-8), so that the event applied now
// is the event a replay of its line applies.
func normalize(ev *eventlog.Event) {
	h := ev.Has
	if h&eventlog.FUser == 0 {
		ev.User = 0
	}
	if h&eventlog.FReel == 0 {
		ev.Reel = 0
	}
	if h&eventlog.FAuthor == 0 {
		ev.Author = 0
	}
	if h&eventlog.FSession == 0 {
		ev.Session = 0
	}
	if h&eventlog.FPosition == 0 {
		ev.Position = 0
	}
	if h&eventlog.FProp == 0 {
		ev.Propensity = 0
	}
	if h&eventlog.FArm == 0 {
		ev.Arm = ""
	} else {
		ev.Arm = strings.ToValidUTF8(ev.Arm, "\uFFFD")
	}
	if h&eventlog.FSeconds == 0 {
		ev.Seconds = 0
	}
	if h&eventlog.FFraction == 0 {
		ev.Fraction = 0
	}
	ev.Line = 0
}

// applyEvents applies a batch of admitted events; the caller holds
// writeMu.
func (e *Engine) applyEvents(good []eventlog.Event) {
	// Admit passed them, and a logged event passed it when it was logged:
	// Apply refuses none.
	if err := e.store.Apply(good); err != nil && !features.IsApplyError(err) {
		e.cfg.Logger.Error("events not applied", "err", err)
	}
	now := e.cfg.Clock().UnixMilli()
	oldest := now - e.cfg.FreshWindow.Milliseconds()
	for i := range good {
		ev := &good[i]
		if ev.Type != eventlog.Upload || !e.owns(ev.Reel) || e.isDeleted(ev.Reel) {
			continue
		}
		e.fresh.add(ev.Reel, ev.Time, oldest, false)
		e.explore.add(ev.Reel)
	}
}
