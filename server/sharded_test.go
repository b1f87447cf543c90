package server

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reelrank/reelrank/client"
	"github.com/reelrank/reelrank/engine"
	"github.com/reelrank/reelrank/eventlog"
	"github.com/reelrank/reelrank/wire"
)

// shardServer is one shard's engine served on a loopback address, which
// it can be stopped on and started on again.
type shardServer struct {
	t    *testing.T
	e    *engine.Engine
	addr string
	srv  *Server
	done chan error
}

func (s *shardServer) start() {
	s.t.Helper()
	srv, err := New(Config{Logger: quietLogger()}, EngineHandler(s.e))
	if err != nil {
		s.t.Fatal(err)
	}
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		s.t.Fatal(err)
	}
	s.addr = ln.Addr().String()
	s.srv, s.done = srv, make(chan error, 1)
	go func() { s.done <- srv.Serve(ln) }()
}

// kill closes the server at once: its listener and every connection.
func (s *shardServer) kill() {
	s.t.Helper()
	s.srv.Close()
	if err := <-s.done; !errors.Is(err, ErrServerClosed) {
		s.t.Errorf("Serve returned %v, want ErrServerClosed", err)
	}
	s.srv = nil
}

// startShards serves n shards of the test world on loopback and returns
// them with a Sharded over them that allows partial answers.
func startShards(t *testing.T, n int) ([]*shardServer, *client.Sharded) {
	t.Helper()
	shards := make([]*shardServer, n)
	addrs := make([][]string, n)
	for i := range shards {
		s := &shardServer{t: t, e: newTestEngineWith(t, engine.Config{Shard: engine.Shard{Index: i, Count: n}}), addr: "127.0.0.1:0"}
		s.start()
		shards[i], addrs[i] = s, []string{s.addr}
	}
	t.Cleanup(func() {
		for _, s := range shards {
			if s.srv != nil {
				s.kill()
			}
		}
	})
	// Generous budgets: a shard that is up answers a request of this
	// world in a millisecond; one that is down fails at once.
	sh, err := client.DialSharded(context.Background(), addrs, client.Options{PoolSize: 1},
		client.ShardedOptions{AllowPartial: true, ShardTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sh.Close() })
	return shards, sh
}

// outcome is one Recommend through the Sharded: the phases it was sent
// and answered in, and what came back.
type outcome struct {
	from, to int32
	missing  []int
	items    []int64
	err      error
}

// The phases of TestShardedKillRestart. A request sent and answered in
// one of the even ones saw the shards in one state throughout; the odd
// ones bracket the kill and the restart.
const (
	phaseUp int32 = iota
	phaseKilling
	phaseDown
	phaseRestarting
	phaseRestarted
	numPhases
)

// TestShardedKillRestart drives Recommends through a Sharded over three
// shards from several goroutines, kills one shard, keeps sending,
// restarts it on the same address, and checks that every request was
// answered, that the answers sent while it was down name it as missing
// and hold none of its reels, and that the answers are whole again after
// the restart. It waits for counts, never for times.
func TestShardedKillRestart(t *testing.T) {
	const n, workers, perPhase = 3, 4, 40
	const victim = 1
	shards, sh := startShards(t, n)

	var (
		phase atomic.Int32
		mu    sync.Mutex
		outs  []outcome
		count [numPhases]int // answers sent and answered within one phase
		whole [numPhases]int // of which whole
		cond  = sync.NewCond(&mu)
		stop  = make(chan struct{})
		wg    sync.WaitGroup
	)
	for w := range workers {
		wg.Go(func() {
			for k := int64(0); ; k++ {
				select {
				case <-stop:
					return
				default:
				}
				from := phase.Load()
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				r, err := sh.Recommend(ctx, &wire.RecommendRequest{User: 1 + (int64(w)*1000+k)%20, N: 10,
					Context: wire.Context{Time: testNow}})
				cancel()
				o := outcome{from: from, to: phase.Load(), err: err}
				if r != nil {
					o.missing = r.MissingShards
					for _, it := range r.Items {
						o.items = append(o.items, it.Reel)
					}
				}
				mu.Lock()
				outs = append(outs, o)
				if o.from == o.to {
					count[o.from]++
					if r != nil && len(r.MissingShards) == 0 && err == nil {
						whole[o.from]++
					}
				}
				cond.Broadcast()
				mu.Unlock()
			}
		})
	}
	// waitFor waits until ok holds of the counts (under mu), failing the
	// test after a bound far beyond what the work needs.
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(2 * time.Minute)
		go func() { // wakes the waiter at the deadline
			time.Sleep(time.Until(deadline))
			mu.Lock()
			cond.Broadcast()
			mu.Unlock()
		}()
		mu.Lock()
		defer mu.Unlock()
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("waited 2 min for %s: answers by phase %v, whole %v", what, count, whole)
			}
			cond.Wait()
		}
	}
	waitFor("answers with every shard up", func() bool { return count[phaseUp] >= perPhase })
	phase.Store(phaseKilling)
	shards[victim].kill()
	phase.Store(phaseDown)
	waitFor("answers with a shard down", func() bool { return count[phaseDown] >= perPhase })
	phase.Store(phaseRestarting)
	shards[victim].start() // the same address
	phase.Store(phaseRestarted)
	waitFor("whole answers after the restart", func() bool { return whole[phaseRestarted] >= perPhase })
	close(stop)
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	for j, o := range outs {
		var pe *client.PartialError
		if o.err != nil && !errors.As(o.err, &pe) {
			t.Fatalf("request %d (phases %d..%d) failed: %v", j, o.from, o.to, o.err)
		}
		if len(o.items) == 0 {
			t.Fatalf("request %d (phases %d..%d): no items (missing %v, %v)", j, o.from, o.to, o.missing, o.err)
		}
		if (o.err != nil) != (len(o.missing) > 0) {
			t.Fatalf("request %d: missing %v with error %v", j, o.missing, o.err)
		}
		if len(o.missing) > 0 && !slices.Equal(o.missing, []int{victim}) {
			t.Errorf("request %d (phases %d..%d): missing %v; only shard %d ever went down", j, o.from, o.to, o.missing, victim)
		}
		if o.from != o.to {
			continue // sent in one state of the shards, answered in another
		}
		switch o.from {
		case phaseUp:
			// Every shard is up, well within its budget: whole answers.
			if len(o.missing) > 0 {
				t.Errorf("request %d, every shard up: missing %v (%v)", j, o.missing, o.err)
			}
		case phaseDown:
			if !slices.Equal(o.missing, []int{victim}) {
				t.Errorf("request %d, shard %d down: missing %v, want [%d]", j, victim, o.missing, victim)
			}
			for _, reel := range o.items {
				if client.ShardOf(reel, n) == victim {
					t.Errorf("request %d, shard %d down: reel %d of that shard served", j, victim, reel)
				}
			}
		case phaseRestarted:
			// The client redials after a backoff: the first answers may
			// still miss the restarted shard (checked above), until they
			// are whole (waited for).
		}
	}
	t.Logf("answers by phase %v, whole %v", count, whole)
}

