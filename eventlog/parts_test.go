package eventlog

import (
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestOpenParts(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	a := write("a", "1\n2") // no newline at the end: one is given
	b := write("b", "")
	c := write("c", "3\n4\n{\"torn") // the torn line is cut
	d := write("d", "no newline at all")
	r := OpenParts([]Part{{Path: a}, {Path: b}, {Path: c, CutTorn: true}, {Path: d, CutTorn: true}})
	got, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if want := "1\n2\n3\n4\n"; string(got) != want {
		t.Errorf("read %q, want %q", got, want)
	}
	r.Close()
	r = OpenParts([]Part{{Path: a}, {Path: filepath.Join(dir, "missing")}})
	if _, err := io.ReadAll(r); err == nil {
		t.Error("a missing part read")
	}
	r.Close()
}
