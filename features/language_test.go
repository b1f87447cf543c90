package features

import (
	"slices"
	"testing"
)

func TestReelLanguage(t *testing.T) {
	s, err := NewStore(Config{EmbedDim: 4, Languages: 4})
	if err != nil {
		t.Fatal(err)
	}
	sp := s.Spec()
	if err := s.PutUser(User{ID: 1, Language: 2}); err != nil {
		t.Fatal(err)
	}
	for _, r := range []Reel{
		{ID: 10, Author: 5, Duration: 10, Category: -1, Language: 3}, // slot 2: the user's
		{ID: 11, Author: 5, Duration: 10, Category: -1, Language: 1}, // slot 0
		{ID: 12, Author: 5, Duration: 10, Category: -1},              // unknown
		{ID: 13, Author: 5, Duration: 10, Category: -1, Language: 9}, // beyond: "other"
	} {
		if err := s.PutReel(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PutReel(Reel{ID: 14, Language: -1}); err == nil {
		t.Error("a negative language code accepted")
	}
	req := &Request{User: 1, Reels: []int64{10, 11, 12, 13}, Context: Context{Time: 1e12}}
	if err := s.Features(req); err != nil {
		t.Fatal(err)
	}
	l0 := slices.Index(sp.Reel, "reel_lang_0")
	same := slices.Index(sp.Cross, "x_same_language")
	if l0 < 0 || same < 0 {
		t.Fatalf("spec lacks the language features: %v %v", sp.Reel, sp.Cross)
	}
	nr, nc := len(sp.Reel), len(sp.Cross)
	for i, c := range []struct {
		slot int // -1: none
		same float32
	}{{2, 1}, {0, 0}, {-1, 0}, {3, 0}} {
		oh := req.ReelVec[i*nr+l0 : i*nr+l0+4]
		for k, v := range oh {
			if want := float32(0); k == c.slot && v != 1 || k != c.slot && v != want {
				t.Errorf("reel %d: language one-hot %v, want slot %d", i, oh, c.slot)
				break
			}
		}
		if got := req.CrossVec[i*nc+same]; got != c.same {
			t.Errorf("reel %d: same language %v, want %v", i, got, c.same)
		}
	}
	// A snapshot keeps the languages.
	path := t.TempDir() + "/s.snap"
	if err := s.SaveSnapshot(path); err != nil {
		t.Fatal(err)
	}
	s2, err := LoadSnapshot(path)
	if err != nil {
		t.Fatal(err)
	}
	req2 := &Request{User: 1, Reels: req.Reels, Context: req.Context}
	if err := s2.Features(req2); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(req.ReelVec, req2.ReelVec) || !slices.Equal(req.CrossVec, req2.CrossVec) {
		t.Error("the loaded snapshot gives other features")
	}
}
