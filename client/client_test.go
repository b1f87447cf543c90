package client_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reelrank/reelrank/client"
	"github.com/reelrank/reelrank/client/clienttest"
	"github.com/reelrank/reelrank/wire"
)

// start runs a fake server for the test's lifetime.
func start(t *testing.T, h clienttest.Handler, cfg clienttest.Config) *clienttest.Server {
	t.Helper()
	s, err := clienttest.Start(h, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// dial connects to addrs for the test's lifetime.
func dial(t *testing.T, opt client.Options, addrs ...string) *client.Client {
	t.Helper()
	c, err := client.DialReplicas(context.Background(), addrs, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func recommend(user int64) *wire.RecommendRequest {
	return &wire.RecommendRequest{User: user, N: 3, Context: wire.Context{Time: 1_700_000_000_000}}
}

// The answer to the first request is held until the second is answered,
// on one connection: the answers come back out of order and each caller
// gets its own.
func TestPipelinedOutOfOrder(t *testing.T) {
	secondDone := make(chan struct{})
	s := start(t, func(ctx context.Context, req *wire.Envelope) wire.Message {
		r := req.Body.(*wire.RecommendRequest)
		if r.User == 1 {
			select {
			case <-secondDone:
			case <-ctx.Done():
				return nil
			}
		}
		return clienttest.StaticAnswer("v1", r)
	}, clienttest.Config{})
	c := dial(t, client.Options{PoolSize: 1}, s.Addr)

	first := make(chan *wire.RecommendResponse, 1)
	go func() {
		r, err := c.Recommend(context.Background(), recommend(1))
		if err != nil {
			t.Error(err)
		}
		first <- r
	}()
	for s.Requests() < 1 { // the first request is on the wire before the second
		time.Sleep(time.Millisecond)
	}
	r2, err := c.Recommend(context.Background(), recommend(2))
	if err != nil {
		t.Fatal(err)
	}
	close(secondDone)
	r1 := <-first
	if r1 == nil || r1.Items[0].Reel != 1001 || r2.Items[0].Reel != 2001 {
		t.Fatalf("answers mismatched: %+v, %+v", r1, r2)
	}
	if got := s.Accepted(); got != 1 {
		t.Errorf("%d connections, want 1 (both requests pipelined on one)", got)
	}
}

// Many callers on two connections, answers delayed at random: every
// caller gets the answer to its own request.
func TestPipelinedConcurrent(t *testing.T) {
	s := start(t, func(ctx context.Context, req *wire.Envelope) wire.Message {
		r := req.Body.(*wire.RecommendRequest)
		clienttest.Sleep(ctx, time.Duration(r.User%7)*time.Millisecond)
		return clienttest.StaticAnswer("v1", r)
	}, clienttest.Config{})
	c := dial(t, client.Options{PoolSize: 2, MaxInFlight: 8}, s.Addr)
	var wg sync.WaitGroup
	for u := range int64(200) {
		wg.Go(func() {
			r, err := c.Recommend(context.Background(), recommend(u))
			if err != nil {
				t.Error(err)
				return
			}
			if r.Items[0].Reel != u*1000+1 {
				t.Errorf("user %d got reel %d", u, r.Items[0].Reel)
			}
		})
	}
	wg.Wait()
	if got := s.Accepted(); got != 2 {
		t.Errorf("%d connections, want 2", got)
	}
}

// A server that never answers: the call returns when its context ends,
// with an error that says deadline, and the connection stays usable.
func TestDeadlineServerNeverAnswers(t *testing.T) {
	var seen atomic.Int64 // the timeout the server was sent, in µs
	s := start(t, func(ctx context.Context, req *wire.Envelope) wire.Message {
		if req.Body.Kind() == wire.KindHealthRequest {
			return clienttest.StaticAnswer("v1", req.Body)
		}
		seen.Store(req.Timeout.Microseconds())
		return nil
	}, clienttest.Config{})
	c := dial(t, client.Options{PoolSize: 1, Timeout: 40 * time.Millisecond}, s.Addr)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	_, err := c.Recommend(ctx, recommend(1))
	if !errors.Is(err, context.DeadlineExceeded) || wire.Code(err) != wire.DeadlineExceeded {
		t.Fatalf("err = %v, want a deadline", err)
	}
	if us := seen.Load(); us <= 0 || us > 30_000 {
		t.Errorf("server was sent a timeout of %d µs, want (0, 30000]", us)
	}
	// No deadline in the context: Options.Timeout applies.
	seen.Store(0)
	if _, err = c.Recommend(context.Background(), recommend(2)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the default timeout", err)
	}
	if us := seen.Load(); us <= 0 || us > 40_000 {
		t.Errorf("server was sent a timeout of %d µs, want (0, 40000]", us)
	}
	// A cancelled context, too.
	ctx, cancel = context.WithCancel(context.Background())
	go func() { time.Sleep(5 * time.Millisecond); cancel() }()
	if _, err = c.Recommend(ctx, recommend(3)); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want cancelled", err)
	}
	// An expired context is not sent at all.
	n := s.Requests()
	if _, err = c.Recommend(ctx, recommend(4)); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want cancelled", err)
	}
	if h, err := c.Health(context.Background()); err != nil || !h.OK {
		t.Fatalf("health after timeouts: %v, %v", h, err)
	}
	if s.Requests() != n+1 || s.Accepted() != 1 {
		t.Errorf("%d requests and %d connections, want %d and 1", s.Requests(), s.Accepted(), n+1)
	}
}

// Answers that come after their caller gave up are dropped, and the
// connection goes on matching the others correctly.
func TestLateAnswersDropped(t *testing.T) {
	s := start(t, func(ctx context.Context, req *wire.Envelope) wire.Message {
		r := req.Body.(*wire.RecommendRequest)
		if r.User < 100 {
			clienttest.Sleep(ctx, 30*time.Millisecond)
		}
		return clienttest.StaticAnswer("v1", r)
	}, clienttest.Config{})
	c := dial(t, client.Options{PoolSize: 1, MaxInFlight: 4}, s.Addr)
	for u := range int64(8) { // more than MaxInFlight: abandoned calls free their slots
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Millisecond)
		_, err := c.Recommend(ctx, recommend(u))
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("user %d: err = %v, want a deadline", u, err)
		}
	}
	time.Sleep(40 * time.Millisecond) // the late answers arrive
	for u := int64(100); u < 110; u++ {
		r, err := c.Recommend(context.Background(), recommend(u))
		if err != nil || r.Items[0].Reel != u*1000+1 {
			t.Fatalf("user %d after late answers: %+v, %v", u, r, err)
		}
	}
}

