package wal

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// objects is a Check that accepts lines that start with '{'.
func objects(line []byte) error {
	if line[0] != '{' {
		return errors.New("not a JSON object")
	}
	return nil
}

func TestRecover(t *testing.T) {
	for _, c := range []struct {
		name    string
		content string
		check   bool
		corrupt string // the error must hold it; "" when Open succeeds
		keep    string // what the segment holds after Open
		torn    string // Recovered().Torn must hold it
	}{
		{name: "whole", content: "a\nb\n", keep: "a\nb\n"},
		{name: "empty", content: "", keep: ""},
		{name: "torn-tail", content: "a\nb\n{\"c\":", keep: "a\nb\n", torn: "without a newline"},
		{name: "only-a-torn-tail", content: "{\"c\":", keep: "", torn: "without a newline"},
		{name: "last-line-empty", content: "a\n\n", keep: "a\n", torn: "an empty line"},
		{name: "last-line-nul", content: "a\nb\x00\n", keep: "a\n", torn: "NUL"},
		{name: "zeros", content: "a\n\x00\x00\x00\x00", keep: "a\n", torn: "without a newline"},
		{name: "empty-line", content: "a\n\nb\n", corrupt: "line 2 (byte 2): an empty line"},
		{name: "nul", content: "a\nb\x00c\nd\n", corrupt: "line 2 (byte 2): a NUL byte at column 2"},
		{name: "nul-before-torn-tail", content: "a\n\x00\nb\nc", corrupt: "line 2 (byte 2)"},
		{name: "check-last-line", content: "{a}\n{b}\nx\n", check: true, keep: "{a}\n{b}\n", torn: "line 3 (byte 8)"},
		{name: "check-last-line-and-tail", content: "{a}\nx\n{b", check: true, keep: "{a}\n", torn: "line 2 (byte 4)"},
		{name: "check-middle", content: "{a}\nx\n{b}\n", check: true, corrupt: "line 2 (byte 4): not a JSON object"},
		{name: "check-two-last", content: "{a}\nx\ny\n", check: true, corrupt: "line 2 (byte 4)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			path := segPath(dir, "log", 0)
			writeFile(t, path, []byte(c.content))
			opt := Options{Dir: dir, Name: "log"}
			if c.check {
				opt.Check = objects
			}
			l, err := Open(opt)
			if c.corrupt != "" {
				if err == nil {
					l.Close()
					t.Fatal("Open succeeded")
				}
				if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), c.corrupt) || !strings.Contains(err.Error(), path) {
					t.Fatalf("Open: %v, want ErrCorrupt naming %s and %q", err, path, c.corrupt)
				}
				if got := readFile(t, path); string(got) != c.content {
					t.Fatalf("Open changed the segment to %q", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			if got := readFile(t, path); string(got) != c.keep {
				t.Fatalf("the segment holds %q, want %q", got, c.keep)
			}
			r := l.Recovered()
			if r.TornBytes != int64(len(c.content)-len(c.keep)) {
				t.Errorf("TornBytes %d, want %d", r.TornBytes, len(c.content)-len(c.keep))
			}
			if c.torn == "" && r.Torn != nil || c.torn != "" && (r.Torn == nil || !strings.Contains(r.Torn.Error(), c.torn)) {
				t.Errorf("Torn: %v, want %q", r.Torn, c.torn)
			}
			lines := strings.SplitAfter(c.keep, "\n")
			lines = lines[:len(lines)-1]
			for i := range lines {
				lines[i] = strings.TrimSuffix(lines[i], "\n")
			}
			if got := replayAll(t, l, 0); !slices.Equal(got, want(0, lines...)) {
				t.Fatalf("replay: %v", got)
			}
			// The repaired log takes writes in their place.
			if _, _, err := l.Commit(batch("{z}")); err != nil {
				t.Fatal(err)
			}
			if got := string(readFile(t, path)); got != c.keep+"{z}\n" {
				t.Fatalf("after an append the segment holds %q", got)
			}
		})
	}
}

