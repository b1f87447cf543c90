package client_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reelrank/reelrank/client"
	"github.com/reelrank/reelrank/client/clienttest"
	"github.com/reelrank/reelrank/eventlog"
	"github.com/reelrank/reelrank/wire"
)

func TestShardOf(t *testing.T) {
	const ids = 100000
	counts := make([]int, 4)
	moved := 0
	for id := range int64(ids) {
		s4, s5 := client.ShardOf(id, 4), client.ShardOf(id, 5)
		counts[s4]++
		if s4 != s5 {
			moved++
			if s5 != 4 {
				t.Fatalf("id %d moved from shard %d to %d, not to the new shard", id, s4, s5)
			}
		}
		if client.ShardOf(id, 1) != 0 {
			t.Fatal("one shard owns everything")
		}
	}
	for i, c := range counts {
		if c < ids/4*95/100 || c > ids/4*105/100 {
			t.Errorf("shard %d owns %d of %d ids", i, c, ids)
		}
	}
	if moved < ids/5*95/100 || moved > ids/5*105/100 {
		t.Errorf("growing to 5 shards moved %d ids, want about %d", moved, ids/5)
	}
}

// shards starts one fake server per handler and a Sharded over them.
func shards(t *testing.T, sopt client.ShardedOptions, hs ...clienttest.Handler) (*client.Sharded, []*clienttest.Server) {
	t.Helper()
	var addrs [][]string
	var servers []*clienttest.Server
	for _, h := range hs {
		s := start(t, h, clienttest.Config{})
		servers = append(servers, s)
		addrs = append(addrs, []string{s.Addr})
	}
	sh, err := client.DialSharded(context.Background(), addrs, client.Options{PoolSize: 1}, sopt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sh.Close() })
	return sh, servers
}

// answer returns a Handler that answers Recommend and Search with fixed
// messages and checks that N and K came through.
func answer(t *testing.T, rec *wire.RecommendResponse, search *wire.SearchResponse) clienttest.Handler {
	return func(_ context.Context, req *wire.Envelope) wire.Message {
		switch m := req.Body.(type) {
		case *wire.RecommendRequest:
			if m.N != 4 {
				t.Errorf("shard asked for %d items, want 4", m.N)
			}
			return rec
		case *wire.SearchRequest:
			if m.K != 3 {
				t.Errorf("shard asked for %d ids, want 3", m.K)
			}
			return search
		}
		return &wire.Error{Code: wire.BadRequest}
	}
}

