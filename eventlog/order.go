package eventlog

import (
	"fmt"
	"time"
)

// heldEvent is an event in the reorder buffer.
type heldEvent struct {
	ev        Event
	start     int64 // offset of its line
	maxBefore int64 // the order stage's largest ts before its line
}

// orderer checks ts order and releases events in (ts, line) order.
//
// An accepted event has ts >= maxTs - tol, and maxTs only grows, so once
// an event's ts is at or below maxTs - tol no later line can sort before
// it: it is released. In a sorted log every event goes to the back of q,
// which stays sorted, and release takes a prefix of it; only events that
// arrive behind the back of q go to the heap, and release merges the two.
type orderer struct {
	tol     int64 // milliseconds; negative: no ordering
	maxTs   int64
	q       []heldEvent // sorted by (ts, line)
	qh      int         // q[qh:] is held
	heap    []heldEvent // min-heap by (ts, line)
	skipTo  [2]int64    // events at or before (ts, line) were delivered by an earlier read
	readTo  int64       // ... if their line is before this one, which that read had not seen
	skipSet bool

	lastTime, lastLine int64 // the last event delivered
}

func (o *orderer) init(tol time.Duration) {
	if tol < 0 {
		o.tol = -1
		return
	}
	o.tol = int64(tol / time.Millisecond)
}

func (o *orderer) resume(c *Checkpoint) {
	o.maxTs = c.MaxTime
	o.lastTime, o.lastLine = c.LastTime, c.LastLine
	if c.LastLine > 0 {
		o.skipTo = [2]int64{c.LastTime, c.LastLine}
		o.readTo = c.ReadTo
		if o.readTo <= 0 {
			o.readTo = 1<<63 - 1 // a checkpoint from before ReadTo existed
		}
		o.skipSet = true
	}
}

func keyLess(a, b *Event) bool {
	return a.Time < b.Time || a.Time == b.Time && a.Line < b.Line
}

// push takes a good event whose line starts at offset start. It returns
// false with a reason if the event is out of order; without ordering it
// appends the event to out at once.
func (o *orderer) push(e *Event, start int64, out *[]Event) (reason, detail string, ok bool) {
	if o.tol < 0 {
		o.deliver(e, out)
		return "", "", true
	}
	if e.Time < o.maxTs-o.tol {
		return ReasonOutOfOrder, fmt.Sprintf("ts %d is %d ms before the latest ts %d (tolerance %d ms)",
			e.Time, o.maxTs-e.Time, o.maxTs, o.tol), false
	}
	before := o.maxTs
	if e.Time > o.maxTs {
		o.maxTs = e.Time
	}
	if o.skipSet && e.Line < o.readTo {
		if e.Time < o.skipTo[0] || e.Time == o.skipTo[0] && e.Line <= o.skipTo[1] {
			return "", "", true // delivered by the read this one resumes
		}
	}
	if o.qh == len(o.q) {
		o.q, o.qh = o.q[:0], 0
	}
	if o.qh == len(o.q) || !keyLess(e, &o.q[len(o.q)-1].ev) {
		o.q = append(o.q, heldEvent{ev: *e, start: start, maxBefore: before})
		return "", "", true
	}
	o.heapPush(heldEvent{ev: *e, start: start, maxBefore: before})
	return "", "", true
}

func (o *orderer) deliver(e *Event, out *[]Event) {
	*out = append(*out, *e)
	o.lastTime, o.lastLine = e.Time, e.Line
}

// release moves the events no later line can overtake to out.
func (o *orderer) release(out *[]Event) {
	if o.tol < 0 {
		return
	}
	o.releaseUpTo(o.maxTs-o.tol, out)
}

// releaseAll empties the buffer, at the end of the log.
func (o *orderer) releaseAll(out *[]Event) {
	if o.tol < 0 {
		return
	}
	o.releaseUpTo(1<<63-1, out)
}

func (o *orderer) releaseUpTo(limit int64, out *[]Event) {
	if len(o.heap) == 0 {
		// The sorted fast path: a prefix of q.
		n := o.qh
		for n < len(o.q) && o.q[n].ev.Time <= limit {
			*out = append(*out, o.q[n].ev)
			n++
		}
		if n > o.qh {
			last := &o.q[n-1].ev
			o.lastTime, o.lastLine = last.Time, last.Line
		}
		o.qh = n
	} else {
		for {
			fromQ := o.qh < len(o.q)
			if fromQ && len(o.heap) > 0 && keyLess(&o.heap[0].ev, &o.q[o.qh].ev) {
				fromQ = false
			}
			switch {
			case fromQ && o.q[o.qh].ev.Time <= limit:
				o.deliver(&o.q[o.qh].ev, out)
				o.qh++
				continue
			case !fromQ && len(o.heap) > 0 && o.heap[0].ev.Time <= limit:
				o.deliver(&o.heap[0].ev, out)
				o.heapPop()
				continue
			}
			break
		}
	}
	if o.qh == len(o.q) {
		o.q, o.qh = o.q[:0], 0
	} else if o.qh > 4096 && o.qh > len(o.q)/2 {
		n := copy(o.q, o.q[o.qh:])
		o.q, o.qh = o.q[:n], 0
	}
}

// earliestHeld returns the held event of the earliest line.
func (o *orderer) earliestHeld() (*heldEvent, bool) {
	var best *heldEvent
	if o.qh < len(o.q) {
		best = &o.q[o.qh]
	}
	for i := range o.heap {
		if best == nil || o.heap[i].ev.Line < best.ev.Line {
			best = &o.heap[i]
		}
	}
	return best, best != nil
}

func (o *orderer) heapPush(h heldEvent) {
	o.heap = append(o.heap, h)
	for i := len(o.heap) - 1; i > 0; {
		p := (i - 1) / 2
		if !keyLess(&o.heap[i].ev, &o.heap[p].ev) {
			break
		}
		o.heap[i], o.heap[p] = o.heap[p], o.heap[i]
		i = p
	}
}

func (o *orderer) heapPop() {
	n := len(o.heap) - 1
	o.heap[0] = o.heap[n]
	o.heap = o.heap[:n]
	for i := 0; ; {
		l, m := 2*i+1, i
		if l < n && keyLess(&o.heap[l].ev, &o.heap[m].ev) {
			m = l
		}
		if l+1 < n && keyLess(&o.heap[l+1].ev, &o.heap[m].ev) {
			m = l + 1
		}
		if m == i {
			break
		}
		o.heap[i], o.heap[m] = o.heap[m], o.heap[i]
		i = m
	}
}