func TestRecoverSegments(t *testing.T) {
	for _, c := range []struct {
		name     string
		segs     map[uint64]string
		check    bool
		corrupt  []string // the error must hold all of them; nil when Open succeeds
		wantNext uint64
	}{
		{name: "follow-on", segs: map[uint64]string{0: "a\nb\n", 2: "c\n", 3: "d\ne"}, wantNext: 4},
		{name: "empty-last", segs: map[uint64]string{5: "a\nb\n", 7: ""}, wantNext: 7},
		{name: "gap", segs: map[uint64]string{0: "a\nb\n", 3: "c\n"},
			corrupt: []string{segmentName("log", 0), segmentName("log", 3), "records 0 to 2"}},
		{name: "overlap", segs: map[uint64]string{0: "a\nb\n", 1: "c\n"},
			corrupt: []string{segmentName("log", 0), segmentName("log", 1)}},
		{name: "empty-in-the-middle", segs: map[uint64]string{0: "a\n", 1: "", 2: "c\n"},
			corrupt: []string{segmentName("log", 1), segmentName("log", 2)}},
		{name: "torn-earlier-segment", segs: map[uint64]string{0: "a\nb", 1: "c\n"},
			corrupt: []string{segmentName("log", 0), "without a newline"}},
		{name: "check-last-line-of-earlier-segment", check: true, segs: map[uint64]string{0: "{a}\nx\n", 2: "{c}\n"},
			corrupt: []string{segmentName("log", 0), "line 2 (byte 4)"}},
		{name: "damage-in-earlier-segment", segs: map[uint64]string{0: "a\n\x00\nc\n", 3: "d\n"},
			corrupt: []string{segmentName("log", 0), "line 2 (byte 2)"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			for base, content := range c.segs {
				writeFile(t, segPath(dir, "log", base), []byte(content))
			}
			opt := Options{Dir: dir, Name: "log"}
			if c.check {
				opt.Check = objects
			}
			l, err := Open(opt)
			if c.corrupt != nil {
				if err == nil {
					l.Close()
					t.Fatal("Open succeeded")
				}
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("Open: %v, want ErrCorrupt", err)
				}
				for _, s := range c.corrupt {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("Open: %v, want it to name %q", err, s)
					}
				}
				for base, content := range c.segs {
					if got := readFile(t, segPath(dir, "log", base)); string(got) != content {
						t.Errorf("Open changed segment %d to %q", base, got)
					}
				}
				entries, _ := os.ReadDir(dir)
				if len(entries) != len(c.segs)+1 { // and the lock file
					t.Errorf("%d files in the folder, want %d", len(entries), len(c.segs)+1)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			if l.Next() != c.wantNext {
				t.Fatalf("next %d, want %d", l.Next(), c.wantNext)
			}
			got := replayAll(t, l, 0)
			if uint64(len(got)) != l.Next()-l.First() {
				t.Fatalf("replay: %v", got)
			}
		})
	}
}

// TestRecoverThenRoll checks that a cut survives a reopen and
// that a recovered log rolls on past its old last segment.
func TestRecoverThenRoll(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, segPath(dir, "log", 0), []byte("a\nb\n"))
	writeFile(t, segPath(dir, "log", 2), []byte("c\nd"))
	l := mustOpen(t, Options{Dir: dir, Name: "log", SegmentBytes: 2})
	if l.Next() != 3 || l.Recovered().TornBytes != 1 || l.Recovered().Segments != 2 {
		t.Fatalf("next %d, recovered %+v", l.Next(), l.Recovered())
	}
	if _, _, err := l.Commit(batch("e")); err != nil {
		t.Fatal(err)
	}
	if got := filepath.Base(l.Segments()[2]); got != segmentName("log", 3) {
		t.Fatalf("the new segment is %s", got)
	}
	l.Close()
	l = mustOpen(t, Options{Dir: dir, Name: "log"})
	if got := replayAll(t, l, 0); !slices.Equal(got, want(0, "a", "b", "c", "e")) {
		t.Fatalf("replay: %v", got)
	}
	if !bytes.Equal(readFile(t, segPath(dir, "log", 2)), []byte("c\n")) {
		t.Fatal("the cut did not last")
	}
}