func TestShardedMerge(t *testing.T) {
	ms := time.Millisecond
	sh, _ := shards(t, client.ShardedOptions{},
		answer(t, &wire.RecommendResponse{Heads: []string{"like", "share"}, ModelVersion: "m1", Arm: "a",
			Items: []wire.Item{
				{Reel: 10, Score: 0.9, Probs: []float32{0.9, 0.1}, Propensity: 1},
				{Reel: 11, Score: 0.5, Probs: []float32{0.5, 0.1}, Propensity: 1},
				{Reel: 12, Score: 0.1, Probs: []float32{0.1, 0.1}, Propensity: 1}},
			Timings: wire.Timings{ANN: 3 * ms, Rank: 1 * ms, Total: 5 * ms, ANNCandidates: 100, Ranked: 90}},
			&wire.SearchResponse{IDs: []int64{1, 2, 3}, Scores: []float32{0.9, 0.5, 0.4}}),
		answer(t, &wire.RecommendResponse{Heads: []string{"share", "like"}, ModelVersion: "m1", Arm: "a",
			Items: []wire.Item{
				{Reel: 20, Score: 0.95, Probs: []float32{0.2, 0.8}, Propensity: 0.5, Source: wire.SourceExplore},
				{Reel: 10, Score: 0.7, Probs: []float32{0.3, 0.7}, Propensity: 1},
				{Reel: 21, Score: 0.3, Probs: []float32{0.3, 0.3}, Propensity: 1}},
			Timings: wire.Timings{ANN: 2 * ms, Rank: 4 * ms, Total: 7 * ms, ANNCandidates: 200, Ranked: 80}},
			&wire.SearchResponse{IDs: []int64{4, 2}, Scores: []float32{0.8, 0.7}}),
		answer(t, &wire.RecommendResponse{Heads: []string{"like", "share"}, ModelVersion: "m2", Arm: "a",
			Items: []wire.Item{
				{Reel: 30, Score: 0.8, Probs: []float32{0.8, 0.0}, Propensity: 1},
				{Reel: 31, Score: 0.6, Probs: []float32{0.6, 0.0}, Propensity: 1}},
			Timings: wire.Timings{ANN: 1 * ms, Rank: 2 * ms, Total: 3 * ms, ANNCandidates: 50, Ranked: 40}},
			&wire.SearchResponse{}),
	)
	r, err := sh.Recommend(context.Background(), &wire.RecommendRequest{User: 1, N: 4})
	if err != nil {
		t.Fatal(err)
	}
	var reels []int64
	for _, it := range r.Items {
		reels = append(reels, it.Reel)
	}
	if want := []int64{20, 10, 30, 31}; !slices.Equal(reels, want) {
		t.Fatalf("merged reels %v, want %v", reels, want)
	}
	if r.Items[1].Score != 0.9 {
		t.Errorf("reel 10 kept score %v, want its best, 0.9", r.Items[1].Score)
	}
	if !slices.Equal(r.Heads, []string{"like", "share"}) || !slices.Equal(r.Items[0].Probs, []float32{0.8, 0.2}) {
		t.Errorf("heads %v, reel 20's probs %v; want [like share] and [0.8 0.2]", r.Heads, r.Items[0].Probs)
	}
	if r.Items[0].Propensity != 0.5 || r.Items[0].Source != wire.SourceExplore {
		t.Errorf("reel 20 lost its propensity or source: %+v", r.Items[0])
	}
	want := wire.Timings{ANN: 3 * ms, Rank: 4 * ms, Total: 7 * ms, ANNCandidates: 350, Ranked: 210}
	if r.Timings != want {
		t.Errorf("timings %+v, want %+v", r.Timings, want)
	}
	if r.ModelVersion != "m1,m2" || r.Arm != "a" {
		t.Errorf("model version %q, arm %q", r.ModelVersion, r.Arm)
	}

	s, err := sh.Search(context.Background(), &wire.SearchRequest{Vector: []float32{1}, K: 3})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(s.IDs, []int64{1, 4, 2}) || !slices.Equal(s.Scores, []float32{0.9, 0.8, 0.7}) {
		t.Errorf("merged search %v %v, want [1 4 2] [0.9 0.8 0.7]", s.IDs, s.Scores)
	}
}

func TestMergeRecommendRefusesOtherHeads(t *testing.T) {
	_, err := client.MergeRecommend([]*wire.RecommendResponse{
		{Heads: []string{"like"}}, {Heads: []string{"share"}}}, 10)
	if !errors.Is(err, client.ErrBadResponse) {
		t.Fatalf("err = %v, want ErrBadResponse", err)
	}
}

// recorder is a fake server that remembers the ids of the writes it got.
type recorder struct {
	mu     sync.Mutex
	ids    []int64
	events []wire.Event
	keys   []string // of the event requests
}

func (r *recorder) handle(_ context.Context, req *wire.Envelope) wire.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch m := req.Body.(type) {
	case *wire.UpsertRequest:
		r.ids = append(r.ids, m.Reel.ID)
	case *wire.DeleteRequest:
		r.ids = append(r.ids, m.ID)
	case *wire.EventRequest:
		r.events = append(r.events, m.Events...)
		r.keys = append(r.keys, m.Key)
		return &wire.EventResponse{Accepted: uint32(len(m.Events)) - 1, Rejected: 1, Reason: "one refused"}
	case *wire.ScoreRequest:
		// The score of reel r is r/1000; heads in a per-server order.
		heads := []string{"like", "share"}
		if len(r.ids) == 1 && r.ids[0] == -1 {
			heads = []string{"share", "like"}
		}
		resp := &wire.ScoreResponse{Heads: heads, ModelVersion: "m"}
		for _, reel := range m.Reels {
			s := float32(reel) / 1000
			resp.Scores = append(resp.Scores, s)
			if heads[0] == "like" {
				resp.Probs = append(resp.Probs, s, s/2)
			} else {
				resp.Probs = append(resp.Probs, s/2, s)
			}
		}
		return resp
	}
	return clienttest.StaticAnswer("v", req.Body)
}

