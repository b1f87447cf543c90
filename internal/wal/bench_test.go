package wal

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkCommit measures durable records per second: each operation is
// one record that a writer commits and waits for, as the engine does for
// one request. mode=group appends under the caller's lock and syncs
// outside it, so that concurrent writers share fsyncs; mode=fsync-each
// appends and fsyncs under the lock, one fsync per record, as the engine
// did before the log. The log lives under TMPDIR: point it at the disk to
// measure.
//
//	go test -run '^$' -bench Commit -benchtime 2000x ./internal/wal/
func BenchmarkCommit(b *testing.B) {
	rec := []byte(`{"type":"impression","ts":1767571200123,"user":42,"reel":9001,"author":77,"session":123456,"pos":3,"prop":0.00012,"arm":"popularity"}` + "\n")
	for _, writers := range []int{1, 16} {
		for _, mode := range []string{"fsync-each", "group"} {
			b.Run(fmt.Sprintf("writers=%d/mode=%s", writers, mode), func(b *testing.B) {
				l, err := Open(Options{Dir: b.TempDir(), Name: "bench"})
				if err != nil {
					b.Fatal(err)
				}
				defer l.Close()
				var mu sync.Mutex // the engine's lock
				commit := func() error {
					mu.Lock()
					_, next, err := l.Append(rec)
					if err != nil || mode == "fsync-each" {
						if err == nil {
							err = l.Sync(next)
						}
						mu.Unlock()
						return err
					}
					mu.Unlock()
					return l.Sync(next)
				}
				b.SetBytes(int64(len(rec)))
				base := l.Stats().Syncs
				var ops atomic.Int64
				var failed atomic.Value
				b.ResetTimer()
				start := time.Now()
				var wg sync.WaitGroup
				for range writers {
					wg.Go(func() {
						for ops.Add(1) <= int64(b.N) {
							if err := commit(); err != nil {
								failed.Store(err)
								return
							}
						}
					})
				}
				wg.Wait()
				elapsed := time.Since(start)
				b.StopTimer()
				if err, _ := failed.Load().(error); err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(l.Stats().Syncs-base)/float64(b.N), "fsyncs/op")
				b.ReportMetric(float64(b.N)/elapsed.Seconds(), "records/s")
			})
		}
	}
}
