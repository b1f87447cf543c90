package server

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/reelrank/reelrank/wire"
)

// setBodyType rewrites the union type byte of an encoded envelope (field 2
// of the root table), so that tests can send kinds Encode refuses.
func setBodyType(t testing.TB, p []byte, kind byte) {
	t.Helper()
	root := binary.LittleEndian.Uint32(p)
	vt := int64(root) - int64(int32(binary.LittleEndian.Uint32(p[root:])))
	off := binary.LittleEndian.Uint16(p[vt+4+2*2:])
	if off == 0 {
		t.Fatal("envelope without a body type")
	}
	p[int(root)+int(off)] = kind
}

// Each bad frame gets a typed answer on a connection that then goes on
// serving, and another connection notices nothing.
func TestBadFramesAnswered(t *testing.T) {
	h := &fakeHandler{}
	_, addr := startServer(t, Config{MaxFrame: 4096}, h)
	other := dial(t, addr)
	other.healthy(1)

	unknown18 := payload(t, 42, &wire.HealthRequest{})
	setBodyType(t, unknown18, 18)
	unknown200 := payload(t, 43, &wire.HealthRequest{})
	setBodyType(t, unknown200, 200)
	brokenRoot := payload(t, 44, &wire.RecommendRequest{User: 1, N: 1})
	binary.LittleEndian.PutUint32(brokenRoot, 1<<20)
	nan := payload(t, 45, &wire.SearchRequest{Vector: []float32{1.5}, K: 1})
	i := bytes.Index(nan, binary.LittleEndian.AppendUint32(nil, math.Float32bits(1.5)))
	binary.LittleEndian.PutUint32(nan[i:], math.Float32bits(float32(math.NaN())))
	garbage := make([]byte, 300)
	rand.NewChaCha8([32]byte{1}).Read(garbage)
	cases := []struct {
		name  string
		frame []byte
		id    uint64
	}{
		{"oversized frame", frameOf(make([]byte, 5000)), 0},
		{"empty frame", []byte{0, 0, 0, 0}, 0},
		{"garbage payload", frameOf(garbage), 0},
		{"unused kind 18", frameOf(unknown18), 42},
		{"unknown kind 200", frameOf(unknown200), 43},
		{"root offset past the end", frameOf(brokenRoot), 0},
		{"NaN in a search vector", frameOf(nan), 45},
		{"a response sent as a request", frameOf(payload(t, 46, &wire.HealthResponse{OK: true})), 46},
		{"an error sent as a request", frameOf(payload(t, 47, &wire.Error{Code: wire.Internal})), 47},
		{"an auth response sent as a request", frameOf(payload(t, 48, &wire.AuthResponse{})), 48},
	}
	calls := h.calls.Load()
	c := dial(t, addr)
	for i, tc := range cases {
		c.write(tc.frame)
		e := c.expectError(tc.id, wire.BadRequest)
		if e.Message == "" {
			t.Errorf("%s: an error without a message", tc.name)
		}
		c.healthy(uint64(1000 + i))
		calls++
	}
	if n := h.calls.Load(); n != calls {
		t.Errorf("%d handler calls, want %d: a bad frame reached the handler", n, calls)
	}
	// All of them at once, pipelined, with a good request after each.
	var all []byte
	for i, tc := range cases {
		all = append(all, tc.frame...)
		f, err := new(wire.Encoder).EncodeFrame(&wire.Envelope{RequestID: uint64(2000 + i), Body: &wire.DeleteRequest{ID: 1}})
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, f...)
	}
	c.write(all)
	var bad, good int
	for range 2 * len(cases) {
		switch m := c.recv().Body.(type) {
		case *wire.Error:
			if m.Code != wire.BadRequest {
				t.Errorf("pipelined bad frame: %v", m)
			}
			bad++
		case *wire.DeleteResponse:
			good++
		}
	}
	if bad != len(cases) || good != len(cases) {
		t.Errorf("pipelined: %d bad and %d good answers, want %d each", bad, good, len(cases))
	}
	other.healthy(2)
}

