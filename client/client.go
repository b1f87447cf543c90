package client

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reelrank/reelrank/wire"
)

// Redial backoff of a replica whose dial failed: requests prefer other
// replicas for this long, doubling per failure.
const (
	minBackoff = 50 * time.Millisecond
	maxBackoff = 2 * time.Second
)

// hedgeBurst is the number of hedges allowed beyond Options.HedgeBudget.
const hedgeBurst = 10

// Client is a connection pool to one shard: one or more replicas of the
// same data, PoolSize pipelined connections to each. It is safe for
// concurrent use; one Client serves a whole process.
type Client struct {
	opt      Options
	dialNet  dialFunc // opens a connection's socket: TCP, or a pipe in tests
	replicas []*replica
	encs     sync.Pool // *wire.Encoder
	rr       atomic.Uint64
	lat      [maxKinds]*latencies // per request kind, when hedging by percentile

	mu      sync.Mutex     // orders readers.Add before Close's readers.Wait
	readers sync.WaitGroup // the connections' reader and writer goroutines
	closed  chan struct{}  // closed by Close, under mu

	requests, hedges, hedgeWins, retries, dials atomic.Uint64
}

// replica is one server address and its connections.
type replica struct {
	addr      string
	slots     []slot
	next      atomic.Uint64
	failures  atomic.Int32
	downUntil atomic.Int64 // unix nanoseconds
}

// slot holds one connection of a replica's pool, and a lock held while
// it is being dialled.
type slot struct {
	lock chan struct{}
	c    atomic.Pointer[conn]
}

// Counters are a Client's own counts since Dial.
type Counters struct {
	Requests  uint64 // requests made
	Hedges    uint64 // second copies sent
	HedgeWins uint64 // hedged requests answered by the second copy
	Retries   uint64 // reads and keyed writes sent again after their connection broke
	Dials     uint64 // connections opened (the first ones and redials)
}

// Dial connects to the server at addr ("host:port"). See DialReplicas.
func Dial(ctx context.Context, addr string, opt Options) (*Client, error) {
	return DialReplicas(ctx, []string{addr}, opt)
}

// DialReplicas connects to the replicas of one shard: servers that hold
// the same data, any of which may answer any request. It opens one
// connection to each replica at once (the others on first use) and fails
// only when no replica can be reached; a replica that cannot is redialled
// later. Requests go round-robin over replicas and their connections; a
// hedged request's second copy goes to another replica.
func DialReplicas(ctx context.Context, addrs []string, opt Options) (*Client, error) {
	return dialReplicas(ctx, addrs, opt, dialTCP)
}

// dialReplicas is DialReplicas with the function that opens sockets.
func dialReplicas(ctx context.Context, addrs []string, opt Options, dialNet dialFunc) (*Client, error) {
	if len(addrs) == 0 {
		return nil, errors.New("client: dial: no address")
	}
	opt, err := opt.withDefaults()
	if err != nil {
		return nil, err
	}
	if opt.TLS != nil && opt.TLS.ServerName == "" && !opt.TLS.InsecureSkipVerify {
		// One name for all replicas: the first address's host.
		host, _, err := net.SplitHostPort(addrs[0])
		if err != nil {
			return nil, fmt.Errorf("client: dial %s: %w", addrs[0], err)
		}
		opt.TLS = opt.TLS.Clone()
		opt.TLS.ServerName = host
	}
	c := &Client{opt: opt, dialNet: dialNet, closed: make(chan struct{})}
	c.encs.New = func() any { return new(wire.Encoder) }
	if opt.HedgePercentile > 0 {
		for _, k := range hedgeable {
			c.lat[k] = new(latencies)
		}
	}
	for _, a := range addrs {
		r := &replica{addr: a, slots: make([]slot, opt.PoolSize)}
		for i := range r.slots {
			r.slots[i].lock = make(chan struct{}, 1)
		}
		c.replicas = append(c.replicas, r)
	}
	var errs []error
	for _, r := range c.replicas {
		if _, err := r.dial(ctx, c, 0); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == len(c.replicas) {
		c.Close()
		return nil, errors.Join(errs...)
	}
	return c, nil
}

// Close closes every connection; requests in flight fail with ErrClosed.
// It waits for the connections' reader goroutines to end.
func (c *Client) Close() error {
	c.mu.Lock()
	if !c.isClosed() {
		close(c.closed)
	}
	c.mu.Unlock()
	// No connection starts now; fail the started ones.
	for _, r := range c.replicas {
		for i := range r.slots {
			if cn := r.slots[i].c.Load(); cn != nil {
				cn.fail(fmt.Errorf("client: %s: %w", cn.addr, ErrClosed))
			}
		}
	}
	c.readers.Wait()
	return nil
}

// start runs cn's reader and writer goroutines, unless the Client is
// closed.
func (c *Client) start(cn *conn, br *bufio.Reader) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.isClosed() {
		cn.fail(fmt.Errorf("client: %s: %w", cn.addr, ErrClosed))
		return ErrClosed
	}
	c.readers.Add(2)
	go func() {
		defer c.readers.Done()
		cn.readLoop(br, c.opt.MaxFrame)
	}()
	go func() {
		defer c.readers.Done()
		cn.writeLoop()
	}()
	return nil
}

