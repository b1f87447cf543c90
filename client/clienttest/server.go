// Package clienttest is an in-process reelrank server for tests and
// examples of code that uses package client: it speaks the wire protocol
// on a loopback port and answers each request with a Handler, in a
// goroutine of its own, so that answers go back in the order the handler
// finishes them, as a real server's may. It serves no engine: Static
// answers with made-up but well-formed messages.
package clienttest

import (
	"bufio"
	"context"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reelrank/reelrank/wire"
)

// Handler answers one request. It runs in a goroutine of its own; ctx ends
// when the connection or the server closes. A nil answer sends nothing
// (a server that never answers).
type Handler func(ctx context.Context, req *wire.Envelope) wire.Message

// Config configures a Server. The zero value is plain TCP, no token.
type Config struct {
	// Token, when set, must be presented by an AuthRequest as the first
	// frame of every connection, as wire's Authentication section says.
	Token string
	// TLS, when set, serves TLS with this configuration.
	TLS *tls.Config
}

// Server is a running fake server.
type Server struct {
	// Addr is the "127.0.0.1:port" it listens on.
	Addr string

	ln      net.Listener
	handler Handler
	cfg     Config
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	mu    sync.Mutex
	conns map[net.Conn]struct{}

	accepted, requests atomic.Int64
}

// Start listens on a free loopback port and serves h until Close.
func Start(h Handler, cfg Config) (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("clienttest: listen: %w", err)
	}
	if cfg.TLS != nil {
		ln = tls.NewListener(ln, cfg.TLS)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{Addr: ln.Addr().String(), ln: ln, handler: h, cfg: cfg, ctx: ctx, cancel: cancel,
		conns: make(map[net.Conn]struct{})}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// Close stops listening, closes every connection, ends the handlers'
// contexts and waits for the server's goroutines (handlers included).
func (s *Server) Close() error {
	s.cancel()
	err := s.ln.Close()
	s.DropConns()
	s.wg.Wait()
	return err
}

// DropConns closes every open connection, as a crashed or restarted server
// would, and returns how many there were. The server keeps listening.
func (s *Server) DropConns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.Close()
	}
	return len(s.conns)
}

// Accepted returns the number of connections accepted so far.
func (s *Server) Accepted() int64 { return s.accepted.Load() }

// Requests returns the number of requests read so far (AuthRequests not
// counted).
func (s *Server) Requests() int64 { return s.requests.Load() }

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.accepted.Add(1)
		s.mu.Lock()
		if s.ctx.Err() != nil {
			s.mu.Unlock()
			nc.Close()
			return
		}
		s.conns[nc] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go s.serve(nc)
	}
}

// sconn is the server's side of one connection.
type sconn struct {
	nc  net.Conn
	wmu sync.Mutex
	enc wire.Encoder
}

// write sends one answer; errors end the connection through its reader.
func (c *sconn) write(env *wire.Envelope) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	frame, err := c.enc.EncodeFrame(env)
	if err != nil {
		frame, err = c.enc.EncodeFrame(&wire.Envelope{RequestID: env.RequestID, Body: wire.AsError(err)})
		if err != nil {
			return
		}
	}
	c.nc.Write(frame)
}

