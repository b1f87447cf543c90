package client

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reelrank/reelrank/wire"
)

// The largest buffers a connection keeps between frames.
const (
	maxKeptReadBuffer  = 64 << 10
	maxKeptWriteBuffer = 256 << 10
)

// conn is one pipelined connection: many requests in flight, each matched
// to its answer by request id. A writer goroutine writes the frames
// callers queue, in batches; a reader goroutine delivers answers to the
// calls waiting for them.
type conn struct {
	nc    net.Conn
	addr  string
	slots chan struct{} // holds a value per request in flight
	ids   atomic.Uint64 // the last request id used

	wmu          sync.Mutex
	wbuf         []byte        // frames waiting to be written
	spare        []byte        // the buffer last written, to queue into next
	wake         chan struct{} // tells the writer goroutine wbuf has frames
	writeTimeout time.Duration

	mu      sync.Mutex
	pending map[uint64]*call
	err     error // why the connection broke; set once under mu

	done chan struct{} // closed when the connection broke
}

// call is one request waiting on a connection.
type call struct {
	id uint64
	c  *conn
	ch chan result // receives exactly one result, unless abandoned
}

// result is a call's outcome: the answer's body (maybe a *wire.Error), or
// the error that stopped it from coming.
type result struct {
	body wire.Message
	err  error
	from *conn
}

// final reports whether r settles a hedged request: a success, or a
// server error that another replica would repeat.
func (r *result) final() bool {
	if r.err != nil {
		return false
	}
	e, ok := r.body.(*wire.Error)
	if !ok {
		return true
	}
	switch e.Code {
	case wire.BadRequest, wire.NotFound, wire.Unauthenticated, wire.WrongShard:
		return true
	}
	return false
}

// dialFunc opens the socket of a connection to addr.
type dialFunc func(ctx context.Context, addr string) (net.Conn, error)

// dialTCP is the dialFunc of DialReplicas.
func dialTCP(ctx context.Context, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "tcp", addr)
}

// dialConn opens a connection to addr: the socket from dialNet, then TLS
// and the token exchange when opt asks for them, all within
// opt.DialTimeout. It returns the connection and its reader, for start.
func dialConn(ctx context.Context, addr string, opt *Options, dialNet dialFunc) (*conn, *bufio.Reader, error) {
	ctx, cancel := context.WithTimeout(ctx, opt.DialTimeout)
	defer cancel()
	nc, err := dialNet(ctx, addr)
	if err != nil {
		return nil, nil, fmt.Errorf("client: dial %s: %w", addr, err)
	}
	if opt.TLS != nil {
		tc := tls.Client(nc, opt.TLS)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, nil, fmt.Errorf("client: tls handshake with %s: %w", addr, err)
		}
		nc = tc
	}
	br := bufio.NewReaderSize(nc, 16<<10)
	c := &conn{
		nc:           nc,
		addr:         addr,
		wake:         make(chan struct{}, 1),
		writeTimeout: opt.WriteTimeout,
		slots:        make(chan struct{}, opt.MaxInFlight),
		pending:      make(map[uint64]*call),
		done:         make(chan struct{}),
	}
	if opt.Token != "" {
		if err := c.authenticate(ctx, br, opt); err != nil {
			nc.Close()
			return nil, nil, err
		}
	}
	return c, br, nil
}

// broken reports whether the connection has failed.
func (c *conn) broken() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// brokenErr returns why the connection failed.
func (c *conn) brokenErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// ctxErr wraps the reason ctx ended.
func ctxErr(ctx context.Context, addr string, k wire.Kind) error {
	return fmt.Errorf("client: %s: %s: %w", addr, k, ctx.Err())
}

// send registers a call for req and writes its frame. The envelope's
// timeout is what is left of ctx's deadline. On success the caller must
// wait on the call or abandon it.
func (c *conn) send(ctx context.Context, req wire.Message, encs *sync.Pool) (*call, error) {
	if ctx.Err() != nil {
		return nil, ctxErr(ctx, c.addr, req.Kind())
	}
	var timeout time.Duration
	deadline, hasDeadline := ctx.Deadline()
	if hasDeadline {
		timeout = time.Until(deadline)
		if timeout <= 0 {
			return nil, fmt.Errorf("client: %s: %s: %w", c.addr, req.Kind(), context.DeadlineExceeded)
		}
		timeout = min(timeout, wire.MaxTimeout)
	}
	select {
	case c.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctxErr(ctx, c.addr, req.Kind())
	case <-c.done:
		return nil, c.brokenErr()
	}
	cl := &call{id: c.ids.Add(1), c: c, ch: make(chan result, 1)}
	enc := encs.Get().(*wire.Encoder)
	defer encs.Put(enc)
	frame, err := enc.EncodeFrame(&wire.Envelope{RequestID: cl.id, Timeout: timeout, Body: req})
	if err != nil {
		<-c.slots
		return nil, fmt.Errorf("client: encode %s: %w", req.Kind(), err)
	}
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		<-c.slots
		return nil, err
	}
	c.pending[cl.id] = cl
	c.mu.Unlock()

	c.write(frame)
	return cl, nil
}