// MaxInFlight holds further callers until a slot frees; a caller whose
// context ends while waiting is never sent.
func TestMaxInFlight(t *testing.T) {
	release := make(chan struct{})
	s := start(t, func(ctx context.Context, req *wire.Envelope) wire.Message {
		select {
		case <-release:
		case <-ctx.Done():
			return nil
		}
		return clienttest.StaticAnswer("v1", req.Body)
	}, clienttest.Config{})
	c := dial(t, client.Options{PoolSize: 1, MaxInFlight: 2}, s.Addr)
	var wg sync.WaitGroup
	for u := range int64(2) {
		wg.Go(func() {
			if _, err := c.Recommend(context.Background(), recommend(u)); err != nil {
				t.Error(err)
			}
		})
	}
	for s.Requests() < 2 {
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := c.Recommend(ctx, recommend(9)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("third call: err = %v, want a deadline while waiting for a slot", err)
	}
	if got := s.Requests(); got != 2 {
		t.Errorf("server saw %d requests, want 2", got)
	}
	close(release)
	wg.Wait()
}

// A connection the server drops fails its pending calls with ErrConnLost
// (a write without a key is not sent again); the next call dials a new
// connection.
func TestBrokenConnectionRecovery(t *testing.T) {
	s := start(t, func(ctx context.Context, req *wire.Envelope) wire.Message {
		if r, ok := req.Body.(*wire.DeleteRequest); ok && r.ID == 666 {
			<-ctx.Done() // hangs until the connection goes
			return nil
		}
		return clienttest.StaticAnswer("v1", req.Body)
	}, clienttest.Config{})
	c := dial(t, client.Options{PoolSize: 1, NoIdempotencyKey: true}, s.Addr)
	if _, err := c.Health(context.Background()); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := c.Delete(context.Background(), &wire.DeleteRequest{ID: 666})
		errc <- err
	}()
	for s.Requests() < 2 {
		time.Sleep(time.Millisecond)
	}
	if n := s.DropConns(); n != 1 {
		t.Fatalf("dropped %d connections, want 1", n)
	}
	err := <-errc
	if !errors.Is(err, client.ErrConnLost) || !strings.Contains(err.Error(), s.Addr) {
		t.Fatalf("pending call: err = %v, want ErrConnLost naming the address", err)
	}
	r, err := c.Recommend(context.Background(), recommend(7))
	if err != nil || r.Items[0].Reel != 7001 {
		t.Fatalf("after the drop: %+v, %v", r, err)
	}
	if got := s.Accepted(); got != 2 {
		t.Errorf("%d connections accepted, want 2 (one redial)", got)
	}
	if got := c.Counters(); got.Dials != 2 || got.Retries != 0 {
		t.Errorf("Counters() = %+v, want 2 dials and no retry", got)
	}
}

