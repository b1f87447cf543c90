package modeldir_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/reelrank/reelrank/modeldir"
)

// FuzzManifest opens a version folder whose manifest.json is any bytes:
// the folder opens (the bytes were its real manifest, or a manifest
// naming the same files) or is refused with an error; Open never panics
// and never opens a folder whose files the manifest does not vouch for.
func FuzzManifest(f *testing.F) {
	dir := filepath.Join(f.TempDir(), "v1")
	if err := modeldir.Write(dir, smallContents(f, "v1", 1)); err != nil {
		f.Fatal(err)
	}
	good, err := os.ReadFile(filepath.Join(dir, modeldir.ManifestFile))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"format":1,"files":[{"name":"../../etc/passwd","size":1,"sha256":"00"}]}`))
	f.Add(good[:len(good)/2])
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(filepath.Join(dir, modeldir.ManifestFile), data, 0o644); err != nil {
			t.Fatal(err)
		}
		v, err := modeldir.Open(context.Background(), dir, modeldir.Options{})
		if err != nil {
			if !errors.Is(err, modeldir.ErrCorrupt) {
				t.Fatalf("a bad manifest refused without ErrCorrupt: %v", err)
			}
			return
		}
		v.Close()
	})
}

// FuzzArms reads any bytes as served/arms.json: a record that loads
// passes its own checks and saves again.
func FuzzArms(f *testing.F) {
	f.Add([]byte(`{"control":{"dir":"/m/v1","version":"v1"}}`))
	f.Add([]byte(`{"control":{"dir":"/m/v1"},"canary":{"dir":"/m/v2"},"canary_share":0.1,"holdout_share":0.05}`))
	f.Add([]byte(`{"control":{"dir":"a"},"canary_share":1e308}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, modeldir.ArmsFile), data, 0o644); err != nil {
			t.Fatal(err)
		}
		arms, ok, err := modeldir.LoadArms(dir)
		if err != nil || !ok {
			return
		}
		if err := modeldir.SaveArms(t.TempDir(), arms); err != nil {
			t.Fatalf("a record that loaded does not save: %v", err)
		}
	})
}
