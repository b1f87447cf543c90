package server

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/reelrank/reelrank/wire"
)

const (
	fuzzMaxFrame = 1 << 16
	fuzzToken    = "fuzz-token"
)

// completeFrames counts the frames of stream a server reads whole: every
// length prefix followed by all its bytes, empty and oversized ones too.
func completeFrames(stream []byte) int {
	n := 0
	for len(stream) >= wire.HeaderSize {
		size := int(binary.LittleEndian.Uint32(stream))
		if size > len(stream)-wire.HeaderSize {
			break
		}
		stream = stream[wire.HeaderSize+size:]
		n++
	}
	return n
}

// expectedAnswers returns the request ids a server with the given token
// and MaxFrame owes for stream, sent after authenticating, with how many
// answers each: every frame read whole is answered once, under its id when
// it decodes far enough to have one, else under 0; a frame that presents
// the wrong token is answered and ends the connection.
func expectedAnswers(stream []byte, token string, maxFrame int) map[uint64]int {
	want := map[uint64]int{}
	for len(stream) >= wire.HeaderSize {
		size := int(binary.LittleEndian.Uint32(stream))
		if size > len(stream)-wire.HeaderSize {
			break
		}
		p := stream[wire.HeaderSize : wire.HeaderSize+size]
		stream = stream[wire.HeaderSize+size:]
		if size == 0 || size > maxFrame {
			want[0]++
			continue
		}
		env := new(wire.Envelope)
		err := wire.Decode(p, env)
		want[env.RequestID]++
		if auth, ok := env.Body.(*wire.AuthRequest); err == nil && ok && auth.Token != token {
			break
		}
	}
	return want
}

// serveEngine sends stream over an authenticated connection to a server
// of the real engine, half-closes it and reads until the server closes:
// each frame read whole is answered under its id, with the response of
// its kind or an error the input explains (never Internal, which would be
// a fault of the engine or the server).
func serveEngine(t *testing.T, addr, token string, stream []byte) {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	c := wrap(t, nc)
	c.call(0, &wire.AuthRequest{Token: token})
	go func() {
		nc.Write(stream)
		nc.(*net.TCPConn).CloseWrite()
	}()
	want := expectedAnswers(stream, token, fuzzMaxFrame)
	got := map[uint64]int{}
	for {
		env, err := c.recvErr()
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("after %d answers: %v", len(got), err)
			}
			break
		}
		got[env.RequestID]++
		if got[env.RequestID] > want[env.RequestID] {
			t.Fatalf("request id %d answered %d times, want %d: %v %+v", env.RequestID, got[env.RequestID],
				want[env.RequestID], env.Body.Kind(), env.Body)
		}
		if e, ok := env.Body.(*wire.Error); ok {
			switch e.Code {
			case wire.BadRequest, wire.NotFound, wire.DeadlineExceeded, wire.Overloaded, wire.Unavailable, wire.Unauthenticated:
			default:
				t.Fatalf("request %d: %v", env.RequestID, e)
			}
			continue
		}
		if k := env.Body.Kind(); k%2 != 0 || k == wire.KindNone {
			t.Fatalf("request %d answered a %v, not a response", env.RequestID, k)
		}
	}
	for id, n := range want {
		if got[id] != n {
			t.Fatalf("request id %d answered %d times, want %d", id, got[id], n)
		}
	}
}

