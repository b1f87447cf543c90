package train

import (
	"bytes"
	"math"
	"strings"
	"testing"
)

func TestSourceEval(t *testing.T) {
	cfg := SourceConfig{TowerK: 3, Region: 2, Language: 2, Followed: 2, Popular: -1}.withDefaults()
	if d := (SourceConfig{}).withDefaults(); d != (SourceConfig{TowerK: 600, Region: 150, Language: 100, Followed: 100, Popular: 50}) {
		t.Fatalf("defaults: %+v", d)
	}
	if cfg.Popular != 0 || cfg.depth(sourceLanguage) != 3+2+2 {
		t.Fatalf("a negative quota is none: %+v, depth %d", cfg, cfg.depth(sourceLanguage))
	}
	best := []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	towers := []int64{1, 2, 3, 100, 8}
	pop := []int64{10, 9, 8, 300, 301, 302, 303, 304, 305, 6}
	lists := &sourceLists{
		sourceRegion:   {4, 1, 5, 200}, // own at 2: {4 1}; adds 4, 5 (1 is the towers')
		sourceLanguage: {5, 6, 201, 9}, // own: {5 6}; adds 6, 201 (5 is region's)
		sourceFollowed: {7, 202, 9},    // own: {7 202}; adds 7, 202
		sourcePopular:  {10},           // quota 0
	}
	e := newSourceEval(cfg)
	e.add(towers, pop, lists, best)
	e.add(towers, pop, lists, nil) // no oracle top: not counted
	all := newSourceEval(cfg)
	all.merge(e)
	all.merge(newSourceEval(cfg))
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
	// union {1 2 3 | 4 5 | 6 201 | 7 202}: 9 reels, 7 of the top 10
	near("union size", r.UnionSize, 9)
	near("union", r.UnionRecall, 0.7)
	near("popularity@9", r.PopularityRecallAtUnion, 0.3)
	want := []SourceRecall{
		{Source: "region", Quota: 2, Size: 2, Recall: 0.2, Only: 0.1, Added: 2, AddedRecall: 0.2},
		{Source: "language", Quota: 2, Size: 2, Recall: 0.2, Only: 0.2, Added: 2, AddedRecall: 0.1},
		{Source: "followed", Quota: 2, Size: 2, Recall: 0.1, Only: 0.1, Added: 2, AddedRecall: 0.1},
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
		near(w.Source+" added", g.Added, w.Added)
		near(w.Source+" added recall", g.AddedRecall, w.AddedRecall)
	}
	var b bytes.Buffer
	r.render(&b)
	for _, s := range []string{"| **union** | | 9.0 | **0.7000** |", "| region | 2 | 2.0 | 0.2000 | 0.1000 | 2.0 | 0.2000 |", "1.75x"} {
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
	src := func(user, at int64, c SourceConfig) (*sourceLists, error) {
		calls++
		if at != 42 || c.Followed != 7 {
			t.Errorf("called at %d with %+v", at, c)
		}
		return &sourceLists{sourceFollowed: {user * 10}}, nil
	}
	order := make([]int64, 20)
	for i := range order {
		order[i] = int64(20 - i)
	}
	if err := rs.takeSources(src, order, 42, SourceConfig{Followed: 7}, 2); err != nil {
		t.Fatal(err)
	}
	if calls != sourceUsers(2) || len(rs.sources) != calls || rs.sources[20][sourceFollowed][0] != 200 || rs.sources[12] != nil {
		t.Fatalf("%d calls, lists %v", calls, rs.sources)
	}
}
