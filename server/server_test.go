package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reelrank/reelrank/wire"
)

// fakeHandler answers every request deterministically; tests replace the
// methods they exercise.
type fakeHandler struct {
	recommend func(ctx context.Context, req *wire.RecommendRequest) (*wire.RecommendResponse, error)
	search    func(ctx context.Context, req *wire.SearchRequest) (*wire.SearchResponse, error)
	health    func(ctx context.Context, req *wire.HealthRequest) (*wire.HealthResponse, error)
	upsert    func(ctx context.Context, req *wire.UpsertRequest) (*wire.UpsertResponse, error)
	event     func(ctx context.Context, req *wire.EventRequest) (*wire.EventResponse, error)
	calls     atomic.Int64 // handler calls of any kind
}

// recommendFor is the fake's default answer: N items whose reels are
// user*100+i, with fixed stage timings.
func recommendFor(req *wire.RecommendRequest) *wire.RecommendResponse {
	r := &wire.RecommendResponse{Heads: []string{"watch", "like"}, ModelVersion: "m1", Arm: "control",
		Timings: wire.Timings{Features: 100 * time.Microsecond, Tower: 200 * time.Microsecond,
			ANN: 300 * time.Microsecond, Rank: 400 * time.Microsecond, Postrank: 50 * time.Microsecond,
			Total: 1050 * time.Microsecond}}
	for i := range req.N {
		r.Items = append(r.Items, wire.Item{Reel: req.User*100 + int64(i), Score: float32(req.N - i),
			Probs: []float32{0.5, 0.1}, Propensity: 1})
	}
	return r
}

func (f *fakeHandler) Recommend(ctx context.Context, req *wire.RecommendRequest) (*wire.RecommendResponse, error) {
	f.calls.Add(1)
	if f.recommend != nil {
		return f.recommend(ctx, req)
	}
	return recommendFor(req), nil
}

func (f *fakeHandler) Score(ctx context.Context, req *wire.ScoreRequest) (*wire.ScoreResponse, error) {
	f.calls.Add(1)
	r := &wire.ScoreResponse{Heads: []string{"watch"}, ModelVersion: "m1"}
	for _, reel := range req.Reels {
		r.Scores = append(r.Scores, float32(reel))
		r.Probs = append(r.Probs, 0.5)
	}
	return r, nil
}

func (f *fakeHandler) Search(ctx context.Context, req *wire.SearchRequest) (*wire.SearchResponse, error) {
	f.calls.Add(1)
	if f.search != nil {
		return f.search(ctx, req)
	}
	r := &wire.SearchResponse{}
	for i := range req.K {
		r.IDs = append(r.IDs, int64(i))
		r.Scores = append(r.Scores, req.Vector[0]-float32(i))
	}
	return r, nil
}

func (f *fakeHandler) Upsert(ctx context.Context, req *wire.UpsertRequest) (*wire.UpsertResponse, error) {
	f.calls.Add(1)
	if f.upsert != nil {
		return f.upsert(ctx, req)
	}
	return &wire.UpsertResponse{Replaced: req.Reel.ID%2 == 0}, nil
}

func (f *fakeHandler) Delete(ctx context.Context, req *wire.DeleteRequest) (*wire.DeleteResponse, error) {
	f.calls.Add(1)
	if req.ID == 404 {
		return nil, &wire.Error{Code: wire.NotFound, Message: "reel 404"}
	}
	return &wire.DeleteResponse{}, nil
}

func (f *fakeHandler) Event(ctx context.Context, req *wire.EventRequest) (*wire.EventResponse, error) {
	f.calls.Add(1)
	if f.event != nil {
		return f.event(ctx, req)
	}
	var r wire.EventResponse
	for _, e := range req.Events {
		if e.Type == wire.EventInvalid {
			r.Rejected++
			if r.Reason == "" {
				r.Reason = "invalid type"
			}
		} else {
			r.Accepted++
		}
	}
	return &r, nil
}

