package engine

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/reelrank/reelrank/eventlog"
)

// TestCheckpointArchives: with Config.ArchiveDir, a checkpoint moves the
// segments it drops into the archive, where the served log stays whole,
// and a restart over the folder still works; without it they are removed.
func TestCheckpointArchives(t *testing.T) {
	for _, archive := range []string{"", "archive"} {
		dir := t.TempDir()
		cfg := worldConfig{reels: 300, users: 5, authors: 30, known: 300, seed: 31}
		w := newWorld(t, cfg)
		e := w.engine(t, Config{Dir: dir, Epsilon: -1, ArchiveDir: archive}, w.model(t, "v1", "A", 31))
		for i := range int64(3) {
			if _, err := e.Event([]eventlog.Event{impressionEvent(w.now-1000+i, 1, 10+i, 4, 77)}); err != nil {
				t.Fatal(err)
			}
			if _, err := e.Upsert(Reel{ID: 9001 + i, Author: 4, Upload: w.now - 30_000, Category: -1, Duration: 12}); err != nil {
				t.Fatal(err)
			}
			if err := e.Checkpoint(); err != nil {
				t.Fatal(err)
			}
		}
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
		live, _ := filepath.Glob(filepath.Join(dir, eventsName+"-*.jsonl"))
		arch, _ := filepath.Glob(filepath.Join(dir, "archive", eventsName+"-*.jsonl"))
		archCat, _ := filepath.Glob(filepath.Join(dir, "archive", catalogueName+"-*.jsonl"))
		if archive == "" {
			if len(arch) != 0 || len(live) != 1 {
				t.Errorf("no archive: %d live, %d archived event segments", len(live), len(arch))
			}
			continue
		}
		if len(arch) != 3 || len(archCat) != 3 || len(live) != 1 {
			t.Fatalf("archive: %d live, %d archived event segments, %d archived journal segments", len(live), len(arch), len(archCat))
		}
		var lines int
		for _, p := range arch {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range b {
				if c == '\n' {
					lines++
				}
			}
		}
		if lines != 3 {
			t.Errorf("the archive holds %d event lines, want 3", lines)
		}
		w2 := newWorld(t, cfg)
		e2 := w2.engine(t, Config{Dir: dir, Epsilon: -1, ArchiveDir: archive}, w2.model(t, "v1", "A", 31))
		if _, ok := e2.Store().ReelInfo(9003); !ok {
			t.Error("the upserted reel is not back after a restart")
		}
		e2.Close()
	}
}
