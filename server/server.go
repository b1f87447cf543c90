package server

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reelrank/reelrank/wire"
)

// Defaults of Config's zero fields.
const (
	DefaultAddr         = "127.0.0.1:7070"
	DefaultMaxConns     = 10000
	DefaultMaxPipeline  = 128
	DefaultTimeout      = 10 * time.Second
	DefaultMaxTimeout   = time.Minute
	DefaultReadTimeout  = 10 * time.Second
	DefaultWriteTimeout = 10 * time.Second
	DefaultIdleTimeout  = 10 * time.Minute
	DefaultAuthTimeout  = 2 * time.Second
	// DefaultMaxUnsent bounds a connection's response bytes not yet
	// written; DefaultMaxConnsPerAddr the connections from one IP address.
	DefaultMaxUnsent       = 8 << 20
	DefaultMaxConnsPerAddr = 1024
	// DefaultQueuePerInFlight: MaxQueue is this many times MaxInFlight.
	DefaultQueuePerInFlight = 16
	defaultInFlightPerCPU   = 8
)

const (
	// readBufferSize is the size of the pooled buffered readers a
	// connection holds while frames are arriving; firstSize the array an
	// idle connection reads the first bytes of a frame into.
	readBufferSize = 8 << 10
	firstSize      = 256
	// maxBatch bounds the responses one write carries, and batchBytes the
	// bytes after which a batch is written without waiting for more.
	maxBatch   = 64
	batchBytes = 64 << 10
	// lingerTimeout bounds how long a closing connection waits for the
	// peer to read its last responses and close (see conn.closeConn).
	lingerTimeout = 250 * time.Millisecond
	// authMaxFrame bounds the first frame of a connection that has not yet
	// presented its token: enough for an AuthRequest with the longest
	// token.
	authMaxFrame = wire.MaxString + 1024
	// healthBudget bounds a Health request's call of the handler, and a
	// /readyz probe's: a health check answers fast or not at all.
	healthBudget = time.Second
)

// ErrServerClosed is returned by Serve, ServeMetrics and ListenAndServe
// after Shutdown or Close.
var ErrServerClosed = errors.New("server: closed")

// Config configures a Server. Zero fields take the defaults above; a
// negative timeout means none.
type Config struct {
	// Addr is the TCP address ListenAndServe listens on (DefaultAddr).
	Addr string
	// MetricsAddr is the HTTP address ListenAndServe serves /metrics on;
	// empty serves none (Metrics returns the handler either way).
	MetricsAddr string

	// MaxFrame bounds a request's payload in bytes (wire.DefaultMaxFrame,
	// at most wire.MaxFrameLimit). A larger frame is skipped and answered
	// BadRequest; the connection goes on.
	MaxFrame int
	// MaxInFlight bounds the requests in the Handler at once, over all
	// connections (8 per CPU): set it to about what the machine serves
	// within the latency target. A request beyond it waits in the queue
	// while its predicted wait fits its budget (see the package doc).
	MaxInFlight int
	// MaxQueue bounds the requests waiting for a slot, over all
	// connections (DefaultQueuePerInFlight times MaxInFlight); a negative
	// MaxQueue means no queue: a request beyond MaxInFlight is answered
	// Overloaded at once. MaxConnQueue bounds those of one connection
	// (half of MaxQueue), so that one client cannot fill the queue.
	MaxQueue     int
	MaxConnQueue int
	// MaxUnsent bounds a connection's response bytes encoded and not yet
	// written (DefaultMaxUnsent): above it the server stops reading the
	// connection until the client reads, and WriteTimeout cuts off a
	// client that does not.
	MaxUnsent int
	// MaxConns bounds the open connections (DefaultMaxConns), and
	// MaxConnsPerAddr those from one IP address, whatever the port
	// (DefaultMaxConnsPerAddr; negative: none, as behind a proxy that
	// connects from one address). A connection beyond either is answered
	// Overloaded and closed.
	MaxConns        int
	MaxConnsPerAddr int
	// MaxPipeline bounds the requests of one connection that are read but
	// not yet answered (DefaultMaxPipeline). At the bound the server stops
	// reading the connection until a response is written.
	MaxPipeline int

	// DefaultTimeout is the budget of a request whose envelope sets none
	// (DefaultTimeout); MaxTimeout caps any budget (DefaultMaxTimeout).
	// The budget runs from the moment the server has read the frame.
	DefaultTimeout time.Duration
	MaxTimeout     time.Duration
	// ReadTimeout bounds the reading of one frame once its first byte has
	// arrived, and a TLS handshake (DefaultReadTimeout). WriteTimeout
	// bounds one write of responses: a client that reads slower is cut off
	// (DefaultWriteTimeout). IdleTimeout closes a connection that has
	// sent nothing and is owed nothing for that long (DefaultIdleTimeout).
	ReadTimeout  time.Duration
	WriteTimeout time.Duration
	IdleTimeout  time.Duration

	// Token, when set, is the shared secret each connection must present
	// in an AuthRequest as its first frame (see package wire), within
	// AuthTimeout of opening (DefaultAuthTimeout; negative: within the
	// read and idle timeouts only); until then its frames may be at most
	// 65 kB.
	Token       string
	AuthTimeout time.Duration
	// AdminToken, when set, is the token whose connections may send
	// AdminRequests (model loads, promotions, rollbacks, status); it is
	// also accepted as the connection's token. With Token set and no
	// AdminToken, AdminRequests are refused; with neither, anyone on the
	// server's address may send them.
	AdminToken string
	// TLS, when set, makes every connection TLS with this configuration.
	TLS *tls.Config
	// Logger receives the server's log (slog.Default() when nil).
	Logger *slog.Logger
}

