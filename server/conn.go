package server

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"github.com/reelrank/reelrank/wire"
)

// How a connection ends, as the reader reports it.
var (
	errDraining = errors.New("server shutting down")
	errIdle     = errors.New("idle timeout")
	// errProtocol ends a connection after an answer that closes it (a
	// failed authentication); the answer is written first.
	errProtocol = errors.New("closed by the protocol")
)

// A conn is one client connection: a reader goroutine (run) that reads
// frames, answers what it can at once and starts a goroutine per admitted
// request, and a writer goroutine (writeLoop) that writes the encoded
// responses in batches, in the order they are ready.
//
// Every response holds a slot of the connection's pipeline from before its
// request is read until it is written: the reader takes one before each
// frame (blocking, and so no longer reading, when MaxPipeline responses are
// owed), the writer gives them back. So the response channel, as deep as
// the pipeline, never blocks a sender.
//
// An idle connection holds no buffer: the reader waits for the first bytes
// of a frame in a small array (which holds a whole small request, so that
// it costs one read), then takes a buffered reader from the
// server's pool for as long as bytes are buffered, and payloads and
// response frames come from the server's BufferPool.
type conn struct {
	s      *Server
	nc     net.Conn
	ctx    context.Context // cancelled when the connection breaks or the server closes
	cancel context.CancelFunc

	out        chan *[]byte  // encoded response frames, from the server's BufferPool
	slots      chan struct{} // the pipeline: a send takes a slot, a receive gives it back
	writerDone chan struct{}

	mu   sync.Mutex // guards idle against Shutdown's wake-up
	idle bool       // the reader waits for the first bytes of a frame

	// The reader's own state.
	br       *bufio.Reader   // from s.readers while bytes are buffered, else nil
	first    [firstSize]byte // the first bytes of a frame, read while idle
	firstOff int             // first[firstOff:firstEnd] is still to be read
	firstEnd int
	holding  bool // the reader holds a pipeline slot for the next frame
	authed   bool
}

func newConn(s *Server, nc net.Conn) *conn {
	c := &conn{
		s:          s,
		nc:         nc,
		out:        make(chan *[]byte, s.cfg.MaxPipeline),
		slots:      make(chan struct{}, s.cfg.MaxPipeline),
		writerDone: make(chan struct{}),
		authed:     s.cfg.Token == "",
	}
	c.ctx, c.cancel = context.WithCancel(s.ctx)
	return c
}

// run is the connection's reader goroutine, from handshake to close.
func (c *conn) run() {
	s := c.s
	defer s.removeConn(c)
	defer c.cancel()
	remote := c.nc.RemoteAddr().String()
	if tc, ok := c.nc.(*tls.Conn); ok {
		ctx := c.ctx
		if s.cfg.ReadTimeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, s.cfg.ReadTimeout)
			defer cancel()
		}
		if err := tc.HandshakeContext(ctx); err != nil {
			s.log.Debug("TLS handshake failed", "remote", remote, "err", err)
			c.nc.Close()
			return
		}
	}
	s.log.Debug("connection open", "remote", remote)
	go c.writeLoop()
	err := c.readLoop()
	linger := c.drain()
	c.closeConn(linger && !errors.Is(err, io.EOF))
	if c.br != nil {
		c.releaseReader()
	}
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, errDraining), errors.Is(err, errProtocol), errors.Is(err, errIdle),
		c.ctx.Err() != nil:
		s.log.Debug("connection closed", "remote", remote, "reason", err)
	default:
		s.log.Info("connection closed", "remote", remote, "reason", err)
	}
}

// drain waits until every response owed has been written, or the
// connection breaks, then stops the writer. It reports whether the
// responses were all written (the connection is still sound).
func (c *conn) drain() bool {
	if c.holding {
		<-c.slots
		c.holding = false
	}
	sound := true
wait:
	for range cap(c.slots) {
		select {
		case c.slots <- struct{}{}:
		case <-c.ctx.Done():
			sound = false
			break wait
		}
	}
	c.cancel()
	<-c.writerDone
	return sound
}

// closeConn closes the connection. With linger it first half-closes it and
// reads what the client still sends, for at most lingerTimeout, so that the
// kernel does not answer unread bytes with a reset that could destroy the
// responses the client has not read yet.
func (c *conn) closeConn(linger bool) {
	if cw, ok := c.nc.(interface{ CloseWrite() error }); linger && ok {
		if cw.CloseWrite() == nil {
			c.nc.SetReadDeadline(time.Now().Add(lingerTimeout))
			io.Copy(io.Discard, io.LimitReader(c.nc, 1<<20))
		}
	}
	c.nc.Close()
}

