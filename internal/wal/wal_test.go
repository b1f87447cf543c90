package wal

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// record is one record as Replay gave it.
type record struct {
	seq  uint64
	line string
}

func mustOpen(t *testing.T, opt Options) *Log {
	t.Helper()
	l, err := Open(opt)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// batch joins records into lines for Append.
func batch(recs ...string) []byte {
	var b []byte
	for _, r := range recs {
		b = append(b, r...)
		b = append(b, '\n')
	}
	return b
}

func replayAll(t *testing.T, l *Log, from uint64) []record {
	t.Helper()
	var got []record
	if err := l.Replay(from, func(seq uint64, line []byte) error {
		got = append(got, record{seq, string(line)})
		return nil
	}); err != nil {
		t.Fatalf("Replay(%d): %v", from, err)
	}
	return got
}

// want numbers lines from first.
func want(first uint64, lines ...string) []record {
	var w []record
	for i, s := range lines {
		w = append(w, record{first + uint64(i), s})
	}
	return w
}

func segPath(dir, name string, base uint64) string {
	return filepath.Join(dir, segmentName(name, base))
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	opt := Options{Dir: dir, Name: "events"}
	l := mustOpen(t, opt)
	if l.Next() != 0 || l.First() != 0 || l.Size() != 0 {
		t.Fatalf("a new log: next %d first %d size %d", l.Next(), l.First(), l.Size())
	}
	var all []string
	for i, n := range []int{1, 3, 2, 5} {
		var recs []string
		for j := range n {
			recs = append(recs, fmt.Sprintf(`{"batch":%d,"i":%d}`, i, j))
		}
		first, next, err := l.Commit(batch(recs...))
		if err != nil {
			t.Fatal(err)
		}
		if first != uint64(len(all)) || next != first+uint64(n) {
			t.Fatalf("batch %d: [%d, %d), want [%d, %d)", i, first, next, len(all), len(all)+n)
		}
		all = append(all, recs...)
	}
	if got := replayAll(t, l, 0); !slices.Equal(got, want(0, all...)) {
		t.Fatalf("replay: %v", got)
	}
	if got := replayAll(t, l, 4); !slices.Equal(got, want(4, all[4:]...)) {
		t.Fatalf("replay from 4: %v", got)
	}
	if got := replayAll(t, l, 11); len(got) != 0 {
		t.Fatalf("replay from the end: %v", got)
	}
	size := l.Size()
	if want := int64(len(batch(all...))); size != want {
		t.Fatalf("size %d, want %d", size, want)
	}
	st := l.Stats()
	if st.Appends != 4 || st.Records != 11 || st.Bytes != uint64(size) || st.SyncCalls != 4 {
		t.Fatalf("stats %+v", st)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	l = mustOpen(t, opt)
	if l.Next() != 11 || l.Size() != size {
		t.Fatalf("reopened: next %d size %d", l.Next(), l.Size())
	}
	if r := l.Recovered(); r.TornBytes != 0 || r.Torn != nil || r.Records != 11 || r.Segments != 1 || r.Adopted {
		t.Fatalf("recovered %+v", r)
	}
	if got := replayAll(t, l, 0); !slices.Equal(got, want(0, all...)) {
		t.Fatalf("replay after reopening: %v", got)
	}
	first, next, err := l.Commit(batch("x", "y"))
	if err != nil || first != 11 || next != 13 {
		t.Fatalf("append after reopening: [%d, %d) %v", first, next, err)
	}
}

func TestLongRecords(t *testing.T) {
	l := mustOpen(t, Options{Dir: t.TempDir(), Name: "log"})
	long := strings.Repeat("x", 3*readBuffer+17)
	recs := []string{"a", long, "b", long + "y"}
	if _, _, err := l.Commit(batch(recs...)); err != nil {
		t.Fatal(err)
	}
	if got := replayAll(t, l, 0); !slices.Equal(got, want(0, recs...)) {
		t.Fatalf("replay: %d records", len(got))
	}
	if got := replayAll(t, l, 2); !slices.Equal(got, want(2, recs[2:]...)) {
		t.Fatalf("replay from 2: %d records", len(got))
	}
}

func TestRollAndRemoveBefore(t *testing.T) {
	dir := t.TempDir()
	opt := Options{Dir: dir, Name: "events", SegmentBytes: 20}
	l := mustOpen(t, opt)
	if err := l.Roll(); err != nil {
		t.Fatal(err)
	}
	if n := len(l.Segments()); n != 1 {
		t.Fatalf("Roll of an empty segment made %d segments", n)
	}
	var all []string
	for i := range 10 {
		r := fmt.Sprintf("record-%02d", i) // 10 bytes a line: two lines fill a segment
		all = append(all, r)
		if _, _, err := l.Append(batch(r)); err != nil {
			t.Fatal(err)
		}
	}
	segs := l.Segments()
	var bases []string
	for _, s := range segs {
		bases = append(bases, strings.TrimPrefix(filepath.Base(s), "events-"))
	}
	wantBases := []string{"00000000000000000000.jsonl", "00000000000000000002.jsonl", "00000000000000000004.jsonl",
		"00000000000000000006.jsonl", "00000000000000000008.jsonl"}
	if !slices.Equal(bases, wantBases) {
		t.Fatalf("segments %v", bases)
	}
	if err := l.Sync(l.Next()); err != nil {
		t.Fatal(err)
	}
	if err := l.Roll(); err != nil {
		t.Fatal(err)
	}
	if n := len(l.Segments()); n != 6 {
		t.Fatalf("%d segments after Roll, want 6", n)
	}
	// Records 0..4 lie in segments 0 and 2 (all before 5) and segment 4
	// (4 and 5): two go.
	removed, err := l.RemoveBefore(5)
	if err != nil || removed != 2 {
		t.Fatalf("RemoveBefore(5): %d, %v", removed, err)
	}
	if l.First() != 4 || l.Next() != 10 || l.Size() != 60 {
		t.Fatalf("first %d next %d size %d", l.First(), l.Next(), l.Size())
	}
	for _, s := range segs[:2] {
		if _, err := os.Stat(s); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s still there: %v", s, err)
		}
	}
	if got := replayAll(t, l, 0); !slices.Equal(got, want(4, all[4:]...)) {
		t.Fatalf("replay: %v", got)
	}
	// The active segment stays, even when every record lies before seq.
	removed, err = l.RemoveBefore(100)
	if err != nil || removed != 3 || len(l.Segments()) != 1 || l.First() != 10 {
		t.Fatalf("RemoveBefore(100): %d, %v, first %d, %d segments", removed, err, l.First(), len(l.Segments()))
	}
	if _, _, err := l.Append(batch("after")); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	l = mustOpen(t, opt)
	if l.First() != 10 || l.Next() != 11 {
		t.Fatalf("reopened: first %d next %d", l.First(), l.Next())
	}
	if got := replayAll(t, l, 0); !slices.Equal(got, want(10, "after")) {
		t.Fatalf("replay after reopening: %v", got)
	}
}

func TestReplayStopsAtItsStart(t *testing.T) {
	l := mustOpen(t, Options{Dir: t.TempDir(), Name: "log", SegmentBytes: 4})
	if _, _, err := l.Commit(batch("a", "b", "c")); err != nil {
		t.Fatal(err)
	}
	var got []record
	err := l.Replay(0, func(seq uint64, line []byte) error {
		got = append(got, record{seq, string(line)})
		if seq == 0 {
			// Appends go on while Replay reads, and roll to a new segment.
			if _, _, err := l.Append(batch("d", "e")); err != nil {
				return err
			}
			if _, _, err := l.Append(batch("f")); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want(0, "a", "b", "c")) {
		t.Fatalf("replay while appending: %v", got)
	}
	if got := replayAll(t, l, 0); !slices.Equal(got, want(0, "a", "b", "c", "d", "e", "f")) {
		t.Fatalf("replay afterwards: %v", got)
	}
}

func TestReplayError(t *testing.T) {
	l := mustOpen(t, Options{Dir: t.TempDir(), Name: "log"})
	if _, _, err := l.Commit(batch("a", "b", "c")); err != nil {
		t.Fatal(err)
	}
	stop := errors.New("stop here")
	var seen []uint64
	err := l.Replay(0, func(seq uint64, _ []byte) error {
		seen = append(seen, seq)
		if seq == 1 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || !strings.Contains(err.Error(), "record 1") || !slices.Equal(seen, []uint64{0, 1}) {
		t.Fatalf("replay: %v after %v", err, seen)
	}
}

func TestLegacy(t *testing.T) {
	t.Run("adopted", func(t *testing.T) {
		root := t.TempDir()
		legacy := filepath.Join(root, "served-events.jsonl")
		writeFile(t, legacy, batch(`{"a":1}`, `{"a":2}`))
		dir := filepath.Join(root, "events")
		l := mustOpen(t, Options{Dir: dir, Name: "served-events", Legacy: legacy})
		if !l.Recovered().Adopted || l.Next() != 2 {
			t.Fatalf("recovered %+v, next %d", l.Recovered(), l.Next())
		}
		if _, err := os.Stat(legacy); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("the legacy file is still there: %v", err)
		}
		if got := replayAll(t, l, 0); !slices.Equal(got, want(0, `{"a":1}`, `{"a":2}`)) {
			t.Fatalf("replay: %v", got)
		}
		if _, _, err := l.Commit(batch(`{"a":3}`)); err != nil {
			t.Fatal(err)
		}
		if got := string(readFile(t, segPath(dir, "served-events", 0))); got != "{\"a\":1}\n{\"a\":2}\n{\"a\":3}\n" {
			t.Fatalf("segment 0: %q", got)
		}
		l.Close()
		// A new legacy file is not adopted once the log has segments.
		writeFile(t, legacy, batch(`{"old":1}`))
		l = mustOpen(t, Options{Dir: dir, Name: "served-events", Legacy: legacy})
		if l.Recovered().Adopted || l.Next() != 3 {
			t.Fatalf("reopened: recovered %+v, next %d", l.Recovered(), l.Next())
		}
	})
	t.Run("torn", func(t *testing.T) {
		root := t.TempDir()
		legacy := filepath.Join(root, "served-events.jsonl")
		writeFile(t, legacy, []byte("{\"a\":1}\n{\"a\""))
		l := mustOpen(t, Options{Dir: filepath.Join(root, "events"), Name: "served-events", Legacy: legacy})
		if r := l.Recovered(); !r.Adopted || r.TornBytes != 4 || l.Next() != 1 {
			t.Fatalf("recovered %+v, next %d", r, l.Next())
		}
	})
	t.Run("damaged", func(t *testing.T) {
		root := t.TempDir()
		legacy := filepath.Join(root, "served-events.jsonl")
		content := []byte("{\"a\":1}\n\n{\"a\":3}\n")
		writeFile(t, legacy, content)
		_, err := Open(Options{Dir: filepath.Join(root, "events"), Name: "served-events", Legacy: legacy})
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), legacy) {
			t.Fatalf("Open: %v", err)
		}
		if got := readFile(t, legacy); !bytes.Equal(got, content) {
			t.Fatalf("the legacy file changed: %q", got)
		}
	})
	t.Run("missing", func(t *testing.T) {
		root := t.TempDir()
		l := mustOpen(t, Options{Dir: root, Name: "log", Legacy: filepath.Join(root, "nothing.jsonl")})
		if l.Recovered().Adopted || l.Next() != 0 {
			t.Fatalf("recovered %+v", l.Recovered())
		}
	})
}

func TestModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "log")
	l := mustOpen(t, Options{Dir: dir, Name: "log", SegmentBytes: 1})
	for range 2 {
		if _, _, err := l.Commit(batch("x")); err != nil {
			t.Fatal(err)
		}
	}
	paths := append(l.Segments(), filepath.Join(dir, "log.lock"))
	if len(paths) != 3 {
		t.Fatalf("files %v", paths)
	}
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", p, st.Mode().Perm())
		}
	}
	st, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o700 {
		t.Errorf("%s: mode %v, want 0700", dir, st.Mode().Perm())
	}
}

