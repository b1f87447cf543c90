package wal

import (
	"bytes"
	"errors"
	"os"
	"testing"
)

// FuzzRecover opens a log whose one segment holds arbitrary bytes, with a
// Check that takes lines starting with '{'. Open must not panic, and
// either refuse with ErrCorrupt, leaving the file as it was, or keep
// exactly the whole good lines: all of them, or all but the last whole
// line when only that one is bad (a torn tail), cutting the rest.
func FuzzRecover(f *testing.F) {
	for _, s := range []string{
		"", "{}\n", "{}\n{}", "{}\n{\"a\":1}\n", "{}\n\n{}\n", "{}\nx\n", "{}\nx\n{}\n",
		"{\x00}\n", "{}\n\x00\x00\x00", "x", "\n", "{}\n{}\nx\ny\n", "{}\r\n{}\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		path := segPath(dir, "log", 0)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}

		// The oracle: the whole lines, and which are bad.
		whole := data[:bytes.LastIndexByte(data, '\n')+1]
		var lines [][]byte
		var bad []int
		for rest := whole; len(rest) > 0; {
			i := bytes.IndexByte(rest, '\n')
			line := rest[:i]
			if len(line) == 0 || line[0] != '{' || bytes.IndexByte(line, 0) >= 0 {
				bad = append(bad, len(lines))
			}
			lines = append(lines, line)
			rest = rest[i+1:]
		}
		good := len(lines)
		keep := len(whole)
		switch {
		case len(bad) == 1 && bad[0] == len(lines)-1:
			good--
			keep -= len(lines[good]) + 1
		case len(bad) > 0:
			good = -1 // Open must refuse
		}

		l, err := Open(Options{Dir: dir, Name: "log", Check: objects})
		if good < 0 {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Open: %v, want ErrCorrupt (bad lines %v of %d)", err, bad, len(lines))
			}
			if got, _ := os.ReadFile(path); !bytes.Equal(got, data) {
				t.Fatalf("Open refused and changed the file to %q", got)
			}
			return
		}
		if err != nil {
			t.Fatalf("Open: %v, want %d records", err, good)
		}
		defer l.Close()
		if l.Next() != uint64(good) {
			t.Fatalf("next %d, want %d", l.Next(), good)
		}
		if got := l.Recovered().TornBytes; got != int64(len(data)-keep) {
			t.Fatalf("cut %d bytes, want %d", got, len(data)-keep)
		}
		var n int
		if err := l.Replay(0, func(seq uint64, line []byte) error {
			if seq != uint64(n) || !bytes.Equal(line, lines[n]) || line[0] != '{' {
				t.Fatalf("record %d: %d %q", n, seq, line)
			}
			n++
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if n != good {
			t.Fatalf("replayed %d records, want %d", n, good)
		}
		if got, _ := os.ReadFile(path); !bytes.Equal(got, data[:keep]) {
			t.Fatalf("the segment holds %q, want %q", got, data[:keep])
		}
	})
}