// withDefaults checks c and fills in its zero fields.
func (c Config) withDefaults() (Config, error) {
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	switch {
	case c.MaxFrame < 0 || c.MaxFrame > wire.MaxFrameLimit:
		return c, fmt.Errorf("server: MaxFrame %d outside 0..%d", c.MaxFrame, wire.MaxFrameLimit)
	case c.MaxInFlight < 0, c.MaxConns < 0, c.MaxPipeline < 0, c.MaxConnQueue < 0, c.MaxUnsent < 0:
		return c, fmt.Errorf("server: negative limit (MaxInFlight %d, MaxConns %d, MaxPipeline %d, MaxConnQueue %d, MaxUnsent %d)",
			c.MaxInFlight, c.MaxConns, c.MaxPipeline, c.MaxConnQueue, c.MaxUnsent)
	case c.MaxTimeout > wire.MaxTimeout:
		return c, fmt.Errorf("server: MaxTimeout %v over the protocol's %v", c.MaxTimeout, wire.MaxTimeout)
	case c.TLS != nil && len(c.TLS.Certificates) == 0 && c.TLS.GetCertificate == nil && c.TLS.GetConfigForClient == nil:
		return c, errors.New("server: TLS configuration without a certificate")
	case len(c.Token) > wire.MaxString || len(c.AdminToken) > wire.MaxString:
		return c, fmt.Errorf("server: token of %d bytes, over the protocol's %d", max(len(c.Token), len(c.AdminToken)), wire.MaxString)
	case c.AdminToken != "" && c.AdminToken == c.Token:
		return c, errors.New("server: the admin token must differ from the token")
	}
	if c.MaxFrame == 0 {
		c.MaxFrame = wire.DefaultMaxFrame
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = defaultInFlightPerCPU * runtime.GOMAXPROCS(0)
	}
	switch {
	case c.MaxQueue == 0:
		c.MaxQueue = DefaultQueuePerInFlight * c.MaxInFlight
	case c.MaxQueue < 0:
		c.MaxQueue, c.MaxConnQueue = -1, 0
	}
	if c.MaxConnQueue == 0 && c.MaxQueue > 0 {
		c.MaxConnQueue = max(c.MaxQueue/2, 1)
	}
	if c.MaxUnsent == 0 {
		c.MaxUnsent = DefaultMaxUnsent
	}
	if c.MaxConns == 0 {
		c.MaxConns = DefaultMaxConns
	}
	switch {
	case c.MaxConnsPerAddr == 0:
		c.MaxConnsPerAddr = DefaultMaxConnsPerAddr
	case c.MaxConnsPerAddr < 0:
		c.MaxConnsPerAddr = -1
	}
	if c.MaxPipeline == 0 {
		c.MaxPipeline = DefaultMaxPipeline
	}
	def := func(d *time.Duration, v time.Duration) {
		switch {
		case *d == 0:
			*d = v
		case *d < 0:
			*d = 0
		}
	}
	def(&c.DefaultTimeout, DefaultTimeout)
	def(&c.MaxTimeout, DefaultMaxTimeout)
	def(&c.ReadTimeout, DefaultReadTimeout)
	def(&c.WriteTimeout, DefaultWriteTimeout)
	def(&c.IdleTimeout, DefaultIdleTimeout)
	def(&c.AuthTimeout, DefaultAuthTimeout)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c, nil
}

