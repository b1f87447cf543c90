package features

import (
	"slices"
	"testing"

	"github.com/reelrank/reelrank/eventlog"
)

// TestInterestDirection checks x_int_dot and x_int_cos: a user who
// watches one category's reels through and skips another's gets a
// positive interest in reels near the first and a negative one near the
// second, and a user with no history none.
func TestInterestDirection(t *testing.T) {
	s, err := NewStore(Config{EmbedDim: 2, Categories: 2})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []int64{1, 2} {
		if err := s.PutUser(User{ID: u}); err != nil {
			t.Fatal(err)
		}
	}
	// Reels 1-8 near the x axis, 11-18 near the y axis; 20 and 21 new.
	for i := range int64(8) {
		d := float32(i) * 0.01
		for _, r := range []Reel{
			{ID: 1 + i, Author: 5, Duration: 10, Category: -1, Embedding: []float32{1, d}},
			{ID: 11 + i, Author: 6, Duration: 10, Category: -1, Embedding: []float32{d, 1}},
		} {
			if err := s.PutReel(r); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.FitCategories(1); err != nil {
		t.Fatal(err)
	}
	for _, r := range []Reel{
		{ID: 20, Author: 5, Duration: 10, Category: -1, Embedding: []float32{0.9, 0.3}},
		{ID: 21, Author: 6, Duration: 10, Category: -1, Embedding: []float32{0.2, 0.9}},
	} {
		if err := s.PutReel(r); err != nil {
			t.Fatal(err)
		}
	}
	const t0 = int64(1.7e12)
	var evs []eventlog.Event
	for i := range int64(8) {
		tm := t0 + i*60_000
		evs = append(evs, impression(tm, 1, 1+i, 5, 1, int32(2*i)), watch(tm+20_000, 1, 1+i, 5, 1, int32(2*i), 1),
			impression(tm+30_000, 1, 11+i, 6, 1, int32(2*i+1)), simple(eventlog.Skip, tm+31_000, 1, 11+i, 6, 1, int32(2*i+1)))
	}
	if err := s.Apply(evs); err != nil {
		t.Fatal(err)
	}
	sp := s.Spec()
	dot, cos := slices.Index(sp.Cross, "x_int_dot"), slices.Index(sp.Cross, "x_int_cos")
	if dot < 0 || cos != dot+1 {
		t.Fatalf("spec lacks the interest features: %v", sp.Cross)
	}
	nc := len(sp.Cross)
	req := &Request{User: 1, Reels: []int64{20, 21}, Context: Context{Time: t0 + 3_600_000}}
	if err := s.Features(req); err != nil {
		t.Fatal(err)
	}
	liked, skipped := req.CrossVec[dot:dot+2], req.CrossVec[nc+dot:nc+dot+2]
	if !(liked[0] > 0 && liked[1] > 0 && liked[1] <= 1) || !(skipped[0] < 0 && skipped[1] < 0 && skipped[1] >= -1) {
		t.Errorf("interest (dot, cos) in a reel of the watched category %v, of the skipped one %v", liked, skipped)
	}
	req.User = 2
	if err := s.Features(req); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if v := req.CrossVec[i*nc+dot : i*nc+dot+2]; v[0] != 0 || v[1] != 0 {
			t.Errorf("a user with no history: interest %v in reel %d", v, req.Reels[i])
		}
	}
}
