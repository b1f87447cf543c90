package ranker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// BatcherConfig tunes a [Batcher]. The zero value of a field means its
// default.
type BatcherConfig struct {
	// MaxCandidates closes a batch once its requests hold this many
	// candidates (default 262,144: 256 requests of about a thousand). A
	// request alone over the bound runs as a batch of its own.
	MaxCandidates int
	// MaxRequests closes a batch once it holds this many requests
	// (default 256).
	MaxRequests int
	// MaxWait is the longest the first request of a batch waits for
	// others before the batch runs (default 1 ms; negative: no wait, a
	// batch is whatever queued while the previous one ran).
	MaxWait time.Duration
	// NewTimer makes the MaxWait timer; nil means the time package's.
	// Tests pass a fake one to fire by hand.
	NewTimer func(time.Duration) Timer
}

// Timer is the part of *time.Timer a Batcher uses.
type Timer interface {
	C() <-chan time.Time
	Stop() bool
}

type realTimer struct{ t *time.Timer }

func (r realTimer) C() <-chan time.Time { return r.t.C }
func (r realTimer) Stop() bool          { return r.t.Stop() }

func (c BatcherConfig) withDefaults() BatcherConfig {
	if c.MaxCandidates <= 0 {
		c.MaxCandidates = 256 << 10
	}
	if c.MaxRequests <= 0 {
		c.MaxRequests = 256
	}
	if c.MaxWait == 0 {
		c.MaxWait = time.Millisecond
	}
	if c.NewTimer == nil {
		c.NewTimer = func(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }
	}
	return c
}

// BatchTiming says how one request fared in a [Batcher].
type BatchTiming struct {
	// Wait is how long the request queued before its batch started.
	Wait time.Duration
	// Pass is the batch's whole pass on the backend that scored it
	// (transfers and kernels on a GPU), shared by every request in it.
	Pass time.Duration
	// Backend names what scored the batch ("cpu" after a fallback).
	Backend string
	// Requests and Candidates are the batch's.
	Requests, Candidates int
	// Fallback says the primary backend failed on the batch and the CPU
	// scored it.
	Fallback bool
}

// BatcherStats are a Batcher's cumulative counters.
type BatcherStats struct {
	Batches, Requests, Candidates uint64
	// Fallbacks counts batches the primary backend failed and the CPU
	// scored; Cancelled the requests whose context ended while queued.
	Fallbacks, Cancelled uint64
	// Pass is the time spent in passes, on whichever backend ran them.
	Pass time.Duration
	// Primary names the primary backend; Down says it failed with
	// ErrBackendDown and the CPU scores everything since; LastError is
	// its last error ("" for none).
	Primary   string
	Down      bool
	LastError string
}

// item states.
const (
	queued int32 = iota
	running
	cancelled
)

type item struct {
	in     Inputs
	out    *Scores
	state  atomic.Int32
	queued time.Time
	timing BatchTiming
	err    error
	done   chan struct{}
}

// Batcher gathers the candidate sets of concurrent requests into batches
// of up to MaxRequests requests or MaxCandidates candidates, waiting at
// most MaxWait after a batch's first request, and scores each batch in one
// pass of its primary [BatchScorer] (a GPU). When the primary fails on a
// batch the batch is scored on the CPU, so a request fails only for its
// own bad input; when the primary reports [ErrBackendDown] the Batcher
// scores on the CPU from then on. Batches run one at a time, in the order
// their requests came; requests arriving during a pass form the next
// batch.
//
// A Batcher is safe for concurrent use. Close it to drain it.
type Batcher struct {
	cfg     BatcherConfig
	primary BatchScorer
	cpu     *Scorer
	check   *Scorer // only reads the plan: safe from any goroutine

	mu       sync.Mutex
	queue    []*item
	cands    int
	flushing bool
	closed   bool
	wake     chan struct{}
	exited   chan struct{}

	down      atomic.Bool
	lastErr   atomic.Pointer[string]
	batches   atomic.Uint64
	requests  atomic.Uint64
	cands64   atomic.Uint64
	fallbacks atomic.Uint64
	cancels   atomic.Uint64
	passNanos atomic.Int64

	// scratch of the loop goroutine
	ins  []Inputs
	outs []*Scores
}