func TestShardedRouting(t *testing.T) {
	recs := []*recorder{{}, {}, {ids: []int64{-1}}} // shard 2 lists its heads the other way round
	sh, _ := shards(t, client.ShardedOptions{}, recs[0].handle, recs[1].handle, recs[2].handle)
	ctx := context.Background()
	for id := range int64(30) {
		if _, err := sh.Upsert(ctx, &wire.UpsertRequest{Reel: wire.Reel{ID: id, Category: -1}}); err != nil {
			t.Fatal(err)
		}
	}
	recs[2].ids = recs[2].ids[1:]
	for i, r := range recs {
		for _, id := range r.ids {
			if client.ShardOf(id, 3) != i {
				t.Errorf("reel %d upserted to shard %d, owned by %d", id, i, client.ShardOf(id, 3))
			}
		}
	}
	if n := len(recs[0].ids) + len(recs[1].ids) + len(recs[2].ids); n != 30 {
		t.Errorf("%d upserts arrived, want 30", n)
	}

	// Events that name a user go to every shard (user features are
	// replicated); an upload (no user) to its reel's shard alone, under a
	// key of its own.
	inSession := uint16(eventlog.Required(eventlog.Watch))
	var evs []wire.Event
	for u := range int64(12) {
		evs = append(evs, wire.Event{Type: wire.EventWatch, Has: inSession, Time: 1, User: u, Reel: 100 + u})
	}
	evs = append(evs, wire.Event{Type: wire.EventUpload, Has: uint16(eventlog.Required(eventlog.Upload)), Time: 1, Reel: 7})
	resp, err := sh.Event(ctx, &wire.EventRequest{Events: evs, Key: "batch-1"})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range recs {
		var users []int64
		uploads := 0
		for _, e := range r.events {
			if e.Type == wire.EventUpload {
				uploads++
				if owner := client.ShardOf(e.Reel, 3); owner != i {
					t.Errorf("upload of reel %d went to shard %d, owned by %d", e.Reel, i, owner)
				}
				continue
			}
			users = append(users, e.User)
		}
		if want := []int64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}; !slices.Equal(users, want) {
			t.Errorf("shard %d got the events of users %v, want every user's once: %v", i, users, want)
		}
		wantKeys := []string{"batch-1"}
		if client.ShardOf(7, 3) == i {
			wantKeys = append(wantKeys, "batch-1/uploads")
		}
		slices.Sort(r.keys)
		if !slices.Equal(r.keys, wantKeys) || uploads != len(wantKeys)-1 {
			t.Errorf("shard %d: keys %q and %d uploads, want %q", i, r.keys, uploads, wantKeys)
		}
	}
	// Each shard refuses one event of each part it gets: one of the
	// users' events (counted once) and the upload.
	if resp.Accepted != 11 || resp.Rejected != 2 || !strings.HasPrefix(resp.Reason, "shard 0: ") {
		t.Errorf("event answer %+v for 12 replicated events and an upload, want 11 accepted, 2 refused", resp)
	}
	if r, every := client.EventRoute(&evs[0], 3); !every {
		t.Errorf("EventRoute of a user's event: shard %d, not every shard", r)
	}
	if r, every := client.EventRoute(&evs[12], 3); every || r != client.ShardOf(7, 3) {
		t.Errorf("EventRoute of an upload: %d, %v", r, every)
	}

	// Score: each shard scores its reels; the answer is in request order.
	reels := []int64{5, 900, 17, 42, 3, 250}
	sc, err := sh.Score(ctx, &wire.ScoreRequest{User: 1, Reels: reels})
	if err != nil {
		t.Fatal(err)
	}
	for j, reel := range reels {
		s := float32(reel) / 1000
		if sc.Scores[j] != s || sc.Probs[2*j] != s || sc.Probs[2*j+1] != s/2 {
			t.Errorf("reel %d: score %v probs %v, want %v [%v %v]", reel, sc.Scores[j], sc.Probs[2*j:2*j+2], s, s, s/2)
		}
	}
}

