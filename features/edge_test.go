package features

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reelrank/reelrank/eventlog"
)

func TestIDIndexDenseAfterSparse(t *testing.T) {
	s := newTestStore(t, Config{EmbedDim: 2, Categories: 2})
	put := func(id int64) {
		if err := s.PutReel(Reel{ID: id, Author: 1, Upload: t0, Duration: 10, Category: -1}); err != nil {
			t.Fatal(err)
		}
	}
	put(100000) // beyond the dense slice: into the map
	for id := int64(1); id <= 20000; id++ {
		put(id) // the dense slice grows over 100000
	}
	put(100000)
	put(100001)
	if n := s.Stats().Reels; n != 20002 {
		t.Fatalf("%d reels, want 20002: an id moved from the map to the slice was lost", n)
	}
	var x idIndex
	for _, id := range []int64{math.MaxInt64, 5, 1 << 40, 0} {
		x.put(id, int32(x.n))
	}
	for want, id := range []int64{math.MaxInt64, 5, 1 << 40, 0} {
		if i, ok := x.get(id); !ok || int(i) != want {
			t.Fatalf("id %d: index %d %v, want %d", id, i, ok, want)
		}
	}
	if _, ok := x.get(-1); ok {
		t.Fatal("a negative id found")
	}
}

func TestOldHistoryStaysFinite(t *testing.T) {
	s := newTestStore(t, Config{EmbedDim: 4, Categories: 2})
	if err := s.PutReel(Reel{ID: 1, Author: 9, Upload: t0, Duration: 10, Embedding: []float32{1, 2, 3, 4}, Category: 0}); err != nil {
		t.Fatal(err)
	}
	day := int64(86400e3)
	if err := s.Apply([]eventlog.Event{impression(t0, 1, 1, 9, 1, 0), watch(t0+1000, 1, 1, 9, 1, 0, 1)}); err != nil {
		t.Fatal(err)
	}
	for d := int64(10); d <= 400; d += 10 { // landmark moves, the history decays away
		if err := s.Apply([]eventlog.Event{simple(eventlog.Like, t0+d*day, 2, 1, 9, 2, 0)}); err != nil {
			t.Fatal(err)
		}
		r := &Request{User: 1, Reels: []int64{1}, Context: Context{Time: t0 + d*day}}
		if err := s.Features(r); err != nil {
			t.Fatal(err)
		}
		for _, v := range append(append(r.UserVec, r.ReelVec...), r.CrossVec...) {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				t.Fatalf("day %d: a feature is %v", d, v)
			}
		}
	}
}

