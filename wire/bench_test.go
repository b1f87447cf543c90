package wire

import (
	"testing"
	"time"
)

// recommendResponse20 is a Recommend response of 20 items with five heads,
// the size a feed page asks for.
func recommendResponse20() *Envelope {
	heads := []string{"watch_through", "like", "comment", "share", "follow"}
	m := &RecommendResponse{Heads: heads, ModelVersion: "2026-11-20T04:00:00Z-a1b2c3", Arm: "treatment-b",
		Timings: Timings{Features: 410 * time.Microsecond, Tower: 95 * time.Microsecond, ANN: 820 * time.Microsecond,
			Rank: 1300 * time.Microsecond, Postrank: 40 * time.Microsecond, Total: 2700 * time.Microsecond,
			ANNCandidates: 1000, FreshCandidates: 100, ExploreCandidates: 50, Ranked: 1150}}
	m.Items = make([]Item, 20)
	for i := range m.Items {
		m.Items[i] = Item{Reel: int64(1_000_000 + 7919*i), Score: 1 / float32(i+1),
			Probs: []float32{0.4, 0.05, 0.01, 0.02, 0.003}, Propensity: 0.9, Source: Source(i % 3)}
	}
	return &Envelope{RequestID: 12345, Timeout: 20 * time.Millisecond, Body: m}
}

func BenchmarkEncode(b *testing.B) {
	env := recommendResponse20()
	var enc Encoder
	buf, err := enc.EncodeFrame(env)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := enc.EncodeFrame(env); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	buf, err := Encode(recommendResponse20())
	if err != nil {
		b.Fatal(err)
	}
	b.Run("reused", func(b *testing.B) {
		var env Envelope
		b.SetBytes(int64(len(buf)))
		b.ReportAllocs()
		for b.Loop() {
			if err := Decode(buf, &env); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("fresh", func(b *testing.B) {
		b.SetBytes(int64(len(buf)))
		b.ReportAllocs()
		for b.Loop() {
			var env Envelope
			if err := Decode(buf, &env); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("verify", func(b *testing.B) {
		b.SetBytes(int64(len(buf)))
		b.ReportAllocs()
		for b.Loop() {
			if err := verify(buf); err != nil {
				b.Fatal(err)
			}
		}
	})
}
