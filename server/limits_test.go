package server

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/reelrank/reelrank/wire"
)

// dialFrom dials addr from the local IP address from (any port).
func dialFrom(t testing.TB, from, addr string) *tconn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		t.Skipf("cannot dial from %s: %v", from, err)
	}
	t.Cleanup(func() { nc.Close() })
	return wrap(t, nc)
}

// Beyond MaxConnsPerAddr connections from one IP address, whatever their
// ports, a connection is answered Overloaded and closed; another address
// is not affected.
func TestMaxConnsPerAddr(t *testing.T) {
	s, addr := startServer(t, Config{MaxConnsPerAddr: 2}, &fakeHandler{})
	a, b := dial(t, addr), dial(t, addr)
	a.healthy(1)
	b.healthy(1)
	c := dial(t, addr)
	if e := c.expectError(0, wire.Overloaded); !strings.Contains(e.Message, "from 127.0.0.1") {
		t.Errorf("refusal: %q", e.Message)
	}
	c.expectClosed()
	dialFrom(t, "127.0.0.2", addr).healthy(1)
	if got := counterValue(t, s, "reelrank_connections_rejected_total", nil); got != 1 {
		t.Errorf("rejected connections counted %v", got)
	}
	a.nc.Close()
	waitFor(t, "the closed connection to be gone", func() bool { return s.nconns.Load() == 2 })
	dial(t, addr).healthy(1)
	s.mu.Lock()
	n := s.perAddr[addrOf(a.nc.LocalAddr())]
	s.mu.Unlock()
	if n != 2 {
		t.Errorf("%d connections counted from 127.0.0.1, want 2", n)
	}
}

// A connection must authenticate within AuthTimeout of opening, however
// it spends the time: silent, or trickling a frame. Once authenticated it
// may stay idle.
func TestAuthTimeout(t *testing.T) {
	const token = "t0ken"
	_, addr := startServer(t, Config{Token: token, AuthTimeout: 50 * time.Millisecond, ReadTimeout: 10 * time.Second,
		IdleTimeout: time.Minute}, &fakeHandler{})
	authed := dial(t, addr)
	authed.call(1, &wire.AuthRequest{Token: token})
	start := time.Now()
	silent, trickle := dial(t, addr), dial(t, addr)
	trickle.write(frameOf(payload(t, 1, &wire.AuthRequest{Token: token}))[:6])
	silent.expectClosed()
	trickle.expectClosed()
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("closed after %v: the read timeout, not the authentication timeout", d)
	}
	authed.healthy(2)
}

// /healthz says the process serves; /readyz follows the handler's Health
// and says no while the server shuts down.
func TestProbes(t *testing.T) {
	h := &fakeHandler{}
	status := &wire.HealthResponse{OK: true, Status: "serving model m1"}
	var healthErr error
	h.health = func(ctx context.Context, req *wire.HealthRequest) (*wire.HealthResponse, error) {
		if healthErr != nil {
			return nil, healthErr
		}
		return status, nil
	}
	s, err := New(Config{Logger: quietLogger()}, h)
	if err != nil {
		t.Fatal(err)
	}
	probe := func(path string) (int, string) {
		rec := httptest.NewRecorder()
		s.Probes().ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		return rec.Code, strings.TrimSpace(rec.Body.String())
	}
	check := func(path string, code int, body string) {
		t.Helper()
		if c, b := probe(path); c != code || !strings.Contains(b, body) {
			t.Errorf("%s: %d %q, want %d %q", path, c, b, code, body)
		}
	}
	check("/healthz", 200, "ok")
	check("/readyz", 200, "serving model m1")
	status = &wire.HealthResponse{Status: "event log not writable: disk full"}
	check("/readyz", 503, "event log not writable")
	healthErr = errors.New("engine: no model")
	check("/readyz", 503, "no model")
	h.health = func(ctx context.Context, req *wire.HealthRequest) (*wire.HealthResponse, error) { panic("boom") }
	check("/readyz", 503, "failed")
	check("/healthz", 200, "ok")
	healthErr, h.health = nil, nil
	check("/readyz", 200, "serving")
	s.Close()
	check("/readyz", 503, "shutting down")
	check("/healthz", 200, "ok")
}

// The metrics listener serves the probes, with timeouts that cut off a
// client that holds a connection and sends nothing.
func TestMetricsListener(t *testing.T) {
	s, err := New(Config{Logger: quietLogger()}, &fakeHandler{})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.ServeMetrics(ln) }()
	defer func() {
		s.Close()
		if err := <-done; !errors.Is(err, ErrServerClosed) {
			t.Errorf("ServeMetrics returned %v", err)
		}
	}()
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get("http://" + ln.Addr().String() + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("%s: %d %s", path, resp.StatusCode, body)
		}
	}
	s.mu.Lock()
	srv := s.metricsSrv
	s.mu.Unlock()
	if srv.ReadHeaderTimeout <= 0 || srv.ReadTimeout <= 0 || srv.WriteTimeout <= 0 || srv.IdleTimeout <= 0 {
		t.Errorf("the metrics server's timeouts: header %v, read %v, write %v, idle %v",
			srv.ReadHeaderTimeout, srv.ReadTimeout, srv.WriteTimeout, srv.IdleTimeout)
	}
}