func TestFitCategoriesKeepsGiven(t *testing.T) {
	s := newTestStore(t, Config{EmbedDim: 2, Categories: 4})
	for i := range int64(50) {
		cat := -1
		if i == 1 {
			cat = 3
		}
		if err := s.PutReel(Reel{ID: i, Author: 1, Embedding: []float32{float32(i % 7), float32(i % 3)}, Category: cat}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.FitCategories(1); err != nil {
		t.Fatal(err)
	}
	if i, _ := s.reels.index.get(1); s.reels.recs[i].cat != 3 {
		t.Fatalf("given category 3 became %d", s.reels.recs[i].cat)
	}
	path := filepath.Join(t.TempDir(), "s")
	if err := s.SaveSnapshot(path); err != nil {
		t.Fatal(err)
	}
	l, err := LoadSnapshot(path)
	if err != nil {
		t.Fatal(err)
	}
	if i, _ := l.reels.index.get(1); !l.reels.recs[i].catGiven {
		t.Fatal("a snapshot forgot that the category was given")
	}
}

func TestConfigDurations(t *testing.T) {
	if _, err := NewStore(Config{Windows: []time.Duration{time.Minute}, Tolerance: 3 * time.Hour}); err == nil {
		t.Fatal("a tolerance of 180 windows accepted")
	}
	s := newTestStore(t, Config{Tolerance: 500 * time.Microsecond})
	path := filepath.Join(t.TempDir(), "s")
	if err := s.SaveSnapshot(path); err != nil {
		t.Fatal(err)
	}
	l, err := LoadSnapshot(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := l.Config().Tolerance; got != 500*time.Microsecond {
		t.Fatalf("tolerance %v after a snapshot", got)
	}
}

func TestReplayRefusesTimeTravel(t *testing.T) {
	evs := []eventlog.Event{
		impression(t0, 1, 1, 9, 1, 0),
		watch(t0+5000, 1, 1, 9, 1, 0, 1),
		impression(t0+1000, 2, 1, 9, 2, 0), // before the watch already applied
	}
	s := newTestStore(t, Config{})
	st, err := s.Replay(&sliceSource{evs: evs, batch: 10}, ReplayOptions{})
	var ae *ApplyError
	if !errors.As(err, &ae) || ae.Bad != 1 || st.Rows != 1 {
		t.Fatalf("err %v, stats %+v", err, st)
	}
}

func TestApplyLogGrowingAndConcurrent(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "events.jsonl")
	evs := testLog(31, 200, 20, 50)
	appendLog(t, path, evs[:len(evs)-1], "")
	// The last event half written.
	last := string(eventlog.AppendJSON(nil, &evs[len(evs)-1])) + "\n"
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(last[:10])
	s := newTestStore(t, Config{})
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.ApplyLog(path, eventlog.Options{}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if got := s.Stats().Applied; got != int64(len(evs)-1) {
		t.Fatalf("three concurrent reads applied %d events, want %d", got, len(evs)-1)
	}
	f.WriteString(last[10:])
	f.Close()
	st, err := s.ApplyLog(path, eventlog.Options{})
	if err != nil || st.Applied != 1 || st.Report.Bad != 0 {
		t.Fatalf("the completed line: %+v, %v", st, err)
	}
	if err := os.Truncate(path, 100); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ApplyLog(path, eventlog.Options{}); !errors.Is(err, ErrLogShrunk) {
		t.Fatalf("a truncated log: %v", err)
	}
}

func TestFollowerCountSaturates(t *testing.T) {
	s := newTestStore(t, Config{})
	if err := s.PutAuthor(9, math.MaxInt64); err != nil {
		t.Fatal(err)
	}
	if err := s.PutReel(Reel{ID: 1, Author: 9, Upload: t0, Duration: 10, Category: -1}); err != nil {
		t.Fatal(err)
	}
	f := simple(eventlog.Follow, t0, 1, 0, 9, 0, 0)
	if err := s.Apply([]eventlog.Event{f}); err != nil {
		t.Fatal(err)
	}
	r := &Request{User: 1, Reels: []int64{1}, Context: Context{Time: t0}}
	if err := s.Features(r); err != nil {
		t.Fatal(err)
	}
	if got := feature(t, s, r, 0, "author_log_followers"); math.Abs(float64(got)-math.Log1p(math.MaxInt64)) > 1e-3 {
		t.Fatalf("author_log_followers = %v, want %v", got, math.Log1p(math.MaxInt64))
	}
}

// TestAdmit checks the one rule of what the store takes: a valid event
// within the lead of the clock and within the horizon. Apply itself takes
// every valid event, so that a replayed log gives the same state whatever
// the clock says then.
func TestAdmit(t *testing.T) {
	s := newTestStore(t, Config{})
	now := t0 + 3600e3
	lead := time.Hour
	far := impression(t0+10*365*86400e3, 1, 2, 3, 4, 0) // ten years ahead
	if err := s.Admit(&far, now, lead); err == nil || !strings.Contains(err.Error(), "after the clock") {
		t.Fatalf("an event ten years ahead: %v", err)
	}
	at := impression(now+lead.Milliseconds(), 1, 2, 3, 4, 0)
	if err := s.Admit(&at, now, lead); err != nil {
		t.Fatalf("an event at the lead: %v", err)
	}
	if err := s.Admit(&far, now, 0); err != nil {
		t.Fatalf("no lead: %v", err)
	}
	bad := simple(eventlog.Like, 0, 1, 2, 3, 4, 0)
	if err := s.Admit(&bad, now, lead); err == nil {
		t.Fatal("an invalid event admitted")
	}
	if s.Horizon() != 0 {
		t.Fatal("a horizon before any event")
	}
	if err := s.Apply([]eventlog.Event{impression(t0, 1, 2, 3, 4, 0)}); err != nil {
		t.Fatal(err)
	}
	h := s.Horizon()
	if want := t0 - int64(horizonTaus*(7*24*time.Hour).Milliseconds()); h != want {
		t.Fatalf("horizon %d, want %d", h, want)
	}
	old, edge := impression(h-1, 1, 2, 3, 4, 0), impression(h, 1, 2, 3, 4, 0)
	if err := s.Admit(&old, now, lead); err == nil || !strings.Contains(err.Error(), "older than the store can apply") {
		t.Fatalf("an event past the horizon: %v", err)
	}
	if err := s.Admit(&edge, now, lead); err != nil {
		t.Fatalf("an event at the horizon: %v", err)
	}
	// Apply takes what it is given, whatever its time.
	if err := s.Apply([]eventlog.Event{far}); err != nil {
		t.Fatal(err)
	}
}

// TestSnapshotKeepsReadTo: a store restored from a snapshot still applies
// lines appended after it whose times fall before the last one applied
// (within the tolerance): the checkpoint says which lines it had read.
func TestSnapshotKeepsReadTo(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "events.jsonl")
	like := func(ts int64) eventlog.Event { return simple(eventlog.Like, ts, 1, 2, 3, 4, 0) }
	appendLog(t, path, []eventlog.Event{like(t0 + 10000), like(t0 + 20000)}, "")
	s := newTestStore(t, Config{})
	if _, err := s.ApplyLog(path, eventlog.Options{}); err != nil {
		t.Fatal(err)
	}
	snap := filepath.Join(dir, "s")
	if err := s.SaveSnapshot(snap); err != nil {
		t.Fatal(err)
	}
	appendLog(t, path, []eventlog.Event{like(t0 + 15000)}, "")
	l, err := LoadSnapshot(snap)
	if err != nil {
		t.Fatal(err)
	}
	st, err := l.ApplyLog(path, eventlog.Options{})
	if err != nil || st.Applied != 1 {
		t.Fatalf("after the snapshot: applied %d (%v), want the appended line", st.Applied, err)
	}
}