// A stream that ends or stalls inside a frame is closed after the
// answers owed are written; the server goes on serving.
func TestBrokenStreamsClosed(t *testing.T) {
	_, addr := startServer(t, Config{ReadTimeout: 100 * time.Millisecond}, &fakeHandler{})
	other := dial(t, addr)
	other.healthy(1)

	t.Run("truncated frame then EOF", func(t *testing.T) {
		c := dial(t, addr)
		c.send(1, 0, &wire.HealthRequest{})
		c.write([]byte{100, 0, 0, 0, 1, 2, 3})
		c.nc.(*net.TCPConn).CloseWrite()
		if env := c.recv(); env.RequestID != 1 || env.Body.Kind() != wire.KindHealthResponse {
			t.Fatalf("the request before the truncated frame: %+v", env.Body)
		}
		c.expectClosed()
	})
	t.Run("stalled frame", func(t *testing.T) {
		c := dial(t, addr)
		c.write([]byte{100, 0, 0, 0, 1, 2, 3})
		c.expectClosed() // at the read timeout
	})
	t.Run("text protocol", func(t *testing.T) {
		// "GET " reads as a length of half a gigabyte: over the maximum,
		// so the server skips it, until the read timeout ends it.
		c := dial(t, addr)
		c.write([]byte("GET / HTTP/1.1\r\nHost: reelrank\r\n\r\n"))
		c.expectClosed()
	})
	other.healthy(2)
}

// A client that goes away with requests in flight and responses half
// written leaves no goroutine behind.
func TestDisconnectMidResponse(t *testing.T) {
	release := make(chan struct{})
	h := &fakeHandler{}
	h.search = func(ctx context.Context, req *wire.SearchRequest) (*wire.SearchResponse, error) {
		if req.Nprobe == 1 {
			<-release
		}
		r := &wire.SearchResponse{IDs: make([]int64, req.K), Scores: make([]float32, req.K)}
		return r, nil
	}
	s, addr := startServer(t, Config{}, h)
	other := dial(t, addr)
	other.healthy(1)
	settled := goroutines(t)

	// Big answers the client stops reading halfway.
	c := dial(t, addr)
	for id := range uint64(20) {
		c.send(id+1, 0, &wire.SearchRequest{Vector: []float32{1}, K: wire.MaxK})
	}
	buf := make([]byte, 50000)
	if _, err := c.br.Read(buf); err != nil {
		t.Fatal(err)
	}
	c.nc.Close()

	// Requests still in the handler when the client leaves.
	d := dial(t, addr)
	for id := range uint64(5) {
		d.send(id+1, 0, &wire.SearchRequest{Vector: []float32{1}, K: 100, Nprobe: 1})
	}
	for s.adm.inFlight.Load() < 5 {
		time.Sleep(time.Millisecond)
	}
	d.nc.Close()
	time.Sleep(10 * time.Millisecond)
	close(release)

	// Wait on the server's count before the goroutines': the baseline may
	// hold goroutines of an earlier test that end meanwhile.
	waitFor(t, "the two connections to close", func() bool { return s.nconns.Load() == 1 })
	settled()
	other.healthy(2)
}

// A client that sends but never reads is cut off at the write timeout.
func TestSlowReaderCutOff(t *testing.T) {
	h := &fakeHandler{}
	h.search = func(ctx context.Context, req *wire.SearchRequest) (*wire.SearchResponse, error) {
		return &wire.SearchResponse{IDs: make([]int64, req.K), Scores: make([]float32, req.K)}, nil
	}
	s, addr := startServer(t, Config{WriteTimeout: 100 * time.Millisecond, MaxInFlight: 1000}, h)
	other := dial(t, addr)
	other.healthy(1)
	settled := goroutines(t)

	// A small receive buffer, set before the connection opens so that the
	// kernel does not grow it: 128 answers of 120 kB are far more than the
	// socket buffers hold.
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
	c := wrap(t, nc)
	req, err := new(wire.Encoder).EncodeFrame(&wire.Envelope{RequestID: 1, Body: &wire.SearchRequest{Vector: []float32{1}, K: wire.MaxK}})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for range 128 {
			if _, err := c.nc.Write(req); err != nil {
				return
			}
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for counterValue(t, s, "reelrank_connections_accepted_total", nil) < 2 {
		time.Sleep(time.Millisecond)
	}
	for s.nconns.Load() > 1 {
		if time.Now().After(deadline) {
			t.Fatal("a client that never reads was not cut off")
		}
		time.Sleep(5 * time.Millisecond)
	}
	c.nc.Close()
	settled()
	other.healthy(2)
	if got := counterValue(t, s, "reelrank_slow_clients_total", nil); got != 1 {
		t.Errorf("slow clients counted %v, want 1", got)
	}
}
