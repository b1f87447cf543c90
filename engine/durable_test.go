package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reelrank/reelrank/eventlog"
	"github.com/reelrank/reelrank/features"
	"github.com/reelrank/reelrank/internal/wal"
)

func impressionEvent(tm, user, reel, author, session int64) eventlog.Event {
	return eventlog.Event{Type: eventlog.Impression, Has: eventlog.Required(eventlog.Impression), Time: tm, User: user,
		Reel: reel, Author: author, Session: session, Propensity: 0.25, Arm: "A"}
}

func watchEvent(tm, user, reel, author, session int64, frac float32) eventlog.Event {
	return eventlog.Event{Type: eventlog.Watch, Has: eventlog.Required(eventlog.Watch), Time: tm, User: user,
		Reel: reel, Author: author, Session: session, Seconds: 3 * frac, Fraction: frac}
}

// readLog returns the lines of an engine folder's event log.
func readLog(t *testing.T, dir string) []string {
	t.Helper()
	var lines []string
	ents, _ := os.ReadDir(dir)
	for _, ent := range ents {
		if strings.HasPrefix(ent.Name(), eventsName+"-") {
			data, err := os.ReadFile(filepath.Join(dir, ent.Name()))
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
				if l != "" {
					lines = append(lines, l)
				}
			}
		}
	}
	return lines
}

func TestEventLogAndApply(t *testing.T) {
	w := newWorld(t, worldConfig{reels: 300, users: 5, authors: 30, seed: 20})
	dir := t.TempDir()
	e := w.engine(t, Config{Dir: dir}, w.model(t, "v1", "A", 20))
	before := w.store.Stats().Applied
	freshBefore := e.Stats().FreshPool
	good := impressionEvent(w.now-500, 1, 3, w.author[3], 9)
	noProp := good
	noProp.Has &^= eventlog.FProp
	badFrac := watchEvent(w.now, 1, 3, w.author[3], 9, -1)
	upload := eventlog.Event{Type: eventlog.Upload, Has: eventlog.Required(eventlog.Upload), Time: w.now - 1000, Reel: 7777, Author: 55}
	res, err := e.Event([]eventlog.Event{good, noProp, good, badFrac, upload})
	if err != nil {
		t.Fatal(err)
	}
	if res.Accepted != 3 || res.Rejected != 2 || !strings.HasPrefix(res.Reason, "event 1: impression: missing prop") {
		t.Fatalf("result %+v", res)
	}
	if got := w.store.Stats().Applied - before; got != 3 {
		t.Fatalf("store applied %d events, want 3", got)
	}
	if n := len(readLog(t, dir)); n != 3 {
		t.Fatalf("log holds %d lines, want 3", n)
	}
	if st := e.Stats(); st.FreshPool != freshBefore+1 || st.EventsAccepted != 3 || st.EventsRejected != 2 {
		t.Fatalf("stats %+v", st)
	}
	resp, err := e.Recommend(context.Background(), RecommendRequest{User: 2, N: 400, Context: Context{Time: w.now}})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, it := range resp.Items {
		found = found || it.Reel == 7777
	}
	if !found {
		t.Fatal("the uploaded reel is not served")
	}
	// The log is an event log any reader takes.
	var all bytes.Buffer
	for _, l := range readLog(t, dir) {
		all.WriteString(l + "\n")
	}
	evs, err := parseEvents(all.Bytes())
	if err != nil || len(evs) != 3 {
		t.Fatalf("the log reads back as %d events, %v", len(evs), err)
	}
	// Files are private.
	ents, _ := os.ReadDir(dir)
	for _, ent := range ents {
		if fi, err := ent.Info(); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s has mode %v", ent.Name(), fi.Mode().Perm())
		}
	}
}

