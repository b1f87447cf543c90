package train

import (
	"bytes"
	"math"
	"strings"
	"testing"
)

func TestSourceEval(t *testing.T) {
	cfg := SourceConfig{TowerK: 3}.withDefaults()
	if cfg.Region != 150 || cfg.Language != 100 || cfg.Followed != 150 || cfg.Popular != 0 {
		t.Fatalf("defaults: %+v", cfg)
	}
	if c := (SourceConfig{Region: -1, Popular: 5}).withDefaults(); c.Region != 0 || c.Popular != 5 || c.TowerK != 600 {
		t.Fatalf("a negative quota is none, a set one stays: %+v", c)
	}
	best := []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	towers := []int64{1, 2, 3, 100, 8}
	pop := []int64{10, 9, 8, 300, 301, 302, 303, 304, 305, 6}
	lists := []candidate{
		{4, sourceRegion}, {5, sourceRegion}, {1, sourceRegion},
		{6, sourceLanguage}, {200, sourceLanguage},
		{7, sourceFollowed}, {7, sourceFollowed},
	}
	e := newSourceEval(cfg)
	e.add(towers, pop, lists, best)
	e.add(towers, pop, nil, nil) // no oracle top: not counted
	o := newSourceEval(cfg)
	all := newSourceEval(cfg)
	all.merge(e)
	all.merge(o)
	r := all.report()
	near := func(what string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > 1e-12 {
			t.Errorf("%s: %v, want %v", what, got, want)
		}
	}
	if r.Users != 1 || r.TowerK != 3 {
		t.Fatalf("users %d, tower k %d", r.Users, r.TowerK)
	}
	near("towers@1000", r.TowersRecall, 0.4)
	near("towers@3", r.TowersRecallAtK, 0.3)
	near("popularity@1000", r.PopularityRecall, 0.4)
	// union {1 2 3 | 4 5 | 6 200 | 7}: 8 reels, 7 of the top 10
	near("union size", r.UnionSize, 8)
	near("union", r.UnionRecall, 0.7)
	near("popularity@8", r.PopularityRecallAtUnion, 0.3)
	want := []SourceRecall{
		{Source: "region", Quota: 150, Size: 3, Recall: 0.3, Only: 0.2},
		{Source: "language", Quota: 100, Size: 2, Recall: 0.1, Only: 0.1},
		{Source: "followed", Quota: 150, Size: 1, Recall: 0.1, Only: 0.1},
		{Source: "popular", Quota: 0},
	}
	for i, w := range want {
		g := r.Sources[i]
		if g.Source != w.Source || g.Quota != w.Quota {
			t.Errorf("source %d: %+v, want %+v", i, g, w)
		}
		near(w.Source+" size", g.Size, w.Size)
		near(w.Source+" recall", g.Recall, w.Recall)
		near(w.Source+" only", g.Only, w.Only)
	}
	var b bytes.Buffer
	r.render(&b)
	for _, s := range []string{"| **union** | | 8.0 | **0.7000** | |", "| region | 150 | 3.0 | 0.3000 | 0.2000 |", "1.75x"} {
		if !strings.Contains(b.String(), s) {
			t.Errorf("the table lacks %q:\n%s", s, b.String())
		}
	}
	if newSourceEval(cfg).report() != nil {
		t.Error("a report of no user")
	}
	var nilReport *SourcesReport
	nilReport.render(&b) // no table, no panic
}

func TestTakeSources(t *testing.T) {
	var rs retrievalSnap
	calls := 0
	src := func(dst []candidate, user, at int64, c SourceConfig) ([]candidate, error) {
		calls++
		if at != 42 || c.Followed != 7 {
			t.Errorf("called at %d with %+v", at, c)
		}
		return append(dst, candidate{reel: user * 10, src: sourceFollowed}), nil
	}
	order := make([]int64, 20)
	for i := range order {
		order[i] = int64(20 - i)
	}
	if err := rs.takeSources(src, order, 42, SourceConfig{Followed: 7}, 2); err != nil {
		t.Fatal(err)
	}
	if calls != sourceUsers(2) || len(rs.sources) != calls || rs.sources[20][0].reel != 200 || rs.sources[12] != nil {
		t.Fatalf("%d calls, lists %v", calls, rs.sources)
	}
}
