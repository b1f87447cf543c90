package engine

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/reelrank/reelrank/eventlog"
	"github.com/reelrank/reelrank/internal/wal"
)

// faultFS is the operating system's file system with faults switched on
// and off by the test: a write that fails (after writing part of its
// bytes) and an fsync that fails.
type faultFS struct {
	wal.FS
	mu       sync.Mutex
	writeErr error
	syncErr  error
}

func (f *faultFS) set(writeErr, syncErr error) {
	f.mu.Lock()
	f.writeErr, f.syncErr = writeErr, syncErr
	f.mu.Unlock()
}

func (f *faultFS) OpenFile(name string, flag int, perm os.FileMode) (wal.File, error) {
	file, err := f.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &faultFile{File: file, fs: f}, nil
}

type faultFile struct {
	wal.File
	fs *faultFS
}

func (f *faultFile) Write(p []byte) (int, error) {
	f.fs.mu.Lock()
	err := f.fs.writeErr
	f.fs.mu.Unlock()
	if err != nil {
		n, _ := f.File.Write(p[:len(p)/2]) // a short write: part of the batch lands
		return n, err
	}
	return f.File.Write(p)
}

func (f *faultFile) Sync() error {
	f.fs.mu.Lock()
	err := f.fs.syncErr
	f.fs.mu.Unlock()
	if err != nil {
		return err
	}
	return f.File.Sync()
}

// TestLogFaults: a full disk and a failed fsync each refuse the write with
// a typed error naming no path, acknowledge nothing of it, stop the log
// (fail-stop: Health says why, later writes are refused), and lose nothing
// that was acknowledged before.
func TestLogFaults(t *testing.T) {
	for _, c := range []struct {
		name              string
		writeErr, syncErr error
		noSpace           bool
	}{
		{"enospc", &os.PathError{Op: "write", Path: "/x", Err: syscall.ENOSPC}, nil, true},
		{"eio", &os.PathError{Op: "write", Path: "/x", Err: syscall.EIO}, nil, false},
		{"fsync", nil, &os.PathError{Op: "sync", Path: "/x", Err: syscall.EIO}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := worldConfig{reels: 100, users: 3, authors: 10, seed: 50}
			w := newWorld(t, cfg)
			dir := t.TempDir()
			ffs := &faultFS{FS: wal.OS()}
			e := w.engine(t, Config{Dir: dir, fs: ffs}, w.model(t, "v1", "A", 50))
			ok := impressionEvent(w.now, 1, 3, w.author[3], 9)
			if res, err := e.Event([]eventlog.Event{ok}); err != nil || res.Accepted != 1 {
				t.Fatalf("%+v, %v", res, err)
			}
			applied := w.store.Stats().Applied
			ffs.set(c.writeErr, c.syncErr)
			res, err := e.Event([]eventlog.Event{impressionEvent(w.now, 2, 4, w.author[4], 9), impressionEvent(w.now, 2, 5, w.author[5], 9)})
			if !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrNoSpace) != c.noSpace || res.Accepted != 0 {
				t.Fatalf("the failed write: %+v, %v", res, err)
			}
			if strings.Contains(err.Error(), dir) || strings.Contains(err.Error(), "/x") {
				t.Fatalf("the error a client sees names a path: %v", err)
			}
			if c.syncErr == nil && w.store.Stats().Applied != applied {
				t.Fatal("a batch that was not written was applied")
			}
			if h := e.Health(); h.OK || !strings.Contains(h.Status, "event log failed") {
				t.Fatalf("health after the failure: %+v", h)
			}
			ffs.set(nil, nil)
			if _, err := e.Event([]eventlog.Event{ok}); !errors.Is(err, ErrUnavailable) {
				t.Fatalf("a write after the failure: %v", err)
			}
			e.Close()
			// A restart keeps what was acknowledged, and the torn batch of
			// a failed write is not there.
			w2 := newWorld(t, cfg)
			e2 := w2.engine(t, Config{Dir: dir}, w2.model(t, "v1", "A", 50))
			got := e2.Store().Stats().Applied
			if got < applied || (c.syncErr == nil && got != applied) {
				t.Fatalf("after a restart the store applied %d events, %d were acknowledged", got, applied)
			}
			if h := e2.Health(); !h.OK {
				t.Fatalf("health after a restart: %+v", h)
			}
			if res, err := e2.Event([]eventlog.Event{ok}); err != nil || res.Accepted != 1 {
				t.Fatalf("a write after a restart: %+v, %v", res, err)
			}
		})
	}
}

