package train

import (
	"slices"
	"testing"
	"time"

	"github.com/reelrank/reelrank/eventlog"
	"github.com/reelrank/reelrank/features"
)

// TestStoreSources measures the sources of a small store whose lists are
// known (the features package's own case): user 2 of country 1 and
// language 1, who follows authors 100 and 101.
func TestStoreSources(t *testing.T) {
	s, err := features.NewStore(features.Config{EmbedDim: 4, Categories: 2, Countries: 4, Languages: 4})
	if err != nil {
		t.Fatal(err)
	}
	const t0 = int64(1767571200000) // 2026-01-05
	h := time.Hour.Milliseconds()
	for _, u := range []features.User{{ID: 1, Country: 0, Language: 0}, {ID: 2, Country: 1, Language: 1}, {ID: 3, Country: 0, Language: 1}} {
		if err := s.PutUser(u); err != nil {
			t.Fatal(err)
		}
	}
	author := map[int64]int64{10: 100, 11: 100, 12: 101, 13: 101, 14: 102, 15: 100}
	for _, r := range []features.Reel{
		{ID: 10, Upload: t0 - 48*h, Language: 1}, {ID: 11, Upload: t0 - 2*h, Language: 2},
		{ID: 12, Upload: t0 - 72*h, Language: 2}, {ID: 13, Upload: t0 - h, Language: 1},
		{ID: 14, Upload: t0 - 8*24*h, Language: 1}, {ID: 15, Upload: t0 - 30*h, Language: 1},
	} {
		r.Author = author[r.ID]
		if err := s.PutReel(r); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range [][2]int64{{1, 100}, {2, 100}, {2, 101}} {
		if err := s.PutFollow(f[0], f[1]); err != nil {
			t.Fatal(err)
		}
	}
	var evs []eventlog.Event
	for _, w := range []struct{ user, reel, n int64 }{{1, 10, 3}, {1, 11, 1}, {3, 15, 2}, {2, 12, 5}, {2, 11, 2}, {2, 14, 4}} {
		for range w.n {
			evs = append(evs, eventlog.Event{Type: eventlog.Watch, Has: eventlog.Required(eventlog.Watch), Time: t0 - 1000, User: w.user,
				Reel: w.reel, Author: author[w.reel], Session: 1, Seconds: 18, Fraction: 0.9})
		}
	}
	if err := s.Apply(evs); err != nil {
		t.Fatal(err)
	}

	cfg := SourceConfig{TowerK: 2, Region: 1, Language: 1, Followed: 2, Popular: 1}
	l, err := storeSources(s)(2, t0, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Each source alone, as deep as the union may need (2 + its quota and
	// those before it): country 1 by watch-throughs, language 1, the
	// followed authors' reels (the last day's newest first, then by
	// watch-throughs), and overall.
	want := sourceLists{{12, 14, 11}, {12, 11}, {13, 11, 12, 10, 15}, {12, 14, 10, 11, 15}}
	for k := range numSources {
		if !slices.Equal(l[k], want[k]) {
			t.Errorf("%s: %v, want %v", sourceNames[k], l[k], want[k])
		}
	}

	// The towers propose 12 and 13; the union adds 14 (region), 11
	// (language), 10 and 15 (followed) and nothing popular: 6 reels
	// holding the whole oracle top {11 14 15 10}, of which followed's own
	// list at its quota, {13 11}, holds one.
	e := newSourceEval(cfg)
	e.add([]int64{12, 13, 99}, []int64{12, 14, 10, 11, 15, 98}, l, []int64{11, 14, 15, 10})
	r := e.report()
	if r.UnionSize != 6 || r.UnionRecall != 1 || r.TowersRecallAtK != 0 || r.PopularityRecall != 1 || r.PopularityRecallAtUnion != 1 {
		t.Errorf("union %v (size %v), towers@2 %v, popularity %v / %v", r.UnionRecall, r.UnionSize, r.TowersRecallAtK, r.PopularityRecall, r.PopularityRecallAtUnion)
	}
	for k, w := range []struct{ recall, added, addedRecall float64 }{{0, 1, 0.25}, {0, 1, 0.25}, {0.25, 2, 0.5}, {0, 0, 0}} {
		g := r.Sources[k]
		if g.Recall != w.recall || g.Added != w.added || g.AddedRecall != w.addedRecall {
			t.Errorf("%s: recall %v, added %v, added recall %v; want %+v", g.Source, g.Recall, g.Added, g.AddedRecall, w)
		}
	}
}
