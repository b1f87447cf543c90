package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reelrank/reelrank/client"
	"github.com/reelrank/reelrank/engine"
	"github.com/reelrank/reelrank/eventlog"
)

// TestServeKeepsEvents trains a small world, serves it, sends events, and
// checks that a restarted server has them applied again from the served
// log, and that a recommendation comes back both times.
func TestServeKeepsEvents(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a model")
	}
	ctx := context.Background()
	mdir, w := trainSmall(t, t.TempDir())
	logf := func(string, ...any) {}
	e, _, err := openServing(ctx, mdir, engine.Config{}, "auto", logf)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Recommend(ctx, engine.RecommendRequest{User: 1, N: 5}); err != nil {
		t.Fatal(err)
	}
	imp := eventlog.Event{Type: eventlog.Impression, Has: eventlog.Required(eventlog.Impression), User: 1, Reel: 2, Author: w.Reels()[1].Author,
		Session: 77, Propensity: 0.5, Arm: "a"}
	watch := eventlog.Event{Type: eventlog.Watch, Has: eventlog.Required(eventlog.Watch), User: 1, Reel: 2, Author: w.Reels()[1].Author,
		Session: 77, Seconds: 5, Fraction: 0.9}
	r, err := e.Event([]eventlog.Event{imp, watch})
	if err != nil || r.Accepted != 2 {
		t.Fatalf("event: %+v, %v", r, err)
	}
	if _, err := e.Upsert(engine.Reel{ID: 99_999, Author: 3, Category: -1, Duration: 20}); err != nil {
		t.Fatal(err)
	}
	applied := e.Store().Stats().Applied
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(mdir, trainIndex)); err != nil {
		t.Errorf("the index was not saved: %v", err)
	}

	// A second server over the same folder applies the two events again.
	e2, _, err := openServing(ctx, mdir, engine.Config{}, "auto", logf)
	if err != nil {
		t.Fatal(err)
	}
	defer e2.Close()
	if got := e2.Store().Stats().Applied; got != applied {
		t.Fatalf("the restarted server applied %d events, the first %d", got, applied)
	}
	if _, err := e2.Recommend(ctx, engine.RecommendRequest{User: 1, N: 5}); err != nil {
		t.Fatal(err)
	}
	if !e2.Model().Index().Contains(99_999) {
		t.Error("the restarted server lost the upserted reel")
	}
}

// TestServeShard serves a trained folder as shard 1 of 2: the index holds
// that shard's reels alone; the folder then refuses to serve as shard 0
// unless told to reshard.
func TestServeShard(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a model")
	}
	ctx := context.Background()
	mdir, _ := trainSmall(t, t.TempDir())
	logf := func(string, ...any) {}
	sh := engine.Shard{Index: 1, Count: 2}
	e, _, err := openServing(ctx, mdir, engine.Config{Shard: sh}, "auto", logf)
	if err != nil {
		t.Fatal(err)
	}
	ids := e.Model().Index().IDs(nil)
	if len(ids) == 0 {
		t.Fatal("the shard's index is empty")
	}
	for _, id := range ids {
		if client.ShardOf(id, 2) != 1 {
			t.Fatalf("shard 1/2 indexes reel %d of shard %d", id, client.ShardOf(id, 2))
		}
	}
	resp, err := e.Recommend(ctx, engine.RecommendRequest{User: 1, N: 20})
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range resp.Items {
		if client.ShardOf(it.Reel, 2) != 1 {
			t.Fatalf("shard 1/2 recommends reel %d of shard %d", it.Reel, client.ShardOf(it.Reel, 2))
		}
	}
	e.Close()
	if _, _, err := openServing(ctx, mdir, engine.Config{Shard: engine.Shard{Index: 0, Count: 2}}, "auto", logf); err == nil ||
		!strings.Contains(err.Error(), "served as shard 1/2") {
		t.Fatalf("served as shard 0/2 after 1/2: %v, want a refusal", err)
	}
	e, _, err = openServing(ctx, mdir, engine.Config{Shard: engine.Shard{Index: 0, Count: 2}, Reshard: true}, "auto", logf)
	if err != nil {
		t.Fatalf("--reshard: %v", err)
	}
	e.Close()
}

func TestParseShards(t *testing.T) {
	got, err := parseShards("a1, a2;b1;c1")
	if err != nil || len(got) != 3 || len(got[0]) != 2 || got[0][1] != "a2" || got[2][0] != "c1" {
		t.Fatalf("parseShards: %q, %v", got, err)
	}
	if got, err := parseShards(""); got != nil || err != nil {
		t.Errorf("empty: %q, %v", got, err)
	}
	if _, err := parseShards("a;;b"); err == nil {
		t.Error("an empty shard was taken")
	}
}
