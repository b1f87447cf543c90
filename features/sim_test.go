package features_test

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/reelrank/reelrank/eventlog"
	"github.com/reelrank/reelrank/features"
	"github.com/reelrank/reelrank/sim"
	"github.com/reelrank/reelrank/train"
)

func loadWorld(tb testing.TB, w *sim.World, s *features.Store) {
	tb.Helper()
	if err := train.LoadWorld(w, s); err != nil {
		tb.Fatal(err)
	}
}

// worldDir returns the folder of a simulated world: $REELRANK_WORLD when
// set (the default world, for the figure in BENCHMARKS.md), else a small
// one made here.
func worldDir(tb testing.TB, users, reels, days int) string {
	tb.Helper()
	if dir := os.Getenv("REELRANK_WORLD"); dir != "" {
		return dir
	}
	dir := tb.TempDir()
	cfg := sim.DefaultConfig()
	cfg.Users, cfg.Reels, cfg.Days, cfg.Seed = users, reels, days, 7
	if _, err := sim.Generate(context.Background(), cfg, dir, sim.GenerateOptions{}); err != nil {
		tb.Fatal(err)
	}
	return dir
}

// TestSimulatedWorld replays a small simulated world's log through the
// store and checks that every line is accounted for and the features
// move the way the world does.
func TestSimulatedWorld(t *testing.T) {
	if testing.Short() {
		t.Skip("generates a world")
	}
	dir := worldDir(t, 2000, 5000, 2)
	w, err := sim.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	s, err := features.NewStore(features.Config{EmbedDim: w.Config().EmbedDim})
	if err != nil {
		t.Fatal(err)
	}
	loadWorld(t, w, s)
	st, err := s.ApplyLog(filepath.Join(dir, "events.jsonl"), eventlog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Report.Err(); err != nil {
		t.Fatalf("the simulator wrote bad lines: %v", err)
	}
	if st.Applied != st.Report.Events || st.Applied == 0 || st.Refused != 0 {
		t.Fatalf("applied %d of %d events, refused %d", st.Applied, st.Report.Events, st.Refused)
	}
	if got := s.Stats(); got.Reels < 5000 || got.Users != 2000 || !got.Categorized {
		t.Fatalf("stats %+v", got)
	}
}

// cpuTime is the CPU time the process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkApplyLog is parse-and-apply on one core: the simulated log read
// by eventlog's reader and applied to the store, in MB of log per second.
// Set REELRANK_WORLD to a world folder to run it on that world's log.
func BenchmarkApplyLog(b *testing.B) {
	dir := worldDir(b, 20000, 50000, 3)
	w, err := sim.Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	path := filepath.Join(dir, "events.jsonl")
	for _, p := range []eventlog.Parser{eventlog.Scan, eventlog.SIMD, eventlog.Std} {
		if p == eventlog.SIMD && !eventlog.SIMDSupported() {
			continue
		}
		b.Run("parser="+p.String(), func(b *testing.B) {
			var bytes int64
			var cpu time.Duration
			for b.Loop() {
				b.StopTimer()
				s, err := features.NewStore(features.Config{EmbedDim: w.Config().EmbedDim})
				if err != nil {
					b.Fatal(err)
				}
				loadWorld(b, w, s)
				runtime.GC()
				b.StartTimer()
				c0 := cpuTime()
				st, err := s.ApplyLog(path, eventlog.Options{Parser: p})
				cpu += cpuTime() - c0
				if err != nil {
					b.Fatal(err)
				}
				bytes = st.Bytes
			}
			b.SetBytes(bytes)
			// Throughput per second of CPU, all threads together: what one
			// core does, whatever GOMAXPROCS lets overlap.
			b.ReportMetric(float64(bytes)*float64(b.N)/1e6/cpu.Seconds(), "MB/cpu-s")
			b.ReportMetric(float64(runtime.GOMAXPROCS(0)), "procs")
		})
	}
}

// BenchmarkReplay turns the simulated log into training rows: the
// features as of every impression and its labels. Set REELRANK_WORLD to a
// world folder to run it on that world's log.
func BenchmarkReplay(b *testing.B) {
	dir := worldDir(b, 20000, 50000, 3)
	w, err := sim.Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	var rows int64
	for b.Loop() {
		b.StopTimer()
		s, err := features.NewStore(features.Config{EmbedDim: w.Config().EmbedDim})
		if err != nil {
			b.Fatal(err)
		}
		loadWorld(b, w, s)
		f, err := os.Open(filepath.Join(dir, "events.jsonl"))
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		b.StartTimer()
		st, err := s.Replay(eventlog.NewReader(f, eventlog.Options{}), features.ReplayOptions{})
		f.Close()
		if err != nil {
			b.Fatal(err)
		}
		rows = st.Rows
	}
	b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(rows), "rows")
}
