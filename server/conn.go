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
	"net/netip"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reelrank/reelrank/wire"
)

// How a connection ends, as the reader reports it.
var (
	errDraining = errors.New("server shutting down")
	errIdle     = errors.New("idle timeout")
	errAuthTime = errors.New("no token within the authentication timeout")
	// errProtocol ends a connection after an answer that closes it (a
	// failed authentication); the answer is written first.
	errProtocol = errors.New("closed by the protocol")
)

// A conn is one client connection: a reader goroutine (run) that reads
// frames, answers what it can at once and hands the rest to admission
// (which runs them in workers, see admit.go), and a writer goroutine
// (writeLoop) that writes the encoded responses in batches, in the order
// they are ready.
//
// Every response holds a slot of the connection's pipeline from before its
// request is read until it is written: the reader takes one before each
// frame (blocking, and so no longer reading, when MaxPipeline responses are
// owed), the writer gives them back. So the response channel, as deep as
// the pipeline, never blocks a sender. The reader also stops while the
// responses encoded and not yet written pass MaxUnsent bytes.
//
// An idle connection holds no buffer: the reader waits for the first bytes
// of a frame in a small array (which holds a whole small request, so that
// it costs one read), then takes a buffered reader from the
// server's pool for as long as bytes are buffered, and payloads and
// response frames come from the server's BufferPool.
type conn struct {
	s      *Server
	nc     net.Conn
	addr   netip.Addr // the remote IP address, for MaxConnsPerAddr
	opened time.Time
	ctx    context.Context // cancelled when the connection breaks or the server closes
	cancel context.CancelFunc

	out        chan *[]byte  // encoded response frames, from the server's BufferPool
	slots      chan struct{} // the pipeline: a send takes a slot, a receive gives it back
	writerDone chan struct{}

	// unsent counts the bytes of the responses queued for the writer and
	// not yet written, and peak its largest value; written tells a reader
	// waiting for it to fall that the writer wrote. pauses counts the
	// reader's stops for it, answers the responses queued.
	unsent  atomic.Int64
	peak    atomic.Int64
	pauses  atomic.Int64
	answers atomic.Int64
	written chan struct{}

	q taskQueue // requests waiting for a slot, guarded by the scheduler's lock

	mu   sync.Mutex // guards idle against Shutdown's wake-up
	idle bool       // the reader waits for the first bytes of a frame

	// The reader's own state.
	br       *bufio.Reader   // from s.readers while bytes are buffered, else nil
	first    [firstSize]byte // the first bytes of a frame, read while idle
	firstOff int             // first[firstOff:firstEnd] is still to be read
	firstEnd int
	holding  bool // the reader holds a pipeline slot for the next frame
	authed   bool
	admin    bool // presented the admin token
}