// Server serves the wire protocol over TCP for a Handler. Create it with
// New; it is safe for concurrent use.
type Server struct {
	cfg   Config
	h     Handler
	log   *slog.Logger
	start time.Time
	m     *metrics

	// tokenSum is the SHA-256 of Config.Token, compared in constant time.
	tokenSum [sha256.Size]byte
	// adminSum is the SHA-256 of Config.AdminToken.
	adminSum [32]byte

	bufs    wire.BufferPool // request frames' payloads
	frames  wire.BufferPool // response frames, apart: a pool shared with the small payloads handed a small buffer to a large frame, allocating twice a request
	encs    sync.Pool       // *wire.Encoder
	readers sync.Pool       // *bufio.Reader of readBufferSize

	adm *scheduler // admission: the slots, the queue and the estimates

	// ctx is the parent of every connection's context; Close cancels it.
	ctx    context.Context
	cancel context.CancelFunc

	nconns   atomic.Int64 // open connections
	requests atomic.Uint64
	events   atomic.Uint64
	errs     [256]atomic.Uint64 // error responses by code

	draining atomic.Bool   // Shutdown or Close began
	drainCh  chan struct{} // closed when draining begins

	mu         sync.Mutex
	listeners  map[net.Listener]struct{}
	conns      map[*conn]struct{}
	perAddr    map[netip.Addr]int // open connections by remote IP address
	addr       net.Addr
	metricsLn  net.Listener
	metricsSrv *http.Server
	closed     bool

	// rejectLog and authLog keep a flood of refused connections from
	// flooding the log.
	rejectLog, authLog rateLog

	// testHookServe, when set, runs in a request's goroutine before the
	// deadline check (tests use it to make a request expire in the queue).
	testHookServe atomic.Pointer[func()]
}

// New returns a Server for h. It checks cfg and fills in its defaults; it
// listens on nothing until Serve or ListenAndServe.
func New(cfg Config, h Handler) (*Server, error) {
	if h == nil {
		return nil, errors.New("server: nil Handler")
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:       cfg,
		h:         h,
		log:       cfg.Logger,
		start:     time.Now(),
		tokenSum:  sha256.Sum256([]byte(cfg.Token)),
		adminSum:  sha256.Sum256([]byte(cfg.AdminToken)),
		drainCh:   make(chan struct{}),
		listeners: map[net.Listener]struct{}{},
		conns:     map[*conn]struct{}{},
		perAddr:   map[netip.Addr]int{},
	}
	s.adm = newScheduler(&s.cfg)
	s.encs.New = func() any { return new(wire.Encoder) }
	s.readers.New = func() any { return bufio.NewReaderSize(nil, readBufferSize) }
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.m = newMetrics(s)
	return s, nil
}

// Config returns the server's configuration with its defaults filled in.
func (s *Server) Config() Config { return s.cfg }

// Registry returns the server's own Prometheus registry: the server's
// metrics and Go's runtime and process collectors. Callers may register
// more collectors in it.
func (s *Server) Registry() *prometheus.Registry { return s.m.reg }

