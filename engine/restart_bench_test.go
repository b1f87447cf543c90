package engine

import (
	"fmt"
	"os"
	"testing"

	"github.com/reelrank/reelrank/eventlog"
)

// BenchmarkRestart serves 1M events (in batches of 1,000) into an engine's
// folder, then times a restart over it with every event in the log's tail
// (checkpoint=false) and after a checkpoint (checkpoint=true), and reports
// the bytes the folder holds.
func BenchmarkRestart(b *testing.B) {
	const events, batch = 1_000_000, 1000
	for _, ck := range []bool{false, true} {
		b.Run(fmt.Sprint("checkpoint=", ck), func(b *testing.B) {
			cfg := worldConfig{reels: 2000, users: 500, authors: 200, seed: 60}
			w := newWorld(b, cfg)
			dir := b.TempDir()
			m := w.model(b, "v1", "A", 60)
			e, err := New(Config{Dir: dir, Clock: w.clock(), CheckpointInterval: -1, CheckpointBytes: -1}, w.store, m)
			if err != nil {
				b.Fatal(err)
			}
			evs := make([]eventlog.Event, batch)
			for i := 0; i < events; i += batch {
				for j := range evs {
					reel := int64(1 + (i+j)%2000)
					evs[j] = impressionEvent(w.now-int64(j), int64(1+(i+j)%500), reel, w.author[reel], int64(i/batch))
				}
				if _, err := e.Event(evs); err != nil {
					b.Fatal(err)
				}
			}
			if ck {
				if err := e.Checkpoint(); err != nil {
					b.Fatal(err)
				}
			}
			e.Close()
			var size int64
			ents, _ := os.ReadDir(dir)
			for _, ent := range ents {
				if fi, err := ent.Info(); err == nil {
					size += fi.Size()
				}
			}
			b.ResetTimer()
			for b.Loop() {
				b.StopTimer()
				w2 := newWorld(b, cfg)
				b.StartTimer()
				e2, err := New(Config{Dir: dir, Clock: w2.clock(), CheckpointInterval: -1, CheckpointBytes: -1}, w2.store, m)
				if err != nil {
					b.Fatal(err)
				}
				if got := e2.Store().Stats().Applied; got < events {
					b.Fatalf("restored %d events", got)
				}
				e2.Close()
			}
			b.ReportMetric(float64(size), "bytes-on-disk")
		})
	}
}
