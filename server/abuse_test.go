package server

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/reelrank/reelrank/wire"
)

// Abuse: what one misbehaving client can take from the others. In each,
// a well-behaved client's request is still answered, within its deadline.

// answeredWithin sends a Recommend with the given budget on c and checks
// that it is answered OK within it.
func answeredWithin(t *testing.T, c *tconn, id uint64, budget time.Duration) {
	t.Helper()
	start := time.Now()
	c.send(id, budget, &wire.RecommendRequest{User: 3, N: 5})
	env := c.recv()
	if r, ok := env.Body.(*wire.RecommendResponse); !ok || env.RequestID != id || len(r.Items) != 5 {
		t.Fatalf("the well-behaved client's request %d was answered %+v", id, env.Body)
	}
	if d := time.Since(start); d > budget {
		t.Errorf("the well-behaved client's request took %v, over its budget of %v", d, budget)
	}
}

// serverConn returns the server's side of the client connection nc.
func serverConn(t *testing.T, s *Server, nc net.Conn) *conn {
	t.Helper()
	var found *conn
	waitFor(t, "the server to hold the connection", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		for c := range s.conns {
			if c.nc.RemoteAddr().String() == nc.LocalAddr().String() {
				found = c
				return true
			}
		}
		return false
	})
	return found
}

// A client opens 10,000 connections from one address and never
// authenticates: the server holds at most MaxConnsPerAddr of them at a
// time, turns the rest away at once, and closes those it holds at the
// authentication timeout. (The client holds all of its ends open, well
// under the soft limit of 20,000 descriptors; under -short, 2,000.)
func TestAbuseIdleConnections(t *testing.T) {
	n := 10000
	if testing.Short() {
		n = 2000
	}
	const token, perAddr = "abuse-token", 64
	s, addr := startServer(t, Config{Token: token, MaxConnsPerAddr: perAddr, AuthTimeout: 200 * time.Millisecond}, &fakeHandler{})
	good := dial(t, addr)
	good.call(1, &wire.AuthRequest{Token: token})

	held := make([]net.Conn, 0, n)
	defer func() {
		for _, nc := range held {
			nc.Close()
		}
	}()
	most := int64(0)
	for i := range n {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		held = append(held, nc)
		if open := s.nconns.Load(); open > most {
			most = open
		}
		if i == n/2 {
			answeredWithin(t, good, 2, time.Second)
		}
	}
	if most > perAddr {
		t.Errorf("the server held %d connections from one address, over the cap of %d", most, perAddr)
	}
	answeredWithin(t, good, 3, time.Second)
	waitFor(t, "the unauthenticated connections to be closed", func() bool { return s.nconns.Load() == 1 })
	rejected := counterValue(t, s, "reelrank_connections_rejected_total", nil)
	accepted := counterValue(t, s, "reelrank_connections_accepted_total", nil)
	if int(rejected+accepted) != n+1 || rejected < float64(n)/2 {
		t.Errorf("%v accepted and %v rejected of %d", accepted, rejected, n+1)
	}
	answeredWithin(t, good, 4, time.Second)
}

// A client pipelines large Recommend requests and never reads: once its
// unsent answers pass MaxUnsent the server stops reading it, holding at
// most MaxUnsent and two answers for it, other clients are answered, and
// WriteTimeout cuts it off.
//
// The client sends its next request only once the server has answered
// the one before, until the server stops reading: so the server has at
// most one request unanswered when it looks at the unsent bytes before
// reading the next, and the test knows what it may hold: MaxUnsent, that
// request's answer and the next one's. (Sent in one burst, MaxPipeline
// requests are read at once: the server then holds at most MaxUnsent plus
// MaxPipeline answers.)
func TestAbuseUnreadResponses(t *testing.T) {
	const maxUnsent = 256 << 10
	s, addr := startServer(t, Config{MaxUnsent: maxUnsent, WriteTimeout: 300 * time.Millisecond, MaxInFlight: 4}, &fakeHandler{})
	good := dial(t, addr)
	good.healthy(1)

	// A small receive buffer, set before the connection opens so that the
	// kernel does not grow it.
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		return errors.Join(err, serr)
	}}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	hog := wrap(t, nc)
	sc := serverConn(t, s, nc)
	answer, err := wire.Encode(&wire.Envelope{RequestID: 128, Body: recommendFor(&wire.RecommendRequest{User: 1, N: wire.MaxN})})
	if err != nil {
		t.Fatal(err)
	}
	// 128 requests, or more while the kernel's socket buffers take the
	// answers (a few megabytes on loopback).
	const requests, most = 128, 1024
	sent := 0
	for ; sent < most && sc.pauses.Load() == 0; sent++ {
		before := sc.answers.Load()
		hog.send(uint64(sent+1), 10*time.Second, &wire.RecommendRequest{User: 1, N: wire.MaxN})
		waitFor(t, "the request to be answered or the reader to stop", func() bool {
			return sc.answers.Load() > before || sc.pauses.Load() > 0
		})
	}
	if sc.pauses.Load() == 0 {
		t.Fatalf("%d answers of %d bytes never read, and the server did not stop reading", sent, len(answer))
	}
	for i := sent; i < requests; i++ {
		hog.send(uint64(i+1), 10*time.Second, &wire.RecommendRequest{User: 1, N: wire.MaxN})
	}
	t.Logf("the server stopped reading after %d requests, holding %d bytes at most", sent, sc.peak.Load())
	answeredWithin(t, good, 2, time.Second)
	if peak, bound := sc.peak.Load(), int64(maxUnsent+2*(wire.HeaderSize+len(answer))); peak > bound {
		t.Errorf("the server held %d bytes of unsent answers, over MaxUnsent and two answers (%d)", peak, bound)
	}
	waitFor(t, "the client that never reads to be cut off", func() bool { return s.nconns.Load() == 1 })
	if got := counterValue(t, s, "reelrank_slow_clients_total", nil); got != 1 {
		t.Errorf("slow clients counted %v, want 1", got)
	}
	if got := counterValue(t, s, "reelrank_reader_pauses_total", nil); got < 1 {
		t.Errorf("reader pauses counted %v", got)
	}
	answeredWithin(t, good, 3, time.Second)
}