// Addr returns the address of the listener Serve accepts on, or nil before
// it has one.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// MetricsAddr returns the address ServeMetrics serves on, or nil.
func (s *Server) MetricsAddr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.metricsLn == nil {
		return nil
	}
	return s.metricsLn.Addr()
}

// ListenAndServe listens on Config.MetricsAddr (when set) for the metrics
// and on Config.Addr for the protocol, and serves both until Shutdown or
// Close; it then returns ErrServerClosed.
func (s *Server) ListenAndServe() error {
	if s.cfg.MetricsAddr != "" {
		mln, err := net.Listen("tcp", s.cfg.MetricsAddr)
		if err != nil {
			return fmt.Errorf("server: metrics listener: %w", err)
		}
		go func() {
			if err := s.ServeMetrics(mln); err != nil && !errors.Is(err, ErrServerClosed) {
				s.log.Error("metrics listener stopped", "err", err)
			}
		}()
	}
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("server: listen: %w", err)
	}
	return s.Serve(ln)
}

// ServeMetrics serves over HTTP on ln, until Shutdown or Close, the
// metrics at /metrics, liveness at /healthz and readiness at /readyz (see
// Probes).
func (s *Server) ServeMetrics(ln net.Listener) error {
	mux := http.NewServeMux()
	mux.Handle("/metrics", s.Metrics())
	probes := s.Probes()
	mux.Handle("/healthz", probes)
	mux.Handle("/readyz", probes)
	// A scrape writes some hundred kilobytes; a client that holds a
	// connection open and idle, or trickles its request, is cut off.
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10,
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)}
	s.mu.Lock()
	if s.closed || s.draining.Load() {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.metricsLn, s.metricsSrv = ln, srv
	s.mu.Unlock()
	s.log.Info("serving metrics", "addr", ln.Addr().String())
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("server: metrics: %w", err)
	}
	return ErrServerClosed
}

// Serve accepts connections on ln and serves each in its own goroutines,
// until Shutdown or Close (then it returns ErrServerClosed) or an accept
// error that is not temporary. With Config.TLS every connection is TLS.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.draining.Load() {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	if s.addr == nil {
		s.addr = ln.Addr()
	}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
	}()
	s.log.Info("serving", "addr", ln.Addr().String(), "tls", s.cfg.TLS != nil, "auth", s.cfg.Token != "")

	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.draining.Load() {
				return ErrServerClosed
			}
			if !temporary(err) {
				return fmt.Errorf("server: accept: %w", err)
			}
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.log.Warn("accept failed; retrying", "err", err, "in", delay)
			select {
			case <-time.After(delay):
			case <-s.drainCh:
				return ErrServerClosed
			}
			continue
		}
		delay = 0
		s.accept(nc)
	}
}