// fail breaks the connection: its requests are cancelled and it closes.
func (c *conn) fail() {
	c.cancel()
	c.nc.Close()
}

// wake interrupts the reader if it is waiting for a frame, so that it sees
// that the server is draining. The reader sets its idle deadline under the
// same lock, so the wake-up is never lost.
func (c *conn) wake() {
	c.mu.Lock()
	if c.idle {
		c.nc.SetReadDeadline(time.Now())
	}
	c.mu.Unlock()
}

// Read lets the buffered reader see the bytes read while idle first.
func (c *conn) Read(p []byte) (int, error) {
	if c.firstOff < c.firstEnd {
		n := copy(p, c.first[c.firstOff:c.firstEnd])
		c.firstOff += n
		return n, nil
	}
	return c.nc.Read(p)
}

// acquire takes a pipeline slot for the next frame, waiting while the
// pipeline is full; false when the connection or the server ends first.
func (c *conn) acquire() bool {
	select {
	case c.slots <- struct{}{}:
		c.holding = true
		return true
	default:
	}
	select {
	case c.slots <- struct{}{}:
		c.holding = true
		return true
	case <-c.ctx.Done():
	case <-c.s.drainCh:
	}
	return false
}

// pending returns the responses owed besides the reader's own slot.
func (c *conn) pending() int {
	n := len(c.slots)
	if c.holding {
		n--
	}
	return n
}

// waitIdle waits for the first bytes of the next frame with no buffer.
func (c *conn) waitIdle() error {
	s := c.s
	for {
		var deadline time.Time
		switch {
		case !c.authed && s.cfg.ReadTimeout > 0:
			// A connection that has not authenticated gets no idle time:
			// its token is due within the read timeout.
			deadline = time.Now().Add(s.cfg.ReadTimeout)
		case s.cfg.IdleTimeout > 0:
			deadline = time.Now().Add(s.cfg.IdleTimeout)
		}
		c.mu.Lock()
		if s.draining.Load() {
			c.mu.Unlock()
			return errDraining
		}
		c.nc.SetReadDeadline(deadline)
		c.idle = true
		c.mu.Unlock()

		n, err := c.nc.Read(c.first[:])

		c.mu.Lock()
		c.idle = false
		c.mu.Unlock()
		if n > 0 {
			c.firstOff, c.firstEnd = 0, n
			return nil
		}
		switch {
		case err == nil:
		case errors.Is(err, os.ErrDeadlineExceeded):
			if s.draining.Load() {
				return errDraining
			}
			if c.pending() == 0 {
				return errIdle
			}
			// Not idle: responses are still owed. Wait on.
		default:
			return err
		}
	}
}

// releaseReader gives the buffered reader back to the pool.
func (c *conn) releaseReader() {
	c.br.Reset(nil)
	c.s.readers.Put(c.br)
	c.br = nil
}

// next reads the next frame into a buffer from the pool and returns it
// with the moment it was read. Errors are ReadFrame's: after
// wire.ErrFrameTooLarge and wire.ErrMalformed the stream is still in step.
func (c *conn) next(max int) (*[]byte, time.Time, error) {
	s := c.s
	if c.br == nil {
		if err := c.waitIdle(); err != nil {
			return nil, time.Time{}, err
		}
		c.br = s.readers.Get().(*bufio.Reader)
		c.br.Reset(c)
	}
	var deadline time.Time
	if s.cfg.ReadTimeout > 0 {
		deadline = time.Now().Add(s.cfg.ReadTimeout)
	}
	c.nc.SetReadDeadline(deadline)
	bp := s.bufs.Get(0)
	payload, err := wire.ReadFrame(c.br, max, *bp)
	readAt := time.Now()
	if err != nil {
		s.bufs.Put(bp)
		bp = nil
	} else {
		*bp = payload
	}
	if c.br.Buffered() == 0 && c.firstOff == c.firstEnd {
		c.releaseReader()
	}
	return bp, readAt, err
}

