package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reelrank/reelrank/eventlog"
	"github.com/reelrank/reelrank/features"
)

type eventlogEvent = eventlog.Event

func impressionEvent(tm, user, reel, author, session int64) eventlog.Event {
	return eventlog.Event{Type: eventlog.Impression, Has: eventlog.Required(eventlog.Impression), Time: tm, User: user,
		Reel: reel, Author: author, Session: session, Propensity: 0.25, Arm: "A"}
}

func TestEventLogAndApply(t *testing.T) {
	w := newWorld(t, worldConfig{reels: 300, users: 5, authors: 30, seed: 20})
	path := filepath.Join(t.TempDir(), "events.jsonl")
	e := w.engine(t, Config{EventLog: path}, w.model(t, "v1", "A", 20))
	before := w.store.Stats().Applied
	freshBefore := e.Stats().FreshPool
	good := impressionEvent(w.now-500, 1, 3, w.author[3], 9)
	noProp := good
	noProp.Has &^= eventlog.FProp
	badFrac := eventlog.Event{Type: eventlog.Watch, Has: eventlog.Required(eventlog.Watch), Time: w.now, User: 1, Reel: 3,
		Author: w.author[3], Session: 9, Seconds: 3, Fraction: -1}
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
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(data, []byte("\n")); n != 3 {
		t.Fatalf("log holds %d lines, want 3:\n%s", n, data)
	}
	// The uploaded reel is in the fresh and exploration pools.
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
	// A store rebuilt from the log has applied the same events.
	st2, err := features.NewStore(w.store.Config())
	if err != nil {
		t.Fatal(err)
	}
	ls, err := st2.ApplyLog(path, eventlog.Options{})
	if err != nil || ls.Applied != 3 {
		t.Fatalf("replay: %+v, %v", ls, err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}

	// A crash in the middle of a line: the next engine cuts it off and
	// appends on a line of its own.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"type":"impression","ts":17`)
	f.Close()
	e2 := w.engine(t, Config{EventLog: path}, e.Model())
	if res, err := e2.Event([]eventlog.Event{good}); err != nil || res.Accepted != 1 {
		t.Fatalf("%+v %v", res, err)
	}
	data, _ = os.ReadFile(path)
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) != 4 || strings.Contains(string(data), `"ts":17{`) {
		t.Fatalf("log after repair:\n%s", data)
	}
	st3, _ := features.NewStore(w.store.Config())
	if ls, err := st3.ApplyLog(path, eventlog.Options{}); err != nil || ls.Applied != 4 || ls.Report.Err() != nil {
		t.Fatalf("replay after repair: %+v, %v", ls, err)
	}
}

func TestEventLogUnwritable(t *testing.T) {
	w := newWorld(t, worldConfig{reels: 200, users: 5, authors: 20, seed: 21})
	dir := t.TempDir()
	if _, err := New(Config{EventLog: filepath.Join(dir, "missing", "log")}, w.store, nil); err == nil {
		t.Fatal("a log in a missing folder was accepted")
	}
	path := filepath.Join(dir, "log")
	e := w.engine(t, Config{EventLog: path}, nil)
	// Close the file under the engine: the next batch cannot be written,
	// is refused whole, and nothing of it is applied.
	e.log.f.Close()
	before := w.store.Stats().Applied
	res, err := e.Event([]eventlog.Event{impressionEvent(w.now, 1, 2, w.author[2], 3)})
	if !errors.Is(err, ErrUnavailable) || res.Accepted != 0 || res.Rejected != 1 {
		t.Fatalf("%+v, %v", res, err)
	}
	if w.store.Stats().Applied != before {
		t.Fatal("an event that was not logged was applied")
	}
}

// TestEventUnstamped checks that an event stamped 0 takes the engine's
// clock and is applied and logged with it.
func TestEventUnstamped(t *testing.T) {
	w := newWorld(t, worldConfig{reels: 100, users: 5, authors: 10, seed: 21})
	path := filepath.Join(t.TempDir(), "events.jsonl")
	e := w.engine(t, Config{EventLog: path, Clock: w.clock()}, w.model(t, "v1", "A", 21))
	ev := impressionEvent(0, 1, 3, w.author[3], 9)
	ev.Has &^= eventlog.FTime
	res, err := e.Event([]eventlog.Event{ev})
	if err != nil || res.Accepted != 1 {
		t.Fatalf("result %+v, %v", res, err)
	}
	if got := w.store.Stats().Newest; got != w.now {
		t.Errorf("the store's newest event is at %d, want the clock's %d", got, w.now)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf(`"ts":%d`, w.now); !bytes.Contains(data, []byte(want)) {
		t.Errorf("the log line %q lacks %s", data, want)
	}
}