// temporary reports whether an accept error may pass (out of file
// descriptors or memory, a connection aborted before it was accepted).
func temporary(err error) bool {
	for _, e := range []error{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM,
		syscall.ECONNABORTED, syscall.ECONNRESET, syscall.EAGAIN, syscall.EINTR} {
		if errors.Is(err, e) {
			return true
		}
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// accept starts serving nc, or turns it away when the server or its
// address is at its limit.
func (s *Server) accept(nc net.Conn) {
	if s.nconns.Load() >= int64(s.cfg.MaxConns) {
		s.reject(nc, "at the connection limit", s.cfg.MaxConns,
			fmt.Sprintf("server: %d connections open, the limit", s.cfg.MaxConns))
		return
	}
	addr := addrOf(nc.RemoteAddr())
	if s.cfg.TLS != nil {
		nc = tls.Server(nc, s.cfg.TLS)
	}
	c := newConn(s, nc, addr)
	s.mu.Lock()
	if s.draining.Load() {
		s.mu.Unlock()
		nc.Close()
		return
	}
	if limit := s.cfg.MaxConnsPerAddr; limit > 0 && addr.IsValid() && s.perAddr[addr] >= limit {
		s.mu.Unlock()
		s.reject(nc, "at the connection limit of its address", limit,
			fmt.Sprintf("server: %d connections open from %v, the limit", limit, addr))
		return
	}
	if addr.IsValid() {
		s.perAddr[addr]++
	}
	s.conns[c] = struct{}{}
	s.nconns.Add(1)
	s.mu.Unlock()
	s.m.connsAccepted.Inc()
	go c.run()
}

// addrOf returns the IP address of a remote address, without its port
// (IPv4 in IPv6 as IPv4), or the zero Addr when it has none.
func addrOf(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		ip, _ := netip.AddrFromSlice(ta.IP)
		return ip.Unmap()
	}
	if a == nil {
		return netip.Addr{}
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// reject answers a connection beyond a limit with an Overloaded error
// under request id 0 and closes it. A TLS connection is only closed: an
// answer would need a handshake first.
func (s *Server) reject(nc net.Conn, why string, limit int, msg string) {
	s.m.connsRejected.Inc()
	if n, ok := s.rejectLog.allow(time.Now()); ok {
		s.log.Warn("connection refused: "+why, "remote", nc.RemoteAddr().String(), "limit", limit,
			"refused_since_last_logged", n)
	}
	defer nc.Close()
	if s.cfg.TLS != nil {
		return
	}
	enc := s.encs.Get().(*wire.Encoder)
	defer s.encs.Put(enc)
	frame, err := enc.EncodeFrame(&wire.Envelope{Body: &wire.Error{Code: wire.Overloaded, Message: msg}})
	if err != nil {
		return
	}
	// A new socket's send buffer takes a small frame at once; the deadline
	// only guards against the unexpected.
	nc.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
	nc.Write(frame)
}

func (s *Server) removeConn(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	if c.addr.IsValid() {
		if n := s.perAddr[c.addr] - 1; n > 0 {
			s.perAddr[c.addr] = n
		} else {
			delete(s.perAddr, c.addr)
		}
	}
	s.mu.Unlock()
	s.nconns.Add(-1)
}

// beginDrain stops accepting and tells every connection to stop reading
// new requests. It returns false if draining had already begun.
func (s *Server) beginDrain() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.draining.Swap(true) {
		return false
	}
	close(s.drainCh)
	for ln := range s.listeners {
		ln.Close()
	}
	for c := range s.conns {
		c.wake()
	}
	return true
}

// Shutdown stops the server gracefully: it stops accepting, closes idle
// connections, lets the requests in flight finish and their responses be
// written, closes every connection, and stops the metrics listener. If ctx
// ends first it closes everything at once, as Close, and returns
// ctx.Err().
func (s *Server) Shutdown(ctx context.Context) error {
	if s.beginDrain() {
		s.log.Info("shutting down", "connections", s.nconns.Load(), "in_flight", s.adm.inFlight.Load(),
			"queued", s.adm.inQueue.Load())
	}
	poll := time.Millisecond
	timer := time.NewTimer(poll)
	defer timer.Stop()
	for s.nconns.Load() > 0 || s.adm.inFlight.Load() > 0 {
		select {
		case <-ctx.Done():
			s.Close()
			return fmt.Errorf("server: shutdown: %w", ctx.Err())
		case <-timer.C:
			poll = min(2*poll, 50*time.Millisecond)
			timer.Reset(poll)
		}
	}
	s.mu.Lock()
	msrv := s.metricsSrv
	s.mu.Unlock()
	var err error
	if msrv != nil {
		if err = msrv.Shutdown(ctx); err != nil {
			err = fmt.Errorf("server: shutdown of the metrics listener: %w", err)
		}
	}
	s.cancel()
	return err
}

// Close stops the server at once: it closes the listeners and every
// connection and cancels the context of the requests in flight. It does
// not wait for handlers to return.
func (s *Server) Close() error {
	s.beginDrain()
	s.mu.Lock()
	s.closed = true
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	msrv := s.metricsSrv
	s.mu.Unlock()
	s.cancel()
	for _, c := range conns {
		c.cancel()
		c.nc.Close()
	}
	if msrv != nil {
		if err := msrv.Close(); err != nil {
			return fmt.Errorf("server: close of the metrics listener: %w", err)
		}
	}
	return nil
}

// Stats returns the server's counters, with the handler's index size and
// model version: the body of a Stats response.
func (s *Server) Stats(ctx context.Context) *wire.StatsResponse {
	info := s.info(ctx)
	n := int(wire.Internal) + 1
	for c := len(s.errs) - 1; c >= n; c-- {
		if s.errs[c].Load() != 0 {
			n = c + 1
			break
		}
	}
	errs := make([]uint64, n)
	for c := range errs {
		errs[c] = s.errs[c].Load()
	}
	clamp := func(v int64) uint32 { return uint32(min(max(v, 0), 1<<32-1)) }
	return &wire.StatsResponse{
		Uptime:       time.Since(s.start).Truncate(time.Microsecond),
		Requests:     s.requests.Load(),
		Errors:       errs,
		IndexSize:    info.IndexSize,
		ModelVersion: info.ModelVersion,
		Connections:  clamp(s.nconns.Load()),
		InFlight:     clamp(s.adm.inFlight.Load()),
		Events:       s.events.Load(),
	}
}

// info asks the handler for its Info, recovering a panic.
func (s *Server) info(ctx context.Context) (info Info) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("handler panicked in Info", "panic", p)
			info = Info{}
		}
	}()
	info = s.h.Info(ctx)
	if len(info.ModelVersion) > wire.MaxString {
		info.ModelVersion = info.ModelVersion[:wire.MaxString]
	}
	return info
}