func TestShardedPartial(t *testing.T) {
	down := func(context.Context, *wire.Envelope) wire.Message {
		return &wire.Error{Code: wire.Unavailable, Message: "loading"}
	}
	strict, _ := shards(t, client.ShardedOptions{}, clienttest.Static("a"), down, clienttest.Static("c"))
	_, err := strict.Recommend(context.Background(), recommend(1))
	var we *wire.Error
	if !errors.As(err, &we) || we.Code != wire.Unavailable {
		t.Fatalf("strict: err = %v, want Unavailable", err)
	}

	lax, _ := shards(t, client.ShardedOptions{AllowPartial: true}, clienttest.Static("a"), down, clienttest.Static("c"))
	r, err := lax.Recommend(context.Background(), recommend(1))
	var pe *client.PartialError
	if r == nil || !errors.As(err, &pe) || len(pe.Failed) != 1 || pe.Failed[1] == nil || !errors.As(err, &we) {
		t.Fatalf("partial: %+v, %v; want an answer and a PartialError for shard 1", r, err)
	}
	if r.ModelVersion != "a,c" || len(r.Items) != 3 {
		t.Errorf("partial answer from %q with %d items", r.ModelVersion, len(r.Items))
	}
	h, err := lax.Health(context.Background())
	if h == nil || !h.OK || !errors.As(err, &pe) {
		t.Errorf("partial health: %+v, %v", h, err)
	}
}

func TestShardedStats(t *testing.T) {
	stats := func(n uint64) clienttest.Handler {
		return func(context.Context, *wire.Envelope) wire.Message {
			return &wire.StatsResponse{Requests: n, Errors: make([]uint64, n), Uptime: time.Duration(n) * time.Second,
				IndexSize: 10 * n, ModelVersion: "m"}
		}
	}
	sh, _ := shards(t, client.ShardedOptions{}, stats(1), stats(2), stats(3))
	s, err := sh.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if s.Requests != 6 || s.IndexSize != 60 || s.Uptime != time.Second || len(s.Errors) != 3 || s.ModelVersion != "m" {
		t.Errorf("summed stats %+v", s)
	}
	m, err := sh.Do(context.Background(), &wire.StatsRequest{})
	if err != nil || m.(*wire.StatsResponse).Requests != 6 {
		t.Errorf("Do(stats) = %+v, %v", m, err)
	}
}

// keyedEvents is a fake server that applies an event batch once per key,
// as a real one does, and answers a repeat from its record.
type keyedEvents struct {
	mu      sync.Mutex
	applied map[string]*wire.EventResponse
	keys    []string
}

