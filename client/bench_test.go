package client_test

import (
	"context"
	"runtime"
	"testing"

	"github.com/reelrank/reelrank/client"
	"github.com/reelrank/reelrank/client/clienttest"
	"github.com/reelrank/reelrank/wire"
)

// BenchmarkRecommend is the round trip of a 20-item Recommend to the
// in-process fake server over loopback TCP: one caller at a time
// (callers=1), and 64 callers pipelining on the pool (callers=64), whose
// time per op is the inverse of the throughput. It measures the client
// and the fake server together; the fake's goroutine per request and its
// encoding are part of the figure.
func BenchmarkRecommend(b *testing.B) {
	s, err := clienttest.Start(clienttest.Static("bench"), clienttest.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	for _, tc := range []struct {
		name    string
		callers int
	}{{"callers=1", 1}, {"callers=64", 64}} {
		b.Run(tc.name, func(b *testing.B) {
			c, err := client.Dial(context.Background(), s.Addr, client.Options{PoolSize: 2})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			req := &wire.RecommendRequest{User: 42, N: 20, Context: wire.Context{Time: 1_700_000_000_000,
				Recent: []int64{1, 2, 3}}}
			ctx := context.Background()
			b.ReportAllocs()
			if tc.callers == 1 {
				for b.Loop() {
					if _, err := c.Recommend(ctx, req); err != nil {
						b.Fatal(err)
					}
				}
				return
			}
			b.SetParallelism(max(1, tc.callers/testingProcs()))
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := c.Recommend(ctx, req); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// testingProcs is GOMAXPROCS, which RunParallel multiplies by the
// parallelism.
func testingProcs() int { return runtime.GOMAXPROCS(0) }

// BenchmarkMergeRecommend is the merge alone of four shards' answers of
// 20 items each (five heads) into the best 20: the CPU part of what a
// Sharded adds to the slowest shard's round trip.
func BenchmarkMergeRecommend(b *testing.B) {
	heads := []string{"watch", "like", "comment", "share", "follow"}
	resps := make([]*wire.RecommendResponse, 4)
	for s := range resps {
		r := &wire.RecommendResponse{Heads: heads, ModelVersion: "m", Arm: "a"}
		for j := range 20 {
			r.Items = append(r.Items, wire.Item{Reel: int64(1000*s + j), Score: float32((7*s+13*j)%97) / 97,
				Probs: []float32{0.1, 0.2, 0.3, 0.4, 0.5}, Propensity: 1})
		}
		resps[s] = r
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := client.MergeRecommend(resps, 20); err != nil {
			b.Fatal(err)
		}
	}
}