// readLoop reads and answers frames until the connection ends; it returns
// why.
func (c *conn) readLoop() error {
	s := c.s
	for {
		if !c.acquire() {
			if c.ctx.Err() != nil {
				return c.ctx.Err()
			}
			return errDraining
		}
		max := s.cfg.MaxFrame
		if !c.authed {
			max = min(max, authMaxFrame)
		}
		bp, readAt, err := c.next(max)
		if err != nil {
			if !errors.Is(err, wire.ErrFrameTooLarge) && !errors.Is(err, wire.ErrMalformed) {
				// The stream ended or broke, or the server is draining.
				return err
			}
			// The bad frame was skipped; the stream is in step. Its id is
			// unknown: answer under 0.
			c.badFrame(err)
			if !c.authed {
				c.unauthenticated(0, readAt, "server: authenticate first")
				return errProtocol
			}
			c.reply(0, wire.KindNone, readAt, wire.AsError(err))
			continue
		}
		env := new(wire.Envelope)
		err = wire.Decode(*bp, env)
		s.bufs.Put(bp)
		if err != nil {
			c.badFrame(err)
			if !c.authed {
				c.unauthenticated(env.RequestID, readAt, "server: authenticate first")
				return errProtocol
			}
			c.reply(env.RequestID, wire.KindNone, readAt, wire.AsError(err))
			continue
		}
		if !c.request(env, readAt) {
			return errProtocol
		}
	}
}

// badFrame logs a frame that does not decode, at debug level: the fault is
// the client's, and a noisy client must not flood the log.
func (c *conn) badFrame(err error) {
	if c.s.log.Enabled(c.ctx, slog.LevelDebug) {
		c.s.log.Debug("bad frame", "remote", c.nc.RemoteAddr().String(), "err", err)
	}
}

// request answers a decoded envelope, at once or from a new goroutine. It
// returns false when the answer closes the connection.
func (c *conn) request(env *wire.Envelope, readAt time.Time) bool {
	s := c.s
	kind := env.Body.Kind()
	if auth, ok := env.Body.(*wire.AuthRequest); ok {
		if s.cfg.Token != "" && !s.tokenOK(auth.Token) {
			c.unauthenticated(env.RequestID, readAt, "server: wrong token")
			return false
		}
		c.authed = true
		c.reply(env.RequestID, kind, readAt, &wire.AuthResponse{})
		return true
	}
	if !c.authed {
		c.unauthenticated(env.RequestID, readAt, "server: authenticate first")
		return false
	}
	switch {
	case kind == wire.KindStatsRequest:
		c.reply(env.RequestID, kind, readAt, s.Stats(c.ctx))
	case !handled(kind):
		c.reply(env.RequestID, wire.KindNone, readAt, &wire.Error{Code: wire.BadRequest,
			Message: fmt.Sprintf("server: %v is not a request", kind)})
	case s.inFlight.Add(1) > int64(s.cfg.MaxInFlight):
		s.inFlight.Add(-1)
		c.reply(env.RequestID, kind, readAt, s.overloaded)
	default:
		c.holding = false // the request's goroutine owns the slot now
		go c.serve(env, readAt)
	}
	return true
}

// unauthenticated answers Unauthenticated; the connection closes after.
func (c *conn) unauthenticated(id uint64, readAt time.Time, msg string) {
	c.s.log.Info("authentication failed", "remote", c.nc.RemoteAddr().String(), "reason", msg)
	c.reply(id, wire.KindAuthRequest, readAt, &wire.Error{Code: wire.Unauthenticated, Message: msg})
}

// reply answers from the reader, with the slot it holds.
func (c *conn) reply(id uint64, kind wire.Kind, start time.Time, body wire.Message) {
	c.holding = false
	c.send(id, kind, start, body)
}

// serve runs an admitted request in its own goroutine and answers it. The
// request leaves the in-flight count before its answer is queued, so that
// a client holding every answer sees none in flight.
func (c *conn) serve(env *wire.Envelope, readAt time.Time) {
	bp := c.encode(env.RequestID, env.Body.Kind(), readAt, c.call(env, readAt))
	c.s.inFlight.Add(-1)
	c.out <- bp
}

// budget returns the deadline of a request read at readAt (zero for none).
func (s *Server) budget(env *wire.Envelope, readAt time.Time) time.Time {
	timeout := env.Timeout
	if timeout == 0 {
		timeout = s.cfg.DefaultTimeout
	}
	if s.cfg.MaxTimeout > 0 && timeout > s.cfg.MaxTimeout {
		timeout = s.cfg.MaxTimeout
	}
	if timeout <= 0 {
		return time.Time{}
	}
	return readAt.Add(timeout)
}