// A client pipelines batches of 10,000 events: two with a long budget,
// which take both slots and stay in the slow event handler (it waits for
// the test), then more with a budget of 1ms. Each batch is answered: the
// two with their result; the others Overloaded when they cannot be served
// within 1ms, DeadlineExceeded when their budget is spent before they
// could be admitted (decoding 10,000 events takes milliseconds), or with
// their result when they find a free slot once the two are done. Another
// client's request waits its turn behind the slow batches, not behind the
// flood, and is answered within its deadline.
func TestAbuseEventBatches(t *testing.T) {
	batches := 16
	if testing.Short() {
		batches = 6
	}
	gate := make(chan struct{})
	var calls atomic.Int64
	h := &fakeHandler{}
	h.event = func(ctx context.Context, req *wire.EventRequest) (*wire.EventResponse, error) {
		calls.Add(1)
		<-gate // a slow write, which does not give up at its deadline
		return &wire.EventResponse{Accepted: uint32(len(req.Events))}, nil
	}
	s, addr := startServer(t, Config{MaxInFlight: 2}, h)
	good := dial(t, addr)
	good.healthy(1)

	events := make([]wire.Event, wire.MaxEvents)
	for i := range events {
		events[i] = wire.Event{Type: wire.EventWatch, Time: 1767571200000 + int64(i), User: int64(i % 100), Reel: int64(i),
			Seconds: 3, Fraction: 0.5}
	}
	var enc wire.Encoder
	batch := func(timeout time.Duration) []byte {
		f, err := enc.EncodeFrame(&wire.Envelope{RequestID: 1, Timeout: timeout, Body: &wire.EventRequest{Events: events}})
		if err != nil {
			t.Fatal(err)
		}
		return append([]byte(nil), f...)
	}
	slow, flood := batch(time.Minute), batch(time.Millisecond)
	hog := dial(t, addr)
	hog.write(append(slow, slow...))
	waitFor(t, "the slow batches to take the slots", func() bool { return calls.Load() == 2 })
	go func() {
		for range batches - 2 {
			if _, err := hog.nc.Write(flood); err != nil {
				return
			}
		}
	}()
	// The hog's first answer: its flood is being read.
	first := hog.recv()

	answer := make(chan *wire.Envelope, 1)
	go func() {
		env, err := good.recvErr()
		if err != nil {
			t.Error(err)
		}
		answer <- env
	}()
	start := time.Now()
	good.send(2, time.Second, &wire.RecommendRequest{User: 3, N: 5})
	// It waits behind the slow batches; then they may finish.
	waitFor(t, "the well-behaved request to be queued", func() bool { return s.adm.inQueue.Load() == 1 })
	close(gate)
	env := <-answer
	if r, ok := env.Body.(*wire.RecommendResponse); !ok || env.RequestID != 2 || len(r.Items) != 5 {
		t.Fatalf("the well-behaved request: %+v", env.Body)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("the well-behaved request took %v", d)
	}

	var results, overloaded, expired int
	for i := range batches {
		if i > 0 {
			env = hog.recv()
		} else {
			env = first
		}
		switch m := env.Body.(type) {
		case *wire.EventResponse:
			if m.Accepted != wire.MaxEvents {
				t.Errorf("a batch's result: %+v", m)
			}
			results++
		case *wire.Error:
			switch m.Code {
			case wire.Overloaded:
				overloaded++
			case wire.DeadlineExceeded:
				expired++
			default:
				t.Errorf("a batch answered %v", m)
			}
		default:
			t.Errorf("a batch answered %+v", m)
		}
	}
	t.Logf("%d batches: %d results, %d overloaded, %d expired", batches, results, overloaded, expired)
	// A flood batch read after the slots freed may run too.
	if results < 2 || int64(results) != calls.Load() {
		t.Errorf("%d results of %d handler calls: want every batch the handler took answered with its result, "+
			"the 2 slow ones at least", results, calls.Load())
	}
	if shed := metricValue(scrape(t, s), `reelrank_shed_total{reason="predicted_wait"}`); shed != float64(overloaded) {
		t.Errorf("shed by the predicted wait counted %v, want %d", shed, overloaded)
	}
}
