package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/reelrank/reelrank/wire"
)

func TestAuth(t *testing.T) {
	const token = "s3cret-token"
	h := &fakeHandler{}
	s, addr := startServer(t, Config{Token: token, ReadTimeout: 100 * time.Millisecond, AuthTimeout: 100 * time.Millisecond}, h)

	t.Run("ok", func(t *testing.T) {
		c := dial(t, addr)
		if env := c.call(1, &wire.AuthRequest{Token: token}); env.Body.Kind() != wire.KindAuthResponse {
			t.Fatalf("auth answered %+v", env.Body)
		}
		c.healthy(2)
		if env := c.call(3, &wire.AuthRequest{Token: token}); env.Body.Kind() != wire.KindAuthResponse {
			t.Fatalf("a second auth answered %+v", env.Body)
		}
		c.healthy(4)
		time.Sleep(150 * time.Millisecond) // past the read timeout, idle but authenticated
		c.healthy(5)
	})
	t.Run("pipelined", func(t *testing.T) {
		c := dial(t, addr)
		c.send(1, 0, &wire.AuthRequest{Token: token})
		c.send(2, 0, &wire.StatsRequest{})
		c.send(3, 0, &wire.HealthRequest{})
		got := map[uint64]wire.Kind{}
		for range 3 {
			env := c.recv()
			got[env.RequestID] = env.Body.Kind()
		}
		if got[1] != wire.KindAuthResponse || got[2] != wire.KindStatsResponse || got[3] != wire.KindHealthResponse {
			t.Fatalf("answers: %v", got)
		}
	})
	calls := h.calls.Load()
	refused := []struct {
		name  string
		first []byte
		id    uint64
	}{
		{"wrong token", frameOf(payload(t, 7, &wire.AuthRequest{Token: "s3cret-tokem"})), 7},
		{"empty token", frameOf(payload(t, 8, &wire.AuthRequest{})), 8},
		{"missing", frameOf(payload(t, 9, &wire.RecommendRequest{User: 1, N: 1})), 9},
		{"stats first", frameOf(payload(t, 10, &wire.StatsRequest{})), 10},
		{"garbage", frameOf([]byte("hello, is this the right port?")), 0},
		{"oversized", frameOf(make([]byte, authMaxFrame+1)), 0},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, addr)
			// More frames follow at once; the refusal must still arrive.
			c.write(append(tc.first, frameOf(payload(t, 99, &wire.HealthRequest{}))...))
			c.expectError(tc.id, wire.Unauthenticated)
			c.expectClosed()
		})
	}
	t.Run("wrong token later", func(t *testing.T) {
		c := dial(t, addr)
		c.call(1, &wire.AuthRequest{Token: token})
		c.send(2, 0, &wire.AuthRequest{Token: "guess"})
		c.expectError(2, wire.Unauthenticated)
		c.expectClosed()
	})
	t.Run("silent", func(t *testing.T) {
		// No token within the authentication timeout: closed, while an authenticated
		// connection may stay idle.
		silent := dial(t, addr)
		silent.expectClosed()
	})
	if n := h.calls.Load(); n != calls {
		t.Errorf("%d handler calls from unauthenticated connections", n-calls)
	}
	if got := metricValue(scrape(t, s), `reelrank_requests_total{code="unauthenticated",kind="auth"}`); got != float64(len(refused)+1) {
		t.Errorf("unauthenticated answers counted %v, want %d", got, len(refused)+1)
	}
}

// selfSigned returns a server certificate for 127.0.0.1 and a pool that
// trusts it.
func selfSigned(t testing.TB) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "reelrank test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

func TestTLS(t *testing.T) {
	cert, pool := selfSigned(t)
	const token = "over-tls"
	_, addr := startServer(t, Config{Token: token, TLS: &tls.Config{Certificates: []tls.Certificate{cert}},
		ReadTimeout: time.Second}, &fakeHandler{})

	// A plain-TCP client gets nothing it can read, and is closed.
	plain := dial(t, addr)
	plain.send(1, 0, &wire.HealthRequest{})
	if env, err := plain.recvErr(); err == nil {
		t.Fatalf("a plain client was answered %+v", env.Body)
	}

	nc, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	c := wrap(t, nc)
	if env := c.call(1, &wire.AuthRequest{Token: token}); env.Body.Kind() != wire.KindAuthResponse {
		t.Fatalf("auth over TLS answered %+v", env.Body)
	}
	env := c.call(2, &wire.RecommendRequest{User: 5, N: 20})
	r, ok := env.Body.(*wire.RecommendResponse)
	if !ok || len(r.Items) != 20 || r.Items[19].Reel != 519 {
		t.Fatalf("recommend over TLS: %+v", env.Body)
	}
	// Pipelined over TLS.
	for id := range uint64(10) {
		c.send(id+10, 0, &wire.SearchRequest{Vector: []float32{1}, K: 5})
	}
	for range 10 {
		if env := c.recv(); env.Body.Kind() != wire.KindSearchResponse {
			t.Fatalf("pipelined over TLS: %+v", env.Body)
		}
	}

	// A client that does not trust the certificate fails the handshake.
	if _, err := tls.Dial("tcp", addr, &tls.Config{MinVersion: tls.VersionTLS13}); err == nil ||
		!strings.Contains(err.Error(), "certificate") {
		t.Errorf("an untrusting client: %v", err)
	}
	c.healthy(3)
}