// TestCheckpointCompacts writes events, upserts and deletes, checkpoints,
// and checks that the logs dropped what the snapshot holds, that the
// folder holds one snapshot, that the index's deleted slots are gone, and
// that a restart replays only the tail.
func TestCheckpointCompacts(t *testing.T) {
	cfg := worldConfig{reels: 200, users: 5, authors: 20, seed: 51}
	w := newWorld(t, cfg)
	dir := t.TempDir()
	e := w.engine(t, Config{Dir: dir, CheckpointInterval: -1, CheckpointBytes: -1}, w.model(t, "v1", "A", 51))
	for round := range 3 {
		for i := range 50 {
			batch := make([]eventlog.Event, 20)
			for j := range batch {
				reel := int64(1 + (i*20+j)%200)
				batch[j] = impressionEvent(w.now-int64(j), int64(1+j%5), reel, w.author[reel], int64(i))
			}
			if res, err := e.Event(batch); err != nil || res.Accepted != 20 {
				t.Fatalf("%+v, %v", res, err)
			}
		}
		if _, err := e.Upsert(Reel{ID: int64(8000 + round), Author: 3, Upload: w.now, Category: -1}); err != nil {
			t.Fatal(err)
		}
		if err := e.Delete(int64(10 + round)); err != nil {
			t.Fatal(err)
		}
		if err := e.Checkpoint(); err != nil {
			t.Fatal(err)
		}
	}
	d := e.dur
	if d.events.First() != d.events.Next() || d.events.Next() != 3000 || d.cat.First() != d.cat.Next() {
		t.Fatalf("after a checkpoint the logs hold events %d..%d, catalogue %d..%d", d.events.First(), d.events.Next(), d.cat.First(), d.cat.Next())
	}
	snaps, _ := filepath.Glob(filepath.Join(dir, snapPrefix+"*"))
	if len(snaps) != 1 {
		t.Fatalf("snapshots in the folder: %q", snaps)
	}
	if n := e.Model().Index().Compact(); n != 0 {
		t.Fatalf("the checkpoint left %d deleted slots in the index", n)
	}
	var size int64
	ents, _ := os.ReadDir(dir)
	for _, ent := range ents {
		if fi, err := ent.Info(); err == nil && !strings.HasPrefix(ent.Name(), snapPrefix) {
			size += fi.Size()
		}
	}
	if size > 64<<10 {
		t.Fatalf("the folder holds %d bytes besides the snapshot", size)
	}
	for i := range 7 {
		if res, err := e.Event([]eventlog.Event{impressionEvent(w.now, 1, int64(1+i), w.author[int64(1+i)], 99)}); err != nil || res.Accepted != 1 {
			t.Fatalf("%+v, %v", res, err)
		}
	}
	applied := w.store.Stats().Applied
	want := snapshotBytes(t, w.store)
	e.Close()
	w2 := newWorld(t, cfg)
	e2 := w2.engine(t, Config{Dir: dir}, w2.model(t, "v1", "A", 51))
	if d := e2.dur; d.events.Next()-d.ck.Events != 7 {
		t.Fatalf("the restart replays %d events, want the 7 of the tail", d.events.Next()-d.ck.Events)
	}
	if e2.Store().Stats().Applied != applied || !bytes.Equal(snapshotBytes(t, e2.Store()), want) {
		t.Fatal("the restarted store differs")
	}
	for round := range 3 {
		if !e2.Model().Index().Contains(int64(8000+round)) || !e2.isDeleted(int64(10+round)) || e2.Model().Index().Contains(int64(10+round)) {
			t.Fatalf("the catalogue of round %d after a restart", round)
		}
	}
}
