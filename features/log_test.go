package features

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/reelrank/reelrank/eventlog"
)

func appendLog(t testing.TB, path string, evs []eventlog.Event, extra string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	w := eventlog.NewWriter(f)
	for i := range evs {
		if err := w.Write(&evs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(extra); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestSnapshotThenLogTail: a store restarted from a snapshot reads only
// the log written after it and ends where a store that read the whole log
// ends; bad lines are counted, not applied, and lose nothing else.
func TestSnapshotThenLogTail(t *testing.T) {
	evs := testLog(21, 300, 40, 300)
	half := len(evs) / 2
	dir := t.TempDir()
	logPath := filepath.Join(dir, "events.jsonl")
	appendLog(t, logPath, evs[:half], "not json at all\n")

	first := newTestStore(t, Config{})
	testCatalogue(t, first, 40, 300)
	st, err := first.ApplyLog(logPath, eventlog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if st.Applied != int64(half) || st.Report.Bad != 1 || st.MBPerSec() <= 0 {
		t.Fatalf("first read: %+v", st)
	}
	snap := filepath.Join(dir, "store.snap")
	if err := first.SaveSnapshot(snap); err != nil {
		t.Fatal(err)
	}

	// The log grows; the restarted store reads the tail only.
	appendLog(t, logPath, evs[half:], "{\"type\":\"like\",\"ts\":1}\n")
	restarted, err := LoadSnapshot(snap)
	if err != nil {
		t.Fatal(err)
	}
	st, err = restarted.ApplyLog(logPath, eventlog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if st.Applied != int64(len(evs)-half) || st.Report.Bad != 1 {
		t.Fatalf("tail read: applied %d, want %d; bad %d", st.Applied, len(evs)-half, st.Report.Bad)
	}
	// Reading again applies nothing.
	if st, err = restarted.ApplyLog(logPath, eventlog.Options{}); err != nil || st.Applied != 0 {
		t.Fatalf("second tail read: %+v, %v", st, err)
	}

	whole := newTestStore(t, Config{})
	testCatalogue(t, whole, 40, 300)
	if _, err := whole.ApplyLog(logPath, eventlog.Options{}); err != nil {
		t.Fatal(err)
	}
	if restarted.Stats() != whole.Stats() {
		t.Fatalf("stats %+v, want %+v", restarted.Stats(), whole.Stats())
	}
	tm := evs[len(evs)-1].Time + 1000
	users := []int64{1, 5, 9, 33}
	a, b := requestAll(t, restarted, users, tm), requestAll(t, whole, users, tm)
	for i := range a {
		if !slices.Equal(a[i], b[i]) {
			t.Fatalf("user %d: features differ between the restarted store and one that read the whole log", users[i])
		}
	}
}

func TestApplyLogMissingFile(t *testing.T) {
	s := newTestStore(t, Config{})
	if _, err := s.ApplyLog(filepath.Join(t.TempDir(), "nope"), eventlog.Options{}); err == nil {
		t.Fatal("no error for a missing log")
	}
}
