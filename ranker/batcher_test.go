package ranker

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"
)

// fakeTimer is a MaxWait timer the test fires by hand.
type fakeTimer struct{ c chan time.Time }

func (f *fakeTimer) C() <-chan time.Time { return f.c }
func (f *fakeTimer) Stop() bool          { return true }

// fakeClock hands out fakeTimers and fires the newest on demand.
type fakeClock struct {
	mu     sync.Mutex
	timers []*fakeTimer
}

func (c *fakeClock) newTimer(time.Duration) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: make(chan time.Time, 1)}
	c.timers = append(c.timers, t)
	return t
}

// fire fires the newest timer, waiting for the batcher to have made one.
func (c *fakeClock) fire(t *testing.T) {
	t.Helper()
	waitFor(t, "a timer", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(c.timers) > 0
	})
	c.mu.Lock()
	defer c.mu.Unlock()
	c.timers[len(c.timers)-1].c <- time.Time{}
}

// recorder is a BatchScorer that scores on the CPU and records each
// batch's request counts; it can be made to fail or to hold a pass until
// released.
type recorder struct {
	cpu     *Scorer
	mu      sync.Mutex
	batches []int
	fail    error
	gate    chan struct{} // when set, each pass waits for a receive
	entered chan struct{} // when set, each pass signals its start
}

func (r *recorder) ScoreBatch(ins []Inputs, outs []*Scores) error {
	if r.entered != nil {
		r.entered <- struct{}{}
	}
	if r.gate != nil {
		<-r.gate
	}
	r.mu.Lock()
	r.batches = append(r.batches, len(ins))
	fail := r.fail
	r.mu.Unlock()
	if fail != nil {
		// Poison the outputs, as a failed device pass may leave them.
		for _, o := range outs {
			o.Probs = grow(o.Probs, 0)
		}
		return fail
	}
	return r.cpu.ScoreBatch(ins, outs)
}

func (r *recorder) Backend() string { return "recorder" }

func (r *recorder) sizes() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.batches)
}

func newRecorder(t *testing.T, m *Multitask) *recorder {
	t.Helper()
	s, err := m.NewScorer()
	if err != nil {
		t.Fatal(err)
	}
	return &recorder{cpu: s}
}

// waitFor polls a state, not a duration, so that the outcome does not
// depend on the machine's load; the deadline only bounds a broken test.
func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("waited a minute for %s", what)
		}
		runtime.Gosched()
		time.Sleep(100 * time.Microsecond)
	}
}

// waitQueued waits until b holds n queued requests.
func waitQueued(t *testing.T, b *Batcher, n int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d queued requests", n), func() bool { return b.Queued() == n })
}

// waitBatches waits until the recorder has run n batches.
func waitBatches(t *testing.T, r *recorder, n int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d batches", n), func() bool { return len(r.sizes()) == n })
}

type result struct {
	in  Inputs
	out Scores
	tm  BatchTiming
	err error
}

// submit scores each input in its own goroutine.
func submit(ctx context.Context, b *Batcher, ins []Inputs) (wait func() []result) {
	res := make([]result, len(ins))
	var wg sync.WaitGroup
	for i := range ins {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i].in = ins[i]
			res[i].tm, res[i].err = b.Score(ctx, ins[i], &res[i].out)
		}()
	}
	return func() []result { wg.Wait(); return res }
}

// sameAsCPU checks every result against the model scoring alone.
func sameAsCPU(t *testing.T, m *Multitask, res []result) {
	t.Helper()
	for i, r := range res {
		if r.err != nil {
			t.Fatalf("request %d: %v", i, r.err)
		}
		var want Scores
		if err := m.ScoreInputs(r.in, &want); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(r.out.Probs, want.Probs) || !slices.Equal(r.out.Score, want.Score) {
			t.Fatalf("request %d: batched scores differ from the CPU's", i)
		}
	}
}

