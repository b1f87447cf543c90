package client

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reelrank/reelrank/client/clienttest"
	"github.com/reelrank/reelrank/wire"
)

// fuzzRequests are the requests FuzzClientResponse pipelines on one
// connection, one of each kind: the i-th is sent as request id i+1.
func fuzzRequests() []wire.Message {
	return []wire.Message{
		&wire.RecommendRequest{User: 1, N: 3},
		&wire.ScoreRequest{User: 1, Reels: []int64{4, 5}},
		&wire.SearchRequest{Vector: []float32{1, 0}, K: 2},
		&wire.UpsertRequest{Reel: wire.Reel{ID: 7, Category: -1}},
		&wire.DeleteRequest{ID: 7},
		&wire.EventRequest{Events: []wire.Event{{Type: wire.EventLike, User: 1, Reel: 4}}},
		&wire.StatsRequest{},
		&wire.HealthRequest{},
	}
}

// frames returns the frames of the envelopes, one after the other.
func frames(tb testing.TB, envs ...*wire.Envelope) []byte {
	var out []byte
	var enc wire.Encoder
	for _, env := range envs {
		f, err := enc.EncodeFrame(env)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, f...)
	}
	return out
}

// FuzzClientResponse: whatever bytes a server answers with, a client with
// requests of every kind pipelined on one connection does not panic,
// every call returns (an answer or an error, never a hang until its
// deadline), and once the Client is closed no goroutine of its or of the
// test's is left.
func FuzzClientResponse(f *testing.F) {
	reqs := fuzzRequests()
	var answers []*wire.Envelope
	for i, r := range reqs {
		answers = append(answers, &wire.Envelope{RequestID: uint64(i + 1), Body: clienttest.StaticAnswer("v1", r)})
	}
	all := frames(f, answers...)
	f.Add(all)
	// Out of order, with an error, a wrong kind and an unknown id.
	f.Add(frames(f, answers[7], answers[3],
		&wire.Envelope{RequestID: 1, Body: &wire.Error{Code: wire.Overloaded, Message: "full"}},
		&wire.Envelope{RequestID: 2, Body: &wire.HealthResponse{OK: true}},
		&wire.Envelope{RequestID: 99, Body: &wire.StatsResponse{}},
		answers[5], answers[4]))
	// An answer under id 0 breaks the connection.
	f.Add(frames(f, answers[0], &wire.Envelope{Body: &wire.Error{Code: wire.BadRequest, Message: "unreadable"}}))
	// A frame over the maximum, a zero-length frame, a truncated one.
	f.Add(binary.LittleEndian.AppendUint32(all[:40:40], wire.DefaultMaxFrame+1))
	f.Add(append(frames(f, answers[1]), 0, 0, 0, 0))
	f.Add(all[:len(all)-3])
	f.Add([]byte("\x10\x00\x00\x00garbage garbage!"))
	f.Add([]byte{})

	f.Fuzz(func(t *testing.T, stream []byte) {
		before := runtime.NumGoroutine()
		release := make(chan struct{}) // lets the first connection's server answer
		var releaseOnce sync.Once
		releaseAll := func() { releaseOnce.Do(func() { close(release) }) }
		defer releaseAll()

		var server sync.WaitGroup
		var dials atomic.Int64
		dialNet := func(ctx context.Context, addr string) (net.Conn, error) {
			cli, srv := net.Pipe()
			first := dials.Add(1) == 1
			server.Go(func() { io.Copy(io.Discard, srv) }) // reads the requests
			server.Go(func() {
				if first {
					<-release // every call is waiting: answer them all at once
				}
				srv.Write(stream)
				srv.Close()
			})
			return cli, nil
		}
		c, err := dialReplicas(context.Background(), []string{"fuzz"}, Options{PoolSize: 1}, dialNet)
		if err != nil {
			t.Fatal(err)
		}

		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		errs := make([]error, len(reqs))
		var calls sync.WaitGroup
		for i, req := range reqs {
			calls.Go(func() { _, errs[i] = c.Do(ctx, req) })
			// Wait for the call to be on the wire, so that it is request i+1.
			for n := 0; ; n++ {
				if calls, _ := pending(c); calls == i+1 {
					break
				}
				if n > 100000 {
					t.Fatalf("request %d was never sent", i+1)
				}
				time.Sleep(10 * time.Microsecond)
			}
		}
		releaseAll()
		calls.Wait()
		for i, err := range errs {
			if err != nil && bytes.Equal(stream, all) {
				t.Fatalf("%s, answered: %v", reqs[i].Kind(), err)
			}
			if errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("%s hung until its deadline", reqs[i].Kind())
			}
			if err != nil && !strings.HasPrefix(err.Error(), "client: ") {
				t.Fatalf("%s: an error without context: %v", reqs[i].Kind(), err)
			}
		}
		if calls, slots := pending(c); calls != 0 || slots != 0 {
			t.Fatalf("%d calls pending and %d slots held after every call returned", calls, slots)
		}
		c.Close()
		server.Wait()
		for n := 0; runtime.NumGoroutine() > before; n++ {
			if n > 1000 {
				buf := make([]byte, 1<<20)
				t.Fatalf("%d goroutines left, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
			}
			time.Sleep(time.Millisecond)
		}
	})
}