func (f *fakeHandler) Health(ctx context.Context, req *wire.HealthRequest) (*wire.HealthResponse, error) {
	f.calls.Add(1)
	if f.health != nil {
		return f.health(ctx, req)
	}
	return &wire.HealthResponse{OK: true, Status: "serving"}, nil
}

func (f *fakeHandler) Info(ctx context.Context) Info {
	return Info{IndexSize: 1000, ModelVersion: "m1"}
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// startServer serves h on a loopback port until the test ends.
func startServer(t testing.TB, cfg Config, h Handler) (*Server, string) {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	s, err := New(cfg, h)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-done; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	return s, ln.Addr().String()
}

// tconn is a bare protocol client for tests.
type tconn struct {
	t   testing.TB
	nc  net.Conn
	br  *bufio.Reader
	enc wire.Encoder
}

func dial(t testing.TB, addr string) *tconn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return wrap(t, nc)
}

func wrap(t testing.TB, nc net.Conn) *tconn {
	return &tconn{t: t, nc: nc, br: bufio.NewReader(nc)}
}

func (c *tconn) send(id uint64, timeout time.Duration, body wire.Message) {
	c.t.Helper()
	frame, err := c.enc.EncodeFrame(&wire.Envelope{RequestID: id, Timeout: timeout, Body: body})
	if err != nil {
		c.t.Fatal(err)
	}
	c.write(frame)
}

func (c *tconn) write(b []byte) {
	c.t.Helper()
	if _, err := c.nc.Write(b); err != nil {
		c.t.Fatal(err)
	}
}

// payload returns the encoded envelope without its length prefix.
func payload(t testing.TB, id uint64, body wire.Message) []byte {
	t.Helper()
	buf, err := wire.Encode(&wire.Envelope{RequestID: id, Body: body})
	if err != nil {
		t.Fatal(err)
	}
	return buf
}

// frameOf prefixes p with its length.
func frameOf(p []byte) []byte {
	n := len(p)
	return append([]byte{byte(n), byte(n >> 8), byte(n >> 16), byte(n >> 24)}, p...)
}

func (c *tconn) recvErr() (*wire.Envelope, error) {
	c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	p, err := wire.ReadFrame(c.br, 0, nil)
	if err != nil {
		return nil, err
	}
	env := new(wire.Envelope)
	if err := wire.Decode(p, env); err != nil {
		return nil, fmt.Errorf("the server sent a frame that does not decode: %w", err)
	}
	return env, nil
}

func (c *tconn) recv() *wire.Envelope {
	c.t.Helper()
	env, err := c.recvErr()
	if err != nil {
		c.t.Fatalf("recv: %v", err)
	}
	return env
}

func (c *tconn) call(id uint64, body wire.Message) *wire.Envelope {
	c.t.Helper()
	c.send(id, 0, body)
	env := c.recv()
	if env.RequestID != id {
		c.t.Fatalf("answer to request %d has id %d", id, env.RequestID)
	}
	return env
}

// expectError receives one frame and checks that it is an error of code
// under id.
func (c *tconn) expectError(id uint64, code wire.ErrorCode) *wire.Error {
	c.t.Helper()
	env := c.recv()
	e, ok := env.Body.(*wire.Error)
	if !ok || e.Code != code || env.RequestID != id {
		c.t.Fatalf("got id %d %v %+v, want id %d error %v", env.RequestID, env.Body.Kind(), env.Body, id, code)
	}
	return e
}

// expectClosed reads until the server closes the connection, which must
// happen without another frame.
func (c *tconn) expectClosed() {
	c.t.Helper()
	env, err := c.recvErr()
	if err == nil {
		c.t.Fatalf("got %v %+v, want the connection closed", env.Body.Kind(), env.Body)
	}
	if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, net.ErrClosed) &&
		!strings.Contains(err.Error(), "connection reset") {
		c.t.Fatalf("want the connection closed, got %v", err)
	}
}

// healthy checks that the connection still serves.
func (c *tconn) healthy(id uint64) {
	c.t.Helper()
	env := c.call(id, &wire.HealthRequest{})
	if h, ok := env.Body.(*wire.HealthResponse); !ok || !h.OK {
		c.t.Fatalf("health: %+v", env.Body)
	}
}