func (s *Server) serve(nc net.Conn) {
	ctx, cancel := context.WithCancel(s.ctx)
	var handlers sync.WaitGroup
	defer func() {
		cancel()
		nc.Close()
		handlers.Wait()
		s.mu.Lock()
		delete(s.conns, nc)
		s.mu.Unlock()
		s.wg.Done()
	}()
	c := &sconn{nc: nc}
	br := bufio.NewReader(nc)
	authed := s.cfg.Token == ""
	for {
		payload, err := wire.ReadFrame(br, 0, nil)
		if err != nil {
			if errors.Is(err, wire.ErrFrameTooLarge) || errors.Is(err, wire.ErrMalformed) {
				c.write(&wire.Envelope{Body: wire.AsError(err)})
				continue
			}
			return
		}
		env := new(wire.Envelope)
		if err := wire.Decode(payload, env); err != nil {
			c.write(&wire.Envelope{RequestID: env.RequestID, Body: wire.AsError(err)})
			if !authed {
				return
			}
			continue
		}
		if a, ok := env.Body.(*wire.AuthRequest); ok {
			if s.cfg.Token != "" && subtle.ConstantTimeCompare([]byte(a.Token), []byte(s.cfg.Token)) != 1 {
				c.write(&wire.Envelope{RequestID: env.RequestID, Body: &wire.Error{Code: wire.Unauthenticated, Message: "wrong token"}})
				return
			}
			authed = true
			c.write(&wire.Envelope{RequestID: env.RequestID, Body: &wire.AuthResponse{}})
			continue
		}
		if !authed {
			c.write(&wire.Envelope{RequestID: env.RequestID, Body: &wire.Error{Code: wire.Unauthenticated, Message: "token required"}})
			return
		}
		s.requests.Add(1)
		handlers.Add(1)
		go func() {
			defer handlers.Done()
			if m := s.handler(ctx, env); m != nil {
				c.write(&wire.Envelope{RequestID: env.RequestID, Body: m})
			}
		}()
	}
}

// Sleep waits d or until ctx ends, and reports whether the whole d passed.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Static returns a Handler that answers every request at once with a
// well-formed made-up message, marked with version (as the model version,
// the arm or the health status) so that a test can tell servers apart:
//
//   - Recommend: N items, reels User*1000+1.., scores 1, 1/2, 1/3, …,
//     heads "like" and "share", timings of 1..6 ms per stage;
//   - Score: score 1/(1+i) for the i-th reel;
//   - Search: K ids 1..K, scores decreasing from 1;
//   - Upsert, Delete, Event (all accepted), Stats, Health (ok).
func Static(version string) Handler {
	return func(_ context.Context, req *wire.Envelope) wire.Message {
		return StaticAnswer(version, req.Body)
	}
}

// StaticAnswer is Static's answer to one request.
func StaticAnswer(version string, req wire.Message) wire.Message {
	switch m := req.(type) {
	case *wire.RecommendRequest:
		items := make([]wire.Item, m.N)
		for i := range items {
			items[i] = wire.Item{Reel: m.User*1000 + int64(i) + 1, Score: 1 / float32(i+1),
				Probs: []float32{0.5, 0.1}, Propensity: 1}
		}
		return &wire.RecommendResponse{Items: items, Heads: []string{"like", "share"}, ModelVersion: version,
			Arm: version, Timings: wire.Timings{Features: time.Millisecond, Tower: 2 * time.Millisecond,
				ANN: 3 * time.Millisecond, Rank: 4 * time.Millisecond, Postrank: 5 * time.Millisecond,
				Total: 6 * time.Millisecond, ANNCandidates: 1000, Ranked: uint32(m.N)}}
	case *wire.ScoreRequest:
		scores := make([]float32, len(m.Reels))
		probs := make([]float32, 2*len(m.Reels))
		for i := range scores {
			scores[i] = 1 / float32(i+1)
			probs[2*i], probs[2*i+1] = scores[i], scores[i]/2
		}
		return &wire.ScoreResponse{Heads: []string{"like", "share"}, Scores: scores, Probs: probs, ModelVersion: version}
	case *wire.SearchRequest:
		ids := make([]int64, m.K)
		scores := make([]float32, m.K)
		for i := range ids {
			ids[i], scores[i] = int64(i)+1, 1-float32(i)/float32(m.K)
		}
		return &wire.SearchResponse{IDs: ids, Scores: scores}
	case *wire.UpsertRequest:
		return &wire.UpsertResponse{}
	case *wire.DeleteRequest:
		return &wire.DeleteResponse{}
	case *wire.EventRequest:
		return &wire.EventResponse{Accepted: uint32(len(m.Events))}
	case *wire.StatsRequest:
		return &wire.StatsResponse{ModelVersion: version, Requests: 1}
	case *wire.HealthRequest:
		return &wire.HealthResponse{OK: true, Status: version}
	}
	return &wire.Error{Code: wire.BadRequest, Message: fmt.Sprintf("clienttest: no answer for a %s", req.Kind())}
}
