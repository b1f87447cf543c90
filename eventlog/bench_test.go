package eventlog

import (
	"bytes"
	"io"
	"testing"
)

// BenchmarkRead parses a realistic log (about 32 MB, written by the
// Writer) from memory to the end, per parser. MB/s is of log bytes.
//
//	flock /tmp/reelrank-bench.lock go test -run '^$' -bench Read -cpu 1,2 ./eventlog
func BenchmarkRead(b *testing.B) {
	data := writeLog(b, realisticLog(1, 100_000))
	for _, p := range parsers() {
		b.Run("parser="+p.String(), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			var n int
			for b.Loop() {
				rd := NewReader(bytes.NewReader(data), Options{Parser: p})
				n = 0
				for {
					evs, err := rd.Next()
					if err == io.EOF {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
					n += len(evs)
				}
			}
			b.ReportMetric(float64(n), "events")
		})
	}
}
