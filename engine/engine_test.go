package engine

import (
	"context"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reelrank/reelrank/ann"
	"github.com/reelrank/reelrank/kernels"
)

func TestRecommendSortedWithoutExplorationOrDiversity(t *testing.T) {
	w := newWorld(t, worldConfig{reels: 1200, users: 50, authors: 150, known: 600, fresh: 20, seed: 1})
	e := w.engine(t, Config{Epsilon: -1, DiversityWindow: 1}, w.model(t, "v1", "A", 1))
	resp, err := e.Recommend(context.Background(), w.request(3, 50))
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Items) != 50 {
		t.Fatalf("%d items, want 50", len(resp.Items))
	}
	checkResponse(t, w, resp, nil, 1, nil)
	for j, it := range resp.Items {
		if it.Propensity != 1 {
			t.Fatalf("item %d: propensity %v without exploration", j, it.Propensity)
		}
		if j > 0 && it.Score > resp.Items[j-1].Score {
			t.Fatalf("item %d: score %v above the previous %v", j, it.Score, resp.Items[j-1].Score)
		}
		if it.Source == SourceExplore && it.Propensity != 1 {
			t.Fatalf("item %d: explore source %v", j, it)
		}
	}
	if resp.ModelVersion != "v1" || resp.Arm != "A" || !slices.Equal(resp.Heads, []string{"watch", "like", "comment", "share", "follow"}) {
		t.Fatalf("version %q arm %q heads %v", resp.ModelVersion, resp.Arm, resp.Heads)
	}
	tm := resp.Timings
	if tm.ANNCandidates == 0 || tm.Ranked <= tm.ANNCandidates+tm.FreshCandidates+tm.ExploreCandidates || tm.Total <= 0 ||
		tm.Total < tm.Features+tm.Tower+tm.ANN+tm.Rank+tm.Postrank {
		t.Fatalf("timings %+v", tm)
	}
	// The score is the bundle's weighted sum of the probabilities.
	wts := e.Model().Bundle().Ranker.Weights
	for j, it := range resp.Items {
		var s float32
		for h, p := range it.Probs {
			s += wts[h] * p
		}
		if math.Abs(float64(s-it.Score)) > 1e-5 {
			t.Fatalf("item %d: score %v, weighted probabilities %v", j, it.Score, s)
		}
	}
}

func TestRecommendFiltersAndDiversity(t *testing.T) {
	w := newWorld(t, worldConfig{reels: 1200, users: 50, authors: 60, known: 500, fresh: 30, seed: 2})
	e := w.engine(t, Config{Epsilon: 0.2, K: 500}, w.model(t, "v1", "A", 2))
	// Find what the user would get, then forbid some of it.
	first, err := e.Recommend(context.Background(), w.request(5, 40))
	if err != nil {
		t.Fatal(err)
	}
	checkResponse(t, w, first, nil, 5, nil)
	forbidden := map[int64]bool{}
	req := w.request(5, 40)
	for j, it := range first.Items {
		forbidden[it.Reel] = true
		switch j % 3 {
		case 0:
			req.Exclude = append(req.Exclude, it.Reel)
		case 1:
			req.Context.Recent = append(req.Context.Recent, it.Reel)
		case 2:
			if err := e.Delete(it.Reel); err != nil {
				t.Fatal(err)
			}
		}
	}
	for range 5 {
		resp, err := e.Recommend(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Items) != 40 {
			t.Fatalf("%d items", len(resp.Items))
		}
		checkResponse(t, w, resp, forbidden, 5, req.Context.Recent)
		// Greedy slots are by score, except where the rule skips an author.
		var authors []int64
		for _, id := range req.Context.Recent {
			authors = append(authors, w.author[id])
		}
		for j, it := range resp.Items {
			blocked := authors[max(0, len(authors)-4):]
			if it.Source != SourceExplore {
				for _, later := range resp.Items[j+1:] {
					if later.Score > it.Score && !slices.Contains(blocked, w.author[later.Reel]) && later.Source != SourceExplore {
						t.Fatalf("slot %d holds score %v while reel %d of a free author scores %v", j, it.Score, later.Reel, later.Score)
					}
				}
			}
			authors = append(authors, w.author[it.Reel])
		}
	}
}