// TestOneRuleLiveAndReplay is the two reports behind the rule: an event
// stamped in 2100 is refused and breaks nothing, and events accepted out
// of order are all applied again after a restart.
func TestOneRuleLiveAndReplay(t *testing.T) {
	cfg := worldConfig{reels: 200, users: 5, authors: 20, seed: 22}
	w := newWorld(t, cfg)
	dir := t.TempDir()
	m := w.model(t, "v1", "A", 22)
	e := w.engine(t, Config{Dir: dir}, m)
	year2100 := time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	res, err := e.Event([]eventlog.Event{impressionEvent(year2100, 1, 3, w.author[3], 9)})
	if err != nil || res.Accepted != 0 || res.Rejected != 1 || !strings.Contains(res.Reason, "after the clock") {
		t.Fatalf("a year-2100 event: %+v, %v", res, err)
	}
	// Exactly at the lead is admitted; a millisecond past it is not.
	lead := (5 * time.Minute).Milliseconds()
	res, _ = e.Event([]eventlog.Event{impressionEvent(w.now+lead, 1, 4, w.author[4], 9), impressionEvent(w.now+lead+1, 1, 4, w.author[4], 9)})
	if res.Accepted != 1 || res.Rejected != 1 {
		t.Fatalf("events at the lead and past it: %+v", res)
	}
	// Requests without a time still work.
	if _, err := e.Recommend(context.Background(), RecommendRequest{User: 1, N: 5}); err != nil {
		t.Fatalf("recommend after a refused future event: %v", err)
	}
	if _, err := e.Score(context.Background(), 1, Context{}, []int64{3}); err != nil {
		t.Fatalf("score after a refused future event: %v", err)
	}
	// Out of order, one batch at a time: T, T-1h, T.
	for _, tm := range []int64{w.now, w.now - 3600_000, w.now} {
		if res, err := e.Event([]eventlog.Event{impressionEvent(tm, 2, 5, w.author[5], 10)}); err != nil || res.Accepted != 1 {
			t.Fatalf("event at %d: %+v, %v", tm, res, err)
		}
	}
	// Older than the store can apply.
	h := w.store.Horizon()
	if res, _ := e.Event([]eventlog.Event{impressionEvent(h-1, 2, 5, w.author[5], 10)}); res.Rejected != 1 {
		t.Fatalf("an event before the horizon: %+v", res)
	}
	applied := w.store.Stats().Applied
	want := snapshotBytes(t, w.store)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	w2 := newWorld(t, cfg)
	e2 := w2.engine(t, Config{Dir: dir}, w2.model(t, "v1", "A", 22))
	if got := e2.Store().Stats().Applied; got != applied {
		t.Fatalf("after a restart the store applied %d events, before %d", got, applied)
	}
	if !bytes.Equal(snapshotBytes(t, e2.Store()), want) {
		t.Fatal("the restarted store differs from the one that served")
	}
}

