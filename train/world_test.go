package train

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/reelrank/reelrank/eventlog"
	"github.com/reelrank/reelrank/features"
	"github.com/reelrank/reelrank/sim"
)

func TestLoadWorldAndReplay(t *testing.T) {
	cfg := sim.DefaultConfig()
	cfg.Users, cfg.Reels, cfg.Days, cfg.Seed = 1500, 4000, 2, 5
	dir := t.TempDir()
	sum, err := sim.Generate(context.Background(), cfg, dir, sim.GenerateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := sim.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := features.NewStore(features.Config{EmbedDim: 8}); err != nil {
		t.Fatal(err)
	}
	wrong, _ := features.NewStore(features.Config{EmbedDim: w.Config().EmbedDim + 1})
	if err := LoadWorld(w, wrong); err == nil {
		t.Fatal("a store of the wrong embedding dimension accepted")
	}
	s, err := features.NewStore(features.Config{EmbedDim: w.Config().EmbedDim})
	if err != nil {
		t.Fatal(err)
	}
	if err := LoadWorld(w, s); err != nil {
		t.Fatal(err)
	}
	st := s.Stats()
	if st.Users != cfg.Users || st.Reels != w.NumReels() || !st.Categorized {
		t.Fatalf("stats %+v, world %d users %d reels", st, cfg.Users, w.NumReels())
	}
	var rows, watched int64
	rs, err := s.Replay(mustReader(t, filepath.Join(dir, sim.FileEvents)), features.ReplayOptions{Emit: func(b *features.RowBatch) error {
		for i := range b.N {
			rows++
			if l := b.Labels[i]; l.Outcome && !l.Skip {
				watched++
			}
		}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	if rows != sum.Counts.Impressions || rs.NoOutcome != 0 || rs.Orphans != 0 || watched == 0 {
		t.Fatalf("%d rows for %d impressions, %+v", rows, sum.Counts.Impressions, rs)
	}
}

func mustReader(t *testing.T, path string) *eventlog.Reader {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return eventlog.NewReader(f, eventlog.Options{})
}
