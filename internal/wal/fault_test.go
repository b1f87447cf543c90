package wal

import (
	"bytes"
	"errors"
	"io"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// faultLog opens a log on a faultFS holding two committed records, and
// returns it with the active segment's path and content.
func faultLog(t *testing.T, opt Options) (*Log, *faultFS, string, []byte) {
	t.Helper()
	fs := newFaultFS()
	opt.FS = fs
	if opt.Dir == "" {
		opt.Dir = t.TempDir()
	}
	opt.Name = "log"
	l := mustOpen(t, opt)
	if _, _, err := l.Commit(batch(`{"a":1}`, `{"a":2}`)); err != nil {
		t.Fatal(err)
	}
	path := segPath(opt.Dir, "log", 0)
	return l, fs, path, readFile(t, path)
}

// checkStopped checks that a failed log refuses every later write with
// an error wrapping ErrFailed that Cause calls an earlier failure.
func checkStopped(t *testing.T, l *Log) {
	t.Helper()
	if !errors.Is(l.Err(), ErrFailed) {
		t.Fatalf("Err() = %v, want ErrFailed", l.Err())
	}
	_, _, errAppend := l.Append(batch(`{"later":1}`))
	_, _, errCommit := l.Commit(batch(`{"later":1}`))
	for _, err := range []error{errAppend, errCommit, l.Sync(0), l.Sync(l.Next()), l.Roll()} {
		if !errors.Is(err, ErrFailed) || errors.Is(err, ErrNoSpace) ||
			Cause(err) != "the log failed earlier and takes no more writes" {
			t.Errorf("a later call: %v (cause %q)", err, Cause(err))
		}
	}
}

// reopen closes l and opens its folder again through the operating
// system, and checks that it holds the two records faultLog committed
// and nothing else.
func reopenHoldsTwo(t *testing.T, l *Log, dir string) {
	t.Helper()
	if err := l.Close(); err != nil {
		t.Fatalf("Close of a failed log: %v", err)
	}
	l2 := mustOpen(t, Options{Dir: dir, Name: "log"})
	if got := replayAll(t, l2, 0); !slices.Equal(got, want(0, `{"a":1}`, `{"a":2}`)) {
		t.Fatalf("reopened: %v", got)
	}
}

func TestWriteFaults(t *testing.T) {
	for _, c := range []struct {
		name    string
		keep    int
		err     error
		short   bool // n < len with no error
		noSpace bool
	}{
		{name: "short", keep: 5, err: io.ErrShortWrite},
		{name: "short-without-error", keep: 9, short: true},
		{name: "EIO", keep: 0, err: &os.PathError{Op: "write", Path: "x", Err: syscall.EIO}},
		{name: "EIO-after-a-line", keep: 8, err: &os.PathError{Op: "write", Path: "x", Err: syscall.EIO}},
		{name: "ENOSPC", keep: 7, err: &os.PathError{Op: "write", Path: "x", Err: syscall.ENOSPC}, noSpace: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			l, fs, path, before := faultLog(t, Options{Dir: dir})
			fs.set(func(fs *faultFS) { fs.writeErr, fs.writeKeep, fs.writeShort = c.err, c.keep, c.short })
			first, next, err := l.Append(batch(`{"b":1}`, `{"b":2}`, `{"b":3}`))
			if err == nil || first != 0 || next != 0 {
				t.Fatalf("Append: [%d, %d) %v", first, next, err)
			}
			if !errors.Is(err, ErrFailed) {
				t.Errorf("%v does not wrap ErrFailed", err)
			}
			if c.err != nil && !errors.Is(err, c.err) {
				t.Errorf("%v does not wrap the cause %v", err, c.err)
			}
			if c.noSpace {
				if !errors.Is(err, ErrNoSpace) || !errors.Is(err, syscall.ENOSPC) || Cause(err) != "no space left on the device" {
					t.Errorf("%v: want ErrNoSpace and ENOSPC (cause %q)", err, Cause(err))
				}
			} else if errors.Is(err, ErrNoSpace) || Cause(err) != "write failed" {
				t.Errorf("%v: cause %q", err, Cause(err))
			}
			if !errors.Is(l.Err(), ErrFailed) || l.Next() != 2 || l.Size() != int64(len(before)) {
				t.Errorf("after the failure: err %v next %d size %d", l.Err(), l.Next(), l.Size())
			}
			if got := readFile(t, path); !bytes.Equal(got, before) {
				t.Errorf("the segment holds %q, want %q as before", got, before)
			}
			fs.set(func(fs *faultFS) { fs.writeErr, fs.writeShort = nil, false })
			checkStopped(t, l)
			if got := readFile(t, path); !bytes.Equal(got, before) {
				t.Errorf("the segment holds %q after the later calls", got)
			}
			reopenHoldsTwo(t, l, dir)
		})
	}
}

