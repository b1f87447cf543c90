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

const fuzzMaxFrame = 1 << 16

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

// FuzzServe sends any bytes over a real connection, half-closes it, and
// reads until the server closes: every frame the server sends decodes, it
// answers every frame it could read whole exactly once (with a response of
// the request's kind or a typed error), it never crashes, and it goes on
// serving other connections.
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

	s, addr := startServer(f, Config{MaxFrame: fuzzMaxFrame, MaxInFlight: 4, ReadTimeout: 2 * time.Second}, &fakeHandler{})
	f.Fuzz(func(t *testing.T, stream []byte) {
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