// health asks the handler for its Health, recovering a panic.
func (s *Server) health(ctx context.Context) (h *wire.HealthResponse, err error) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("handler panicked in Health", "panic", p)
			h, err = nil, fmt.Errorf("server: the health handler failed: %v", p)
		}
	}()
	h, err = s.h.Health(ctx, &wire.HealthRequest{})
	if err == nil && h == nil {
		err = errNilResponse
	}
	return h, err
}

// Probes returns the HTTP handler of the liveness and readiness probes,
// as ServeMetrics serves them: /healthz answers 200 "ok" while the
// process serves; /readyz answers 200 with the handler's Health status
// when it says OK, and 503 with the status (or the error) when it does
// not, when it takes longer than a second, or while the server shuts
// down.
func (s *Server) Probes() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if r.URL.Path == "/healthz" {
			io.WriteString(w, "ok\n")
			return
		}
		if s.draining.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, "shutting down\n")
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), healthBudget)
		defer cancel()
		h, err := s.health(ctx)
		switch {
		case err != nil:
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, err.Error()+"\n")
		case !h.OK:
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, h.Status+"\n")
		default:
			io.WriteString(w, h.Status+"\n")
		}
	})
}

// rateLog lets a log line through at most once a second, and counts the
// ones it held back.
type rateLog struct {
	last    atomic.Int64 // unix nanoseconds of the last line let through
	dropped atomic.Int64
}

// allow reports whether a line may be logged now, with the number held
// back since the last one.
func (l *rateLog) allow(now time.Time) (int64, bool) {
	last := l.last.Load()
	if now.UnixNano()-last < int64(time.Second) || !l.last.CompareAndSwap(last, now.UnixNano()) {
		l.dropped.Add(1)
		return 0, false
	}
	return l.dropped.Swap(0), true
}

// tokenOK reports, in constant time, whether token is the configured one.
func (s *Server) tokenOK(token string) bool {
	sum := sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(sum[:], s.tokenSum[:]) == 1
}

// adminTokenOK reports, in constant time, whether token is the admin
// token (never, with none configured).
func (s *Server) adminTokenOK(token string) bool {
	if s.cfg.AdminToken == "" {
		return false
	}
	sum := sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(sum[:], s.adminSum[:]) == 1
}

// record counts a response: the Stats counters and the metrics.
func (s *Server) record(kind wire.Kind, start time.Time, body wire.Message) {
	s.requests.Add(1)
	code := wire.UnknownCode
	if e, ok := body.(*wire.Error); ok {
		code = e.Code
		s.errs[code].Add(1)
	}
	if ev, ok := body.(*wire.EventResponse); ok {
		s.events.Add(uint64(ev.Accepted))
	}
	s.m.observe(kind, code, time.Since(start), body)
}
