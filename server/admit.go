package server

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reelrank/reelrank/wire"
)

// Admission: MaxInFlight requests run at once; the others wait in a
// bounded queue while their predicted wait fits the budget they have left,
// and are answered Overloaded at once when it does not. The queue is one
// FIFO per connection, and a freed slot goes to the connections in turn
// (round robin), so that a connection that pipelines many requests cannot
// starve another's single one.
//
// The prediction: the work ahead of a request, from a moving average of
// the service time of each request kind, shared out over MaxInFlight
// slots. Under round robin, the k-th request queued on a connection waits
// for its own k-1 and for at most k of each other connection with
// requests queued (never more than all that is queued), and for the
// requests running to finish: about half their service time each.

// Seeds of the service-time estimates, before any request of the kind has
// been served: on the high side, so that a cold server's first burst is
// not promised waits it cannot keep.
var serviceSeed = [numKindLabels]time.Duration{
	kRecommend: 5 * time.Millisecond,
	kScore:     2 * time.Millisecond,
	kSearch:    2 * time.Millisecond,
	kUpsert:    time.Millisecond,
	kDelete:    time.Millisecond,
	kEvent:     2 * time.Millisecond,
}

// ewmaShift sets the weight of a new observation in an estimate: 1/8, as
// TCP weighs a new round-trip time.
const ewmaShift = 3

// A task is an admitted request: queued, or running in a worker.
type task struct {
	c        *conn
	env      *wire.Envelope
	readAt   time.Time
	deadline time.Time // zero: none
	kind     int       // kindIndex of the request
	cost     int64     // the estimate of its service time when admitted, in ns
}

// taskQueue is a connection's FIFO of queued tasks, a ring that grows by
// doubling up to the connection's bound and is kept while small, so that
// queueing does not allocate in the steady state. Guarded by the
// scheduler's lock, as are the links of the ring of connections.
type taskQueue struct {
	buf        []task
	head, n    int
	prev, next *conn // in the scheduler's turn, while n > 0
}

func (q *taskQueue) push(t task, limit int) {
	if q.n == len(q.buf) {
		grown := make([]task, min(max(4, 2*len(q.buf)), limit))
		for i := range q.n {
			grown[i] = q.buf[(q.head+i)%len(q.buf)]
		}
		q.buf, q.head = grown, 0
	}
	q.buf[(q.head+q.n)%len(q.buf)] = t
	q.n++
}

func (q *taskQueue) pop() task {
	t := q.buf[q.head]
	q.buf[q.head] = task{}
	q.head = (q.head + 1) % len(q.buf)
	q.n--
	if q.n == 0 {
		q.head = 0
		if len(q.buf) > keptQueue {
			q.buf = nil
		}
	}
	return t
}

// keptQueue is the largest ring an empty connection keeps.
const keptQueue = 32

// The outcomes of admission.
const (
	runNow = iota
	queued
	expired // the budget was spent before admission (reading and decoding)
	shedQueueFull
	shedConnQueueFull
	shedWait
	numShedLabels = shedWait - shedQueueFull + 1
)

var shedLabels = [numShedLabels]string{"queue_full", "connection_queue_full", "predicted_wait"}

// verdict is admission's answer, and for a shed request why.
type verdict struct {
	outcome int
	wait    time.Duration // the predicted wait
	budget  time.Duration // the budget left
	queued  int           // requests queued, or the connection's
}

// scheduler holds the admission state.
type scheduler struct {
	maxRun, maxQueue, maxConnQueue int

	mu          sync.Mutex
	running     int
	queued      int
	queuedCost  int64 // ns, of the queued tasks' estimates
	runningCost int64 // ns, of the running tasks' estimates
	turn        *conn // the connection whose request runs next; the ring goes on by .q.next
	ready       int   // connections in the ring
	est         [numKindLabels]int64

	// Mirrors, for Stats and the metrics, read without the lock.
	inFlight atomic.Int64
	inQueue  atomic.Int64
}

func newScheduler(cfg *Config) *scheduler {
	q := &scheduler{maxRun: cfg.MaxInFlight, maxQueue: max(cfg.MaxQueue, 0), maxConnQueue: cfg.MaxConnQueue}
	for k, d := range serviceSeed {
		q.est[k] = max(int64(d), int64(time.Microsecond))
	}
	return q
}

// estimate returns the service-time estimate of a kind.
func (q *scheduler) estimate(kind int) time.Duration {
	q.mu.Lock()
	defer q.mu.Unlock()
	return time.Duration(q.est[kind])
}