// A read whose connection breaks under it is sent again on a new one.
func TestReadRetriedOnLostConnection(t *testing.T) {
	var s *clienttest.Server
	var dropped atomic.Bool
	s = start(t, func(ctx context.Context, req *wire.Envelope) wire.Message {
		if dropped.CompareAndSwap(false, true) {
			s.DropConns() // as a server closing an idle connection might
			return nil
		}
		return clienttest.StaticAnswer("v1", req.Body)
	}, clienttest.Config{})
	c := dial(t, client.Options{PoolSize: 1}, s.Addr)
	r, err := c.Recommend(context.Background(), recommend(5))
	if err != nil || r.Items[0].Reel != 5001 {
		t.Fatalf("recommend across a dropped connection: %+v, %v", r, err)
	}
	if got := c.Counters(); got.Retries != 1 || got.Dials != 2 || s.Requests() != 2 {
		t.Errorf("Counters() = %+v after %d requests, want 1 retry, 2 dials, 2 requests", got, s.Requests())
	}
}

// A write whose connection breaks after the server received it is sent
// again on a new connection with the same idempotency key, and the caller
// gets the answer to the second sending.
func TestWriteRetriedWithSameKey(t *testing.T) {
	var (
		s       *clienttest.Server
		mu      sync.Mutex
		keys    []string
		dropped bool
	)
	s = start(t, func(ctx context.Context, req *wire.Envelope) wire.Message {
		m, ok := req.Body.(*wire.EventRequest)
		if !ok {
			return clienttest.StaticAnswer("v1", req.Body)
		}
		mu.Lock()
		keys = append(keys, m.Key)
		first := !dropped
		dropped = true
		mu.Unlock()
		if first {
			s.DropConns() // received, and the answer is lost with the connection
			return nil
		}
		return &wire.EventResponse{Accepted: uint32(len(m.Events)), Replayed: true}
	}, clienttest.Config{})
	c := dial(t, client.Options{PoolSize: 1}, s.Addr)
	req := &wire.EventRequest{Events: []wire.Event{{Type: wire.EventLike, User: 1, Reel: 2}, {Type: wire.EventShare, User: 1, Reel: 2}}}
	resp, err := c.Event(context.Background(), req)
	if err != nil {
		t.Fatalf("event across a dropped connection: %v", err)
	}
	if resp.Accepted != 2 || !resp.Replayed {
		t.Errorf("answer %+v, want the second sending's: 2 accepted, replayed", resp)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(keys) != 2 || keys[0] != keys[1] || len(keys[0]) != 32 || strings.Trim(keys[0], "0123456789abcdef") != "" {
		t.Errorf("the server saw keys %q, want one key of 32 hex digits twice", keys)
	}
	if req.Key != "" {
		t.Errorf("the caller's request was given key %q", req.Key)
	}
	if got := c.Counters(); got.Retries != 1 || got.Dials != 2 {
		t.Errorf("Counters() = %+v, want 1 retry and 2 dials", got)
	}

	// A key the caller sets is the one sent; each write gets its own.
	keys = keys[:0]
	mu.Unlock()
	for _, k := range []string{"mine", "", ""} {
		if _, err := c.Event(context.Background(), &wire.EventRequest{Key: k}); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	if len(keys) != 3 || keys[0] != "mine" || keys[1] == keys[2] || len(keys[1]) != 32 {
		t.Errorf("keys sent: %q, want \"mine\" and two different random keys", keys)
	}
}

// With Options.NoIdempotencyKey a write without a key is sent without one,
// and a broken connection fails it: it is not sent twice.
func TestNoIdempotencyKey(t *testing.T) {
	var (
		s    *clienttest.Server
		sent atomic.Int64
		key  atomic.Value
	)
	s = start(t, func(ctx context.Context, req *wire.Envelope) wire.Message {
		if m, ok := req.Body.(*wire.UpsertRequest); ok {
			key.Store(m.Key)
			if sent.Add(1) == 1 {
				s.DropConns()
				return nil
			}
		}
		return clienttest.StaticAnswer("v1", req.Body)
	}, clienttest.Config{})
	c := dial(t, client.Options{PoolSize: 1, NoIdempotencyKey: true}, s.Addr)
	_, err := c.Upsert(context.Background(), &wire.UpsertRequest{Reel: wire.Reel{ID: 1, Category: -1}})
	if !errors.Is(err, client.ErrConnLost) || sent.Load() != 1 || key.Load() != "" {
		t.Fatalf("err = %v after %d sendings with key %q, want ErrConnLost after one without a key", err, sent.Load(), key.Load())
	}
	if _, err := c.Upsert(context.Background(), &wire.UpsertRequest{Reel: wire.Reel{ID: 1, Category: -1}, Key: "k"}); err != nil || key.Load() != "k" {
		t.Fatalf("a key the caller set: %v, sent %q", err, key.Load())
	}
}

// A replica that is down is skipped; Dial fails only when none is up.
func TestReplicaDown(t *testing.T) {
	s := start(t, clienttest.Static("up"), clienttest.Config{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	if _, err := client.Dial(context.Background(), dead, client.Options{DialTimeout: time.Second}); err == nil {
		t.Fatal("Dial of a closed port succeeded")
	}
	c := dial(t, client.Options{PoolSize: 1}, dead, s.Addr)
	for u := range int64(6) {
		r, err := c.Recommend(context.Background(), recommend(u))
		if err != nil || r.ModelVersion != "up" {
			t.Fatalf("request %d: %+v, %v", u, r, err)
		}
	}
}

// Errors the server sends are *wire.Error with their code, wrapped with
// the address and the request kind.
func TestServerError(t *testing.T) {
	s := start(t, func(_ context.Context, req *wire.Envelope) wire.Message {
		return &wire.Error{Code: wire.NotFound, Message: "no reel 5"}
	}, clienttest.Config{})
	c := dial(t, client.Options{}, s.Addr)
	_, err := c.Delete(context.Background(), &wire.DeleteRequest{ID: 5})
	var we *wire.Error
	if !errors.As(err, &we) || we.Code != wire.NotFound || we.Message != "no reel 5" {
		t.Fatalf("err = %v, want a *wire.Error NotFound", err)
	}
	if !strings.Contains(err.Error(), s.Addr) || !strings.Contains(err.Error(), "DeleteRequest") {
		t.Errorf("err = %q lacks the address or the kind", err)
	}
	// A request the encoder refuses never leaves.
	_, err = c.Search(context.Background(), &wire.SearchRequest{K: 0, Vector: []float32{1}})
	if wire.Code(err) != wire.BadRequest || s.Requests() != 1 {
		t.Fatalf("bad search: err = %v after %d requests", err, s.Requests())
	}
	if _, err := c.Do(context.Background(), &wire.AuthRequest{Token: "x"}); err == nil {
		t.Error("Do sent an AuthRequest")
	}
}

// An answer of the wrong kind is ErrBadResponse.
func TestWrongAnswerKind(t *testing.T) {
	s := start(t, func(_ context.Context, req *wire.Envelope) wire.Message {
		return &wire.HealthResponse{OK: true}
	}, clienttest.Config{})
	c := dial(t, client.Options{}, s.Addr)
	if _, err := c.Stats(context.Background()); !errors.Is(err, client.ErrBadResponse) {
		t.Fatalf("err = %v, want ErrBadResponse", err)
	}
}

func TestAuth(t *testing.T) {
	s := start(t, clienttest.Static("v1"), clienttest.Config{Token: "s3cret"})
	ctx := context.Background()

	c := dial(t, client.Options{Token: "s3cret", PoolSize: 2}, s.Addr)
	for u := range int64(4) {
		if _, err := c.Recommend(ctx, recommend(u)); err != nil {
			t.Fatalf("with the token: %v", err)
		}
	}

	_, err := client.Dial(ctx, s.Addr, client.Options{Token: "wrong"})
	var we *wire.Error
	if !errors.As(err, &we) || we.Code != wire.Unauthenticated {
		t.Fatalf("wrong token: err = %v, want Unauthenticated", err)
	}

	// Without a token the connection opens, and the first request is refused.
	c2 := dial(t, client.Options{PoolSize: 1}, s.Addr)
	if _, err := c2.Health(ctx); wire.Code(err) != wire.Unauthenticated {
		t.Fatalf("no token: err = %v, want Unauthenticated", err)
	}

	// A server without a token accepts a client that sends one.
	open := start(t, clienttest.Static("v1"), clienttest.Config{})
	c3 := dial(t, client.Options{Token: "anything"}, open.Addr)
	if _, err := c3.Health(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestTLS(t *testing.T) {
	srvCfg, pool := selfSigned(t)
	s := start(t, clienttest.Static("tls"), clienttest.Config{TLS: srvCfg, Token: "t"})
	c := dial(t, client.Options{TLS: &tls.Config{RootCAs: pool}, Token: "t"}, s.Addr)
	h, err := c.Health(context.Background())
	if err != nil || h.Status != "tls" {
		t.Fatalf("over TLS: %+v, %v", h, err)
	}
	if _, err := client.Dial(context.Background(), s.Addr, client.Options{TLS: &tls.Config{}}); err == nil {
		t.Fatal("Dial trusted an unknown certificate")
	}
}

// selfSigned returns a server configuration with a certificate for
// 127.0.0.1, and a pool that trusts it.
func selfSigned(t *testing.T) (*tls.Config, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "reelrank test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}, pool
}

func TestClose(t *testing.T) {
	s := start(t, func(ctx context.Context, req *wire.Envelope) wire.Message {
		<-ctx.Done()
		return nil
	}, clienttest.Config{})
	c, err := client.Dial(context.Background(), s.Addr, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := c.Stats(context.Background())
		errc <- err
	}()
	for s.Requests() < 1 {
		time.Sleep(time.Millisecond)
	}
	c.Close()
	if err := <-errc; !errors.Is(err, client.ErrClosed) {
		t.Fatalf("in flight at Close: err = %v, want ErrClosed", err)
	}
	if _, err := c.Stats(context.Background()); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("after Close: err = %v, want ErrClosed", err)
	}
}

func TestOptionsRefused(t *testing.T) {
	for _, o := range []client.Options{{PoolSize: -1}, {MaxInFlight: -1}, {HedgePercentile: 1}, {HedgeBudget: -1},
		{MaxFrame: wire.MaxFrameLimit + 1}} {
		if _, err := client.Dial(context.Background(), "127.0.0.1:1", o); err == nil {
			t.Errorf("options %+v accepted", o)
		}
	}
	if _, err := client.DialReplicas(context.Background(), nil, client.Options{}); err == nil {
		t.Error("no address accepted")
	}
}

// A server that reads nothing: once the socket buffers fill, the write
// times out and breaks the connection, failing the calls queued on it
// long before their own deadlines. (The server accepts one connection,
// so later calls fail to redial.)
func TestWriteTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	held := make(chan net.Conn, 1)
	go func() {
		defer ln.Close()
		nc, err := ln.Accept()
		if err != nil {
			close(held)
			return
		}
		nc.(*net.TCPConn).SetReadBuffer(4096) // never read; a small window
		held <- nc
	}()
	defer func() {
		if nc, ok := <-held; ok {
			nc.Close()
		}
	}()
	c := dial(t, client.Options{PoolSize: 1, WriteTimeout: 50 * time.Millisecond, NoIdempotencyKey: true}, ln.Addr().String())
	emb := make([]float32, wire.MaxDim) // 16 KB a frame
	var wg sync.WaitGroup
	var lost atomic.Int64
	for id := range int64(600) { // 10 MB, more than the socket buffers hold
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			// A write without a key, so not sent again on a new connection.
			_, err := c.Upsert(ctx, &wire.UpsertRequest{Reel: wire.Reel{ID: id, Category: -1, Embedding: emb}})
			switch {
			case errors.Is(err, client.ErrConnLost):
				lost.Add(1)
			case err != nil && strings.Contains(err.Error(), "dial"): // after the break
			default:
				t.Errorf("upsert %d: err = %v, want ErrConnLost or a failed redial", id, err)
			}
		})
	}
	wg.Wait()
	if lost.Load() == 0 {
		t.Error("no call lost its connection to the write timeout")
	}
}
