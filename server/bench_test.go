package server

import (
	"context"
	"net"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reelrank/reelrank/wire"
)

// BenchmarkRecommendRoundTrip: one client, one request at a time, a
// 20-item Recommend answered by a handler that does no work: the cost the
// server and loopback TCP add to every request.
func BenchmarkRecommendRoundTrip(b *testing.B) {
	_, addr := startServer(b, Config{}, &fakeHandler{})
	c := dial(b, addr)
	frame, err := new(wire.Encoder).EncodeFrame(&wire.Envelope{RequestID: 1, Timeout: time.Second,
		Body: &wire.RecommendRequest{User: 1, N: 20}})
	if err != nil {
		b.Fatal(err)
	}
	var buf []byte
	for b.Loop() {
		c.write(frame)
		p, err := wire.ReadFrame(c.br, 0, buf)
		if err != nil {
			b.Fatal(err)
		}
		buf = p
	}
}

// BenchmarkRecommendPipelined: 64 requests written at once, then their
// answers read: the server's throughput on one connection. ns/op is per
// request.
func BenchmarkRecommendPipelined(b *testing.B) {
	const depth = 64
	_, addr := startServer(b, Config{MaxInFlight: depth}, &fakeHandler{})
	c := dial(b, addr)
	var batch []byte
	var enc wire.Encoder
	for i := range depth {
		f, err := enc.EncodeFrame(&wire.Envelope{RequestID: uint64(i + 1), Timeout: time.Second,
			Body: &wire.RecommendRequest{User: 1, N: 20}})
		if err != nil {
			b.Fatal(err)
		}
		batch = append(batch, f...)
	}
	var buf []byte
	n := 0
	for b.Loop() {
		if n%depth == 0 {
			c.write(batch)
		}
		p, err := wire.ReadFrame(c.br, 0, buf)
		if err != nil {
			b.Fatal(err)
		}
		buf = p
		n++
	}
	for ; n%depth != 0; n++ {
		if _, err := wire.ReadFrame(c.br, 0, buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOverloadAnswer: with every admission slot and the queue taken
// by requests that do not finish, the time from writing a request to
// reading its Overloaded answer, over loopback TCP. Reports the median and
// the 99th percentile in microseconds.
func BenchmarkOverloadAnswer(b *testing.B) {
	h, release, inside := blockingHandler()
	defer close(release)
	s, addr := startServer(b, Config{MaxInFlight: 1, MaxQueue: 1}, h)
	busy := dial(b, addr)
	busy.send(1, 0, &wire.RecommendRequest{User: 1, N: 1})
	busy.send(2, 0, &wire.RecommendRequest{User: 1, N: 1})
	waitFor(b, "the slot and the queue to be taken", func() bool { return inside.Load() == 1 && s.adm.inQueue.Load() == 1 })
	c := dial(b, addr)
	frame, err := new(wire.Encoder).EncodeFrame(&wire.Envelope{RequestID: 2, Timeout: time.Second,
		Body: &wire.RecommendRequest{User: 2, N: 20}})
	if err != nil {
		b.Fatal(err)
	}
	var env wire.Envelope
	var buf []byte
	var lat []time.Duration
	for b.Loop() {
		start := time.Now()
		c.write(frame)
		p, err := wire.ReadFrame(c.br, 0, buf)
		if err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
		buf = p
		if err := wire.Decode(p, &env); err != nil || wire.Code(env.Body.(*wire.Error)) != wire.Overloaded {
			b.Fatalf("answer %+v (%v), want overloaded", env.Body, err)
		}
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2])/1e3, "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100])/1e3, "p99-µs")
}

// BenchmarkBurst: bursts of 64 Recommend requests pipelined at once on one
// connection to an otherwise idle server with 16 slots (what the default
// gives 2 cores), against a handler that spins the CPU for a fixed service
// time, each request with a budget; the next burst starts when every
// answer of the last is read. Reports the fraction answered OK (ok-frac),
// and the latency of the answers from the burst's write, OK or not, at the
// median and the 99th percentile in microseconds. queue=none is admission
// without a queue, which answers what is beyond the slots Overloaded. Run
// it as
//
//	go test ./server -run '^$' -bench Burst -benchtime 200x
func BenchmarkBurst(b *testing.B) {
	const (
		burst   = 64
		slots   = 16
		service = 200 * time.Microsecond
		budget  = 50 * time.Millisecond
	)
	h := &fakeHandler{}
	h.recommend = func(ctx context.Context, req *wire.RecommendRequest) (*wire.RecommendResponse, error) {
		for start := time.Now(); time.Since(start) < service; {
		}
		return recommendFor(req), nil
	}
	for _, bc := range []struct {
		name     string
		maxQueue int
	}{{"queue=16x", 0}, {"queue=none", -1}} {
		b.Run(bc.name, func(b *testing.B) {
			_, addr := startServer(b, Config{MaxInFlight: slots, MaxQueue: bc.maxQueue}, h)
			c := dial(b, addr)
			var batch []byte
			var enc wire.Encoder
			for i := range burst {
				f, err := enc.EncodeFrame(&wire.Envelope{RequestID: uint64(i + 1), Timeout: budget,
					Body: &wire.RecommendRequest{User: 1, N: 20}})
				if err != nil {
					b.Fatal(err)
				}
				batch = append(batch, f...)
			}
			var env wire.Envelope
			var buf []byte
			var lat []time.Duration
			ok := 0
			for b.Loop() {
				start := time.Now()
				c.write(batch)
				for range burst {
					p, err := wire.ReadFrame(c.br, 0, buf)
					if err != nil {
						b.Fatal(err)
					}
					buf = p
					lat = append(lat, time.Since(start))
					if err := wire.Decode(p, &env); err != nil {
						b.Fatal(err)
					}
					if env.Body.Kind() == wire.KindRecommendResponse {
						ok++
					}
				}
			}
			slices.Sort(lat)
			b.ReportMetric(float64(ok)/float64(len(lat)), "ok-frac")
			b.ReportMetric(float64(lat[len(lat)/2])/1e3, "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100])/1e3, "p99-µs")
		})
	}
}

// BenchmarkIdleConnections opens 1,000 connections that each make one
// request and then stay idle, and reports what they cost per connection:
// the Go heap and stacks (heap-B/conn) and the process's resident memory
// (rss-B/conn), both ends of each connection included since client and
// server share the process; and the same less the cost of 1,000
// connections to a bare listener that only accepts and holds them
// (server-heap-B/conn, server-rss-B/conn): the server's own share. Run it
// with -benchtime=1x.
func BenchmarkIdleConnections(b *testing.B) {
	const conns = 1000
	for b.Loop() {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		var mu sync.Mutex
		var held []net.Conn
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				mu.Lock()
				held = append(held, c)
				mu.Unlock()
			}
		}()
		bareHeap, bareRSS := idleCost(b, conns, ln.Addr().String(), false, func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(held) == conns
		})
		ln.Close()
		for _, c := range held {
			c.Close()
		}

		s, addr := startServer(b, Config{}, &fakeHandler{})
		var goroutines int
		heap, rss := idleCost(b, conns, addr, true, func() bool {
			goroutines = runtime.NumGoroutine()
			return s.nconns.Load() == conns
		})
		b.ReportMetric(heap/conns, "heap-B/conn")
		b.ReportMetric(rss/conns, "rss-B/conn")
		b.ReportMetric((heap-bareHeap)/conns, "server-heap-B/conn")
		b.ReportMetric((rss-bareRSS)/conns, "server-rss-B/conn")
		b.ReportMetric(float64(goroutines)/conns, "goroutines/conn")
		s.Close()
		waitFor(b, "the connections to close", func() bool { return s.nconns.Load() == 0 })
	}
}

// idleCost opens n connections to addr, makes one Health call on each when
// call is set, waits until ready, and returns the growth of the heap and
// stacks and of resident memory while they are open and idle.
func idleCost(b *testing.B, n int, addr string, call bool, ready func() bool) (heap, rss float64) {
	heap0, rss0 := memNow(b)
	clients := make([]net.Conn, n)
	for i := range clients {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		clients[i] = c
		if call {
			wrap(b, c).healthy(1)
		}
	}
	waitFor(b, "the connections to be held", ready)
	heap1, rss1 := memNow(b)
	for _, c := range clients {
		c.Close()
	}
	return heap1 - heap0, rss1 - rss0
}

// memNow returns, after a collection, the bytes of heap spans and stacks
// in use, and the process's resident set.
func memNow(b *testing.B) (heap, rss float64) {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	statm, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		b.Skipf("no /proc/self/statm: %v", err)
	}
	f := strings.Fields(string(statm))
	pages, err := strconv.ParseFloat(f[1], 64)
	if err != nil {
		b.Fatal(err)
	}
	return float64(ms.HeapInuse + ms.StackInuse), pages * float64(os.Getpagesize())
}