func TestEpsilonOnePropensities(t *testing.T) {
	// No evidence anywhere, every reel its own author, every slot
	// exploration: slot j picks uniformly among the m-j reels left of the
	// m in the exploration set.
	w := newWorld(t, worldConfig{reels: 600, users: 10, seed: 3})
	e := w.engine(t, Config{Epsilon: 1, ExploreMax: 80, K: 200}, w.model(t, "v1", "A", 3))
	resp, err := e.Recommend(context.Background(), w.request(1, 30))
	if err != nil {
		t.Fatal(err)
	}
	checkResponse(t, w, resp, nil, 5, nil)
	m := min(80, int(resp.Timings.Ranked))
	for j, it := range resp.Items {
		if it.Source != SourceExplore {
			t.Fatalf("item %d: source %v", j, it.Source)
		}
		if want := 1 / float64(m-j); math.Abs(it.Propensity-want) > 1e-12 {
			t.Fatalf("item %d: propensity %v, want 1/%d", j, it.Propensity, m-j)
		}
	}
}

func TestThompsonPropensities(t *testing.T) {
	w := newWorld(t, worldConfig{reels: 1000, users: 20, authors: 100, known: 400, fresh: 10, seed: 4})
	e := w.engine(t, Config{Epsilon: 0.3, Exploration: Thompson, ThompsonRounds: 32}, w.model(t, "v1", "T", 4))
	explored := 0
	for u := int64(1); u <= 20; u++ {
		resp, err := e.Recommend(context.Background(), w.request(u, 20))
		if err != nil {
			t.Fatal(err)
		}
		checkResponse(t, w, resp, nil, 5, nil)
		for _, it := range resp.Items {
			// ε·wins/R, plus 1-ε for the greedy choice: a multiple of
			// ε/R, or 1-ε plus one, or 1.
			k := it.Propensity / (0.3 / 32)
			k2 := (it.Propensity - 0.7) / (0.3 / 32)
			if math.Abs(k-math.Round(k)) > 1e-6 && math.Abs(k2-math.Round(k2)) > 1e-6 {
				t.Fatalf("propensity %v is not of the Thompson policy", it.Propensity)
			}
			if it.Source == SourceExplore && it.Propensity < 1 {
				explored++
			}
		}
	}
	if explored == 0 {
		t.Fatal("no exploration slot in 400 slots at ε = 0.3")
	}
}

func TestFreshUpsertAppears(t *testing.T) {
	w := newWorld(t, worldConfig{reels: 1000, users: 20, authors: 200, known: 1000, seed: 5})
	e := w.engine(t, Config{Epsilon: -1, DiversityWindow: 1, K: 1, ExploreMax: 1}, w.model(t, "v1", "A", 5))
	// Two reels uploaded a minute ago: the index recalls one reel (K = 1),
	// so at least one of them can only come from the fresh pool.
	emb := make([]float32, testEmbed)
	emb[0] = 1
	for _, id := range []int64{50_000, 50_001} {
		replaced, err := e.Upsert(Reel{ID: id, Author: 777, Upload: w.now - 60_000, Duration: 12, Category: -1, Embedding: emb})
		if err != nil || replaced {
			t.Fatalf("upsert: replaced %v, %v", replaced, err)
		}
		w.author[id] = 777
		if !e.Model().Index().Contains(id) {
			t.Fatal("the upserted reel is not in the index")
		}
	}
	id := int64(50_000)
	resp, err := e.Recommend(context.Background(), w.request(2, MaxN))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Timings.FreshCandidates == 0 || resp.Timings.ANNCandidates != 1 {
		t.Fatalf("timings %+v", resp.Timings)
	}
	sources := map[int64]Source{}
	for _, it := range resp.Items {
		sources[it.Reel] = it.Source
	}
	s0, ok0 := sources[50_000]
	s1, ok1 := sources[50_001]
	if !ok0 || !ok1 {
		t.Fatal("a reel uploaded a minute ago is not among the reels served")
	}
	if s0 != SourceFresh && s1 != SourceFresh {
		t.Fatalf("sources %v and %v: neither came from the fresh pool", s0, s1)
	}
	// Upserting again replaces it.
	if replaced, err := e.Upsert(Reel{ID: id, Author: 777, Upload: w.now - 30_000, Category: -1, Embedding: emb}); err != nil || !replaced {
		t.Fatalf("second upsert: replaced %v, %v", replaced, err)
	}
	if n := e.Model().Index().Len(); n != 1002 {
		t.Fatalf("index holds %d reels, want 1002", n)
	}
	// Bad reels.
	for _, r := range []Reel{{ID: -1}, {ID: 9, Author: 1, Category: -2}, {ID: 9, Author: 1, Embedding: []float32{1}},
		{ID: 9, Author: 1, Duration: float32(math.NaN())}} {
		if _, err := e.Upsert(r); !errors.Is(err, ErrBadRequest) {
			t.Fatalf("upsert %+v: %v", r, err)
		}
	}
}