func newConn(s *Server, nc net.Conn, addr netip.Addr) *conn {
	c := &conn{
		s:          s,
		nc:         nc,
		addr:       addr,
		opened:     time.Now(),
		out:        make(chan *[]byte, s.cfg.MaxPipeline),
		slots:      make(chan struct{}, s.cfg.MaxPipeline),
		writerDone: make(chan struct{}),
		written:    make(chan struct{}, 1),
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
		if dl, ok := c.authDeadline(); ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithDeadline(ctx, dl)
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
	// The requests still queued are the broken connection's: forget them.
	s.adm.drop(c)
	c.closeConn(linger && !errors.Is(err, io.EOF))
	if c.br != nil {
		c.releaseReader()
	}
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, errDraining), errors.Is(err, errProtocol), errors.Is(err, errIdle),
		c.ctx.Err() != nil:
		s.log.Debug("connection closed", "remote", remote, "reason", err)
	case errors.Is(err, errAuthTime), !c.authed && errors.Is(err, os.ErrDeadlineExceeded):
		if n, ok := s.authLog.allow(time.Now()); ok {
			s.log.Info("connection closed", "remote", remote, "reason", errAuthTime,
				"closed_since_last_logged", n)
		}
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

// authDeadline returns when a connection that has not authenticated is
// closed, and false when it has or no AuthTimeout applies.
func (c *conn) authDeadline() (time.Time, bool) {
	if c.authed || c.s.cfg.AuthTimeout <= 0 {
		return time.Time{}, false
	}
	return c.opened.Add(c.s.cfg.AuthTimeout), true
}

// acquire takes a pipeline slot for the next frame, waiting while the
// pipeline is full or the unsent responses are over MaxUnsent; false when
// the connection or the server ends first.
func (c *conn) acquire() bool {
	if limit := int64(c.s.cfg.MaxUnsent); c.unsent.Load() > limit {
		c.pauses.Add(1)
		c.s.m.readerPauses.Inc()
		for c.unsent.Load() > limit {
			select {
			case <-c.written:
			case <-c.ctx.Done():
				return false
			case <-c.s.drainCh:
				return false
			}
		}
	}
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
		if s.cfg.IdleTimeout > 0 {
			deadline = time.Now().Add(s.cfg.IdleTimeout)
		}
		if dl, ok := c.authDeadline(); ok {
			// A connection that has not authenticated gets no idle time:
			// its token is due within the authentication timeout.
			deadline = dl
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
			if !c.authed && s.cfg.AuthTimeout > 0 {
				return errAuthTime
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
	if dl, ok := c.authDeadline(); ok && (deadline.IsZero() || dl.Before(deadline)) {
		deadline = dl
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

// request answers a decoded envelope, at once, from a new goroutine
// (Health) or through admission. It returns false when the answer closes
// the connection.
func (c *conn) request(env *wire.Envelope, readAt time.Time) bool {
	s := c.s
	kind := env.Body.Kind()
	if auth, ok := env.Body.(*wire.AuthRequest); ok {
		admin := s.adminTokenOK(auth.Token)
		if !admin && s.cfg.Token != "" && !s.tokenOK(auth.Token) {
			c.unauthenticated(env.RequestID, readAt, "server: wrong token")
			return false
		}
		c.authed = true
		c.admin = c.admin || admin
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
	case kind == wire.KindHealthRequest:
		// Health never waits behind ranking work, nor counts against it.
		c.holding = false // the goroutine owns the slot now
		go c.health(env, readAt)
	case kind == wire.KindAdminRequest:
		if !c.admin && (s.cfg.Token != "" || s.cfg.AdminToken != "") {
			c.reply(env.RequestID, kind, readAt, &wire.Error{Code: wire.Unauthenticated,
				Message: "server: admin requests need a connection that presented the admin token"})
			return true
		}
		// Model changes run outside admission, with their own budget.
		c.holding = false
		go c.adminCall(env, readAt)
	case !handled(kind):
		c.reply(env.RequestID, wire.KindNone, readAt, &wire.Error{Code: wire.BadRequest,
			Message: fmt.Sprintf("server: %v is not a request", kind)})
	default:
		c.admit(env, readAt)
	}
	return true
}

// admit hands a request to admission: it runs now in a new worker, waits
// in the connection's queue, or is answered Overloaded at once.
func (c *conn) admit(env *wire.Envelope, readAt time.Time) {
	s := c.s
	t := task{c: c, env: env, readAt: readAt, deadline: s.budget(env, readAt), kind: kindIndex(env.Body.Kind())}
	v := s.adm.admit(&t, time.Now())
	switch v.outcome {
	case runNow:
		c.holding = false // the worker owns the slot now
		go s.work(t)
	case queued:
		c.holding = false // the queued task owns the slot now
	case expired:
		c.reply(env.RequestID, env.Body.Kind(), readAt, errExpiredBefore)
	default:
		s.m.shed[v.outcome-shedQueueFull].Inc()
		c.reply(env.RequestID, env.Body.Kind(), readAt, s.shedError(v))
	}
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

// work runs admitted requests in one slot: t, then the queued requests
// the slot passes to in turn, until none is queued. A request leaves the
// in-flight count before its answer is queued for the writer, so that a
// client holding every answer sees none in flight.
func (s *Server) work(t task) {
	for {
		c := t.c
		resp, took := c.call(t.env, t.readAt, t.deadline)
		bp := c.encode(t.env.RequestID, t.env.Body.Kind(), t.readAt, resp)
		next, more := s.adm.done(&t, took)
		c.queue(bp)
		if !more {
			return
		}
		t = next
	}
}

// health answers a Health request, outside admission, with a budget of at
// most healthBudget.
func (c *conn) health(env *wire.Envelope, readAt time.Time) {
	deadline := c.s.budget(env, readAt)
	if short := readAt.Add(healthBudget); deadline.IsZero() || short.Before(deadline) {
		deadline = short
	}
	resp, _ := c.call(env, readAt, deadline)
	c.queue(c.encode(env.RequestID, env.Body.Kind(), readAt, resp))
}

// adminBudget bounds an AdminRequest that sets no timeout: a load may
// build an index.
const adminBudget = 10 * time.Minute

// adminCall answers an AdminRequest, outside admission.
func (c *conn) adminCall(env *wire.Envelope, readAt time.Time) {
	deadline := readAt.Add(adminBudget)
	if env.Timeout > 0 {
		deadline = readAt.Add(env.Timeout)
	}
	resp, _ := c.call(env, readAt, deadline)
	c.queue(c.encode(env.RequestID, env.Body.Kind(), readAt, resp))
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

// Answers of requests whose deadline passed, made once.
var (
	errExpiredBefore = &wire.Error{Code: wire.DeadlineExceeded,
		Message: "server: the deadline passed before the request was served"}
	errExpiredDuring = &wire.Error{Code: wire.DeadlineExceeded,
		Message: "server: the deadline passed while the request was served"}
	errGone = &wire.Error{Code: wire.Unavailable,
		Message: "server: request cancelled: the connection or the server closed"}
)

// write reports whether requests of kind k change the engine's state: once
// their handler has answered, the change is made, and the answer is sent
// even past the deadline (a DeadlineExceeded would make the client retry
// a write that happened).
func write(k wire.Kind) bool {
	return k == wire.KindUpsertRequest || k == wire.KindDeleteRequest || k == wire.KindEventRequest
}

// call runs the handler for a request with the given deadline (zero for
// none) and returns the answer, and how long the handler took (0 when it
// was not called). A request whose deadline passed, or whose connection
// broke, before it started is answered without calling the handler.
func (c *conn) call(env *wire.Envelope, readAt, deadline time.Time) (resp wire.Message, took time.Duration) {
	s := c.s
	if hook := s.testHookServe.Load(); hook != nil {
		(*hook)()
	}
	if c.ctx.Err() != nil {
		return errGone, 0
	}
	if !deadline.IsZero() && !time.Now().Before(deadline) {
		return errExpiredBefore, 0
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
	start := time.Now()
	m, err := dispatch(ctx, s.h, env.Body)
	end := time.Now()
	took = max(end.Sub(start), 1)
	if err != nil {
		return s.errorBody(ctx, env.Body.Kind(), err), took
	}
	if !deadline.IsZero() && end.After(deadline) && !write(env.Body.Kind()) {
		return errExpiredDuring, took
	}
	return m, took
}

// errorBody returns the answer to a handler's error.
func (s *Server) errorBody(ctx context.Context, kind wire.Kind, err error) *wire.Error {
	if cerr := ctx.Err(); cerr != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		if errors.Is(cerr, context.DeadlineExceeded) {
			return &wire.Error{Code: wire.DeadlineExceeded, Message: "server: " + err.Error()}
		}
		return errGone
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
	c.queue(c.encode(id, kind, start, body))
}

// queue hands an encoded response to the writer, counting its bytes as
// unsent. It never blocks: the sender holds a pipeline slot.
func (c *conn) queue(bp *[]byte) {
	n := c.unsent.Add(int64(len(*bp)))
	for p := c.peak.Load(); n > p && !c.peak.CompareAndSwap(p, n); p = c.peak.Load() {
	}
	c.answers.Add(1)
	c.out <- bp
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
	bp := s.frames.Get(len(frame))
	*bp = append(*bp, frame...)
	s.encs.Put(enc)
	s.record(kind, start, body)
	if r, ok := s.h.(Recycler); ok {
		r.Recycle(body)
	}
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
				s.frames.Put(more)
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
		c.unsent.Add(-int64(len(*bp)))
		select {
		case c.written <- struct{}{}:
		default:
		}
		s.frames.Put(bp)
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