func (k *keyedEvents) handle(_ context.Context, req *wire.Envelope) wire.Message {
	m, ok := req.Body.(*wire.EventRequest)
	if !ok {
		return clienttest.StaticAnswer("v", req.Body)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.keys = append(k.keys, m.Key)
	if first, ok := k.applied[m.Key]; ok {
		replay := *first
		replay.Replayed = true
		return &replay
	}
	resp := &wire.EventResponse{Accepted: uint32(len(m.Events))}
	k.applied[m.Key] = resp
	return resp
}

// A sharded batch with a key sends the key with every part; sent again,
// it is answered from the shards' records, Replayed.
func TestShardedEventKey(t *testing.T) {
	ks := []*keyedEvents{{applied: map[string]*wire.EventResponse{}}, {applied: map[string]*wire.EventResponse{}}}
	sh, _ := shards(t, client.ShardedOptions{}, ks[0].handle, ks[1].handle)
	inSession := uint16(eventlog.Required(eventlog.Watch))
	var evs []wire.Event
	for u := range int64(10) {
		evs = append(evs, wire.Event{Type: wire.EventWatch, Has: inSession, Time: 1, User: u, Reel: 100 + u})
	}
	req := &wire.EventRequest{Events: evs, Key: "batch-1"}
	for attempt, wantReplayed := range []bool{false, true} {
		resp, err := sh.Event(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Accepted != uint32(len(evs)) || resp.Replayed != wantReplayed {
			t.Errorf("attempt %d: %+v, want %d accepted, replayed %v", attempt, resp, len(evs), wantReplayed)
		}
	}
	for i, k := range ks {
		if len(k.keys) != 2 || k.keys[0] != "batch-1" || k.keys[1] != "batch-1" {
			t.Errorf("shard %d saw keys %q, want batch-1 twice", i, k.keys)
		}
	}
}

// A shard that does not answer is dropped at its budget: the merged
// answer of the others comes back before the caller's deadline, names
// the missing shard, and the observer sees the fan-out.
func TestShardedShardBudget(t *testing.T) {
	release := make(chan struct{})
	stuck := func(ctx context.Context, req *wire.Envelope) wire.Message {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return &wire.Error{Code: wire.Unavailable, Message: "stuck"}
	}
	var (
		mu  sync.Mutex
		obs []client.Observation
	)
	observe := func(o client.Observation) {
		mu.Lock()
		obs = append(obs, o)
		mu.Unlock()
	}
	for _, c := range []struct {
		name string
		opt  client.ShardedOptions
	}{
		{"ShardTimeout", client.ShardedOptions{AllowPartial: true, ShardTimeout: 50 * time.Millisecond, MergeShare: -1, Observe: observe}},
		{"MergeShare", client.ShardedOptions{AllowPartial: true, MergeShare: 0.5, Observe: observe}},
	} {
		t.Run(c.name, func(t *testing.T) {
			sh, _ := shards(t, c.opt, clienttest.Static("a"), stuck, clienttest.Static("c"))
			// A deadline far off: the answer must not wait for it.
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			r, err := sh.Recommend(ctx, recommend(1))
			if ctx.Err() != nil {
				t.Fatalf("the answer came after the caller's deadline: %v", err)
			}
			var pe *client.PartialError
			if r == nil || !errors.As(err, &pe) || !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("%+v, %v; want the others' answer and shard 1 past its budget", r, err)
			}
			if !slices.Equal(r.MissingShards, []int{1}) || r.ModelVersion != "a,c" {
				t.Errorf("missing %v, from %q; want [1] from a,c", r.MissingShards, r.ModelVersion)
			}
			s, err := sh.Search(ctx, &wire.SearchRequest{Vector: []float32{1}, K: 3})
			if s == nil || !slices.Equal(s.MissingShards, []int{1}) || !errors.As(err, &pe) {
				t.Errorf("search: %+v, %v", s, err)
			}
		})
	}
	close(release)
	mu.Lock()
	defer mu.Unlock()
	if len(obs) != 4 {
		t.Fatalf("%d observations, want 4", len(obs))
	}
	for _, o := range obs {
		if o.Shards != 3 || o.Missing != 1 || o.Slowest <= 0 || o.Total < o.Slowest || o.Overhead() != o.Total-o.Slowest {
			t.Errorf("observation %+v", o)
		}
	}
	if o := obs[0]; o.Kind != wire.KindRecommendRequest || obs[1].Kind != wire.KindSearchRequest {
		t.Errorf("observed kinds %v, %v", o.Kind, obs[1].Kind)
	}
	if _, err := client.NewSharded([]*client.Client{nil}, client.ShardedOptions{}); err == nil {
		t.Error("NewSharded took a nil shard")
	}
}