// call runs the handler for an admitted request and returns the answer.
func (c *conn) call(env *wire.Envelope, readAt time.Time) (resp wire.Message) {
	s := c.s
	if hook := s.testHookServe.Load(); hook != nil {
		(*hook)()
	}
	deadline := s.budget(env, readAt)
	if !deadline.IsZero() && !time.Now().Before(deadline) {
		return &wire.Error{Code: wire.DeadlineExceeded, Message: "server: the deadline passed before the request was served"}
	}
	ctx := c.ctx
	if !deadline.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
	}
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("handler panicked", "kind", env.Body.Kind().String(), "panic", p, "stack", string(debug.Stack()))
			resp = &wire.Error{Code: wire.Internal, Message: fmt.Sprintf("server: the %v handler failed", env.Body.Kind())}
		}
	}()
	m, err := dispatch(ctx, s.h, env.Body)
	if err != nil {
		return s.errorBody(ctx, env.Body.Kind(), err)
	}
	if !deadline.IsZero() && time.Now().After(deadline) {
		return &wire.Error{Code: wire.DeadlineExceeded, Message: "server: the deadline passed while the request was served"}
	}
	return m
}

// errorBody returns the answer to a handler's error.
func (s *Server) errorBody(ctx context.Context, kind wire.Kind, err error) *wire.Error {
	if cerr := ctx.Err(); cerr != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		if errors.Is(cerr, context.DeadlineExceeded) {
			return &wire.Error{Code: wire.DeadlineExceeded, Message: "server: " + err.Error()}
		}
		return &wire.Error{Code: wire.Unavailable, Message: "server: request cancelled: the connection or the server closed"}
	}
	e := wire.AsError(err)
	if len(e.Message) > wire.MaxString {
		e = &wire.Error{Code: e.Code, Message: e.Message[:wire.MaxString]}
	}
	if e.Code == wire.Internal {
		s.log.Warn("request failed", "kind", kind.String(), "err", err)
	}
	return e
}

// send encodes a response, counts it and queues it for the writer. It
// never blocks: the sender holds a pipeline slot.
func (c *conn) send(id uint64, kind wire.Kind, start time.Time, body wire.Message) {
	c.out <- c.encode(id, kind, start, body)
}

// encode returns the frame of a response in a buffer from the pool, and
// counts the response.
func (c *conn) encode(id uint64, kind wire.Kind, start time.Time, body wire.Message) *[]byte {
	s := c.s
	enc := s.encs.Get().(*wire.Encoder)
	frame, err := enc.EncodeFrame(&wire.Envelope{RequestID: id, Body: body})
	if err != nil {
		// The handler's response breaks a rule of the protocol (a NaN, a
		// count over a limit): the fault is the server's.
		s.log.Error("response does not encode", "kind", kind.String(), "err", err)
		body = &wire.Error{Code: wire.Internal, Message: fmt.Sprintf("server: the %v response does not encode", kind)}
		if frame, err = enc.EncodeFrame(&wire.Envelope{RequestID: id, Body: body}); err != nil {
			panic(fmt.Sprintf("server: an error response does not encode: %v", err))
		}
	}
	bp := s.bufs.Get(len(frame))
	*bp = append(*bp, frame...)
	s.encs.Put(enc)
	s.record(kind, start, body)
	return bp
}

// writeLoop writes responses until the connection ends, each batch of
// ready responses in one write.
func (c *conn) writeLoop() {
	s := c.s
	defer close(c.writerDone)
	for {
		var bp *[]byte
		select {
		case bp = <-c.out:
		case <-c.ctx.Done():
			return
		}
		n := 1
	batch:
		for n < maxBatch && len(*bp) < batchBytes {
			select {
			case more := <-c.out:
				*bp = append(*bp, *more...)
				s.bufs.Put(more)
				n++
			default:
				break batch
			}
		}
		var deadline time.Time
		if s.cfg.WriteTimeout > 0 {
			deadline = time.Now().Add(s.cfg.WriteTimeout)
		}
		c.nc.SetWriteDeadline(deadline)
		_, err := c.nc.Write(*bp)
		s.bufs.Put(bp)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				s.m.slowClients.Inc()
				s.log.Warn("client reads too slowly; closing", "remote", c.nc.RemoteAddr().String(),
					"write_timeout", s.cfg.WriteTimeout)
			} else {
				s.log.Debug("write failed; closing", "remote", c.nc.RemoteAddr().String(), "err", err)
			}
			c.fail()
			return
		}
		for range n {
			<-c.slots
		}
	}
}