func testBatcher(t *testing.T, cfg BatcherConfig) (*Multitask, *recorder, *fakeClock, *Batcher) {
	t.Helper()
	m := newTestModel(t, smallSpec(), 0, F32, 7)
	rec := newRecorder(t, m)
	clk := &fakeClock{}
	cfg.NewTimer = clk.newTimer
	if cfg.MaxWait == 0 {
		cfg.MaxWait = time.Hour // only the fake clock fires it
	}
	b, err := NewBatcher(m, rec, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return m, rec, clk, b
}

func randRequests(m *Multitask, sizes ...int) []Inputs {
	rng := rand.New(rand.NewPCG(uint64(len(sizes)), 3))
	ins := make([]Inputs, len(sizes))
	for i, n := range sizes {
		ins[i] = randInputs(m.Spec, n, rng)
	}
	return ins
}

func TestBatcherFullByRequests(t *testing.T) {
	m, rec, _, b := testBatcher(t, BatcherConfig{MaxRequests: 4})
	res := submit(context.Background(), b, randRequests(m, 3, 1, 17, 0))()
	sameAsCPU(t, m, res)
	if got := rec.sizes(); !slices.Equal(got, []int{4}) {
		t.Fatalf("batches %v, want one of 4 requests", got)
	}
	for _, r := range res {
		if r.tm.Requests != 4 || r.tm.Candidates != 21 || r.tm.Backend != "recorder" || r.tm.Fallback {
			t.Fatalf("timing %+v", r.tm)
		}
	}
	st := b.Stats()
	if st.Batches != 1 || st.Requests != 4 || st.Candidates != 21 || st.Fallbacks != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestBatcherTimerClosesBatch(t *testing.T) {
	m, rec, clk, b := testBatcher(t, BatcherConfig{MaxRequests: 100})
	wait := submit(context.Background(), b, randRequests(m, 5, 6, 7))
	waitQueued(t, b, 3)
	if got := rec.sizes(); len(got) != 0 {
		t.Fatalf("a batch ran before its timer: %v", got)
	}
	clk.fire(t)
	sameAsCPU(t, m, wait())
	if got := rec.sizes(); !slices.Equal(got, []int{3}) {
		t.Fatalf("batches %v, want [3]", got)
	}
}

func TestBatcherMaxCandidatesSplits(t *testing.T) {
	m, rec, _, b := testBatcher(t, BatcherConfig{MaxCandidates: 10})
	wait := submit(context.Background(), b, randRequests(m, 4, 4, 4))
	// 12 candidates queued close the batch at the first two (8); the third
	// waits for its own batch, which Flush runs.
	waitBatches(t, rec, 1)
	waitQueued(t, b, 1)
	b.Flush()
	sameAsCPU(t, m, wait())
	if got := rec.sizes(); !slices.Equal(got, []int{2, 1}) {
		t.Fatalf("batches %v, want [2 1]", got)
	}
}

func TestBatcherOversizedRequestAlone(t *testing.T) {
	m, rec, _, b := testBatcher(t, BatcherConfig{MaxCandidates: 10})
	res := submit(context.Background(), b, randRequests(m, 25))()
	sameAsCPU(t, m, res)
	if got := rec.sizes(); !slices.Equal(got, []int{1}) {
		t.Fatalf("batches %v, want [1]", got)
	}
}

func TestBatcherGathersDuringPass(t *testing.T) {
	m, rec, _, b := testBatcher(t, BatcherConfig{MaxRequests: 1, MaxWait: -1})
	rec.gate = make(chan struct{})
	rec.entered = make(chan struct{})
	ins := randRequests(m, 3, 3, 3, 3)
	wait1 := submit(context.Background(), b, ins[:1])
	<-rec.entered // the first pass is running
	wait2 := submit(context.Background(), b, ins[1:])
	waitQueued(t, b, 3)
	rec.gate <- struct{}{}
	sameAsCPU(t, m, wait1())
	for range 3 {
		<-rec.entered
		rec.gate <- struct{}{}
	}
	sameAsCPU(t, m, wait2())
	if got := rec.sizes(); !slices.Equal(got, []int{1, 1, 1, 1}) {
		t.Fatalf("batches %v, want four of one (MaxRequests 1)", got)
	}
}

func TestBatcherNoWaitBatchesWhatQueued(t *testing.T) {
	m, rec, _, b := testBatcher(t, BatcherConfig{MaxWait: -1})
	rec.gate = make(chan struct{})
	rec.entered = make(chan struct{})
	ins := randRequests(m, 2, 2, 2, 2, 2)
	wait1 := submit(context.Background(), b, ins[:1])
	<-rec.entered
	wait2 := submit(context.Background(), b, ins[1:])
	waitQueued(t, b, 4)
	rec.gate <- struct{}{}
	<-rec.entered
	rec.gate <- struct{}{}
	sameAsCPU(t, m, append(wait1(), wait2()...))
	if got := rec.sizes(); !slices.Equal(got, []int{1, 4}) {
		t.Fatalf("batches %v, want [1 4]", got)
	}
}

func TestBatcherFallbackOnBackendError(t *testing.T) {
	m, rec, _, b := testBatcher(t, BatcherConfig{MaxRequests: 2})
	rec.fail = errors.New("launch failed")
	res := submit(context.Background(), b, randRequests(m, 9, 11))()
	sameAsCPU(t, m, res)
	for _, r := range res {
		if !r.tm.Fallback || r.tm.Backend != "cpu" {
			t.Fatalf("timing %+v, want a CPU fallback", r.tm)
		}
	}
	st := b.Stats()
	if st.Fallbacks != 1 || st.Down || st.LastError != "launch failed" {
		t.Fatalf("stats %+v", st)
	}
	// A transient error leaves the backend in use.
	rec.fail = nil
	res = submit(context.Background(), b, randRequests(m, 1, 2))()
	sameAsCPU(t, m, res)
	if res[0].tm.Backend != "recorder" {
		t.Fatalf("backend %q after a transient error", res[0].tm.Backend)
	}
}

func TestBatcherBackendDown(t *testing.T) {
	m, rec, _, b := testBatcher(t, BatcherConfig{MaxRequests: 1})
	rec.fail = fmt.Errorf("%w: device lost", ErrBackendDown)
	sameAsCPU(t, m, submit(context.Background(), b, randRequests(m, 4))())
	rec.fail = nil
	res := submit(context.Background(), b, randRequests(m, 4, 5, 6))()
	sameAsCPU(t, m, res)
	if got := rec.sizes(); !slices.Equal(got, []int{1}) {
		t.Fatalf("the backend ran %v after it went down", got)
	}
	for _, r := range res {
		if r.tm.Backend != "cpu" || r.tm.Fallback {
			t.Fatalf("timing %+v, want the CPU as the backend", r.tm)
		}
	}
	if st := b.Stats(); !st.Down || st.Fallbacks != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestBatcherBadInputFailsAlone(t *testing.T) {
	m, rec, _, b := testBatcher(t, BatcherConfig{MaxRequests: 2})
	ins := randRequests(m, 3, 3, 3)
	ins[1].Reel[4] = float32(math.NaN())
	ins[2].Cross = ins[2].Cross[:2] // wrong length
	for _, in := range ins[1:] {
		if _, err := b.Score(context.Background(), in, new(Scores)); !errors.Is(err, ErrBadInput) {
			t.Fatalf("err = %v, want ErrBadInput", err)
		}
	}
	if _, err := b.Score(context.Background(), ins[0], nil); !errors.Is(err, ErrBadInput) {
		t.Fatalf("nil output: err = %v", err)
	}
	if b.Queued() != 0 || len(rec.sizes()) != 0 {
		t.Fatal("a bad input entered a batch")
	}
}

func TestBatcherCancelWhileQueued(t *testing.T) {
	m, rec, _, b := testBatcher(t, BatcherConfig{MaxRequests: 3})
	ctx, cancel := context.WithCancel(context.Background())
	ins := randRequests(m, 2, 3, 4)
	waitC := submit(ctx, b, ins[:1])
	waitQueued(t, b, 1)
	cancel()
	if r := waitC()[0]; !errors.Is(r.err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", r.err)
	}
	waitQueued(t, b, 0)
	wait := submit(context.Background(), b, ins[1:])
	waitQueued(t, b, 2)
	b.Flush()
	sameAsCPU(t, m, wait())
	if got := rec.sizes(); !slices.Equal(got, []int{2}) {
		t.Fatalf("batches %v, want [2] without the withdrawn request", got)
	}
	if st := b.Stats(); st.Cancelled != 1 || st.Requests != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestBatcherCloseDrains(t *testing.T) {
	m, rec, _, b := testBatcher(t, BatcherConfig{MaxRequests: 10})
	wait := submit(context.Background(), b, randRequests(m, 2, 3))
	waitQueued(t, b, 2)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	sameAsCPU(t, m, wait())
	if got := rec.sizes(); !slices.Equal(got, []int{2}) {
		t.Fatalf("batches %v, want the queued two drained", got)
	}
	if _, err := b.Score(context.Background(), randRequests(m, 1)[0], new(Scores)); !errors.Is(err, ErrBatcherClosed) {
		t.Fatalf("after Close: err = %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestBatcherCPUOnly(t *testing.T) {
	m := newTestModel(t, smallSpec(), 2, F32, 9) // an MMoE
	b, err := NewBatcher(m, nil, BatcherConfig{MaxWait: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	res := submit(context.Background(), b, randRequests(m, 1, 0, 33, 8, 100))()
	sameAsCPU(t, m, res)
	if res[0].tm.Backend != "cpu" || b.Stats().Primary != "cpu" {
		t.Fatalf("backend %q", res[0].tm.Backend)
	}
}

func TestBatcherRealTimer(t *testing.T) {
	// The default clock: a lone request runs after MaxWait, whatever the
	// machine's load (only its latency depends on it).
	m := newTestModel(t, smallSpec(), 0, F32, 7)
	b, err := NewBatcher(m, nil, BatcherConfig{MaxWait: time.Millisecond, MaxRequests: 64})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	sameAsCPU(t, m, submit(context.Background(), b, randRequests(m, 7))())
}

func TestBatcherManyConcurrent(t *testing.T) {
	m, _, _, b := testBatcher(t, BatcherConfig{MaxRequests: 7, MaxCandidates: 300})
	sizes := make([]int, 50)
	for i := range sizes {
		sizes[i] = (i * 37) % 90
	}
	wait := submit(context.Background(), b, randRequests(m, sizes...))
	done := make(chan []result)
	go func() { done <- wait() }()
	for {
		select {
		case res := <-done:
			sameAsCPU(t, m, res)
			if st := b.Stats(); st.Requests != 50 {
				t.Fatalf("stats %+v", st)
			}
			return
		default:
			b.Flush() // whatever is queued now, so no timer is needed
			runtime.Gosched()
		}
	}
}

func TestScorerScoreBatchChecks(t *testing.T) {
	m := newTestModel(t, smallSpec(), 0, F32, 7)
	s, err := m.NewScorer()
	if err != nil {
		t.Fatal(err)
	}
	ins := randRequests(m, 3, 4)
	if err := s.ScoreBatch(ins, []*Scores{new(Scores)}); !errors.Is(err, ErrBadInput) {
		t.Fatalf("short outputs: %v", err)
	}
	if err := s.ScoreBatch(ins, []*Scores{new(Scores), nil}); !errors.Is(err, ErrBadInput) {
		t.Fatalf("nil output: %v", err)
	}
}