// TestShardedWrites sends writes through a Sharded over served shards:
// an upsert lands on its reel's shard alone, the same upsert sent
// straight to another shard is refused WrongShard, and an event naming a
// user reaches every shard.
func TestShardedWrites(t *testing.T) {
	const n = 3
	shards, sh := startShards(t, n)
	ctx := context.Background()
	id := int64(5000)
	owner := client.ShardOf(id, n)
	emb := make([]float32, 8)
	up := &wire.UpsertRequest{Reel: wire.Reel{ID: id, Author: 1001, Upload: testNow - 1000, Duration: 10, Category: -1, Embedding: emb}}
	if _, err := sh.Upsert(ctx, up); err != nil {
		t.Fatal(err)
	}
	for i, s := range shards {
		_, known := s.e.Store().ReelInfo(id)
		if known != (i == owner) || s.e.Model().Index().Contains(id) != (i == owner) {
			t.Errorf("shard %d (owner %d): knows the reel %v", i, owner, known)
		}
	}
	other := (owner + 1) % n
	c, err := client.Dial(ctx, shards[other].addr, client.Options{PoolSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.Upsert(ctx, up)
	if we := (*wire.Error)(nil); !errors.As(err, &we) || we.Code != wire.WrongShard {
		t.Fatalf("upsert sent to shard %d, owned by %d: %v, want WrongShard", other, owner, err)
	}
	if _, err := c.Score(ctx, &wire.ScoreRequest{User: 1, Reels: []int64{id}}); wire.Code(err) != wire.WrongShard {
		t.Errorf("score sent to the wrong shard: %v", err)
	}
	before := make([]int64, n)
	for i, s := range shards {
		before[i] = s.e.Stats().Events
	}
	ev := []wire.Event{
		{Type: wire.EventImpression, Has: uint16(eventlog.Required(eventlog.Impression)), Time: testNow, User: 7, Reel: 3,
			Author: 1003, Session: 1, Propensity: 1, Arm: "control"},
		{Type: wire.EventWatch, Has: uint16(eventlog.Required(eventlog.Watch)), Time: testNow, User: 7, Reel: 3,
			Author: 1003, Session: 1, Seconds: 5, Fraction: 1},
	}
	r, err := sh.Event(ctx, &wire.EventRequest{Events: ev})
	if err != nil || r.Accepted != 2 || r.Rejected != 0 {
		t.Fatalf("events: %+v, %v", r, err)
	}
	for i, s := range shards {
		if got := s.e.Stats().Events - before[i]; got != 2 {
			t.Errorf("shard %d applied %d of the user's events, want 2", i, got)
		}
	}
	h, err := sh.Health(ctx)
	if err != nil || !h.OK {
		t.Fatalf("health: %+v, %v", h, err)
	}
	for i := range n {
		if want := "shard " + string(rune('0'+i)) + "/3"; !strings.Contains(h.Status, want) {
			t.Errorf("health %q does not name %s", h.Status, want)
		}
	}
}