// Addrs returns the replica addresses the Client was dialled with.
func (c *Client) Addrs() []string {
	out := make([]string, len(c.replicas))
	for i, r := range c.replicas {
		out[i] = r.addr
	}
	return out
}

// Counters returns the Client's counts.
func (c *Client) Counters() Counters {
	return Counters{Requests: c.requests.Load(), Hedges: c.hedges.Load(), HedgeWins: c.hedgeWins.Load(),
		Retries: c.retries.Load(), Dials: c.dials.Load()}
}

func (c *Client) isClosed() bool {
	select {
	case <-c.closed:
		return true
	default:
		return false
	}
}

// down reports whether the replica's last dial failed recently.
func (r *replica) down(now time.Time) bool { return now.UnixNano() < r.downUntil.Load() }

// dial returns the connection of slot i, dialling it when it has none or
// a broken one. Concurrent callers of one slot share one dial.
func (r *replica) dial(ctx context.Context, c *Client, i int) (*conn, error) {
	s := &r.slots[i]
	if cn := s.c.Load(); cn != nil && !cn.broken() {
		return cn, nil
	}
	select {
	case s.lock <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("client: dial %s: %w", r.addr, ctx.Err())
	}
	defer func() { <-s.lock }()
	if cn := s.c.Load(); cn != nil && !cn.broken() {
		return cn, nil
	}
	if c.isClosed() {
		return nil, ErrClosed
	}
	c.dials.Add(1)
	cn, br, err := dialConn(ctx, r.addr, &c.opt, c.dialNet)
	if err != nil {
		f := min(r.failures.Add(1), 16)
		r.downUntil.Store(time.Now().Add(min(minBackoff<<(f-1), maxBackoff)).UnixNano())
		return nil, err
	}
	r.failures.Store(0)
	r.downUntil.Store(0)
	if err := c.start(cn, br); err != nil {
		return nil, err
	}
	s.c.Store(cn)
	return cn, nil
}

// get returns a connection of the replica, round-robin, avoiding the
// connection avoid when it has another.
func (r *replica) get(ctx context.Context, c *Client, avoid *conn) (*conn, error) {
	n := uint64(len(r.slots))
	i := r.next.Add(1) % n
	if n > 1 && avoid != nil && r.slots[i].c.Load() == avoid {
		i = (i + 1) % n
	}
	return r.dial(ctx, c, int(i))
}

// pick returns a connection for a request: round-robin over the
// replicas, skipping those whose dial failed lately while others are up,
// and skipping replica avoidR and connection avoidC (for a hedge) when
// there is another choice. It tries every replica before giving up.
func (c *Client) pick(ctx context.Context, avoidR int, avoidC *conn) (*conn, int, error) {
	n := len(c.replicas)
	var start int
	if avoidR >= 0 {
		start = (avoidR + 1) % n
	} else {
		start = int(c.rr.Add(1) % uint64(n))
	}
	now := time.Now()
	var errs []error
	var triedBuf [8]bool
	var tried []bool
	if n <= len(triedBuf) {
		tried = triedBuf[:n]
	} else {
		tried = make([]bool, n)
	}
	for pass := range 2 {
		for k := range n {
			ri := (start + k) % n
			r := c.replicas[ri]
			if tried[ri] || ri == avoidR && n > 1 || pass == 0 && r.down(now) {
				continue
			}
			tried[ri] = true
			cn, err := r.get(ctx, c, avoidC)
			if err == nil {
				return cn, ri, nil
			}
			if ctx.Err() != nil || errors.Is(err, ErrClosed) {
				return nil, -1, err
			}
			errs = append(errs, err)
		}
	}
	return nil, -1, errors.Join(errs...)
}