func TestBadRecords(t *testing.T) {
	bad := errors.New("not an object")
	l := mustOpen(t, Options{Dir: t.TempDir(), Name: "log", Check: func(line []byte) error {
		if line[0] != '{' {
			return bad
		}
		return nil
	}})
	for _, lines := range []string{"", "{}", "{}\n\n{}\n", "\n", "{\x00}\n", "{}\nx\n"} {
		if _, _, err := l.Append([]byte(lines)); !errors.Is(err, ErrBadRecord) || Cause(err) != "bad record" {
			t.Errorf("Append(%q): %v", lines, err)
		}
	}
	if _, _, err := l.Append([]byte("x\n")); !errors.Is(err, bad) {
		t.Errorf("Append refused by Check: %v", err)
	}
	if l.Err() != nil || l.Size() != 0 || l.Next() != 0 {
		t.Fatalf("after refusals: err %v size %d next %d", l.Err(), l.Size(), l.Next())
	}
	if _, _, err := l.Commit(batch("{}")); err != nil {
		t.Fatal(err)
	}
	if err := l.Sync(2); err == nil {
		t.Fatal("Sync beyond Next returned nil")
	}
	if err := l.Sync(1); err != nil {
		t.Fatal(err)
	}
}

func TestOptions(t *testing.T) {
	for _, opt := range []Options{
		{Name: "log"},
		{Dir: t.TempDir()},
		{Dir: t.TempDir(), Name: "a/b"},
		{Dir: t.TempDir(), Name: ".."},
		{Dir: t.TempDir(), Name: "log", SegmentBytes: -1},
	} {
		if l, err := Open(opt); err == nil {
			l.Close()
			t.Errorf("Open(%+v) succeeded", opt)
		}
	}
	// Another log's files and other names in the folder are left alone.
	dir := t.TempDir()
	for _, name := range []string{"log-1.jsonl", "logx-00000000000000000000.jsonl", "log-00000000000000000000.json", "notes.txt"} {
		writeFile(t, filepath.Join(dir, name), []byte("junk"))
	}
	a := mustOpen(t, Options{Dir: dir, Name: "log"})
	b := mustOpen(t, Options{Dir: dir, Name: "log-x"})
	if _, _, err := a.Commit(batch("a")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.Commit(batch("b")); err != nil {
		t.Fatal(err)
	}
	if got := replayAll(t, a, 0); !slices.Equal(got, want(0, "a")) {
		t.Fatalf("a: %v", got)
	}
	if got := replayAll(t, b, 0); !slices.Equal(got, want(0, "b")) {
		t.Fatalf("b: %v", got)
	}
	// A name of the pattern whose base does not fit 64 bits is damage.
	writeFile(t, filepath.Join(dir, "big-99999999999999999999.jsonl"), nil)
	if _, err := Open(Options{Dir: dir, Name: "big"}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open with a base beyond uint64: %v", err)
	}
}

func TestClosed(t *testing.T) {
	l := mustOpen(t, Options{Dir: t.TempDir(), Name: "log"})
	if _, _, err := l.Append(batch("a")); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if l.Stats().Syncs == 0 {
		t.Fatal("Close synced nothing")
	}
	_, _, errAppend := l.Append(batch("b"))
	_, _, errCommit := l.Commit(batch("b"))
	_, errRemove := l.RemoveBefore(1)
	for _, err := range []error{errAppend, errCommit, errRemove, l.Sync(0), l.Roll(), l.Close(),
		l.Replay(0, func(uint64, []byte) error { return nil })} {
		if !errors.Is(err, ErrClosed) || Cause(err) != "closed" {
			t.Errorf("after Close: %v", err)
		}
	}
}

func TestCause(t *testing.T) {
	enospc := &os.PathError{Op: "write", Path: "/secret/path", Err: syscall.ENOSPC}
	for _, c := range []struct {
		err  error
		want string
	}{
		{nil, ""},
		{failure(enospc), "no space left on the device"},
		{failure(syscall.EIO), "write failed"},
		{&earlierError{first: failure(enospc)}, "the log failed earlier and takes no more writes"},
		{fmt.Errorf("x: %w", ErrClosed), "closed"},
		{errors.New("/secret/path: something"), "write failed"},
	} {
		if got := Cause(c.err); got != c.want || strings.Contains(got, "/") {
			t.Errorf("Cause(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}