// NewBatcher returns a Batcher scoring m's requests on primary, with the
// CPU as the fallback. A nil primary scores every batch on the CPU.
func NewBatcher(m *Multitask, primary BatchScorer, cfg BatcherConfig) (*Batcher, error) {
	cpu, err := m.NewScorer()
	if err != nil {
		return nil, err
	}
	check, err := m.NewScorer()
	if err != nil {
		return nil, err
	}
	if primary == nil {
		primary = cpu
	}
	b := &Batcher{
		cfg: cfg.withDefaults(), primary: primary, cpu: cpu, check: check,
		wake: make(chan struct{}, 1), exited: make(chan struct{}),
	}
	go b.loop()
	return b, nil
}

// Score scores one request's candidates into out as part of a batch, and
// says how its batch went. A bad input fails at once with ErrBadInput; a
// context that ends while the request queues withdraws it (once its batch
// has started, Score waits for the batch). After Close it returns
// ErrBatcherClosed.
func (b *Batcher) Score(ctx context.Context, in Inputs, out *Scores) (BatchTiming, error) {
	if out == nil {
		return BatchTiming{}, fmt.Errorf("%w: nil output", ErrBadInput)
	}
	if err := b.check.Check(in); err != nil {
		return BatchTiming{}, err
	}
	if err := ctx.Err(); err != nil {
		return BatchTiming{}, fmt.Errorf("ranker: batch: %w", err)
	}
	it := &item{in: in, out: out, queued: time.Now(), done: make(chan struct{})}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return BatchTiming{}, ErrBatcherClosed
	}
	b.queue = append(b.queue, it)
	b.cands += in.N
	b.mu.Unlock()
	b.poke()

	select {
	case <-it.done:
	case <-ctx.Done():
		if it.state.CompareAndSwap(queued, cancelled) {
			b.cancels.Add(1)
			b.poke() // the loop drops it from the queue
			return BatchTiming{}, fmt.Errorf("ranker: batch: withdrawn while queued: %w", ctx.Err())
		}
		<-it.done // its batch is running: out is being written
	}
	return it.timing, it.err
}

// Flush makes the queued requests run now, without waiting for MaxWait.
func (b *Batcher) Flush() {
	b.mu.Lock()
	if len(b.queue) > 0 {
		b.flushing = true
	}
	b.mu.Unlock()
	b.poke()
}

// Queued returns how many requests wait for a batch (cancelled ones
// included until the loop drops them).
func (b *Batcher) Queued() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.queue)
}

// Close stops taking requests, scores those already queued, and waits
// for the last pass. It is safe to call more than once.
func (b *Batcher) Close() error {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.poke()
	<-b.exited
	return nil
}

// Primary returns the primary backend (the CPU Scorer when there is
// none): its owner closes it after Close.
func (b *Batcher) Primary() BatchScorer { return b.primary }

// Stats returns the counters.
func (b *Batcher) Stats() BatcherStats {
	s := BatcherStats{
		Batches: b.batches.Load(), Requests: b.requests.Load(), Candidates: b.cands64.Load(),
		Fallbacks: b.fallbacks.Load(), Cancelled: b.cancels.Load(),
		Pass:    time.Duration(b.passNanos.Load()),
		Primary: b.primary.Backend(), Down: b.down.Load(),
	}
	if e := b.lastErr.Load(); e != nil {
		s.LastError = *e
	}
	return s
}

func (b *Batcher) poke() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// ready says the open batch should run now. b.mu is held.
func (b *Batcher) ready(expired bool) bool {
	return expired || b.closed || b.flushing || b.cfg.MaxWait < 0 ||
		len(b.queue) >= b.cfg.MaxRequests || b.cands >= b.cfg.MaxCandidates
}