// Do sends a request (a *wire.RecommendRequest, *wire.ScoreRequest, …)
// and returns the server's answer, which is of the request's response
// kind. An error answer is returned as an error wrapping the *wire.Error.
// The typed methods (Recommend, Score, …) call Do.
//
// A write (Upsert, Delete, Event) without a Key is sent with a random one
// unless Options.NoIdempotencyKey is set. A read, or a write with a key,
// whose connection breaks before the answer is sent once more on another
// connection (a keyed write to the same replica, which holds the record
// of its key) before ErrConnLost is returned.
func (c *Client) Do(ctx context.Context, req wire.Message) (wire.Message, error) {
	k := req.Kind()
	switch {
	case k == wire.KindAuthRequest:
		return nil, errors.New("client: a connection's AuthRequest is sent by Dial, from Options.Token")
	case !k.IsRequest():
		return nil, fmt.Errorf("client: %s is not a request", k)
	}
	if c.isClosed() {
		return nil, ErrClosed
	}
	if _, ok := ctx.Deadline(); !ok && c.opt.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.opt.Timeout)
		defer cancel()
	}
	c.requests.Add(1)
	start := time.Now()
	req, keyed := c.keyed(req)
	var r result
	ri := -1
	read := isHedgeable(k)
	if c.opt.hedging() && read {
		r = c.hedged(ctx, req)
	} else {
		r, ri = c.once(ctx, req, -1)
	}
	if (read || keyed) && errors.Is(r.err, ErrConnLost) && ctx.Err() == nil && !c.isClosed() {
		// The connection broke under the request (a server closing it as
		// idle, or restarting): a read is safe to send again, once, and
		// so is a write with a key, which the replica that may have
		// applied it answers from its record.
		c.retries.Add(1)
		if read {
			ri = -1
		}
		r, _ = c.once(ctx, req, ri)
	}
	if r.err != nil {
		return nil, r.err
	}
	if e, ok := r.body.(*wire.Error); ok {
		return nil, fmt.Errorf("client: %s: %s: %w", r.from.addr, k, e)
	}
	if r.body.Kind() != k.Response() {
		return nil, fmt.Errorf("client: %s: %s answered by a %s: %w", r.from.addr, k, r.body.Kind(), ErrBadResponse)
	}
	if l := c.lat[k]; l != nil {
		l.record(time.Since(start))
	}
	return r.body, nil
}

// once sends req on one connection, of replica ri or (for ri < 0) of any,
// and waits for its answer. It returns the replica it sent to, or -1.
func (c *Client) once(ctx context.Context, req wire.Message, ri int) (result, int) {
	var (
		cn  *conn
		err error
	)
	if ri >= 0 {
		cn, err = c.replicas[ri].get(ctx, c, nil)
	} else {
		cn, ri, err = c.pick(ctx, -1, nil)
	}
	if err != nil {
		return result{err: err}, -1
	}
	cl, err := cn.send(ctx, req, &c.encs)
	if err != nil {
		return result{err: err}, ri
	}
	return cl.wait(ctx, req.Kind()), ri
}

// newKey returns a random idempotency key: 16 bytes in hex.
func newKey() string {
	var b [16]byte
	rand.Read(b[:]) // crypto/rand's Read never fails (Go 1.24 and later)
	return hex.EncodeToString(b[:])
}

// keyed returns req as it is to be sent, and whether it carries an
// idempotency key: a write without one gets a new key, in a copy, unless
// Options.NoIdempotencyKey says not to.
func (c *Client) keyed(req wire.Message) (wire.Message, bool) {
	auto := !c.opt.NoIdempotencyKey
	switch m := req.(type) {
	case *wire.UpsertRequest:
		if m.Key == "" && auto {
			cp := *m
			cp.Key = newKey()
			return &cp, true
		}
		return m, m.Key != ""
	case *wire.DeleteRequest:
		if m.Key == "" && auto {
			cp := *m
			cp.Key = newKey()
			return &cp, true
		}
		return m, m.Key != ""
	case *wire.EventRequest:
		if m.Key == "" && auto {
			cp := *m
			cp.Key = newKey()
			return &cp, true
		}
		return m, m.Key != ""
	}
	return req, false
}

// hedged sends req, and a second copy to another replica or connection
// when the first has not answered within the hedge delay; the first
// final answer wins and the other call is abandoned.
func (c *Client) hedged(ctx context.Context, req wire.Message) result {
	k := req.Kind()
	delay := c.hedgeDelay(k)
	cn, ri, err := c.pick(ctx, -1, nil)
	if err != nil {
		return result{err: err}
	}
	a, err := cn.send(ctx, req, &c.encs)
	if err != nil {
		return result{err: err}
	}
	if delay <= 0 {
		return a.wait(ctx, k)
	}
	timer := time.NewTimer(delay)
	defer timer.Stop()
	select {
	case r := <-a.ch:
		return r
	case <-ctx.Done():
		a.abandon()
		return result{err: ctxErr(ctx, cn.addr, k), from: cn}
	case <-timer.C:
	}
	if !c.takeHedge() {
		return a.wait(ctx, k)
	}
	cn2, _, err := c.pick(ctx, ri, cn)
	if err != nil {
		return a.wait(ctx, k)
	}
	b, err := cn2.send(ctx, req, &c.encs)
	if err != nil {
		return a.wait(ctx, k)
	}
	c.hedges.Add(1)
	achan, bchan := a.ch, b.ch
	var first *result
	for achan != nil || bchan != nil {
		select {
		case r := <-achan:
			achan = nil
			if r.final() {
				b.abandon()
				return r
			}
			if first == nil {
				first = &r
			}
		case r := <-bchan:
			bchan = nil
			if r.final() {
				a.abandon()
				c.hedgeWins.Add(1)
				return r
			}
			if first == nil {
				first = &r
			}
		case <-ctx.Done():
			a.abandon()
			b.abandon()
			return result{err: ctxErr(ctx, cn.addr, k), from: cn}
		}
	}
	return *first
}

