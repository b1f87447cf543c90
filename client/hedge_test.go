package client_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/reelrank/reelrank/client"
	"github.com/reelrank/reelrank/client/clienttest"
	"github.com/reelrank/reelrank/wire"
)

// straggler answers as version, after stalling every request until the
// server or connection closes.
func straggler(version string) clienttest.Handler {
	return func(ctx context.Context, req *wire.Envelope) wire.Message {
		<-ctx.Done()
		return clienttest.StaticAnswer(version, req.Body)
	}
}

// One replica stalls: without hedging the requests it gets time out; with
// a hedge delay every request is answered, by the other replica.
func TestHedgeCutsStraggler(t *testing.T) {
	slow := start(t, straggler("slow"), clienttest.Config{})
	fast := start(t, clienttest.Static("fast"), clienttest.Config{})

	plain := dial(t, client.Options{PoolSize: 1}, slow.Addr, fast.Addr)
	timeouts := 0
	for u := range int64(6) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		_, err := plain.Recommend(ctx, recommend(u))
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			timeouts++
		}
	}
	if timeouts != 3 {
		t.Fatalf("without hedging %d of 6 requests timed out, want 3 (those sent to the straggler)", timeouts)
	}

	before := slow.Requests()
	c := dial(t, client.Options{PoolSize: 1, HedgeDelay: 5 * time.Millisecond, HedgeBudget: 1}, slow.Addr, fast.Addr)
	const n = 10
	for u := range int64(n) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		r, err := c.Recommend(ctx, recommend(u))
		cancel()
		if err != nil {
			t.Fatalf("request %d: %v", u, err)
		}
		if r.ModelVersion != "fast" || r.Items[0].Reel != u*1000+1 {
			t.Fatalf("request %d answered by %q with reel %d", u, r.ModelVersion, r.Items[0].Reel)
		}
	}
	got := c.Counters()
	sentSlow := slow.Requests() - before
	if sentSlow != n/2 || got.Hedges != n/2 || got.HedgeWins != n/2 {
		t.Errorf("straggler got %d requests, %d hedges, %d won by the hedge; want %d each",
			sentSlow, got.Hedges, got.HedgeWins, n/2)
	}
}

// With one replica, the hedge goes to another connection; the delay is a
// percentile of recent latencies once there are enough of them.
func TestHedgeByPercentile(t *testing.T) {
	var mu sync.Mutex
	seen := map[int64]bool{}
	s := start(t, func(ctx context.Context, req *wire.Envelope) wire.Message {
		r, ok := req.Body.(*wire.RecommendRequest)
		if ok && r.User >= 1000 && r.User%5 == 0 {
			mu.Lock()
			first := !seen[r.User]
			seen[r.User] = true
			mu.Unlock()
			if first { // the first copy straggles; a second is answered
				<-ctx.Done()
				return nil
			}
		}
		return clienttest.StaticAnswer("v1", req.Body)
	}, clienttest.Config{})
	c := dial(t, client.Options{PoolSize: 2, HedgePercentile: 0.9, HedgeBudget: 1}, s.Addr)
	ctx := context.Background()
	for u := range int64(70) { // enough answers for a percentile
		if _, err := c.Recommend(ctx, recommend(u)); err != nil {
			t.Fatal(err)
		}
	}
	for u := int64(1000); u < 1020; u++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		r, err := c.Recommend(ctx, recommend(u))
		cancel()
		if err != nil || r.Items[0].Reel != u*1000+1 {
			t.Fatalf("user %d: %+v, %v", u, r, err)
		}
	}
	// Each stalled request was answered, so each was hedged. Which copy
	// wins is a race: the server stalls whichever copy reaches it first,
	// and the hedge can overtake the original on the other connection.
	if got := c.Counters(); got.Hedges < 4 {
		t.Errorf("%d hedges sent, want at least one for each of the 4 stalled requests", got.Hedges)
	}
	if got := s.Accepted(); got != 2 {
		t.Errorf("%d connections, want 2", got)
	}
}

// Writes are never hedged: each goes to one replica once.
func TestWritesNotHedged(t *testing.T) {
	slow := start(t, straggler("slow"), clienttest.Config{})
	fast := start(t, clienttest.Static("fast"), clienttest.Config{})
	c := dial(t, client.Options{PoolSize: 1, HedgeDelay: time.Millisecond, HedgeBudget: 1}, slow.Addr, fast.Addr)
	const n = 6
	failed := 0
	for id := range int64(n) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		_, err := c.Upsert(ctx, &wire.UpsertRequest{Reel: wire.Reel{ID: id, Category: -1}})
		cancel()
		if err != nil {
			failed++
		}
	}
	if got := slow.Requests() + fast.Requests(); got != n || failed != n/2 || c.Counters().Hedges != 0 {
		t.Errorf("%d upserts sent %d frames, %d failed, %d hedges; want %d, %d, 0",
			n, got, failed, c.Counters().Hedges, n, n/2)
	}
}

// An error worth retrying elsewhere (overloaded) does not settle a hedged
// request; the other copy's answer does.
func TestHedgeSkipsOverloaded(t *testing.T) {
	shed := start(t, func(ctx context.Context, req *wire.Envelope) wire.Message {
		clienttest.Sleep(ctx, 20*time.Millisecond)
		return &wire.Error{Code: wire.Overloaded, Message: "full"}
	}, clienttest.Config{})
	fast := start(t, func(ctx context.Context, req *wire.Envelope) wire.Message {
		clienttest.Sleep(ctx, 40*time.Millisecond)
		return clienttest.StaticAnswer("ok", req.Body)
	}, clienttest.Config{})
	c := dial(t, client.Options{PoolSize: 1, HedgeDelay: time.Millisecond, HedgeBudget: 1}, shed.Addr, fast.Addr)
	for u := range int64(4) {
		r, err := c.Recommend(context.Background(), recommend(u))
		if err != nil || r.ModelVersion != "ok" {
			t.Fatalf("request %d: %+v, %v", u, r, err)
		}
	}
}
