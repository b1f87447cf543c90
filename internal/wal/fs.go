package wal

import (
	"io"
	"os"

	"github.com/reelrank/reelrank/internal/fsutil"
)

// FS is the few file-system calls the log makes. Options.FS takes one so
// that tests can inject faults (a short write, ENOSPC, a failed fsync);
// OS returns the operating system's.
type FS interface {
	OpenFile(name string, flag int, perm os.FileMode) (File, error)
	Remove(name string) error
	Rename(oldpath, newpath string) error
	ReadDir(name string) ([]os.DirEntry, error)
	MkdirAll(name string, perm os.FileMode) error
	// SyncDir flushes a folder's entries (files created, renamed or
	// removed in it) to disk.
	SyncDir(name string) error
	// Lock takes an exclusive lock on the file name, creating it, and
	// fails at once with an error wrapping ErrLocked when another process
	// or handle holds it. unlock releases it.
	Lock(name string) (unlock func() error, err error)
}

// File is an open file of an FS. *os.File is one.
type File interface {
	io.Reader
	io.ReaderAt
	io.Writer
	Sync() error
	Truncate(size int64) error
	Stat() (os.FileInfo, error)
	Close() error
}

// OS returns the operating system's file system, which Open uses when
// Options.FS is nil.
func OS() FS { return osFS{} }

type osFS struct{}

func (osFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err // a nil *os.File would make a non-nil File
	}
	return f, nil
}

func (osFS) Remove(name string) error                     { return os.Remove(name) }
func (osFS) Rename(oldpath, newpath string) error         { return os.Rename(oldpath, newpath) }
func (osFS) ReadDir(name string) ([]os.DirEntry, error)   { return os.ReadDir(name) }
func (osFS) MkdirAll(name string, perm os.FileMode) error { return os.MkdirAll(name, perm) }
func (osFS) SyncDir(name string) error                    { return fsutil.SyncDir(name) }
func (osFS) Lock(name string) (func() error, error)       { return lockFile(name) }