func TestUpsertWithoutIndexIsServedFresh(t *testing.T) {
	w := newWorld(t, worldConfig{reels: 800, users: 10, authors: 80, known: 800, seed: 6})
	b := w.bundle(t, "empty", 6)
	ix, err := ann.New(ann.Options{Dim: testDim, Lists: 8})
	if err != nil {
		t.Fatal(err)
	}
	m0, err := NewModel(b, ix, "A")
	if err != nil {
		t.Fatal(err)
	}
	e := w.engine(t, Config{Epsilon: -1, DiversityWindow: 1}, m0)
	if _, err := e.Upsert(Reel{ID: 9000, Author: 5, Upload: w.now - 60_000, Category: -1}); err != nil {
		t.Fatal(err)
	}
	if st := e.Stats(); st.Pinned != 1 || st.IndexSize != 0 {
		t.Fatalf("stats %+v", st)
	}
	resp, err := e.Recommend(context.Background(), w.request(1, 10))
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Items) == 0 || !slices.ContainsFunc(resp.Items, func(it Item) bool { return it.Reel == 9000 && it.Source == SourceFresh }) {
		t.Fatalf("items %+v", resp.Items)
	}
	// A model with a trained index takes it in at Swap.
	old, err := e.Swap(w.model(t, "v2", "A", 6))
	if err != nil || old != m0 {
		t.Fatalf("swap: %v, %v", old, err)
	}
	if !e.Model().Index().Contains(9000) || e.Stats().Pinned != 0 {
		t.Fatalf("after swap: contains %v, stats %+v", e.Model().Index().Contains(9000), e.Stats())
	}
}

func TestUnknownUserAnswered(t *testing.T) {
	w := newWorld(t, worldConfig{reels: 1000, users: 10, authors: 100, known: 500, fresh: 10, seed: 7})
	e := w.engine(t, Config{}, w.model(t, "v1", "A", 7))
	for _, c := range []Context{{}, {Country: 3, Language: 2, AgeBucket: 4, Device: 1}, {Country: 999, Device: 200}} {
		req := RecommendRequest{User: 123456789, N: 10, Context: c}
		resp, err := e.Recommend(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Items) != 10 {
			t.Fatalf("%d items for an unknown user", len(resp.Items))
		}
		checkResponse(t, w, resp, nil, 5, nil)
	}
}

func TestDeadlineAndBadRequests(t *testing.T) {
	w := newWorld(t, worldConfig{reels: 500, users: 10, authors: 50, known: 20, seed: 8})
	e := w.engine(t, Config{}, w.model(t, "v1", "A", 8))
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	var out Response
	req := w.request(1, 10)
	err := e.RecommendInto(ctx, &req, &out)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("past deadline: %v", err)
	}
	tm := out.Timings
	if tm.Features != 0 || tm.Tower != 0 || tm.ANN != 0 || tm.Ranked != 0 || len(out.Items) != 0 {
		t.Fatalf("work done after the deadline: %+v", tm)
	}
	cctx, ccancel := context.WithCancel(context.Background())
	ccancel()
	if _, err := e.Recommend(cctx, req); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
	if _, err := e.Score(ctx, 1, Context{}, []int64{1}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("score past deadline: %v", err)
	}
	if _, err := e.Search(ctx, make([]float32, testDim), 5, 0, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("search past deadline: %v", err)
	}
	st := e.Stats().Recommend
	if st.Requests != 2 || st.Errors != 2 || st.Deadline != 2 {
		t.Fatalf("stats %+v", st)
	}
	bad := []RecommendRequest{
		{User: -1, N: 5}, {User: 1, N: 0}, {User: 1, N: MaxN + 1}, {User: 1, N: 5, Exclude: []int64{-3}},
		{User: 1, N: 5, Context: Context{Recent: []int64{-1}}}, {User: 1, N: 5, Context: Context{Session: -1}},
		{User: 1, N: 5, Context: Context{Time: w.now - 3600_000*24}}, // before the newest event
	}
	for _, r := range bad {
		if _, err := e.Recommend(context.Background(), r); !errors.Is(err, ErrBadRequest) {
			t.Fatalf("%+v: %v", r, err)
		}
	}
}

