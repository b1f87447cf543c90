package eventlog

import (
	"bytes"
	"io"
	"os"
	"testing"
)

// BenchmarkRead parses a realistic log (about 32 MB, written by the
// Writer) from memory to the end, per parser. MB/s is of log bytes. With
// REELRANK_EVENTS set to a log file (a simulated world's events.jsonl) it
// parses that file instead.
//
//	flock /tmp/reelrank-bench.lock go test -run '^$' -bench Read -cpu 1,2 ./eventlog
func BenchmarkRead(b *testing.B) {
	var data []byte
	if path := os.Getenv("REELRANK_EVENTS"); path != "" {
		var err error
		if data, err = os.ReadFile(path); err != nil {
			b.Fatal(err)
		}
	} else {
		data = writeLog(b, realisticLog(1, 100_000))
	}
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

// BenchmarkSIMDParseOnly is simdjson-go's ParseND alone on the same log,
// cut into chunks the way the Reader cuts it, with its buffers reused:
// the ceiling of the SIMD path, before any field is read.
func BenchmarkSIMDParseOnly(b *testing.B) {
	if !SIMDSupported() {
		b.Skip("simdjson-go is not supported here")
	}
	data := writeLog(b, realisticLog(1, 100_000))
	var chunks [][]byte
	for rest := data; len(rest) > 0; {
		n := min(DefaultChunkSize, len(rest))
		if n < len(rest) {
			n = bytes.LastIndexByte(rest[:n], '\n') + 1
		}
		chunks = append(chunks, rest[:n])
		rest = rest[n:]
	}
	p := newSIMDParser()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		for _, c := range chunks {
			if _, err := p.parse(c); err != nil {
				b.Fatal(err)
			}
		}
	}
}