// admit decides a request's fate: run now (it holds a slot), queued on
// its connection, expired already, or shed.
func (q *scheduler) admit(t *task, now time.Time) verdict {
	if !t.deadline.IsZero() && !now.Before(t.deadline) {
		return verdict{outcome: expired}
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	t.cost = q.est[t.kind]
	if q.running < q.maxRun {
		// A slot is free, so nothing waits (a freed slot takes the next
		// queued request at once).
		q.running++
		q.inFlight.Store(int64(q.running))
		q.runningCost += t.cost
		return verdict{outcome: runNow}
	}
	c := t.c
	switch {
	case q.queued >= q.maxQueue:
		return verdict{outcome: shedQueueFull, queued: q.queued}
	case c.q.n >= q.maxConnQueue:
		return verdict{outcome: shedConnQueueFull, queued: c.q.n}
	}
	wait := q.predictLocked(c)
	if !t.deadline.IsZero() {
		if left := t.deadline.Sub(now); wait+time.Duration(t.cost) > left {
			return verdict{outcome: shedWait, wait: wait, budget: left, queued: q.queued}
		}
	}
	c.q.push(*t, q.maxConnQueue)
	if c.q.n == 1 {
		q.linkLocked(c)
	}
	q.queued++
	q.inQueue.Store(int64(q.queued))
	q.queuedCost += t.cost
	return verdict{outcome: queued, wait: wait}
}

// predictLocked returns the predicted wait of a request queued next on c.
func (q *scheduler) predictLocked(c *conn) time.Duration {
	k := int64(c.q.n) + 1
	ready := int64(q.ready) // connections other than c with requests queued
	if c.q.n > 0 {
		ready--
	}
	ahead := k - 1 + min(int64(q.queued-c.q.n), k*ready)
	var avg int64
	if q.queued > 0 {
		avg = q.queuedCost / int64(q.queued)
	}
	return time.Duration((ahead*avg + q.runningCost/2) / int64(q.maxRun))
}

// linkLocked puts c last in the turn, before the connection whose turn is
// next.
func (q *scheduler) linkLocked(c *conn) {
	q.ready++
	if q.turn == nil {
		c.q.prev, c.q.next = c, c
		q.turn = c
		return
	}
	last := q.turn.q.prev
	c.q.prev, c.q.next = last, q.turn
	last.q.next = c
	q.turn.q.prev = c
}

// unlinkLocked takes c out of the turn.
func (q *scheduler) unlinkLocked(c *conn) {
	q.ready--
	if c.q.next == c {
		q.turn = nil
	} else {
		c.q.prev.q.next = c.q.next
		c.q.next.q.prev = c.q.prev
		if q.turn == c {
			q.turn = c.q.next
		}
	}
	c.q.prev, c.q.next = nil, nil
}

// done ends a task that held a slot, folds its service time into the
// estimate of its kind (took is 0 when the handler was not called), and
// returns the next task to run in the same slot, if one is queued.
func (q *scheduler) done(t *task, took time.Duration) (task, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.runningCost -= t.cost
	if took > 0 {
		e := &q.est[t.kind]
		*e = max(*e+(int64(took)-*e)>>ewmaShift, int64(time.Microsecond))
	}
	if q.turn == nil {
		q.running--
		q.inFlight.Store(int64(q.running))
		return task{}, false
	}
	c := q.turn
	next := c.q.pop()
	if c.q.n == 0 {
		q.unlinkLocked(c)
	} else {
		q.turn = c.q.next
	}
	q.queued--
	q.inQueue.Store(int64(q.queued))
	q.queuedCost -= next.cost
	q.runningCost += next.cost
	return next, true
}

// drop forgets the tasks a closed connection still has queued.
func (q *scheduler) drop(c *conn) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := c.q.n
	for c.q.n > 0 {
		t := c.q.pop()
		q.queuedCost -= t.cost
	}
	if n > 0 {
		q.unlinkLocked(c)
		q.queued -= n
		q.inQueue.Store(int64(q.queued))
	}
	c.q.buf = nil
	return n
}

// shedError is the answer to a shed request.
func (s *Server) shedError(v verdict) *wire.Error {
	var msg string
	switch v.outcome {
	case shedQueueFull:
		if s.cfg.MaxQueue < 0 {
			msg = fmt.Sprintf("server: overloaded: %d requests in flight, the limit, and no queue", s.cfg.MaxInFlight)
		} else {
			msg = fmt.Sprintf("server: overloaded: %d requests in flight and %d queued, the limits", s.cfg.MaxInFlight, v.queued)
		}
	case shedConnQueueFull:
		msg = fmt.Sprintf("server: overloaded: %d requests of this connection queued, the limit", v.queued)
	default:
		msg = fmt.Sprintf("server: overloaded: predicted wait %v behind %d queued and %d in flight, over the budget left of %v",
			v.wait.Round(time.Microsecond), v.queued, s.cfg.MaxInFlight, v.budget.Round(time.Microsecond))
	}
	return &wire.Error{Code: wire.Overloaded, Message: msg}
}
