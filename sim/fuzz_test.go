package sim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"
)

// FuzzOpen damages one file of a tiny world (a flipped byte and a cut)
// and opens it. The manifest's size and checksum of a damaged binary file
// are rewritten to match, so that the record checks behind the checksum
// are exercised too. Open must answer a world or an error, never panic.
func FuzzOpen(f *testing.F) {
	cfg := DefaultConfig()
	cfg.Users, cfg.Reels, cfg.Days, cfg.Seed, cfg.EmbedDim, cfg.Topics = 40, 60, 1, 3, 4, 4
	src := f.TempDir()
	if _, err := Generate(context.Background(), cfg, src, GenerateOptions{Threads: 1}); err != nil {
		f.Fatal(err)
	}
	names := []string{FileManifest, FileUsers, FileReels, FileFollows, FileEmbeddings}
	orig := map[string][]byte{}
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(src, n))
		if err != nil {
			f.Fatal(err)
		}
		orig[n] = b
	}
	f.Add(uint8(0), uint32(10), uint8(1), uint32(0))
	f.Add(uint8(1), uint32(45), uint8(0x80), uint32(0))
	f.Add(uint8(2), uint32(41), uint8(0xff), uint32(0))
	f.Add(uint8(3), uint32(0), uint8(0), uint32(7))
	f.Add(uint8(4), uint32(8), uint8(0x7f), uint32(0))
	f.Fuzz(func(t *testing.T, which uint8, at uint32, x uint8, cut uint32) {
		name := names[int(which)%len(names)]
		dir := t.TempDir()
		for _, n := range []string{FileManifest, FileUsers, FileReels, FileFollows, FileEmbeddings, FileEvents, FileReelsText} {
			b, ok := orig[n]
			if !ok {
				var err error
				if b, err = os.ReadFile(filepath.Join(src, n)); err != nil {
					t.Fatal(err)
				}
			}
			if n == name {
				b = append([]byte(nil), b...)
				if len(b) > 0 {
					b[int(at)%len(b)] ^= x
				}
				if c := int(cut) % (len(b) + 1); cut != 0 {
					b = b[:len(b)-c]
				}
				if n != FileManifest {
					if err := rewriteManifest(dir, orig[FileManifest], n, b); err != nil {
						t.Fatal(err)
					}
				}
			}
			if n == FileManifest && name != FileManifest {
				if _, err := os.Stat(filepath.Join(dir, n)); err == nil {
					continue // already rewritten
				}
			}
			if err := os.WriteFile(filepath.Join(dir, n), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		w, err := Open(dir)
		if err != nil {
			if errors.Is(err, ErrCorrupt) || errors.Is(err, ErrVersion) || errors.Is(err, ErrConfig) || errors.Is(err, ErrPolicy) {
				return
			}
			t.Fatalf("%s damaged: error %v is none of the package's errors", name, err)
		}
		defer w.Close()
		// A world that opens must answer its accessors.
		for id := int64(1); id <= int64(w.NumReels()); id++ {
			w.Embedding(id)
			w.Probs(1, id, Context{Time: w.Start()})
		}
	})
}

// rewriteManifest writes the manifest with the size and checksum of file
// name set to those of b.
func rewriteManifest(dir string, manifest []byte, name string, b []byte) error {
	var m map[string]any
	if err := json.Unmarshal(manifest, &m); err != nil {
		return err
	}
	files, _ := m["files"].([]any)
	for _, e := range files {
		fe, _ := e.(map[string]any)
		if fe["name"] == name {
			fe["bytes"] = len(b)
			fe["crc32c"] = fmt.Sprintf("%08x", crc32.Checksum(b, castagnoli))
		}
	}
	out, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, FileManifest), out, 0o644)
}