// FuzzServe sends any bytes over a real connection, half-closes it, and
// reads until the server closes: every frame the server sends decodes, it
// answers every frame it could read whole exactly once (with a response of
// the request's kind or a typed error), it never crashes, and it goes on
// serving other connections.
//
// Each input goes to two servers: one of a fake handler, without
// authentication, and one of the real engine (a small world, see
// newTestEngine) with a token, where the input follows the connection's
// AuthRequest and every answer must carry its request's id.
func FuzzServe(f *testing.F) {
	var enc wire.Encoder
	frame := func(id uint64, timeout time.Duration, m wire.Message) []byte {
		b, err := enc.EncodeFrame(&wire.Envelope{RequestID: id, Timeout: timeout, Body: m})
		if err != nil {
			f.Fatal(err)
		}
		return append([]byte(nil), b...)
	}
	var all []byte
	for i, m := range []wire.Message{
		&wire.RecommendRequest{User: 3, N: 5, Exclude: []int64{300}},
		&wire.ScoreRequest{User: 1, Reels: []int64{1, 2, 3}},
		&wire.SearchRequest{Vector: []float32{0.5, 1}, K: 3},
		&wire.UpsertRequest{Reel: wire.Reel{ID: 9, Category: -1, Embedding: []float32{1, 2}, Description: "cat"}},
		&wire.DeleteRequest{ID: 404},
		&wire.EventRequest{Events: []wire.Event{{Type: wire.EventWatch, User: 1, Reel: 2, Seconds: 3}}},
		&wire.StatsRequest{},
		&wire.HealthRequest{},
		&wire.AuthRequest{Token: "t"},
		&wire.HealthResponse{OK: true},
	} {
		fr := frame(uint64(i+1), time.Second, m)
		f.Add(fr)
		all = append(all, fr...)
	}
	f.Add(all)
	f.Add(frame(1, time.Microsecond, &wire.RecommendRequest{User: 1, N: 1}))
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1, 2, 3})
	f.Add(append([]byte{0x00, 0x00, 0x01, 0x00}, make([]byte, 1<<16)...)) // oversized, then nothing
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))
	f.Add(frameOf([]byte("RRW1RRW1RRW1")))
	// For the engine: requests it serves, refuses and cannot find, and a
	// wrong token after the right one.
	var engineSeed []byte
	for i, m := range []wire.Message{
		&wire.RecommendRequest{User: 3, N: 10, Context: wire.Context{Session: 1, Recent: []int64{5}}, Exclude: []int64{7}},
		&wire.RecommendRequest{User: 999, N: wire.MaxN},
		&wire.ScoreRequest{User: 1, Reels: []int64{1, 2, 300, 301}},
		&wire.SearchRequest{Vector: make([]float32, 8), K: 10},
		&wire.SearchRequest{Vector: []float32{1, 2, 3}, K: 10},
		&wire.UpsertRequest{Reel: wire.Reel{ID: 400, Author: 7, Upload: 1767571200000 - 60_000, Duration: 9, Category: -1,
			Embedding: []float32{1, 0, 0, 0, 0, 0, 0, 1}}},
		&wire.DeleteRequest{ID: 12},
		&wire.DeleteRequest{ID: 123456},
		&wire.EventRequest{Events: []wire.Event{{Type: wire.EventImpression, User: 1, Reel: 2, Author: 1002, Session: 5},
			{Type: wire.EventWatch, User: 1, Reel: 2, Seconds: 3, Fraction: 0.5}}},
		&wire.HealthRequest{},
		&wire.StatsRequest{},
		&wire.AuthRequest{Token: fuzzToken},
	} {
		fr := frame(uint64(i+100), time.Second, m)
		f.Add(fr)
		engineSeed = append(engineSeed, fr...)
	}
	f.Add(engineSeed)
	f.Add(append(frame(1, time.Second, &wire.AuthRequest{Token: "wrong"}), engineSeed...))

	s, addr := startServer(f, Config{MaxFrame: fuzzMaxFrame, MaxInFlight: 4, ReadTimeout: 2 * time.Second}, &fakeHandler{})
	es, eaddr := startServer(f, Config{MaxFrame: fuzzMaxFrame, MaxInFlight: 4, ReadTimeout: 2 * time.Second,
		Token: fuzzToken}, EngineHandler(newTestEngine(f)))
	f.Fuzz(func(t *testing.T, stream []byte) {
		serveEngine(t, eaddr, fuzzToken, stream)
		if st := es.Stats(t.Context()); st.InFlight > 4 {
			t.Fatalf("%d requests in flight over a limit of 4", st.InFlight)
		}
		fresh := dial(t, eaddr)
		fresh.call(1, &wire.AuthRequest{Token: fuzzToken})
		if env := fresh.call(2, &wire.HealthRequest{}); env.Body.Kind() != wire.KindHealthResponse {
			t.Fatalf("a fresh client's health request: %+v", env.Body)
		}
		fresh.nc.Close()

		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		go func() {
			nc.Write(stream)
			nc.(*net.TCPConn).CloseWrite()
		}()
		c := wrap(t, nc)
		answers := 0
		for {
			env, err := c.recvErr()
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("after %d answers: %v", answers, err)
				}
				break
			}
			answers++
			if e, ok := env.Body.(*wire.Error); ok {
				switch e.Code {
				case wire.BadRequest, wire.NotFound, wire.DeadlineExceeded, wire.Overloaded:
				default:
					t.Fatalf("answer %d: %v", answers, e)
				}
				continue
			}
			if k := env.Body.Kind(); k%2 != 0 {
				t.Fatalf("answer %d is a %v, not a response", answers, k)
			}
		}
		if want := completeFrames(stream); answers != want {
			t.Fatalf("%d answers to %d whole frames", answers, want)
		}
		if st := s.Stats(t.Context()); st.InFlight > 4 {
			t.Fatalf("%d requests in flight over a limit of 4", st.InFlight)
		}
		other, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close()
		wrap(t, other).healthy(1)
	})
}