func snapshotBytes(t *testing.T, s *features.Store) []byte {
	t.Helper()
	p := filepath.Join(t.TempDir(), "s.snap")
	if err := s.SaveSnapshot(p); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestKeyedWrites sends each write twice with its key: it is applied once,
// the retry answers the first result with Replayed, and so it stays across
// a restart and a checkpoint.
func TestKeyedWrites(t *testing.T) {
	cfg := worldConfig{reels: 200, users: 5, authors: 20, seed: 23}
	w := newWorld(t, cfg)
	dir := t.TempDir()
	e := w.engine(t, Config{Dir: dir}, w.model(t, "v1", "A", 23))
	batch := []eventlog.Event{impressionEvent(w.now, 1, 3, w.author[3], 9), impressionEvent(0, 1, 4, w.author[4], 9), {Type: eventlog.Like}}
	check := func(e *Engine, store *features.Store, applied int64) {
		t.Helper()
		res, err := e.EventKeyed("batch-1", batch)
		if err != nil || !res.Replayed || res.Accepted != 2 || res.Rejected != 1 || !strings.HasPrefix(res.Reason, "event 2:") {
			t.Fatalf("retried batch: %+v, %v", res, err)
		}
		if got := store.Stats().Applied; got != applied {
			t.Fatalf("the retry applied events: %d, want %d", got, applied)
		}
		if r, err := e.UpsertKeyed("up-1", Reel{ID: 5000, Author: 9, Upload: w.now, Category: -1, Duration: 3}); err != nil || !r.Replayed || r.Replaced {
			t.Fatalf("retried upsert: %+v, %v", r, err)
		}
		if r, err := e.DeleteKeyed("del-1", 7); err != nil || !r.Replayed {
			t.Fatalf("retried delete: %+v, %v", r, err)
		}
		if _, err := e.EventKeyed("up-1", batch); !errors.Is(err, ErrBadRequest) {
			t.Fatalf("an upsert's key on an event batch: %v", err)
		}
	}
	res, err := e.EventKeyed("batch-1", batch)
	if err != nil || res.Replayed || res.Accepted != 2 {
		t.Fatalf("first batch: %+v, %v", res, err)
	}
	if r, err := e.UpsertKeyed("up-1", Reel{ID: 5000, Author: 9, Upload: w.now, Category: -1, Duration: 3}); err != nil || r.Replayed {
		t.Fatalf("first upsert: %+v, %v", r, err)
	}
	if r, err := e.DeleteKeyed("del-1", 7); err != nil || r.Replayed {
		t.Fatalf("first delete: %+v, %v", r, err)
	}
	applied := w.store.Stats().Applied
	check(e, w.store, applied)
	if _, err := e.EventKeyed(strings.Repeat("k", MaxKey+1), batch); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("an oversized key: %v", err)
	}
	e.Close()
	w2 := newWorld(t, cfg)
	e2 := w2.engine(t, Config{Dir: dir}, w2.model(t, "v1", "A", 23))
	check(e2, e2.Store(), applied)
	if err := e2.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	e2.Close()
	w3 := newWorld(t, cfg)
	e3 := w3.engine(t, Config{Dir: dir}, w3.model(t, "v1", "A", 23))
	check(e3, e3.Store(), applied)
	if !e3.Model().Index().Contains(5000) || e3.Model().Index().Contains(7) {
		t.Fatal("the catalogue after a checkpoint and a restart")
	}
}

