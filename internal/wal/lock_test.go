//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package wal

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

func TestLock(t *testing.T) {
	dir := t.TempDir()
	opt := Options{Dir: dir, Name: "log"}
	l := mustOpen(t, opt)
	if _, err := Open(opt); !errors.Is(err, ErrLocked) {
		t.Fatalf("a second Open: %v, want ErrLocked", err)
	}
	// Another log in the same folder has a lock of its own.
	other := mustOpen(t, Options{Dir: dir, Name: "other"})
	other.Close()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l2, err := Open(opt)
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	l2.Close()
}

// lockChildEnv names the folder that TestLockChild opens, when the test
// binary runs as the child of TestLockAcrossProcesses.
const lockChildEnv = "WAL_TEST_LOCK_CHILD_DIR"

// TestLockChild is the other process of TestLockAcrossProcesses: it opens
// the log and prints what happened. It does nothing in a plain test run.
func TestLockChild(t *testing.T) {
	dir := os.Getenv(lockChildEnv)
	if dir == "" {
		t.Skip("runs as the child of TestLockAcrossProcesses")
	}
	l, err := Open(Options{Dir: dir, Name: "log"})
	switch {
	case errors.Is(err, ErrLocked):
		fmt.Println("child: locked")
	case err != nil:
		fmt.Println("child: error:", err)
	default:
		fmt.Println("child: opened")
		l.Close()
	}
}

func TestLockAcrossProcesses(t *testing.T) {
	dir := t.TempDir()
	child := func() string {
		cmd := exec.Command(os.Args[0], "-test.run=^TestLockChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), lockChildEnv+"="+dir)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("the child: %v\n%s", err, out)
		}
		for line := range strings.Lines(string(out)) {
			if s, ok := strings.CutPrefix(line, "child: "); ok {
				return strings.TrimSpace(s)
			}
		}
		t.Fatalf("the child said nothing:\n%s", out)
		return ""
	}
	l := mustOpen(t, Options{Dir: dir, Name: "log"})
	if got := child(); got != "locked" {
		t.Fatalf("the child, while the log is open here: %q, want locked", got)
	}
	if _, _, err := l.Commit([]byte("{}\n")); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := child(); got != "opened" {
		t.Fatalf("the child, after Close: %q, want opened", got)
	}
	if data, err := os.ReadFile(segPath(dir, "log", 0)); err != nil || !bytes.Equal(data, []byte("{}\n")) {
		t.Fatalf("the segment after the child: %q, %v", data, err)
	}
}
