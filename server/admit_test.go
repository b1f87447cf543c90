package server

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reelrank/reelrank/wire"
)

// gatedHandler's Recommend reports each call's user on order, then waits
// for a token on gate, for release to close, or for its context.
func gatedHandler() (h *fakeHandler, order chan int64, gate, release chan struct{}) {
	order = make(chan int64, 1024)
	gate, release = make(chan struct{}), make(chan struct{})
	h = &fakeHandler{}
	h.recommend = func(ctx context.Context, req *wire.RecommendRequest) (*wire.RecommendResponse, error) {
		order <- req.User
		select {
		case <-gate:
		case <-release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return recommendFor(req), nil
	}
	return h, order, gate, release
}

// Beyond MaxInFlight, requests wait in the queue and are served when a
// slot frees; Stats are answered meanwhile, ahead of them.
func TestQueue(t *testing.T) {
	h, release, inside := blockingHandler()
	s, addr := startServer(t, Config{MaxInFlight: 2}, h)
	a, b := dial(t, addr), dial(t, addr)
	a.send(1, 0, &wire.RecommendRequest{User: 1, N: 1})
	b.send(1, 0, &wire.RecommendRequest{User: 2, N: 1})
	waitFor(t, "both slots to be taken", func() bool { return inside.Load() == 2 })
	c := dial(t, addr)
	for id := range uint64(10) {
		c.send(id+10, time.Second, &wire.SearchRequest{Vector: []float32{1}, K: 1})
	}
	c.send(99, 0, &wire.StatsRequest{})
	// The searches wait, so the first answer is the Stats'.
	env := c.recv()
	st, ok := env.Body.(*wire.StatsResponse)
	if !ok || env.RequestID != 99 {
		t.Fatalf("first answer: id %d %+v, want the stats", env.RequestID, env.Body)
	}
	if st.InFlight != 2 || s.adm.inQueue.Load() != 10 {
		t.Errorf("%d in flight and %d queued, want 2 and 10", st.InFlight, s.adm.inQueue.Load())
	}
	close(release)
	seen := map[uint64]bool{}
	for range 10 {
		env := c.recv()
		if env.Body.Kind() != wire.KindSearchResponse || seen[env.RequestID] {
			t.Fatalf("queued request %d answered %+v", env.RequestID, env.Body)
		}
		seen[env.RequestID] = true
	}
	for _, cc := range []*tconn{a, b} {
		if env := cc.recv(); env.Body.Kind() != wire.KindRecommendResponse {
			t.Errorf("admitted request: %+v", env.Body)
		}
	}
	waitFor(t, "the slots to be free", func() bool { return s.adm.inFlight.Load() == 0 })
	if n := s.adm.inQueue.Load(); n != 0 {
		t.Errorf("%d queued after every answer", n)
	}
}

// 64 requests pipelined on one connection to an idle server are all
// served: what exceeds MaxInFlight waits rather than being turned away.
func TestBurstOnIdleServer(t *testing.T) {
	s, addr := startServer(t, Config{MaxInFlight: 16}, &fakeHandler{})
	c := dial(t, addr)
	const burst = 64
	var batch []byte
	var enc wire.Encoder
	for i := range burst {
		f, err := enc.EncodeFrame(&wire.Envelope{RequestID: uint64(i + 1), Timeout: 5 * time.Second,
			Body: &wire.RecommendRequest{User: int64(i), N: 10}})
		if err != nil {
			t.Fatal(err)
		}
		batch = append(batch, f...)
	}
	c.write(batch)
	for range burst {
		env := c.recv()
		if r, ok := env.Body.(*wire.RecommendResponse); !ok || r.Items[0].Reel != int64(env.RequestID-1)*100 {
			t.Fatalf("request %d answered %+v", env.RequestID, env.Body)
		}
	}
	if n := s.Stats(t.Context()).Errors[wire.Overloaded]; n != 0 {
		t.Errorf("%d overloaded answers to a burst on an idle server", n)
	}
}

// The queue's bounds: a connection's share, then the whole queue; what is
// beyond them is answered Overloaded at once, ahead of the queued
// requests' answers.
func TestQueueBounds(t *testing.T) {
	h, release, inside := blockingHandler()
	s, addr := startServer(t, Config{MaxInFlight: 1, MaxQueue: 4, MaxConnQueue: 3}, h)
	a := dial(t, addr)
	a.send(1, 0, &wire.RecommendRequest{User: 1, N: 1})
	waitFor(t, "the slot to be taken", func() bool { return inside.Load() == 1 })

	c, d := dial(t, addr), dial(t, addr)
	for id := range uint64(5) {
		c.send(id+1, time.Second, &wire.SearchRequest{Vector: []float32{1}, K: 1})
	}
	for _, id := range []uint64{4, 5} {
		if e := c.expectError(id, wire.Overloaded); !strings.Contains(e.Message, "3 requests of this connection queued") {
			t.Errorf("over the connection's share: %q", e.Message)
		}
	}
	d.send(1, time.Second, &wire.SearchRequest{Vector: []float32{1}, K: 1})
	d.send(2, time.Second, &wire.SearchRequest{Vector: []float32{1}, K: 1})
	if e := d.expectError(2, wire.Overloaded); !strings.Contains(e.Message, "4 queued") {
		t.Errorf("over the queue: %q", e.Message)
	}
	if got := metricValue(scrape(t, s), `reelrank_shed_total{reason="connection_queue_full"}`); got != 2 {
		t.Errorf("shed over the connection's share counted %v", got)
	}
	close(release)
	for range 3 {
		if env := c.recv(); env.Body.Kind() != wire.KindSearchResponse {
			t.Fatalf("queued: %+v", env.Body)
		}
	}
	if env := d.recv(); env.RequestID != 1 || env.Body.Kind() != wire.KindSearchResponse {
		t.Fatalf("queued: %+v", env.Body)
	}
}

// A request whose predicted wait does not fit its budget is answered
// Overloaded at once, saying both; one whose wait fits is queued.
func TestShedByPredictedWait(t *testing.T) {
	h, release, inside := blockingHandler()
	_, addr := startServer(t, Config{MaxInFlight: 1}, h)
	a := dial(t, addr)
	a.send(1, 0, &wire.RecommendRequest{User: 1, N: 1})
	waitFor(t, "the slot to be taken", func() bool { return inside.Load() == 1 })

	// The running Recommend is estimated at 5ms, half of it left; a Search
	// at 2ms: 4.5ms in all.
	c := dial(t, addr)
	c.send(1, time.Second, &wire.SearchRequest{Vector: []float32{1}, K: 1})
	c.send(2, 3*time.Millisecond, &wire.SearchRequest{Vector: []float32{1}, K: 1})
	e := c.expectError(2, wire.Overloaded)
	if !strings.Contains(e.Message, "predicted wait") || !strings.Contains(e.Message, "budget") {
		t.Errorf("shed by the predicted wait: %q", e.Message)
	}
	close(release)
	if env := c.recv(); env.RequestID != 1 || env.Body.Kind() != wire.KindSearchResponse {
		t.Fatalf("the queued request: %+v", env.Body)
	}
}

// A queued request that reaches a slot after its deadline is answered
// DeadlineExceeded without calling the handler.
func TestQueuedRequestExpires(t *testing.T) {
	h, release, inside := blockingHandler()
	s, addr := startServer(t, Config{MaxInFlight: 1}, h)
	a := dial(t, addr)
	a.send(1, 0, &wire.RecommendRequest{User: 1, N: 1})
	waitFor(t, "the slot to be taken", func() bool { return inside.Load() == 1 })
	c := dial(t, addr)
	sent := time.Now()
	c.send(1, 50*time.Millisecond, &wire.SearchRequest{Vector: []float32{1}, K: 1})
	waitFor(t, "the request to be queued", func() bool { return s.adm.inQueue.Load() == 1 })
	calls := h.calls.Load()
	time.Sleep(time.Until(sent.Add(60 * time.Millisecond))) // past its deadline
	close(release)
	if e := c.expectError(1, wire.DeadlineExceeded); !strings.Contains(e.Message, "before") {
		t.Errorf("expired in the queue: %q", e.Message)
	}
	if n := h.calls.Load(); n != calls {
		t.Errorf("%d handler calls for a request expired in the queue", n-calls)
	}
}

// A connection pipelining 128 requests does not starve another's single
// request: a freed slot goes to the connections in turn.
func TestFairShare(t *testing.T) {
	h, order, gate, release := gatedHandler()
	defer close(release)
	s, addr := startServer(t, Config{MaxInFlight: 1, MaxQueue: 256, MaxConnQueue: 200}, h)
	heavy, light := dial(t, addr), dial(t, addr)
	var batch []byte
	var enc wire.Encoder
	for i := range 128 {
		f, err := enc.EncodeFrame(&wire.Envelope{RequestID: uint64(i + 1), Body: &wire.RecommendRequest{User: 1, N: 1}})
		if err != nil {
			t.Fatal(err)
		}
		batch = append(batch, f...)
	}
	heavy.write(batch)
	waitFor(t, "the heavy connection's requests to be queued", func() bool { return s.adm.inQueue.Load() == 127 })
	light.send(1, 5*time.Second, &wire.RecommendRequest{User: 2, N: 1})
	waitFor(t, "the light connection's request to be queued", func() bool { return s.adm.inQueue.Load() == 128 })
	for call := 1; ; call++ {
		if user := <-order; user == 2 {
			// The first heavy request ran; the slot went on to the heavy
			// connection's next (its turn came first), then to the light.
			if call > 3 {
				t.Errorf("the light connection's request was call %d, behind %d heavy ones", call, call-1)
			}
			break
		}
		if call > 128 {
			t.Fatal("the light connection's request never ran")
		}
		gate <- struct{}{}
	}
	gate <- struct{}{}
	if env := light.recv(); env.Body.Kind() != wire.KindRecommendResponse {
		t.Fatalf("the light request: %+v", env.Body)
	}
}

// Health and Stats never wait behind ranking work: with every slot and
// the queue taken, they are answered, Health by the handler with a short
// budget.
func TestHealthBypassesQueue(t *testing.T) {
	h, release, inside := blockingHandler()
	defer close(release)
	var budget atomic.Int64
	h.health = func(ctx context.Context, req *wire.HealthRequest) (*wire.HealthResponse, error) {
		dl, _ := ctx.Deadline()
		budget.Store(int64(time.Until(dl)))
		return &wire.HealthResponse{OK: true, Status: "serving"}, nil
	}
	s, addr := startServer(t, Config{MaxInFlight: 1, MaxQueue: 1}, h)
	a := dial(t, addr)
	a.send(1, 0, &wire.RecommendRequest{User: 1, N: 1})
	a.send(2, 0, &wire.RecommendRequest{User: 1, N: 1})
	waitFor(t, "the slot and the queue to be taken", func() bool {
		return inside.Load() == 1 && s.adm.inQueue.Load() == 1
	})
	c := dial(t, addr)
	c.send(1, time.Second, &wire.SearchRequest{Vector: []float32{1}, K: 1})
	c.expectError(1, wire.Overloaded)
	c.healthy(2)
	if b := time.Duration(budget.Load()); b <= 0 || b > healthBudget {
		t.Errorf("Health ran with a budget of %v, want at most %v", b, healthBudget)
	}
	if env := c.call(3, &wire.StatsRequest{}); env.Body.Kind() != wire.KindStatsResponse {
		t.Errorf("stats: %+v", env.Body)
	}
}

// A write whose handler answered is answered with its result even when
// the deadline passed meanwhile (the write happened); a read is answered
// DeadlineExceeded.
func TestWritesAnsweredPastDeadline(t *testing.T) {
	h := &fakeHandler{}
	h.upsert = func(ctx context.Context, req *wire.UpsertRequest) (*wire.UpsertResponse, error) {
		<-ctx.Done() // durable only after the deadline
		return &wire.UpsertResponse{Replaced: true}, nil
	}
	h.event = func(ctx context.Context, req *wire.EventRequest) (*wire.EventResponse, error) {
		<-ctx.Done()
		return &wire.EventResponse{Accepted: uint32(len(req.Events))}, nil
	}
	h.recommend = func(ctx context.Context, req *wire.RecommendRequest) (*wire.RecommendResponse, error) {
		<-ctx.Done()
		return recommendFor(req), nil
	}
	_, addr := startServer(t, Config{}, h)
	c := dial(t, addr)
	c.send(1, 20*time.Millisecond, &wire.UpsertRequest{Reel: wire.Reel{ID: 1, Category: -1}})
	if env := c.recv(); env.Body.Kind() != wire.KindUpsertResponse || !env.Body.(*wire.UpsertResponse).Replaced {
		t.Errorf("an upsert that finished past its deadline: %+v", env.Body)
	}
	c.send(2, 20*time.Millisecond, &wire.EventRequest{Events: []wire.Event{{Type: wire.EventLike}}})
	if env := c.recv(); env.Body.Kind() != wire.KindEventResponse || env.Body.(*wire.EventResponse).Accepted != 1 {
		t.Errorf("events that finished past their deadline: %+v", env.Body)
	}
	c.send(3, 20*time.Millisecond, &wire.RecommendRequest{User: 1, N: 1})
	c.expectError(3, wire.DeadlineExceeded)
}

// Under round robin, a connection's first queued request is predicted to
// wait for one request of each other connection, not for all that is
// queued.
func TestPredictRoundRobin(t *testing.T) {
	s, err := New(Config{MaxInFlight: 2, MaxQueue: 1000, MaxConnQueue: 500, Logger: quietLogger()}, &fakeHandler{})
	if err != nil {
		t.Fatal(err)
	}
	heavy, light := &conn{s: s}, &conn{s: s}
	now := time.Now()
	for range 102 {
		t := task{c: heavy, deadline: now.Add(time.Hour), kind: kRecommend}
		s.adm.admit(&t, now)
	}
	if s.adm.inFlight.Load() != 2 || s.adm.inQueue.Load() != 100 {
		t.Fatalf("%d running, %d queued", s.adm.inFlight.Load(), s.adm.inQueue.Load())
	}
	s.adm.mu.Lock()
	waitLight, waitHeavy := s.adm.predictLocked(light), s.adm.predictLocked(heavy)
	s.adm.mu.Unlock()
	est := serviceSeed[kRecommend]
	// light: one heavy request ahead and half of the two running, over 2
	// slots; heavy: its 100 and the same.
	if want := (est + est) / 2; waitLight != want {
		t.Errorf("the light connection's wait %v, want %v", waitLight, want)
	}
	if want := (100*est + est) / 2; waitHeavy != want {
		t.Errorf("the heavy connection's wait %v, want %v", waitHeavy, want)
	}
	if n := s.adm.drop(heavy); n != 100 || s.adm.inQueue.Load() != 0 {
		t.Errorf("drop forgot %d, %d left", n, s.adm.inQueue.Load())
	}
}

// Queueing a request and passing a slot on allocate nothing in the steady
// state.
func TestAdmissionAllocs(t *testing.T) {
	if testing.CoverMode() != "" || raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector or coverage")
	}
	s, err := New(Config{MaxInFlight: 1, Logger: quietLogger()}, &fakeHandler{})
	if err != nil {
		t.Fatal(err)
	}
	c := &conn{s: s}
	now := time.Now()
	running := task{c: c, deadline: now.Add(time.Hour), kind: kSearch}
	if v := s.adm.admit(&running, now); v.outcome != runNow {
		t.Fatalf("outcome %d, want to run", v.outcome)
	}
	allocs := testing.AllocsPerRun(100, func() {
		t := task{c: c, deadline: now.Add(time.Hour), kind: kSearch}
		if v := s.adm.admit(&t, now); v.outcome != queued {
			panic("not queued")
		}
		next, ok := s.adm.done(&running, time.Millisecond)
		if !ok {
			panic("no next task")
		}
		running = next
	})
	if allocs != 0 {
		t.Errorf("queueing and passing a slot on: %v allocations, want 0", allocs)
	}
}