// TestCatalogueJournal upserts and deletes reels, restarts over the same
// folder, and serves what was served before.
func TestCatalogueJournal(t *testing.T) {
	dir := t.TempDir()
	cfg := worldConfig{reels: 300, users: 5, authors: 30, known: 300, seed: 31}
	w := newWorld(t, cfg)
	e := w.engine(t, Config{Dir: dir, Epsilon: -1}, w.model(t, "v1", "A", 31))
	if _, err := e.Upsert(Reel{ID: 9001, Author: 4, Upload: w.now - 30_000, Category: -1, Duration: 12}); err != nil {
		t.Fatal(err)
	}
	if err := e.Delete(7); err != nil {
		t.Fatal(err)
	}
	if err := e.Delete(123456); !errors.Is(err, ErrNotFound) {
		t.Fatalf("delete of an unknown reel: %v", err)
	}
	// A refused upsert is refused before it is journaled.
	if _, err := e.Upsert(Reel{ID: 9002, Author: 4, Embedding: []float32{1}}); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("upsert of a bad embedding: %v", err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	// A crash in the middle of a line leaves a torn last line.
	segs, _ := filepath.Glob(filepath.Join(dir, catalogueName+"-*.jsonl"))
	if len(segs) != 1 {
		t.Fatalf("catalogue segments %q", segs)
	}
	f, err := os.OpenFile(segs[0], os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"op":"delete","i`)
	f.Close()

	w2 := newWorld(t, cfg)
	e2 := w2.engine(t, Config{Dir: dir, Epsilon: -1}, w2.model(t, "v1", "A", 31))
	if _, ok := e2.Store().ReelInfo(9001); !ok || !e2.Model().Index().Contains(9001) {
		t.Error("the upserted reel is not back")
	}
	if e2.Model().Index().Contains(7) || !e2.isDeleted(7) {
		t.Error("the deleted reel is back")
	}
	if _, ok := e2.Store().ReelInfo(9002); ok {
		t.Error("the refused upsert was applied")
	}
	if err := e2.Delete(7); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleting the deleted reel again: %v", err)
	}
	if _, err := e2.Upsert(Reel{ID: 9003, Author: 4, Upload: w.now, Category: -1}); err != nil {
		t.Fatal(err)
	}
	e2.Close()
	// A damaged line before the end is an error, not a silent skip.
	data, _ := os.ReadFile(segs[0])
	os.WriteFile(segs[0], append([]byte("not json\n"), data...), 0o600)
	w4 := newWorld(t, cfg)
	if _, err := New(Config{Dir: dir, Clock: w4.clock()}, w4.store, w4.model(t, "v1", "A", 31)); !errors.Is(err, wal.ErrCorrupt) {
		t.Errorf("a damaged journal: %v", err)
	}
}

// TestFolderLocked: one engine a folder.
func TestFolderLocked(t *testing.T) {
	w := newWorld(t, worldConfig{reels: 100, users: 2, authors: 10, seed: 24})
	dir := t.TempDir()
	w.engine(t, Config{Dir: dir}, nil)
	if _, err := New(Config{Dir: dir, Clock: w.clock()}, w.store, nil); !errors.Is(err, wal.ErrLocked) {
		t.Fatalf("a second engine on the folder: %v", err)
	}
}

// TestEventUnstamped checks that an event stamped 0 takes the engine's
// clock and is applied and logged with it.
func TestEventUnstamped(t *testing.T) {
	w := newWorld(t, worldConfig{reels: 100, users: 5, authors: 10, seed: 21})
	dir := t.TempDir()
	e := w.engine(t, Config{Dir: dir}, w.model(t, "v1", "A", 21))
	ev := impressionEvent(0, 1, 3, w.author[3], 9)
	ev.Has &^= eventlog.FTime
	res, err := e.Event([]eventlog.Event{ev})
	if err != nil || res.Accepted != 1 {
		t.Fatalf("result %+v, %v", res, err)
	}
	if got := w.store.Stats().Newest; got != w.now {
		t.Errorf("the store's newest event is at %d, want the clock's %d", got, w.now)
	}
	lines := readLog(t, dir)
	if want := fmt.Sprintf(`"ts":%d`, w.now); len(lines) != 1 || !strings.Contains(lines[0], want) {
		t.Errorf("the log %q lacks %s", lines, want)
	}
}

// TestRestartProperty runs random sequences of writes (events out of
// order, duplicates, at the edges of the rule, unstamped; keyed retries;
// upserts and deletes) against an engine that restarts and checkpoints at
// random points, and against one that never stops: after every step their
// stores' snapshots are the same bytes, and so are their answers.
func TestRestartProperty(t *testing.T) {
	seeds := 12
	if testing.Short() {
		seeds = 4
	}
	for seed := range uint64(seeds) {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) { restartProperty(t, seed) })
	}
}

