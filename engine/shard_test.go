package engine

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reelrank/reelrank/eventlog"
	"github.com/reelrank/reelrank/features"
	"github.com/reelrank/reelrank/internal/hashx"
)

func TestParseShard(t *testing.T) {
	for in, want := range map[string]Shard{"": {}, "all": {}, "0/1": {}, "2/4": {2, 4}, "0/3": {0, 3}} {
		got, err := ParseShard(in)
		if err != nil || got != want {
			t.Errorf("ParseShard(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"4/4", "-1/3", "1/0", "1/1", "a/b", "2", "2/4/1", "1/70000"} {
		if _, err := ParseShard(in); err == nil {
			t.Errorf("ParseShard(%q): no error", in)
		}
	}
	if s := (Shard{2, 4}).String(); s != "2/4" {
		t.Errorf("String: %q", s)
	}
	if (Shard{}).String() != "all" || !(Shard{}).Owns(12345) {
		t.Error("the zero Shard is not the whole catalogue")
	}
	if _, err := New(Config{Shard: Shard{3, 3}}, newWorld(t, worldConfig{reels: 10}).store, nil); err == nil {
		t.Error("New took shard 3/3")
	}
}

// TestShardServesOwnedOnly checks that a sharded engine's index, fresh
// and exploration pools and candidate sources hold its own reels alone,
// and that a swapped-in model's index is cut to them too.
func TestShardServesOwnedOnly(t *testing.T) {
	w := sourcesWorld(t, 9)
	sh := Shard{1, 3}
	m := w.model(t, "v1", "A", 1)
	e := w.engine(t, Config{K: 1000, Sources: testQuotas, Shard: sh, DiversityWindow: 1}, m)
	owned := 0
	for _, id := range w.reels {
		if hashx.Jump(id, 3) == 1 {
			owned++
		}
	}
	checkIndex := func(m *Model) {
		t.Helper()
		ids := m.Index().IDs(nil)
		if len(ids) != owned {
			t.Errorf("model %s: the index holds %d reels, the shard owns %d", m.Version(), len(ids), owned)
		}
		for _, id := range ids {
			if !sh.Owns(id) {
				t.Fatalf("model %s: the index holds reel %d of shard %d", m.Version(), id, hashx.Jump(id, 3))
			}
		}
	}
	checkIndex(m)
	for _, id := range e.explore.ids {
		if !sh.Owns(id) {
			t.Fatalf("the exploration pool holds reel %d of another shard", id)
		}
	}
	if fresh := e.fresh.newest(nil, 0, w.now, 1<<20); len(fresh) == 0 {
		t.Error("the fresh pool is empty")
	} else {
		for _, id := range fresh {
			if !sh.Owns(id) {
				t.Fatalf("the fresh pool holds reel %d of another shard", id)
			}
		}
	}
	bySource := map[Source]int{}
	for _, user := range []int64{3, 4, 5, 6} {
		resp, err := e.Recommend(context.Background(), w.request(user, MaxN))
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range resp.Items {
			if !sh.Owns(it.Reel) {
				t.Fatalf("user %d: reel %d (%v) of shard %d recommended", user, it.Reel, it.Source, hashx.Jump(it.Reel, 3))
			}
			bySource[it.Source]++
		}
	}
	for _, src := range []Source{SourceANN, SourceRegion, SourceLanguage, SourceFollowed, SourcePopular} {
		if bySource[src] == 0 {
			t.Errorf("no candidate from %v among %v", src, bySource)
		}
	}
	// A model swapped in, and a canary, serve the shard's reels alone.
	m2 := w.model(t, "v2", "A", 2)
	if _, err := e.Swap(m2); err != nil {
		t.Fatal(err)
	}
	checkIndex(m2)
	m3 := w.model(t, "v3", "A", 3)
	if err := e.LoadCanary(m3, LoadOptions{Share: 0.5, NoProbe: true}); err != nil {
		t.Fatal(err)
	}
	checkIndex(m3)
	if st := e.Stats(); st.Shard != sh || st.IndexSize != owned {
		t.Errorf("Stats: shard %v, index %d; want %v, %d", st.Shard, st.IndexSize, sh, owned)
	}
	if h := e.Health(); !strings.Contains(h.Status, "shard 1/3") {
		t.Errorf("Health %q does not name the shard", h.Status)
	}
}

// TestShardRefusesMisrouted checks that an Upsert, Delete or Score of
// another shard's reel is refused with ErrWrongShard and writes nothing,
// and that events about any reel are applied.
func TestShardRefusesMisrouted(t *testing.T) {
	w := newWorld(t, worldConfig{reels: 300, users: 20, known: 50, fresh: 10, seed: 4})
	sh := Shard{0, 2}
	dir := t.TempDir()
	m := w.model(t, "v1", "A", 1)
	e, err := Open(Config{Dir: dir, Shard: sh, Clock: w.clock(), CheckpointInterval: -1}, m,
		func() (*features.Store, error) { return w.store, nil })
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	var mine, theirs, newMine, newTheirs int64 = -1, -1, -1, -1
	for _, id := range w.reels {
		if sh.Owns(id) && mine < 0 {
			mine = id
		} else if !sh.Owns(id) && theirs < 0 {
			theirs = id
		}
	}
	for id := int64(10_000); newMine < 0 || newTheirs < 0; id++ {
		if sh.Owns(id) && newMine < 0 {
			newMine = id
		} else if !sh.Owns(id) && newTheirs < 0 {
			newTheirs = id
		}
	}
	emb := make([]float32, testEmbed)
	reel := func(id int64) Reel {
		return Reel{ID: id, Author: 7, Upload: w.now - 1000, Duration: 9, Category: -1, Embedding: emb}
	}
	_, err = e.UpsertKeyed("k1", reel(newTheirs))
	if !errors.Is(err, ErrWrongShard) || !strings.Contains(err.Error(), "shard 0/2") {
		t.Fatalf("upsert of another shard's reel: %v, want ErrWrongShard naming the shard", err)
	}
	if _, ok := w.store.ReelInfo(newTheirs); ok || hasLogs(dir) {
		t.Fatal("a refused upsert was written")
	}
	if err := e.Delete(theirs); !errors.Is(err, ErrWrongShard) {
		t.Fatalf("delete of another shard's reel: %v, want ErrWrongShard", err)
	}
	if hasLogs(dir) || e.isDeleted(theirs) {
		t.Fatal("a refused delete was written")
	}
	if _, err := e.Score(context.Background(), 1, Context{Time: w.now}, []int64{mine, theirs}); !errors.Is(err, ErrWrongShard) {
		t.Fatalf("score of another shard's reel: %v, want ErrWrongShard", err)
	}
	if _, err := e.Score(context.Background(), 1, Context{Time: w.now}, []int64{mine}); err != nil {
		t.Fatalf("score of the shard's reel: %v", err)
	}
	// The key of the refused upsert is not spent: an owned reel under it
	// is applied.
	if res, err := e.UpsertKeyed("k1", reel(newMine)); err != nil || res.Replayed {
		t.Fatalf("upsert of the shard's reel: %+v, %v", res, err)
	}
	if !m.Index().Contains(newMine) {
		t.Error("the shard's upserted reel is not in the index")
	}
	if err := e.Delete(mine); err != nil {
		t.Fatal(err)
	}
	// Events naming another shard's reel are applied (the user's
	// features move); its upload joins no pool.
	before := w.store.Stats().Applied
	res, err := e.Event([]eventlog.Event{
		{Type: eventlog.Impression, Has: eventlog.Required(eventlog.Impression), Time: w.now, User: 3, Reel: theirs,
			Author: w.author[theirs], Session: 9, Propensity: 1, Arm: "A"},
		{Type: eventlog.Watch, Has: eventlog.Required(eventlog.Watch), Time: w.now, User: 3, Reel: theirs,
			Author: w.author[theirs], Session: 9, Seconds: 5, Fraction: 1},
		{Type: eventlog.Upload, Has: eventlog.Required(eventlog.Upload), Time: w.now, Reel: newTheirs, Author: 8},
	})
	if err != nil || res.Accepted != 3 {
		t.Fatalf("events about another shard's reels: %+v, %v; want all 3 accepted", res, err)
	}
	if got := w.store.Stats().Applied - before; got != 3 {
		t.Errorf("%d events applied, want 3", got)
	}
	for _, id := range e.fresh.newest(nil, 0, w.now, 1<<20) {
		if !sh.Owns(id) {
			t.Fatalf("reel %d of another shard in the fresh pool", id)
		}
	}
}

// TestShardRecorded checks that a folder served as one shard is refused
// as another, or unsharded, unless Reshard says so.
func TestShardRecorded(t *testing.T) {
	w := newWorld(t, worldConfig{reels: 200, users: 10, seed: 5})
	dir := filepath.Join(t.TempDir(), "served")
	open := func(sh Shard, reshard bool) (*Engine, error) {
		return Open(Config{Dir: dir, Shard: sh, Reshard: reshard, Clock: w.clock(), CheckpointInterval: -1},
			w.model(t, "v1", "A", 1), func() (*features.Store, error) { return w.store, nil })
	}
	e, err := open(Shard{1, 4}, false)
	if err != nil {
		t.Fatal(err)
	}
	e.Close()
	if e, err = open(Shard{1, 4}, false); err != nil {
		t.Fatalf("the same shard again: %v", err)
	}
	e.Close()
	for _, sh := range []Shard{{2, 4}, {1, 3}, {}} {
		_, err := open(sh, false)
		if err == nil || !strings.Contains(err.Error(), "served as shard 1/4") || !strings.Contains(err.Error(), "Reshard") {
			t.Fatalf("opened as %v: %v, want a refusal naming shard 1/4", sh, err)
		}
	}
	if e, err = open(Shard{}, true); err != nil {
		t.Fatalf("Reshard: %v", err)
	}
	e.Close()
	if _, err := open(Shard{1, 4}, false); err == nil || !strings.Contains(err.Error(), "served as shard all") {
		t.Fatalf("after resharding to all: %v, want a refusal", err)
	}
}