// hedgeDelay returns how long a request of kind k waits before its hedge
// is sent; 0 for no hedge.
func (c *Client) hedgeDelay(k wire.Kind) time.Duration {
	d := c.opt.HedgeDelay
	if l := c.lat[k]; l != nil {
		if p, ok := l.percentile(c.opt.HedgePercentile); ok {
			d = max(d, p)
		}
	}
	return d
}

// takeHedge reports whether the hedge budget allows one more hedge.
func (c *Client) takeHedge() bool {
	if c.opt.HedgeBudget >= 1 {
		return true
	}
	return float64(c.hedges.Load()) < c.opt.HedgeBudget*float64(c.requests.Load())+hedgeBurst
}

// The kinds that may be hedged: reads, which a server may answer twice.
// Writes are not, even with a key: both copies would reach different
// replicas, and each would apply it.
var hedgeable = [...]wire.Kind{wire.KindRecommendRequest, wire.KindScoreRequest, wire.KindSearchRequest,
	wire.KindStatsRequest, wire.KindHealthRequest}

func isHedgeable(k wire.Kind) bool {
	for _, h := range hedgeable {
		if h == k {
			return true
		}
	}
	return false
}

// typed calls d.Do and asserts the answer's type, which Do has checked.
func typed[T wire.Message](ctx context.Context, d interface {
	Do(context.Context, wire.Message) (wire.Message, error)
}, req wire.Message) (T, error) {
	m, err := d.Do(ctx, req)
	if err != nil {
		var zero T
		return zero, err
	}
	t, ok := m.(T)
	if !ok {
		var zero T
		return zero, fmt.Errorf("client: %s answered by %T: %w", req.Kind(), m, ErrBadResponse)
	}
	return t, nil
}

// Recommend asks for the req.N best reels for a user.
func (c *Client) Recommend(ctx context.Context, req *wire.RecommendRequest) (*wire.RecommendResponse, error) {
	return typed[*wire.RecommendResponse](ctx, c, req)
}

// Score asks for the ranker's probabilities of given reels.
func (c *Client) Score(ctx context.Context, req *wire.ScoreRequest) (*wire.ScoreResponse, error) {
	return typed[*wire.ScoreResponse](ctx, c, req)
}

// Search asks for the req.K nearest reels to a vector.
func (c *Client) Search(ctx context.Context, req *wire.SearchRequest) (*wire.SearchResponse, error) {
	return typed[*wire.SearchResponse](ctx, c, req)
}

// Upsert adds a reel or replaces the one with its id. Without a Key in
// req it is sent with a random one (see Options.NoIdempotencyKey);
// resp.Replayed says the server had applied it before.
func (c *Client) Upsert(ctx context.Context, req *wire.UpsertRequest) (*wire.UpsertResponse, error) {
	return typed[*wire.UpsertResponse](ctx, c, req)
}

// Delete removes a reel; an unknown id is a *wire.Error of code NotFound.
// It gets a key as Upsert does.
func (c *Client) Delete(ctx context.Context, req *wire.DeleteRequest) (*wire.DeleteResponse, error) {
	return typed[*wire.DeleteResponse](ctx, c, req)
}

// Event sends a batch of events to the feature store and the event log.
// It gets a key as Upsert does: a batch sent again after a broken
// connection is counted once.
func (c *Client) Event(ctx context.Context, req *wire.EventRequest) (*wire.EventResponse, error) {
	return typed[*wire.EventResponse](ctx, c, req)
}

// Stats asks one replica for its counters.
func (c *Client) Stats(ctx context.Context) (*wire.StatsResponse, error) {
	return typed[*wire.StatsResponse](ctx, c, &wire.StatsRequest{})
}

// Health asks one replica whether it can serve.
func (c *Client) Health(ctx context.Context) (*wire.HealthResponse, error) {
	return typed[*wire.HealthResponse](ctx, c, &wire.HealthRequest{})
}

// Admin sends one replica an AdminRequest: a model load, promotion,
// rollback, share change, or a status read (see package wire). A server
// with tokens takes it only when Options.Token is its admin token.
func (c *Client) Admin(ctx context.Context, req *wire.AdminRequest) (*wire.AdminResponse, error) {
	return typed[*wire.AdminResponse](ctx, c, req)
}