func TestSyncFault(t *testing.T) {
	dir := t.TempDir()
	l, fs, _, _ := faultLog(t, Options{Dir: dir})
	syncs := l.Stats().Syncs
	fs.set(func(fs *faultFS) { fs.syncErr = &os.PathError{Op: "sync", Path: "x", Err: syscall.EIO} })
	_, next, err := l.Append(batch(`{"b":1}`))
	if err != nil {
		t.Fatalf("Append, which does not sync: %v", err)
	}
	err = l.Sync(next)
	if !errors.Is(err, ErrFailed) || !errors.Is(err, syscall.EIO) || Cause(err) != "write failed" {
		t.Fatalf("Sync: %v (cause %q)", err, Cause(err))
	}
	if got := l.Stats().Syncs; got != syncs+1 {
		t.Errorf("%d fsyncs, want 1", got-syncs)
	}
	fs.set(func(fs *faultFS) { fs.syncErr = nil })
	// Not even a Sync of records synced before the failure passes: the
	// log is stopped, and no fsync is tried again.
	checkStopped(t, l)
	if got := l.Stats().Syncs; got != syncs+1 {
		t.Errorf("%d fsyncs after the failure, want none", got-syncs-1)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// The record whose Sync failed was never acknowledged; here the page
	// cache kept it, and a new Open finds it (an error from Sync means
	// "unknown", not "lost").
	l2 := mustOpen(t, Options{Dir: dir, Name: "log"})
	if l2.Next() != 3 || l2.Err() != nil {
		t.Fatalf("reopened: next %d, err %v", l2.Next(), l2.Err())
	}
}

func TestCommitSyncFault(t *testing.T) {
	l, fs, _, _ := faultLog(t, Options{})
	fs.set(func(fs *faultFS) { fs.syncErr = syscall.EIO })
	if _, _, err := l.Commit(batch(`{"b":1}`)); !errors.Is(err, ErrFailed) {
		t.Fatalf("Commit: %v", err)
	}
	checkStopped(t, l)
}

func TestTruncateFault(t *testing.T) {
	for _, c := range []struct {
		name     string
		keep     int
		wantNext uint64 // after reopening
		torn     int64
	}{
		// The write stopped in a line: the next Open cuts the rest as a
		// torn tail.
		{name: "mid-line", keep: 4, wantNext: 2, torn: 4},
		// The write stopped after a whole line, which stays: an
		// unacknowledged record, as after a crash before the fsync.
		{name: "line-boundary", keep: 8, wantNext: 3, torn: 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			l, fs, path, before := faultLog(t, Options{Dir: dir})
			fs.set(func(fs *faultFS) {
				fs.writeErr, fs.writeKeep = syscall.EIO, c.keep
				fs.truncErr = syscall.EROFS
			})
			_, _, err := l.Append(batch(`{"b":1}`, `{"b":2}`))
			if !errors.Is(err, ErrFailed) || !errors.Is(err, syscall.EIO) || !strings.Contains(err.Error(), "cutting it back") {
				t.Fatalf("Append: %v", err)
			}
			if got := readFile(t, path); !bytes.Equal(got, append(before, batch(`{"b":1}`)[:c.keep]...)) {
				t.Fatalf("the segment holds %q", got)
			}
			fs.set(func(fs *faultFS) { fs.writeErr, fs.truncErr = nil, nil })
			checkStopped(t, l)
			l.Close()
			l2 := mustOpen(t, Options{Dir: dir, Name: "log"})
			if l2.Next() != c.wantNext || l2.Recovered().TornBytes != c.torn {
				t.Fatalf("reopened: next %d, recovered %+v", l2.Next(), l2.Recovered())
			}
		})
	}
}

func TestRollFault(t *testing.T) {
	l, fs, path, before := faultLog(t, Options{SegmentBytes: 1})
	fs.set(func(fs *faultFS) { fs.syncErr = syscall.EIO })
	// The Commit in faultLog synced everything, so the roll needs no
	// fsync of the old segment: it fails creating the new one.
	_, _, err := l.Append(batch(`{"b":1}`))
	if !errors.Is(err, ErrFailed) {
		t.Fatalf("Append that rolls: %v", err)
	}
	if got := readFile(t, path); !bytes.Equal(got, before) {
		t.Fatalf("the old segment holds %q", got)
	}
	fs.set(func(fs *faultFS) { fs.syncErr = nil })
	checkStopped(t, l)
}

func TestRollSyncFault(t *testing.T) {
	l, fs, _, _ := faultLog(t, Options{})
	if _, _, err := l.Append(batch(`{"b":1}`)); err != nil {
		t.Fatal(err)
	}
	fs.set(func(fs *faultFS) { fs.syncErr = syscall.EIO })
	if err := l.Roll(); !errors.Is(err, ErrFailed) {
		t.Fatalf("Roll: %v", err)
	}
	if n := len(l.Segments()); n != 1 {
		t.Fatalf("%d segments after a failed roll", n)
	}
	fs.set(func(fs *faultFS) { fs.syncErr = nil })
	checkStopped(t, l)
}
