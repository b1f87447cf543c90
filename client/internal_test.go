package client

import (
	"context"
	"testing"
	"time"

	"github.com/reelrank/reelrank/client/clienttest"
	"github.com/reelrank/reelrank/eventlog"
	"github.com/reelrank/reelrank/wire"
)

// pending counts the calls waiting and the in-flight slots held over all
// of c's connections.
func pending(c *Client) (calls, slots int) {
	for _, r := range c.replicas {
		for i := range r.slots {
			if cn := r.slots[i].c.Load(); cn != nil {
				cn.mu.Lock()
				calls += len(cn.pending)
				cn.mu.Unlock()
				slots += len(cn.slots)
			}
		}
	}
	return calls, slots
}

// The losing copy of a hedged request, and calls whose caller gave up,
// leave nothing behind on their connections.
func TestAbandonedCallsLeaveNothing(t *testing.T) {
	slow, err := clienttest.Start(func(ctx context.Context, req *wire.Envelope) wire.Message {
		<-ctx.Done()
		return nil
	}, clienttest.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fast, err := clienttest.Start(clienttest.Static("fast"), clienttest.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer fast.Close()
	c, err := DialReplicas(context.Background(), []string{slow.Addr, fast.Addr},
		Options{PoolSize: 1, HedgeDelay: time.Millisecond, HedgeBudget: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for u := range int64(6) {
		if _, err := c.Recommend(context.Background(), &wire.RecommendRequest{User: u, N: 1}); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		c.Delete(ctx, &wire.DeleteRequest{ID: u}) // half of them time out on the straggler
		cancel()
	}
	if calls, slots := pending(c); calls != 0 || slots != 0 {
		t.Errorf("%d calls pending and %d slots held, want none", calls, slots)
	}
	if slow.Requests() < 3 {
		t.Errorf("the straggler saw %d requests, want at least 3", slow.Requests())
	}
}

func TestHedgeBudget(t *testing.T) {
	c := &Client{opt: Options{HedgeBudget: 0.1}}
	c.requests.Store(100)
	c.hedges.Store(19)
	if !c.takeHedge() {
		t.Error("19 hedges of 100 requests refused, the budget is 10% + 10")
	}
	c.hedges.Store(20)
	if c.takeHedge() {
		t.Error("20 hedges of 100 requests allowed, the budget is 10% + 10")
	}
	c.opt.HedgeBudget = 1
	if !c.takeHedge() {
		t.Error("a budget of 1 refused a hedge")
	}
}

func TestLatencyPercentile(t *testing.T) {
	var l latencies
	for i := range hedgeMinSamples - 1 {
		l.record(time.Duration(i))
	}
	if _, ok := l.percentile(0.5); ok {
		t.Error("a percentile from too few samples")
	}
	for i := range 1000 {
		l.record(time.Duration(i) * time.Millisecond)
	}
	// The window holds the last 512: 488..999 ms.
	if p, _ := l.percentile(0.5); p != 744*time.Millisecond {
		t.Errorf("p50 = %v, want 744ms", p)
	}
}

func TestHasUserIsEventlogFUser(t *testing.T) {
	if hasUser != uint16(eventlog.FUser) {
		t.Fatalf("hasUser = %#x, eventlog.FUser = %#x", hasUser, eventlog.FUser)
	}
}
