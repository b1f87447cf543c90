package server

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reelrank/reelrank/wire"
)

// blockingHandler's Recommend waits for release (or its context) and
// counts the requests inside it.
func blockingHandler() (*fakeHandler, chan struct{}, *atomic.Int64) {
	release := make(chan struct{})
	var inside atomic.Int64
	h := &fakeHandler{}
	h.recommend = func(ctx context.Context, req *wire.RecommendRequest) (*wire.RecommendResponse, error) {
		inside.Add(1)
		defer inside.Add(-1)
		if req.User == 0 { // ignores its context
			<-release
			return recommendFor(req), nil
		}
		select {
		case <-release:
			return recommendFor(req), nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return h, release, &inside
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// Shutdown stops accepting and closes idle connections at once, lets the
// request in flight finish and its answer be written, then returns.
func TestShutdownFinishesInFlight(t *testing.T) {
	h, release, inside := blockingHandler()
	settled := goroutines(t)
	s, err := New(Config{Logger: quietLogger()}, h)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	addr := ln.Addr().String()

	busy, idle := dial(t, addr), dial(t, addr)
	idle.healthy(1)
	busy.send(1, 0, &wire.RecommendRequest{User: 1, N: 2})
	waitFor(t, "the request to reach the handler", func() bool { return inside.Load() == 1 })

	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(context.Background()) }()
	idle.expectClosed()
	if err := <-served; !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve returned %v", err)
	}
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Error("a new connection was accepted while shutting down")
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v with a request in flight", err)
	case <-time.After(20 * time.Millisecond):
	}
	close(release)
	env := busy.recv()
	if r, ok := env.Body.(*wire.RecommendResponse); !ok || env.RequestID != 1 || len(r.Items) != 2 {
		t.Fatalf("the request in flight was answered %+v", env.Body)
	}
	busy.expectClosed()
	busy.nc.Close()
	idle.nc.Close()
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	settled()
}

// When Shutdown's context ends first, it closes everything and says so.
func TestShutdownContextEnds(t *testing.T) {
	h, release, inside := blockingHandler()
	defer close(release)
	s, addr := startServer(t, Config{}, h)
	c := dial(t, addr)
	c.send(1, 0, &wire.RecommendRequest{User: 0, N: 1}) // ignores cancellation
	waitFor(t, "the request to reach the handler", func() bool { return inside.Load() == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if err := s.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown returned %v, want the context's deadline", err)
	}
	c.expectClosed()
}

// Close ends connections at once and cancels the requests in flight.
func TestClose(t *testing.T) {
	h, release, inside := blockingHandler()
	defer close(release)
	s, addr := startServer(t, Config{}, h)
	c := dial(t, addr)
	c.send(1, 0, &wire.RecommendRequest{User: 1, N: 1}) // returns on cancellation
	waitFor(t, "the request to reach the handler", func() bool { return inside.Load() == 1 })
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	c.expectClosed()
	waitFor(t, "the handler to see its context cancelled", func() bool { return inside.Load() == 0 })
	if _, err := net.Dial("tcp", addr); err == nil {
		t.Error("the listener accepts after Close")
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown after Close: %v", err)
	}
}

// An idle connection is closed at the idle timeout; one that is owed an
// answer is not idle.
func TestIdleTimeout(t *testing.T) {
	h := &fakeHandler{}
	h.recommend = func(ctx context.Context, req *wire.RecommendRequest) (*wire.RecommendResponse, error) {
		time.Sleep(150 * time.Millisecond)
		return recommendFor(req), nil
	}
	_, addr := startServer(t, Config{IdleTimeout: 40 * time.Millisecond}, h)
	idle, waiting := dial(t, addr), dial(t, addr)
	idle.healthy(1)
	waiting.send(1, 0, &wire.RecommendRequest{User: 1, N: 1})
	idle.expectClosed()
	if env := waiting.recv(); env.Body.Kind() != wire.KindRecommendResponse {
		t.Fatalf("the waiting connection got %+v", env.Body)
	}
	waiting.expectClosed() // idle in its turn
}

// Beyond MaxConns a connection is answered Overloaded and closed.
func TestMaxConns(t *testing.T) {
	s, addr := startServer(t, Config{MaxConns: 2}, &fakeHandler{})
	a, b := dial(t, addr), dial(t, addr)
	a.healthy(1)
	b.healthy(1)
	c := dial(t, addr)
	c.expectError(0, wire.Overloaded)
	c.expectClosed()
	a.healthy(2)
	if got := counterValue(t, s, "reelrank_connections_rejected_total", nil); got != 1 {
		t.Errorf("rejected connections counted %v", got)
	}
	a.nc.Close()
	waitFor(t, "the closed connection to be gone", func() bool { return s.nconns.Load() == 1 })
	dial(t, addr).healthy(1)
}

func TestConfigChecks(t *testing.T) {
	for _, cfg := range []Config{
		{MaxFrame: -1}, {MaxFrame: wire.MaxFrameLimit + 1}, {MaxInFlight: -1}, {MaxConns: -2}, {MaxPipeline: -3},
		{MaxConnQueue: -1}, {MaxUnsent: -1},
		{MaxTimeout: 2 * wire.MaxTimeout}, {Token: string(make([]byte, wire.MaxString+1))}, {TLS: &tls.Config{}},
	} {
		if _, err := New(cfg, &fakeHandler{}); err == nil {
			t.Errorf("New accepted %+v", cfg)
		}
	}
	if _, err := New(Config{}, nil); err == nil {
		t.Error("New accepted a nil handler")
	}
	s, err := New(Config{IdleTimeout: -1}, &fakeHandler{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.Config()
	if cfg.IdleTimeout != 0 || cfg.ReadTimeout != DefaultReadTimeout || cfg.MaxFrame != wire.DefaultMaxFrame ||
		cfg.MaxInFlight <= 0 || cfg.Addr != DefaultAddr || cfg.Logger == nil ||
		cfg.MaxQueue != DefaultQueuePerInFlight*cfg.MaxInFlight || cfg.MaxConnQueue != cfg.MaxQueue/2 ||
		cfg.MaxUnsent != DefaultMaxUnsent || cfg.MaxConnsPerAddr != DefaultMaxConnsPerAddr ||
		cfg.AuthTimeout != DefaultAuthTimeout {
		t.Errorf("defaults: %+v", cfg)
	}
	s, err = New(Config{MaxQueue: -5, MaxConnsPerAddr: -1}, &fakeHandler{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg := s.Config(); cfg.MaxQueue != -1 || cfg.MaxConnQueue != 0 || cfg.MaxConnsPerAddr != -1 {
		t.Errorf("no queue and no cap per address: %+v", cfg)
	}
}
