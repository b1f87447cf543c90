package fsutil

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// writeBufSize is the buffer WriteFile puts in front of the file.
const writeBufSize = 1 << 20

// WriteFile writes the file at path atomically: write writes the content
// (through a buffer) into a temporary file in path's folder, which is then
// synced, given the mode perm (exactly: the umask does not apply), renamed
// over path and made durable by syncing the folder. A crash leaves either
// the old file at path or the new one. On any failure the temporary file
// is removed and path is as it was; an error from write is returned as it
// is.
func WriteFile(path string, perm os.FileMode, write func(w io.Writer) error) error {
	t, err := CreateTemp(path, perm)
	if err != nil {
		return err
	}
	defer t.Abort()
	bw := bufio.NewWriterSize(t.File, writeBufSize)
	if err := write(bw); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	return t.Commit()
}

// Temp is a file written under a temporary name in the folder of the path
// it is to replace, for a writer that needs the *os.File itself (to seek,
// WriteAt or ReadFrom) or that decides late whether to keep it. Commit puts
// it in place, Abort throws it away; Abort after Commit does nothing, so
// the usual form is
//
//	t, err := fsutil.CreateTemp(path, 0o644)
//	if err != nil {
//		return err
//	}
//	defer t.Abort()
//	// write to t.File
//	return t.Commit()
type Temp struct {
	File *os.File // the temporary file, open for reading and writing
	path string
	perm os.FileMode
	done bool
}

// CreateTemp creates the temporary file that Commit will rename to path
// with the mode perm. It is hidden (its name starts with a dot) and
// private until then.
func CreateTemp(path string, perm os.FileMode) (*Temp, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return nil, err
	}
	return &Temp{File: f, path: path, perm: perm}, nil
}

// Commit syncs the temporary file, sets its mode, closes it, renames it
// over the path given to CreateTemp and syncs the folder. Whatever the
// caller buffered must be flushed first. On failure the temporary file is
// removed and path is as it was, unless only the folder's sync failed:
// then the new file is in place but may not survive a crash.
func (t *Temp) Commit() error {
	if t.done {
		return fmt.Errorf("commit %s: %w", t.path, os.ErrClosed)
	}
	t.done = true
	tmp := t.File.Name()
	err := t.File.Sync()
	if err == nil {
		err = t.File.Chmod(t.perm)
	}
	if cerr := t.File.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, t.path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return SyncDir(filepath.Dir(t.path))
}

// Abort closes and removes the temporary file, leaving path as it was. It
// does nothing after Commit or an earlier Abort.
func (t *Temp) Abort() {
	if t.done {
		return
	}
	t.done = true
	t.File.Close()
	os.Remove(t.File.Name())
}

// ReplaceDir puts the folder tmp, fully written with its files synced, in
// place at dir: it syncs tmp, renames it to dir and syncs dir's parent.
// tmp should be in dir's parent, as a rename cannot cross file systems.
// A folder cannot be renamed over a non-empty one, so an existing folder
// dir is first renamed aside to tmp+".old" (removing what an earlier crash
// left there) and removed once the new one is in place; a crash between
// the two renames leaves the whole old folder at tmp+".old" and the whole
// new one at tmp, never part of one at dir.
//
// On a failure before the new folder is in place, tmp is removed and dir
// is as it was (should putting the old folder back fail as well, the error
// says where it is). A failure after (syncing the parent, removing the old
// folder) leaves the new folder at dir.
func ReplaceDir(tmp, dir string) error {
	dir = filepath.Clean(dir)
	old, err := swapDir(tmp, dir)
	if err != nil {
		return err
	}
	if err := SyncDir(filepath.Dir(dir)); err != nil {
		return err
	}
	if old == "" {
		return nil
	}
	return os.RemoveAll(old)
}

// swapDir renames tmp to dir, first moving an existing folder dir aside to
// old; on failure it removes tmp.
func swapDir(tmp, dir string) (old string, err error) {
	fail := func(err error) (string, error) {
		os.RemoveAll(tmp)
		return "", err
	}
	if err := SyncDir(tmp); err != nil {
		return fail(err)
	}
	err = os.Rename(tmp, dir)
	if err == nil {
		return "", nil
	}
	if st, serr := os.Stat(dir); serr != nil || !st.IsDir() {
		return fail(err) // no folder in the way: the rename failed for another reason
	}
	old = tmp + ".old"
	if err := os.RemoveAll(old); err != nil {
		return fail(err)
	}
	if err := os.Rename(dir, old); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		if rerr := os.Rename(old, dir); rerr != nil {
			err = fmt.Errorf("%w (and putting the old folder back from %s: %v)", err, old, rerr)
		}
		return fail(err)
	}
	return old, nil
}