func TestScore(t *testing.T) {
	w := newWorld(t, worldConfig{reels: 500, users: 10, authors: 50, known: 100, seed: 9})
	e := w.engine(t, Config{Weights: map[string]float32{"like": 10}}, w.model(t, "v1", "A", 9))
	reels := []int64{5, 1, 300, 5}
	resp, err := e.Score(context.Background(), 2, Context{Time: w.now}, reels)
	if err != nil {
		t.Fatal(err)
	}
	T := len(resp.Heads)
	if len(resp.Scores) != 4 || len(resp.Probs) != 4*T || resp.ModelVersion != "v1" {
		t.Fatalf("response %+v", resp)
	}
	like := slices.Index(resp.Heads, "like")
	for i := range reels {
		var s float32
		for h, p := range resp.Probs[i*T : (i+1)*T] {
			wt := float32(1)
			if h == like {
				wt = 10
			}
			s += wt * p
		}
		if math.Abs(float64(s-resp.Scores[i])) > 1e-5 {
			t.Fatalf("reel %d: score %v, want %v", reels[i], resp.Scores[i], s)
		}
	}
	if resp.Scores[0] != resp.Scores[3] {
		t.Fatal("the same reel scored twice differs")
	}
	_, err = e.Score(context.Background(), 2, Context{}, []int64{1, 424242})
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "424242") {
		t.Fatalf("unknown reel: %v", err)
	}
	if err := e.Delete(300); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Score(context.Background(), 2, Context{}, []int64{300}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted reel: %v", err)
	}
	for _, f := range []func() error{
		func() error { _, err := e.Score(context.Background(), -2, Context{}, []int64{1}); return err },
		func() error { _, err := e.Score(context.Background(), 2, Context{}, []int64{-1}); return err },
		func() error {
			_, err := e.Score(context.Background(), 2, Context{Position: -1}, []int64{1})
			return err
		},
	} {
		if err := f(); !errors.Is(err, ErrBadRequest) {
			t.Fatalf("bad score: %v", err)
		}
	}
	// A model without the overridden head is refused.
	if _, err := New(Config{Weights: map[string]float32{"dance": 1}}, w.store, e.Model()); err == nil {
		t.Fatal("an override of a head the model lacks was accepted")
	}
}

func TestSearch(t *testing.T) {
	w := newWorld(t, worldConfig{reels: 1000, users: 5, authors: 100, seed: 10})
	m := w.model(t, "v1", "A", 10)
	e := w.engine(t, Config{}, m)
	vecs, err := EmbedReels(w.store, m.Bundle().ReelTower, []int64{42}, w.now)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := e.Search(context.Background(), vecs, 10, 1000, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.IDs) != 10 || resp.IDs[0] != 42 || !slices.IsSortedFunc(resp.Scores, func(a, b float32) int { return -cmpF(a, b) }) {
		t.Fatalf("search: %+v", resp)
	}
	if math.Abs(float64(resp.Scores[0]-kernels.Dot(vecs, vecs))) > 1e-4 {
		t.Fatalf("score %v, want %v", resp.Scores[0], kernels.Dot(vecs, vecs))
	}
	ex, err := e.Search(context.Background(), vecs, 10, 0, []int64{42})
	if err != nil || slices.Contains(ex.IDs, 42) {
		t.Fatalf("excluded: %+v, %v", ex, err)
	}
	if err := e.Delete(42); err != nil {
		t.Fatal(err)
	}
	if r, _ := e.Search(context.Background(), vecs, 10, 0, nil); slices.Contains(r.IDs, 42) {
		t.Fatal("deleted reel found")
	}
	nan := slices.Clone(vecs)
	nan[3] = float32(math.NaN())
	inf := slices.Clone(vecs)
	inf[0] = float32(math.Inf(1))
	for _, c := range []struct {
		v         []float32
		k, nprobe int
	}{{vecs[:5], 10, 0}, {nan, 10, 0}, {inf, 10, 0}, {vecs, 0, 0}, {vecs, 5000, 0}, {vecs, 10, -1}, {nil, 10, 0}} {
		if _, err := e.Search(context.Background(), c.v, c.k, c.nprobe, nil); !errors.Is(err, ErrBadRequest) {
			t.Fatalf("search dim %d k %d nprobe %d: %v", len(c.v), c.k, c.nprobe, err)
		}
	}
}

