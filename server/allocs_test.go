package server

import (
	"bufio"
	"context"
	"net"
	"slices"
	"testing"

	"github.com/reelrank/reelrank/wire"
)

// TestRecommendHandlerAllocations: a Recommend through the engine's handler
// allocates nothing once warm, when the server gives its answers back
// (Recycler) as it does after encoding them.
func TestRecommendHandlerAllocations(t *testing.T) {
	if raceEnabled || testing.Short() {
		t.Skip("allocation counts are measured without -short and -race (the purego build's generic kernels allocate)")
	}
	h := EngineHandlerWith(newTestEngine(t), EngineOptions{})
	req := &wire.RecommendRequest{User: 3, N: 20, Context: wire.Context{Time: testNow, Recent: []int64{4, 5}}, Exclude: []int64{6}}
	a := testing.AllocsPerRun(50, func() {
		r, err := h.Recommend(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		h.(Recycler).Recycle(r)
	})
	if a != 0 {
		t.Errorf("%.1f allocations a Recommend through the handler", a)
	}
}

// TestRecycledAnswers: an answer not given back is never overwritten, and
// one made in recycled memory keeps each item's probabilities apart.
func TestRecycledAnswers(t *testing.T) {
	h := EngineHandlerWith(newTestEngine(t), EngineOptions{})
	ctx := context.Background()
	for u := int64(1); u <= 5; u++ {
		req := &wire.RecommendRequest{User: u, N: 10 + int(u), Context: wire.Context{Time: testNow}}
		kept, err := h.Recommend(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		want := cloneRecommend(kept)
		for range 3 {
			r, err := h.Recommend(ctx, &wire.RecommendRequest{User: u%5 + 1, N: 20, Context: wire.Context{Time: testNow}})
			if err != nil {
				t.Fatal(err)
			}
			h.(Recycler).Recycle(r)
		}
		again, err := h.Recommend(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if !sameRecommend(kept, want) {
			t.Fatalf("user %d: an answer not given back changed", u)
		}
		// An answer in recycled memory: each item its own probabilities,
		// one a head, none sharing another's backing.
		seen := map[*float32]bool{}
		for i, it := range again.Items {
			if len(it.Probs) != len(again.Heads) || len(it.Probs) == 0 {
				t.Fatalf("user %d item %d: %d probabilities for %d heads", u, i, len(it.Probs), len(again.Heads))
			}
			for j := range it.Probs {
				if p := it.Probs[j]; !(p >= 0 && p <= 1) || seen[&it.Probs[j]] {
					t.Fatalf("user %d item %d: probability %v, or memory shared with another item", u, i, p)
				}
				seen[&it.Probs[j]] = true
			}
		}
		h.(Recycler).Recycle(kept)
		h.(Recycler).Recycle(again)
	}
}

func cloneRecommend(r *wire.RecommendResponse) *wire.RecommendResponse {
	c := *r
	c.Items = slices.Clone(r.Items)
	for i := range c.Items {
		c.Items[i].Probs = slices.Clone(r.Items[i].Probs)
	}
	return &c
}

func sameRecommend(a, b *wire.RecommendResponse) bool {
	if len(a.Items) != len(b.Items) || a.ModelVersion != b.ModelVersion || !slices.Equal(a.Heads, b.Heads) {
		return false
	}
	for i := range a.Items {
		x, y := a.Items[i], b.Items[i]
		if x.Reel != y.Reel || x.Score != y.Score || x.Source != y.Source || x.Propensity != y.Propensity || !slices.Equal(x.Probs, y.Probs) {
			return false
		}
	}
	return true
}

// TestRecommendServerAllocations counts the allocations of a Recommend
// round trip through a connection (the client's side here allocates
// nothing: a frame written as is, read into one buffer). What is left is
// the request's own: its deadline's context and timer (4), its admission
// task, its envelope, its decoded message, and the frame's read buffer
// now and then.
func TestRecommendServerAllocations(t *testing.T) {
	if raceEnabled || testing.Short() {
		t.Skip("allocation counts are measured without -short and -race")
	}
	h := EngineHandlerWith(newTestEngine(t), EngineOptions{})
	_, addr := startServer(t, Config{}, h)
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	var enc wire.Encoder
	frame, err := enc.EncodeFrame(&wire.Envelope{RequestID: 1, Body: &wire.RecommendRequest{User: 3, N: 20, Context: wire.Context{Time: testNow}}})
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReaderSize(nc, 1<<16)
	buf := make([]byte, 0, 1<<16)
	var env wire.Envelope
	round := func() {
		if _, err := nc.Write(frame); err != nil {
			t.Fatal(err)
		}
		b, err := wire.ReadFrame(br, 1<<20, buf[:0])
		if err != nil {
			t.Fatal(err)
		}
		buf = b
	}
	for range 20 {
		round()
	}
	if err := wire.Decode(buf, &env); err != nil {
		t.Fatal(err)
	}
	if r, ok := env.Body.(*wire.RecommendResponse); !ok || len(r.Items) == 0 {
		t.Fatalf("answer %T", env.Body)
	}
	if a := testing.AllocsPerRun(200, round); a > 8 {
		t.Errorf("%.1f allocations a Recommend through the server, want at most 8", a)
	}
}
