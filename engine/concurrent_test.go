package engine

import (
	"context"
	"sync"
	"testing"

	"github.com/reelrank/reelrank/eventlog"
)

// TestConcurrentRecommendEventSwap runs requests beside event batches,
// model swaps, upserts and deletes; with -race it checks the engine's
// sharing.
func TestConcurrentRecommendEventSwap(t *testing.T) {
	w := newWorld(t, worldConfig{reels: 600, users: 20, authors: 60, known: 300, fresh: 10, seed: 30})
	m1, m2 := w.model(t, "v1", "A", 30), w.model(t, "v2", "B", 31)
	e := w.engine(t, Config{Dir: t.TempDir(), Exploration: Thompson, Epsilon: 0.2}, m1)
	rounds := 40
	if testing.Short() {
		rounds = 12
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	fail := func(err error) {
		select {
		case errs <- err:
		default:
		}
	}
	for g := range 3 {
		wg.Go(func() {
			var out Response
			for i := range rounds {
				req := w.request(int64(1+(g*rounds+i)%25), 20) // users 21..25 are unknown
				req.Context.Recent = []int64{int64(1 + i)}
				if err := e.RecommendInto(context.Background(), &req, &out); err != nil {
					fail(err)
					return
				}
				if v := out.ModelVersion; (v != "v1" || out.Arm != "A") && (v != "v2" || out.Arm != "B") {
					t.Errorf("version %q arm %q", v, out.Arm)
				}
				if len(out.Items) != 20 {
					t.Errorf("%d items", len(out.Items))
				}
				if _, err := e.Score(context.Background(), int64(g+1), Context{Time: w.now}, []int64{1, 2, 3}); err != nil {
					fail(err)
					return
				}
			}
		})
	}
	wg.Go(func() {
		for i := range rounds {
			var evs []eventlog.Event
			for k := range 20 {
				r := int64(1 + (i*20+k)%600)
				evs = append(evs, impressionEvent(w.now-100+int64(k), int64(1+k%20), r, w.author[r], int64(i)))
			}
			if res, err := e.Event(evs); err != nil || res.Accepted != 20 {
				fail(err)
				return
			}
		}
	})
	wg.Go(func() {
		for i := range rounds / 4 {
			m := m1
			if i%2 == 0 {
				m = m2
			}
			if _, err := e.Swap(m); err != nil {
				fail(err)
				return
			}
		}
	})
	wg.Go(func() {
		for i := range rounds / 2 {
			id := int64(10_000 + i)
			if _, err := e.Upsert(Reel{ID: id, Author: 5, Upload: w.now - 1000, Category: -1}); err != nil {
				fail(err)
				return
			}
			if i%2 == 0 {
				if err := e.Delete(id); err != nil {
					fail(err)
					return
				}
			}
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	st := e.Stats()
	if st.Recommend.Requests != uint64(3*rounds) || st.Recommend.Errors != 0 || st.EventsAccepted != uint64(20*rounds) {
		t.Fatalf("stats %+v", st)
	}
	// Whichever model is served holds the surviving upserts and none of
	// the deleted ones.
	ix := e.Model().Index()
	for i := range rounds / 2 {
		if got, want := ix.Contains(int64(10_000+i)), i%2 == 1; got != want {
			t.Fatalf("reel %d in the index: %v, want %v", 10_000+i, got, want)
		}
	}
}
