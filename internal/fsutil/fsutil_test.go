package fsutil

import (
	"os"
	"path/filepath"
	"testing"
)

func TestMap(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	if err := os.WriteFile(path, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	data, release, err := Map(path)
	if err != nil || string(data) != "hello" {
		t.Fatalf("%q, %v", data, err)
	}
	if err := release(); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, nil, 0o644)
	if data, release, err := Map(empty); err != nil || len(data) != 0 || release() != nil {
		t.Fatalf("empty file: %v", err)
	}
	if _, _, err := Map(dir); err == nil {
		t.Fatal("a folder mapped")
	}
	if _, _, err := Map(filepath.Join(dir, "missing")); !os.IsNotExist(err) {
		t.Fatalf("missing file: %v", err)
	}
	if err := SyncDir(dir); err != nil {
		t.Fatal(err)
	}
}
