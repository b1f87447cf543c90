package wal

import (
	"os"
	"strings"
	"sync"
)

// faultFS is the operating system's file system with switches that make
// the segment files' calls fail, for the fault-injection tests. The
// switches may be flipped while a Log uses it.
type faultFS struct {
	FS

	mu         sync.Mutex
	writeErr   error // when set, each Write passes writeKeep bytes through, then fails with it
	writeKeep  int
	writeShort bool  // with writeErr nil: each Write passes writeKeep bytes through and returns no error
	syncErr    error // when set, Sync fails with it
	truncErr   error // when set, Truncate fails with it
	gate       *gate // when set, Sync waits on it
}

// gate holds a segment's Sync until the test lets it go: Sync sends on
// entered, then waits on release (closing release lets every Sync pass).
type gate struct {
	entered chan struct{}
	release chan struct{}
}

func newFaultFS() *faultFS { return &faultFS{FS: OS()} }

func (fs *faultFS) set(f func(fs *faultFS)) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	f(fs)
}

func (fs *faultFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	f, err := fs.FS.OpenFile(name, flag, perm)
	if err != nil || !strings.HasSuffix(name, ".jsonl") {
		return f, err
	}
	return &faultFile{File: f, fs: fs}, nil
}

type faultFile struct {
	File
	fs *faultFS
}

func (f *faultFile) Write(p []byte) (int, error) {
	f.fs.mu.Lock()
	werr, keep, short := f.fs.writeErr, f.fs.writeKeep, f.fs.writeShort
	f.fs.mu.Unlock()
	if werr == nil && !short {
		return f.File.Write(p)
	}
	n, err := f.File.Write(p[:min(keep, len(p))])
	if err != nil {
		return n, err
	}
	return n, werr
}

func (f *faultFile) Sync() error {
	f.fs.mu.Lock()
	serr, g := f.fs.syncErr, f.fs.gate
	f.fs.mu.Unlock()
	if g != nil {
		g.entered <- struct{}{}
		<-g.release
	}
	if serr != nil {
		return serr
	}
	return f.File.Sync()
}

func (f *faultFile) Truncate(size int64) error {
	f.fs.mu.Lock()
	terr := f.fs.truncErr
	f.fs.mu.Unlock()
	if terr != nil {
		return terr
	}
	return f.File.Truncate(size)
}
