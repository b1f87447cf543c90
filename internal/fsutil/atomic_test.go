package fsutil

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
)

// names lists the entries of dir, sorted.
func names(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var s []string
	for _, e := range ents {
		s = append(s, e.Name())
	}
	return s
}

// wantFile fails the test unless path holds data.
func wantFile(t *testing.T, path, data string) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil || string(got) != data {
		t.Fatalf("%s holds %q (%v), want %q", path, got, err, data)
	}
}

func writeString(s string) func(io.Writer) error {
	return func(w io.Writer) error {
		_, err := io.WriteString(w, s)
		return err
	}
}

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	if err := WriteFile(path, 0o644, writeString("one")); err != nil {
		t.Fatal(err)
	}
	wantFile(t, path, "one")
	if err := WriteFile(path, 0o644, writeString("two")); err != nil {
		t.Fatal(err)
	}
	wantFile(t, path, "two")
	if got := names(t, dir); !slices.Equal(got, []string{"f"}) {
		t.Fatalf("folder holds %v, want f alone", got)
	}

	// More than the buffer holds, in pieces.
	big := make([]byte, 3*writeBufSize+5)
	for i := range big {
		big[i] = byte(i * 7)
	}
	err := WriteFile(path, 0o644, func(w io.Writer) error {
		for b := big; len(b) > 0; {
			n := min(len(b), 1000)
			if _, err := w.Write(b[:n]); err != nil {
				return err
			}
			b = b[n:]
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	wantFile(t, path, string(big))

	// A bare name writes in the working folder.
	t.Chdir(dir)
	if err := WriteFile("g", 0o644, writeString("bare")); err != nil {
		t.Fatal(err)
	}
	wantFile(t, filepath.Join(dir, "g"), "bare")
}

func TestWriteFileFailures(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}

	// The callback fails after writing: its error, the old file intact.
	boom := errors.New("boom")
	err := WriteFile(path, 0o644, func(w io.Writer) error {
		io.WriteString(w, "half")
		return boom
	})
	if err != boom {
		t.Fatalf("got %v, want the callback's error", err)
	}
	wantFile(t, path, "old")

	// A folder that does not exist.
	missing := filepath.Join(dir, "no", "f")
	if err := WriteFile(missing, 0o644, writeString("x")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing folder: %v", err)
	}
	if _, err := os.Stat(filepath.Dir(missing)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the missing folder was made: %v", err)
	}

	// The rename fails (path is a folder that is not empty) after the
	// temporary file is written and synced.
	sub := filepath.Join(dir, "sub")
	if err := os.MkdirAll(filepath.Join(sub, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(sub, 0o644, writeString("x")); err == nil {
		t.Fatal("writing over a folder worked")
	}
	if got := names(t, sub); !slices.Equal(got, []string{"x"}) {
		t.Fatalf("the folder holds %v after a failed write", got)
	}
	if got := names(t, dir); !slices.Equal(got, []string{"f", "sub"}) {
		t.Fatalf("temporary files left: %v", got)
	}
}

func TestWriteFilePerm(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no unix permission bits")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	for _, perm := range []os.FileMode{0o644, 0o600, 0o640, 0o666} {
		if err := WriteFile(path, perm, writeString("x")); err != nil {
			t.Fatal(err)
		}
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := st.Mode().Perm(); got != perm {
			t.Errorf("mode %v, want %v", got, perm)
		}
	}
}

func TestTemp(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")

	// Commit: written through the *os.File, the start rewritten last.
	tf, err := CreateTemp(path, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if name := filepath.Base(tf.File.Name()); name[0] != '.' || filepath.Dir(tf.File.Name()) != dir {
		t.Fatalf("temporary file %s: not hidden beside %s", tf.File.Name(), path)
	}
	if _, err := io.WriteString(tf.File, "xxxxbody"); err != nil {
		t.Fatal(err)
	}
	if _, err := tf.File.WriteAt([]byte("head"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("path exists before Commit: %v", err)
	}
	if err := tf.Commit(); err != nil {
		t.Fatal(err)
	}
	tf.Abort() // after Commit: nothing
	wantFile(t, path, "headbody")
	if err := tf.Commit(); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("a second Commit: %v", err)
	}

	// Abort: the temporary file goes, path stays.
	tf, err = CreateTemp(path, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(tf.File, "new")
	tf.Abort()
	tf.Abort()
	wantFile(t, path, "headbody")
	if err := tf.Commit(); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Commit after Abort: %v", err)
	}
	if got := names(t, dir); !slices.Equal(got, []string{"f"}) {
		t.Fatalf("folder holds %v, want f alone", got)
	}

	if _, err := CreateTemp(filepath.Join(dir, "no", "f"), 0o644); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing folder: %v", err)
	}
}

// writeDir makes a folder holding the named files, each holding its name.
func writeDir(t *testing.T, dir string, files ...string) {
	t.Helper()
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestReplaceDir(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "d")

	// Onto a new name.
	tmp := filepath.Join(parent, ".d.tmp")
	writeDir(t, tmp, "a", "b")
	if err := ReplaceDir(tmp, dir); err != nil {
		t.Fatal(err)
	}
	if got := names(t, dir); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("new folder holds %v", got)
	}
	if got := names(t, parent); !slices.Equal(got, []string{"d"}) {
		t.Fatalf("parent holds %v, want d alone", got)
	}

	// Over an existing folder, with what a crash left aside, and a
	// trailing slash.
	writeDir(t, tmp, "c")
	writeDir(t, tmp+".old", "stale")
	if err := ReplaceDir(tmp, dir+string(filepath.Separator)); err != nil {
		t.Fatal(err)
	}
	if got := names(t, dir); !slices.Equal(got, []string{"c"}) {
		t.Fatalf("replaced folder holds %v, want c alone", got)
	}
	wantFile(t, filepath.Join(dir, "c"), "c")
	if got := names(t, parent); !slices.Equal(got, []string{"d"}) {
		t.Fatalf("parent holds %v, want d alone", got)
	}

	// Over an empty folder.
	empty := filepath.Join(parent, "empty")
	writeDir(t, empty)
	writeDir(t, tmp, "e")
	if err := ReplaceDir(tmp, empty); err != nil {
		t.Fatal(err)
	}
	if got := names(t, empty); !slices.Equal(got, []string{"e"}) {
		t.Fatalf("replaced empty folder holds %v", got)
	}
}

func TestReplaceDirFailures(t *testing.T) {
	parent := t.TempDir()
	tmp := filepath.Join(parent, ".tmp")

	// A file in the way is not replaced.
	file := filepath.Join(parent, "file")
	if err := os.WriteFile(file, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	writeDir(t, tmp, "a")
	if err := ReplaceDir(tmp, file); err == nil {
		t.Fatal("a folder replaced a file")
	}
	wantFile(t, file, "keep")
	if got := names(t, parent); !slices.Equal(got, []string{"file"}) {
		t.Fatalf("parent holds %v after a failed replace", got)
	}

	// The parent does not exist.
	writeDir(t, tmp, "a")
	if err := ReplaceDir(tmp, filepath.Join(parent, "no", "d")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing parent: %v", err)
	}
	if got := names(t, parent); !slices.Equal(got, []string{"file"}) {
		t.Fatalf("parent holds %v after a failed replace", got)
	}

	// tmp does not exist.
	if err := ReplaceDir(tmp, filepath.Join(parent, "d")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing tmp: %v", err)
	}
}