// goroutines returns a function that waits until the number of goroutines
// is back to what it is now, and fails the test with a dump if it is not
// within a few seconds.
func goroutines(t testing.TB) func() {
	base := runtime.NumGoroutine()
	return func() {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > base {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				buf = buf[:runtime.Stack(buf, true)]
				t.Fatalf("%d goroutines, %d before:\n%s", runtime.NumGoroutine(), base, buf)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

func TestEveryKind(t *testing.T) {
	_, addr := startServer(t, Config{}, &fakeHandler{})
	c := dial(t, addr)
	checks := []struct {
		req  wire.Message
		want func(wire.Message) bool
	}{
		{&wire.RecommendRequest{User: 7, N: 3}, func(m wire.Message) bool {
			r, ok := m.(*wire.RecommendResponse)
			return ok && len(r.Items) == 3 && r.Items[0].Reel == 700 && r.ModelVersion == "m1"
		}},
		{&wire.ScoreRequest{User: 1, Reels: []int64{4, 5}}, func(m wire.Message) bool {
			r, ok := m.(*wire.ScoreResponse)
			return ok && len(r.Scores) == 2 && r.Scores[1] == 5
		}},
		{&wire.SearchRequest{Vector: []float32{9, 1}, K: 4}, func(m wire.Message) bool {
			r, ok := m.(*wire.SearchResponse)
			return ok && len(r.IDs) == 4 && r.Scores[0] == 9
		}},
		{&wire.UpsertRequest{Reel: wire.Reel{ID: 2, Category: -1}}, func(m wire.Message) bool {
			r, ok := m.(*wire.UpsertResponse)
			return ok && r.Replaced
		}},
		{&wire.DeleteRequest{ID: 3}, func(m wire.Message) bool { _, ok := m.(*wire.DeleteResponse); return ok }},
		{&wire.DeleteRequest{ID: 404}, func(m wire.Message) bool {
			e, ok := m.(*wire.Error)
			return ok && e.Code == wire.NotFound && e.Message == "reel 404"
		}},
		{&wire.EventRequest{Events: []wire.Event{{Type: wire.EventLike}, {Type: wire.EventInvalid}, {Type: wire.EventWatch}}},
			func(m wire.Message) bool {
				r, ok := m.(*wire.EventResponse)
				return ok && r.Accepted == 2 && r.Rejected == 1 && r.Reason == "invalid type"
			}},
		{&wire.HealthRequest{}, func(m wire.Message) bool { r, ok := m.(*wire.HealthResponse); return ok && r.OK }},
		{&wire.AuthRequest{Token: "anything"}, func(m wire.Message) bool { _, ok := m.(*wire.AuthResponse); return ok }},
	}
	for i, ch := range checks {
		env := c.call(uint64(i+1), ch.req)
		if !ch.want(env.Body) {
			t.Errorf("%v answered %v %+v", ch.req.Kind(), env.Body.Kind(), env.Body)
		}
	}
	env := c.call(100, &wire.StatsRequest{})
	st, ok := env.Body.(*wire.StatsResponse)
	if !ok {
		t.Fatalf("stats answered %+v", env.Body)
	}
	if st.Requests != uint64(len(checks)) || st.Errors[wire.NotFound] != 1 || st.Events != 2 ||
		st.IndexSize != 1000 || st.ModelVersion != "m1" || st.Connections != 1 || st.InFlight != 0 ||
		len(st.Errors) != int(wire.Internal)+1 || st.Uptime <= 0 {
		t.Errorf("stats: %+v", st)
	}
}

// Two pipelined requests: the first waits for the second to be answered,
// so the answers come back in the other order, matched by id.
func TestPipelineOutOfOrder(t *testing.T) {
	secondDone := make(chan struct{})
	h := &fakeHandler{}
	h.recommend = func(ctx context.Context, req *wire.RecommendRequest) (*wire.RecommendResponse, error) {
		if req.User == 1 {
			select {
			case <-secondDone:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		return recommendFor(req), nil
	}
	_, addr := startServer(t, Config{}, h)
	c := dial(t, addr)
	c.send(1, time.Second, &wire.RecommendRequest{User: 1, N: 1})
	c.send(2, time.Second, &wire.RecommendRequest{User: 2, N: 1})
	first := c.recv()
	close(secondDone)
	second := c.recv()
	if first.RequestID != 2 || second.RequestID != 1 {
		t.Fatalf("answers came as ids %d, %d; want 2 then 1", first.RequestID, second.RequestID)
	}
	if r := first.Body.(*wire.RecommendResponse); r.Items[0].Reel != 200 {
		t.Errorf("answer 2 is user %d's", r.Items[0].Reel/100)
	}
	if r := second.Body.(*wire.RecommendResponse); r.Items[0].Reel != 100 {
		t.Errorf("answer 1 is user %d's", r.Items[0].Reel/100)
	}
}

// A connection with MaxPipeline responses owed is not read further until
// one is written; the other requests wait in the socket, none is lost.
func TestPipelineLimit(t *testing.T) {
	release := make(chan struct{})
	var entered atomic.Int64
	h := &fakeHandler{}
	h.recommend = func(ctx context.Context, req *wire.RecommendRequest) (*wire.RecommendResponse, error) {
		entered.Add(1)
		<-release
		return recommendFor(req), nil
	}
	_, addr := startServer(t, Config{MaxPipeline: 2}, h)
	c := dial(t, addr)
	for id := range uint64(5) {
		c.send(id+1, 0, &wire.RecommendRequest{User: int64(id + 1), N: 1})
	}
	deadline := time.Now().Add(5 * time.Second)
	for entered.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // room for a third to enter, were the limit broken
	if n := entered.Load(); n != 2 {
		t.Fatalf("%d requests entered the handler with a pipeline of 2", n)
	}
	close(release)
	seen := map[uint64]bool{}
	for range 5 {
		env := c.recv()
		if _, ok := env.Body.(*wire.RecommendResponse); !ok || seen[env.RequestID] {
			t.Fatalf("answer %d: %+v", env.RequestID, env.Body)
		}
		seen[env.RequestID] = true
	}
}

func TestDeadlines(t *testing.T) {
	sawDeadline := make(chan time.Duration, 1)
	h := &fakeHandler{}
	h.recommend = func(ctx context.Context, req *wire.RecommendRequest) (*wire.RecommendResponse, error) {
		dl, ok := ctx.Deadline()
		if !ok {
			return nil, errors.New("no deadline")
		}
		switch req.User {
		case 1: // waits for the deadline, as an engine honouring ctx does
			sawDeadline <- time.Until(dl)
			<-ctx.Done()
			return nil, fmt.Errorf("engine: ranking: %w", ctx.Err())
		case 2: // ignores the deadline and answers late
			time.Sleep(time.Until(dl) + 5*time.Millisecond)
		case 3: // reports the remaining budget in the arm
			return &wire.RecommendResponse{Arm: time.Until(dl).Round(time.Second).String()}, nil
		}
		return recommendFor(req), nil
	}
	s, addr := startServer(t, Config{DefaultTimeout: 3 * time.Second, MaxTimeout: 5 * time.Second}, h)
	c := dial(t, addr)

	c.send(1, 30*time.Millisecond, &wire.RecommendRequest{User: 1, N: 1})
	if left := <-sawDeadline; left <= 0 || left > 30*time.Millisecond {
		t.Errorf("the handler's context leaves %v of a 30ms budget", left)
	}
	c.expectError(1, wire.DeadlineExceeded)

	c.send(2, 10*time.Millisecond, &wire.RecommendRequest{User: 2, N: 1})
	c.expectError(2, wire.DeadlineExceeded)

	// Over the maximum, a budget is capped; none is the default.
	c.send(5, time.Hour, &wire.RecommendRequest{User: 3, N: 1})
	if r := c.recv().Body.(*wire.RecommendResponse); r.Arm != "5s" {
		t.Errorf("a budget of an hour left %s, want the 5s maximum", r.Arm)
	}
	c.send(6, 0, &wire.RecommendRequest{User: 3, N: 1})
	if r := c.recv().Body.(*wire.RecommendResponse); r.Arm != "3s" {
		t.Errorf("no budget left %s, want the 3s default", r.Arm)
	}

	// A request whose budget is spent before it is served is answered
	// without calling the handler.
	hook := func() { time.Sleep(5 * time.Millisecond) }
	s.testHookServe.Store(&hook)
	calls := h.calls.Load()
	c.send(7, time.Millisecond, &wire.RecommendRequest{User: 4, N: 1})
	e := c.expectError(7, wire.DeadlineExceeded)
	if h.calls.Load() != calls || !strings.Contains(e.Message, "before") {
		t.Errorf("an expired request reached the handler (%q)", e.Message)
	}
}

// With no queue (MaxQueue < 0), requests beyond MaxInFlight are answered
// Overloaded at once and never reach the handler; the admitted ones finish
// normally. (With the default queue they would wait for a slot instead:
// see TestQueue.)
func TestOverload(t *testing.T) {
	release := make(chan struct{})
	var entered atomic.Int64
	h := &fakeHandler{}
	h.recommend = func(ctx context.Context, req *wire.RecommendRequest) (*wire.RecommendResponse, error) {
		entered.Add(1)
		<-release
		return recommendFor(req), nil
	}
	s, addr := startServer(t, Config{MaxInFlight: 2, MaxQueue: -1}, h)
	a, b := dial(t, addr), dial(t, addr)
	a.send(1, 0, &wire.RecommendRequest{User: 1, N: 1})
	b.send(1, 0, &wire.RecommendRequest{User: 2, N: 1})
	for entered.Load() < 2 {
		time.Sleep(time.Millisecond)
	}
	c := dial(t, addr)
	for id := range uint64(50) {
		c.send(id+10, time.Second, &wire.SearchRequest{Vector: []float32{1}, K: 1})
	}
	for id := range uint64(50) {
		if e := c.expectError(id+10, wire.Overloaded); !strings.Contains(e.Message, "no queue") {
			t.Errorf("overloaded answer %q", e.Message)
		}
	}
	// Stats are the server's own and pass admission.
	if st := c.call(99, &wire.StatsRequest{}).Body.(*wire.StatsResponse); st.InFlight != 2 || st.Errors[wire.Overloaded] != 50 {
		t.Errorf("stats under overload: %+v", st)
	}
	if n := h.calls.Load(); n != 2 {
		t.Errorf("%d handler calls, want the 2 admitted", n)
	}
	close(release)
	for _, cc := range []*tconn{a, b} {
		if env := cc.recv(); env.RequestID != 1 || env.Body.Kind() != wire.KindRecommendResponse {
			t.Errorf("admitted request: %+v", env.Body)
		}
	}
	c.healthy(100)
	if n := s.adm.inFlight.Load(); n != 0 {
		t.Errorf("%d in flight after all answers", n)
	}
}

func TestHandlerFaults(t *testing.T) {
	h := &fakeHandler{}
	h.recommend = func(ctx context.Context, req *wire.RecommendRequest) (*wire.RecommendResponse, error) {
		switch req.User {
		case 1:
			panic("index out of range in the ranker")
		case 2:
			return nil, errors.New("engine: no model loaded")
		case 3:
			return nil, nil
		case 4: // a response that breaks a rule of the protocol
			return &wire.RecommendResponse{Items: []wire.Item{{Reel: 1, Score: float32(math.NaN())}}}, nil
		case 5:
			return nil, fmt.Errorf("engine: %w", &wire.Error{Code: wire.Unavailable, Message: "warming up"})
		}
		return recommendFor(req), nil
	}
	_, addr := startServer(t, Config{}, h)
	c := dial(t, addr)
	for user, code := range map[int64]wire.ErrorCode{1: wire.Internal, 2: wire.Internal, 3: wire.Internal,
		4: wire.Internal, 5: wire.Unavailable} {
		c.send(uint64(user), 0, &wire.RecommendRequest{User: user, N: 1})
		e := c.expectError(uint64(user), code)
		if user == 2 && !strings.Contains(e.Message, "no model loaded") {
			t.Errorf("error message %q", e.Message)
		}
		c.healthy(uint64(100 + user))
	}
}

// Many clients pipelining at once, some leaving halfway, under a small
// admission limit: every answer matches its request (or is Overloaded, or
// DeadlineExceeded when a loaded machine keeps a queued request past its
// budget), no goroutine stays behind, and the counters add up.
//
// The end is awaited on the server's own counters, not on the number of
// goroutines alone: that baseline may count the connections of the test
// before, which Close does not wait for, and when they end the count can
// fall to it while this test's connections are still closing.
func TestConcurrentClients(t *testing.T) {
	h := &fakeHandler{}
	h.recommend = func(ctx context.Context, req *wire.RecommendRequest) (*wire.RecommendResponse, error) {
		if req.User%7 == 0 {
			time.Sleep(time.Millisecond)
		}
		return recommendFor(req), nil
	}
	s, addr := startServer(t, Config{MaxInFlight: 4, MaxPipeline: 16}, h)
	settled := goroutines(t)
	clients, requests := 8, 300
	if testing.Short() {
		clients, requests = 4, 100
	}
	var answered, overloaded, expired atomic.Int64
	errs := make(chan error, clients)
	for ci := range clients {
		go func() {
			errs <- func() error {
				nc, err := net.Dial("tcp", addr)
				if err != nil {
					return err
				}
				defer nc.Close()
				leaveAt := requests
				if ci%3 == 2 {
					leaveAt = requests / 2 // sends them all, reads half, leaves
				}
				go func() {
					var enc wire.Encoder
					for i := range requests {
						f, _ := enc.EncodeFrame(&wire.Envelope{RequestID: uint64(i + 1), Timeout: time.Second,
							Body: &wire.RecommendRequest{User: int64(ci*1000 + i), N: 2}})
						if _, err := nc.Write(f); err != nil {
							return
						}
					}
				}()
				c := &tconn{t: t, nc: nc, br: bufio.NewReader(nc)}
				seen := make(map[uint64]bool, requests)
				for range leaveAt {
					env, err := c.recvErr()
					if err != nil {
						return err
					}
					if seen[env.RequestID] {
						return fmt.Errorf("client %d: request %d answered twice", ci, env.RequestID)
					}
					seen[env.RequestID] = true
					switch m := env.Body.(type) {
					case *wire.RecommendResponse:
						if want := int64(ci*1000+int(env.RequestID)-1) * 100; m.Items[0].Reel != want {
							return fmt.Errorf("client %d: request %d got reel %d, want %d", ci, env.RequestID, m.Items[0].Reel, want)
						}
						answered.Add(1)
					case *wire.Error:
						switch m.Code {
						case wire.Overloaded:
							overloaded.Add(1)
						case wire.DeadlineExceeded:
							expired.Add(1)
						default:
							return fmt.Errorf("client %d: %v", ci, m)
						}
					default:
						return fmt.Errorf("client %d: request %d answered %+v", ci, env.RequestID, m)
					}
				}
				return nil
			}()
		}()
	}
	for range clients {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the connections to close", func() bool {
		return s.nconns.Load() == 0 && s.adm.inFlight.Load() == 0 && s.adm.inQueue.Load() == 0
	})
	settled()
	if answered.Load() == 0 {
		t.Error("no request was admitted")
	}
	st := s.Stats(t.Context())
	if st.InFlight != 0 || st.Connections != 0 || st.Requests < uint64(answered.Load()+overloaded.Load()+expired.Load()) ||
		st.Errors[wire.Overloaded] < uint64(overloaded.Load()) || st.Errors[wire.DeadlineExceeded] < uint64(expired.Load()) {
		t.Errorf("stats %+v after %d answers, %d overloads and %d expired", st, answered.Load(), overloaded.Load(), expired.Load())
	}
}
