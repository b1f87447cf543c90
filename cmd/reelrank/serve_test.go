package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"

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
