package engine

import (
	"context"
	"slices"
	"testing"

	"github.com/reelrank/reelrank/features"
)

// sourcesWorld is a world whose reels have languages and whose user 3
// follows the authors of ten reels uploaded within the last week.
func sourcesWorld(t *testing.T, seed uint64) *world {
	t.Helper()
	w := newWorld(t, worldConfig{reels: 1200, users: 50, authors: 150, known: 600, fresh: 20, seed: seed})
	for _, id := range w.reels {
		ri, _ := w.store.ReelInfo(id)
		if err := w.store.PutReel(features.Reel{ID: id, Author: ri.Author, Upload: ri.Upload, Duration: 10, Category: -1,
			Language: 1 + int(id%3)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.store.PutUser(features.User{ID: 3, Country: 2, Language: 1}); err != nil {
		t.Fatal(err)
	}
	followed := 0
	for _, id := range w.reels {
		if ri, _ := w.store.ReelInfo(id); ri.Upload > w.now-6*24*3600_000 && followed < 10 {
			if err := w.store.PutFollow(3, ri.Author); err != nil {
				t.Fatal(err)
			}
			followed++
		}
	}
	return w
}

var testQuotas = features.SourceQuotas{Region: 40, Language: 40, Followed: 40, Popular: 40}

// sourceItems returns the items of the feature store's sources, by reel.
func sourceItems(resp *Response) map[int64]Source {
	out := map[int64]Source{}
	for _, it := range resp.Items {
		if it.Source >= SourceRegion {
			out[it.Reel] = it.Source
		}
	}
	return out
}

func TestRecommendSources(t *testing.T) {
	w := sourcesWorld(t, 5)
	e := w.engine(t, Config{K: 300, Sources: testQuotas, Epsilon: -1, DiversityWindow: 1}, w.model(t, "v1", "A", 1))
	req := w.request(3, MaxN)
	resp, err := e.Recommend(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	checkResponse(t, w, resp, nil, 1, nil)
	got := sourceItems(resp)
	// The sources' reels are those the store proposes beside the index's.
	ann := map[int64]bool{}
	for _, it := range resp.Items {
		if it.Source == SourceANN {
			ann[it.Reel] = true
		}
	}
	want, err := w.store.Sources(nil, 3, nil, w.now, testQuotas, func(id int64) bool { return ann[id] })
	if err != nil {
		t.Fatal(err)
	}
	per := map[Source]int{}
	for _, c := range want {
		if got[c.Reel] != sourceOf(c.Source) {
			t.Errorf("reel %d: source %v in the response, %v in the store", c.Reel, got[c.Reel], c.Source)
		}
		per[sourceOf(c.Source)]++
	}
	if len(got) != len(want) {
		t.Errorf("%d items from the sources, the store proposes %d", len(got), len(want))
	}
	for _, src := range []Source{SourceRegion, SourceLanguage, SourceFollowed, SourcePopular} {
		if per[src] == 0 {
			t.Errorf("no %v candidates (%v)", src, per)
		}
	}
	tm := resp.Timings
	if int(tm.Ranked-tm.ANNCandidates-tm.FreshCandidates-tm.ExploreCandidates) != len(want) {
		t.Errorf("timings %+v: %d from the sources, want %d", tm, tm.Ranked-tm.ANNCandidates-tm.FreshCandidates-tm.ExploreCandidates, len(want))
	}

	// Exclusions, the session's recent reels and deleted reels never come
	// back; the sources fill their quotas with the next ones.
	forbidden := map[int64]bool{}
	var ex, recent []int64
	for i, c := range want {
		switch i % 3 {
		case 0:
			ex = append(ex, c.Reel)
		case 1:
			recent = append(recent, c.Reel)
		default:
			if err := e.Delete(c.Reel); err != nil {
				t.Fatal(err)
			}
		}
		forbidden[c.Reel] = true
	}
	req.Exclude, req.Context.Recent = ex, recent
	resp2, err := e.Recommend(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	checkResponse(t, w, resp2, forbidden, 1, nil)
	got2 := sourceItems(resp2)
	if len(got2) == 0 {
		t.Fatal("no source candidates after the exclusions")
	}
	for id := range got2 {
		if forbidden[id] {
			t.Fatalf("reel %d excluded, recent or deleted, yet proposed", id)
		}
	}
}

func TestRecommendSourcesDeterministic(t *testing.T) {
	var runs [2][]Item
	for i := range runs {
		w := sourcesWorld(t, 6)
		e := w.engine(t, Config{K: 300, Sources: testQuotas, Seed: 9}, w.model(t, "v1", "A", 1))
		resp, err := e.Recommend(context.Background(), w.request(3, 200))
		if err != nil {
			t.Fatal(err)
		}
		runs[i] = resp.Items
	}
	same := slices.EqualFunc(runs[0], runs[1], func(a, b Item) bool {
		return a.Reel == b.Reel && a.Source == b.Source && a.Score == b.Score && a.Propensity == b.Propensity
	})
	if !same || len(runs[0]) == 0 {
		t.Fatal("the same world, model and request give other answers")
	}
}

func TestRecommendSourcesOff(t *testing.T) {
	w := sourcesWorld(t, 7)
	off := features.SourceQuotas{Region: -1, Language: -1, Followed: -1, Popular: -1}
	e := w.engine(t, Config{Sources: off}, w.model(t, "v1", "A", 1))
	resp, err := e.Recommend(context.Background(), w.request(3, MaxN))
	if err != nil {
		t.Fatal(err)
	}
	if tm := resp.Timings; len(sourceItems(resp)) != 0 || tm.Ranked != tm.ANNCandidates+tm.FreshCandidates+tm.ExploreCandidates {
		t.Fatalf("sources off: %d source items, timings %+v", len(sourceItems(resp)), resp.Timings)
	}
	if _, err := New(Config{Sources: features.SourceQuotas{Popular: 5000}}, w.store, w.model(t, "v2", "A", 2)); err == nil {
		t.Fatal("a quota over 4096: no error")
	}
	for src, name := range map[Source]string{SourceRegion: "region", SourceLanguage: "language", SourceFollowed: "followed", SourcePopular: "popular"} {
		if src.String() != name {
			t.Errorf("%d: %q", src, src)
		}
	}
}