// write queues a frame for the connection's writer goroutine. Frames
// queued while it writes go out together in its next write, so callers
// pipelining on a connection share system calls, and no caller ever
// blocks on the socket.
func (c *conn) write(frame []byte) {
	c.wmu.Lock()
	c.wbuf = append(c.wbuf, frame...)
	c.wmu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default: // a wake-up is pending already
	}
}

// writeLoop writes the queued frames until the connection breaks. A
// write that blocks writeTimeout (the server reads nothing) or fails
// breaks the connection, which fails the calls whose frames were queued.
func (c *conn) writeLoop() {
	for {
		select {
		case <-c.wake:
		case <-c.done:
			return
		}
		c.wmu.Lock()
		for len(c.wbuf) > 0 {
			buf := c.wbuf
			c.wbuf, c.spare = c.spare[:0], nil // never two names for one array
			c.wmu.Unlock()
			err := c.nc.SetWriteDeadline(time.Now().Add(c.writeTimeout))
			if err == nil {
				_, err = c.nc.Write(buf)
			}
			if err != nil {
				// A frame may be half written: the stream is out of step.
				c.fail(fmt.Errorf("client: %s: write: %w: %w", c.addr, ErrConnLost, err))
				return
			}
			c.wmu.Lock()
			if cap(buf) <= maxKeptWriteBuffer {
				c.spare = buf
			}
		}
		c.wmu.Unlock()
	}
}

// wait returns the call's result, or abandons it when ctx ends first.
func (cl *call) wait(ctx context.Context, k wire.Kind) result {
	select {
	case r := <-cl.ch:
		return r
	case <-ctx.Done():
		cl.abandon()
		return result{err: ctxErr(ctx, cl.c.addr, k), from: cl.c}
	}
}

// abandon stops waiting for the call: a late answer is dropped.
func (cl *call) abandon() {
	c := cl.c
	c.mu.Lock()
	_, ok := c.pending[cl.id]
	if ok {
		delete(c.pending, cl.id)
	}
	c.mu.Unlock()
	if ok {
		<-c.slots
	}
}

// deliver hands r to the call with this id, if it is still waiting.
func (c *conn) deliver(id uint64, r result) {
	c.mu.Lock()
	cl, ok := c.pending[id]
	if ok {
		delete(c.pending, id)
	}
	c.mu.Unlock()
	if !ok {
		return // abandoned: its caller has gone
	}
	<-c.slots
	cl.ch <- r
}

// fail breaks the connection with err (once): it closes the socket and
// fails every pending call with err.
func (c *conn) fail(err error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = err
	calls := c.pending
	c.pending = nil
	c.mu.Unlock()
	close(c.done)
	c.nc.Close()
	for _, cl := range calls {
		<-c.slots
		cl.ch <- result{err: err, from: c}
	}
}

// readLoop reads answers until the connection breaks.
func (c *conn) readLoop(br *bufio.Reader, maxFrame int) {
	var buf []byte
	for {
		payload, err := wire.ReadFrame(br, maxFrame, buf)
		if err != nil {
			switch {
			case errors.Is(err, io.EOF):
				err = fmt.Errorf("closed by the server: %w", err)
			case errors.Is(err, wire.ErrFrameTooLarge):
				// Its request id is lost with its bytes: no caller could
				// be told, so none is left waiting on this stream.
				err = fmt.Errorf("a response over Options.MaxFrame of %d bytes: %w", maxFrame, err)
			}
			c.fail(fmt.Errorf("client: %s: %w: %w", c.addr, ErrConnLost, err))
			return
		}
		var env wire.Envelope
		err = wire.Decode(payload, &env)
		if cap(payload) <= maxKeptReadBuffer {
			buf = payload
		}
		switch {
		case err != nil && env.RequestID == 0:
			c.fail(fmt.Errorf("client: %s: %w: undecodable response: %w: %w", c.addr, ErrConnLost, ErrBadResponse, err))
			return
		case err != nil:
			c.deliver(env.RequestID, result{err: fmt.Errorf("client: %s: response to request %d: %w: %w",
				c.addr, env.RequestID, ErrBadResponse, err), from: c})
		case env.RequestID == 0:
			// The server could not read the id of one of our frames; which
			// caller it was is unknown, so every one fails.
			c.fail(fmt.Errorf("client: %s: %w: the server could not read a request: %w", c.addr, ErrConnLost,
				wire.AsError(bodyErr(env.Body))))
			return
		default:
			c.deliver(env.RequestID, result{body: env.Body, from: c})
		}
	}
}

// bodyErr returns the body of an answer under id 0 as an error.
func bodyErr(m wire.Message) error {
	if e, ok := m.(*wire.Error); ok {
		return e
	}
	return fmt.Errorf("%w: a %s under request id 0", ErrBadResponse, m.Kind())
}