// dropCancelled removes withdrawn requests from the queue. b.mu is held.
func (b *Batcher) dropCancelled() {
	b.queue = slices.DeleteFunc(b.queue, func(it *item) bool {
		if it.state.Load() == cancelled {
			b.cands -= it.in.N
			return true
		}
		return false
	})
}

func (b *Batcher) loop() {
	defer close(b.exited)
	for {
		b.mu.Lock()
		b.dropCancelled()
		for len(b.queue) == 0 {
			if b.closed {
				b.mu.Unlock()
				return
			}
			b.flushing = false
			b.mu.Unlock()
			<-b.wake
			b.mu.Lock()
			b.dropCancelled()
		}
		// A batch is open: wait until it is full, flushed, closed or due.
		var t Timer
		expired := false
		for len(b.queue) > 0 && !b.ready(expired) {
			if t == nil {
				t = b.cfg.NewTimer(b.cfg.MaxWait)
			}
			b.mu.Unlock()
			select {
			case <-t.C():
				expired = true
			case <-b.wake:
			}
			b.mu.Lock()
			b.dropCancelled()
		}
		if t != nil {
			t.Stop()
		}
		batch := b.take()
		if len(b.queue) == 0 {
			b.flushing = false
		}
		b.mu.Unlock()
		if len(batch) > 0 {
			b.run(batch)
		}
	}
}

// take removes the next batch from the queue: requests in order while
// they fit the bounds, at least one. b.mu is held.
func (b *Batcher) take() []*item {
	var batch []*item
	n := 0
	i := 0
	for ; i < len(b.queue) && len(batch) < b.cfg.MaxRequests; i++ {
		it := b.queue[i]
		if len(batch) > 0 && n+it.in.N > b.cfg.MaxCandidates {
			break
		}
		if !it.state.CompareAndSwap(queued, running) {
			b.cands -= it.in.N // withdrawn just now
			continue
		}
		batch = append(batch, it)
		n += it.in.N
	}
	b.queue = slices.Delete(b.queue, 0, i)
	b.cands -= n
	return batch
}

// run scores one batch and hands each request its result.
func (b *Batcher) run(batch []*item) {
	start := time.Now()
	b.ins, b.outs = b.ins[:0], b.outs[:0]
	n := 0
	for _, it := range batch {
		b.ins = append(b.ins, it.in)
		b.outs = append(b.outs, it.out)
		n += it.in.N
	}
	backend, fallback := b.primary.Backend(), false
	var err error
	if b.down.Load() || b.primary == BatchScorer(b.cpu) {
		backend = b.cpu.Backend()
		err = b.cpu.ScoreBatch(b.ins, b.outs)
	} else if err = b.primary.ScoreBatch(b.ins, b.outs); err != nil && !errors.Is(err, ErrBadInput) {
		msg := err.Error()
		b.lastErr.Store(&msg)
		if errors.Is(err, ErrBackendDown) {
			b.down.Store(true)
		}
		b.fallbacks.Add(1)
		backend, fallback = b.cpu.Backend(), true
		err = b.cpu.ScoreBatch(b.ins, b.outs)
	}
	pass := time.Since(start)
	b.batches.Add(1)
	b.requests.Add(uint64(len(batch)))
	b.cands64.Add(uint64(n))
	b.passNanos.Add(int64(pass))
	for _, it := range batch {
		it.timing = BatchTiming{
			Wait: start.Sub(it.queued), Pass: pass, Backend: backend,
			Requests: len(batch), Candidates: n, Fallback: fallback,
		}
		if err != nil {
			it.err = fmt.Errorf("ranker: batch of %d requests on %s: %w", len(batch), backend, err)
		}
		close(it.done)
	}
	clear(b.ins)
	clear(b.outs)
}