func restartProperty(t *testing.T, seed uint64) {
	cfg := worldConfig{reels: 120, users: 6, authors: 12, known: 40, seed: 40 + seed}
	ref := newWorld(t, cfg)
	refE := ref.engine(t, Config{Epsilon: -1}, ref.model(t, "v1", "A", 40))
	dir := t.TempDir()
	var cur *Engine
	open := func() {
		w := newWorld(t, cfg)
		e, err := New(Config{Dir: dir, Epsilon: -1, Clock: ref.clock(), CheckpointInterval: -1, CheckpointBytes: -1}, w.store, w.model(t, "v1", "A", 40))
		if err != nil {
			t.Fatal(err)
		}
		cur = e
	}
	open()
	defer func() { cur.Close() }()
	r := rand.New(rand.NewPCG(seed, 99))
	lead := (5 * time.Minute).Milliseconds()
	var keys []string
	randTime := func() int64 {
		switch r.IntN(8) {
		case 0:
			return 0 // unstamped
		case 1:
			return ref.now + lead // at the lead
		case 2:
			return ref.now + lead + 1 + r.Int64N(1e12) // past it
		case 3:
			return ref.now - r.Int64N(30*24*3600_000) // a month late
		case 4:
			return 1 + r.Int64N(1e9) // 1970: before the horizon
		default:
			return ref.now - r.Int64N(3600_000)
		}
	}
	randEvent := func() eventlog.Event {
		u := int64(1 + r.IntN(8))
		reel := int64(1 + r.IntN(130))
		s := u*100 + int64(r.IntN(3))
		switch r.IntN(5) {
		case 0:
			return watchEvent(randTime(), u, reel, ref.author[reel], s, r.Float32())
		case 1:
			return eventlog.Event{Type: eventlog.Upload, Has: eventlog.Required(eventlog.Upload), Time: randTime(), Reel: 5000 + r.Int64N(20), Author: 77}
		case 2:
			return eventlog.Event{Type: eventlog.Like, Has: eventlog.Required(eventlog.Like), Time: randTime(), User: u, Reel: reel, Author: ref.author[reel]}
		default:
			return impressionEvent(randTime(), u, reel, ref.author[reel], s)
		}
	}
	steps := 60
	for step := range steps {
		key := ""
		if r.IntN(3) == 0 {
			if len(keys) > 0 && r.IntN(2) == 0 {
				key = keys[r.IntN(len(keys))] // a retry
			} else {
				key = fmt.Sprint("k", step)
				keys = append(keys, key)
			}
		}
		switch op := r.IntN(10); {
		case op < 6:
			batch := make([]eventlog.Event, 1+r.IntN(4))
			for i := range batch {
				batch[i] = randEvent()
			}
			if r.IntN(5) == 0 {
				batch = append(batch, batch[0]) // a duplicate
			}
			b2 := append([]eventlog.Event(nil), batch...)
			want, werr := refE.EventKeyed(key, batch)
			got, gerr := cur.EventKeyed(key, b2)
			if (werr == nil) != (gerr == nil) || want != got {
				t.Fatalf("step %d: events %+v, %v; the engine that never stopped: %+v, %v", step, got, gerr, want, werr)
			}
		case op < 8:
			rl := Reel{ID: 5000 + r.Int64N(20), Author: int64(1 + r.IntN(5)), Upload: ref.now - r.Int64N(3600_000), Category: -1,
				Duration: float32(r.IntN(30))}
			if r.IntN(3) == 0 {
				rl.Upload = 0
			}
			want, werr := refE.UpsertKeyed(key, rl)
			got, gerr := cur.UpsertKeyed(key, rl)
			if (werr == nil) != (gerr == nil) || want != got {
				t.Fatalf("step %d: upsert %+v, %v; the engine that never stopped: %+v, %v", step, got, gerr, want, werr)
			}
		default:
			id := 5000 + r.Int64N(20)
			if r.IntN(2) == 0 {
				id = int64(1 + r.IntN(120))
			}
			want, werr := refE.DeleteKeyed(key, id)
			got, gerr := cur.DeleteKeyed(key, id)
			if (werr == nil) != (gerr == nil) || want != got {
				t.Fatalf("step %d: delete %d %+v, %v; the engine that never stopped: %+v, %v", step, id, got, gerr, want, werr)
			}
		}
		switch r.IntN(8) {
		case 0:
			cur.Close()
			open()
		case 1:
			if err := cur.Checkpoint(); err != nil {
				t.Fatal(err)
			}
			if r.IntN(2) == 0 {
				cur.Close()
				open()
			}
		}
		if step%10 == 9 || step == steps-1 {
			if !bytes.Equal(snapshotBytes(t, cur.Store()), snapshotBytes(t, ref.store)) {
				t.Fatalf("step %d: the store that restarted differs from the one that never stopped", step)
			}
			reels := []int64{1, 2, 3, 40, 41}
			want, werr := refE.Score(context.Background(), 3, Context{Time: ref.now}, reels)
			got, gerr := cur.Score(context.Background(), 3, Context{Time: ref.now}, reels)
			if (werr == nil) != (gerr == nil) || (werr == nil && fmt.Sprint(want.Scores) != fmt.Sprint(got.Scores)) {
				t.Fatalf("step %d: scores %v, %v; the engine that never stopped: %v, %v", step, got, gerr, want, werr)
			}
		}
	}
}