func cmpF(a, b float32) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func TestNoModelAndDelete(t *testing.T) {
	w := newWorld(t, worldConfig{reels: 400, users: 5, authors: 40, seed: 11})
	e := w.engine(t, Config{}, nil)
	if h := e.Health(); h.OK {
		t.Fatalf("health without a model: %+v", h)
	}
	if _, err := e.Recommend(context.Background(), w.request(1, 5)); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("recommend without a model: %v", err)
	}
	if _, err := e.Score(context.Background(), 1, Context{}, []int64{1}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("score without a model: %v", err)
	}
	if _, err := e.Search(context.Background(), make([]float32, testDim), 5, 0, nil); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("search without a model: %v", err)
	}
	if old, err := e.Swap(w.model(t, "v1", "B", 11)); err != nil || old != nil {
		t.Fatalf("swap: %v %v", old, err)
	}
	if h := e.Health(); !h.OK || !strings.Contains(h.Status, "v1") {
		t.Fatalf("health: %+v", h)
	}
	if err := e.Delete(7); err != nil {
		t.Fatal(err)
	}
	for _, id := range []int64{7, 999999} {
		if err := e.Delete(id); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "reel") {
			t.Fatalf("delete %d: %v", id, err)
		}
	}
	if err := e.Delete(-7); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("delete -7: %v", err)
	}
	// A model swapped in later loses the deleted reel too.
	e.Swap(w.model(t, "v2", "B", 12))
	if e.Model().Index().Contains(7) {
		t.Fatal("deleted reel in the new index")
	}
	st := e.Stats()
	if st.Deleted != 1 || st.ModelVersion != "v2" || st.Arm != "B" || st.IndexSize != 399 || st.Reels != 400 {
		t.Fatalf("stats %+v", st)
	}
	// Upserting it brings it back.
	if _, err := e.Upsert(Reel{ID: 7, Author: 100007, Category: -1}); err != nil {
		t.Fatal(err)
	}
	if !e.Model().Index().Contains(7) || e.Stats().Deleted != 0 {
		t.Fatal("upsert did not bring the reel back")
	}
}

func TestExplorePoolGraduates(t *testing.T) {
	w := newWorld(t, worldConfig{reels: 300, users: 5, authors: 30, seed: 12})
	e := w.engine(t, Config{ExploreMax: 1000}, w.model(t, "v1", "A", 12))
	if n := e.Stats().ExplorePool; n != 300 {
		t.Fatalf("exploration pool of %d, want every reel", n)
	}
	// Reel 10 gathers evidence; the next request that samples it drops it.
	var evs []eventlogEvent
	for k := range 80 {
		evs = append(evs, impressionEvent(w.now-1000+int64(k), 1, 10, w.author[10], 5))
	}
	if res, err := e.Event(evs); err != nil || res.Accepted != 80 {
		t.Fatalf("events: %+v %v", res, err)
	}
	if _, err := e.Recommend(context.Background(), w.request(1, 5)); err != nil {
		t.Fatal(err)
	}
	if n := e.Stats().ExplorePool; n != 299 {
		t.Fatalf("exploration pool of %d after reel 10 gathered evidence", n)
	}
}

func TestRecommendAllocations(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("allocation counts are measured without -short and -race")
	}
	w := newWorld(t, worldConfig{reels: 3000, users: 20, authors: 200, known: 1500, fresh: 20, seed: 13})
	e := w.engine(t, Config{Exploration: Thompson, Epsilon: 0.1}, w.model(t, "v1", "A", 13))
	req := w.request(4, 20)
	req.Context.Recent = []int64{1, 2, 3}
	req.Exclude = []int64{4, 5}
	var out Response
	allocs := testing.AllocsPerRun(50, func() {
		if err := e.RecommendInto(context.Background(), &req, &out); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("%.1f allocations a request", allocs)
	if allocs > 4 {
		t.Fatalf("%.1f allocations a request", allocs)
	}
}
