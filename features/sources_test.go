package features

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reelrank/reelrank/eventlog"
)

var allQuotas = SourceQuotas{Region: 10, Language: 10, Followed: 10, Popular: 10}

// sourcesStore is a hand-made store: countries 0 and 1, languages 0 and 1
// (codes 1 and 2), and watch-throughs whose order is known.
//
//	user 1: country 0, language 0, follows author 100
//	user 2: country 1, language 1, follows authors 100 and 101
//	user 3: country 0, language 1
//	reels: 10 (author 100, lang 0, uploaded 2 days ago), 11 (100, lang 1,
//	2 h ago), 12 (101, lang 1, 3 days ago), 13 (101, lang 0, 1 h ago),
//	14 (102, lang 0, 8 days ago), 15 (100, lang 0, 30 h ago), 16 (100,
//	not yet uploaded)
func sourcesStore(t testing.TB) (*Store, []eventlog.Event) {
	t.Helper()
	s := newTestStore(t, Config{EmbedDim: 4, Categories: 2, Countries: 4, Languages: 4})
	users := []User{{ID: 1, Country: 0, Language: 0}, {ID: 2, Country: 1, Language: 1}, {ID: 3, Country: 0, Language: 1}}
	for _, u := range users {
		if err := s.PutUser(u); err != nil {
			t.Fatal(err)
		}
	}
	h := int64(time.Hour / time.Millisecond)
	reels := []Reel{
		{ID: 10, Author: 100, Upload: t0 - 48*h, Language: 1},
		{ID: 11, Author: 100, Upload: t0 - 2*h, Language: 2},
		{ID: 12, Author: 101, Upload: t0 - 72*h, Language: 2},
		{ID: 13, Author: 101, Upload: t0 - 1*h, Language: 1},
		{ID: 14, Author: 102, Upload: t0 - 8*24*h, Language: 1},
		{ID: 15, Author: 100, Upload: t0 - 30*h, Language: 1},
		{ID: 16, Author: 100, Upload: t0 + 24*h, Language: 1},
	}
	for _, r := range reels {
		r.Category = 0
		if err := s.PutReel(r); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []Follow{{1, 100}, {2, 100}, {2, 101}} {
		if err := s.PutFollow(f.User, f.Author); err != nil {
			t.Fatal(err)
		}
	}
	// Watch-throughs (user, reel, times), all at t0-1s.
	wts := []struct{ user, reel, n int64 }{
		{1, 10, 3}, {1, 11, 1}, {3, 15, 2}, // country 0: 10 (3), 15 (2), 11 (1)
		{2, 12, 5}, {2, 11, 2}, {2, 14, 4}, // country 1: 12 (5), 14 (4), 11 (2)
		{2, 16, 9}, // not yet uploaded as of t0
	}
	author := map[int64]int64{10: 100, 11: 100, 12: 101, 13: 101, 14: 102, 15: 100, 16: 100}
	var evs []eventlog.Event
	for _, w := range wts {
		for range w.n {
			evs = append(evs, watch(t0-1000, w.user, w.reel, author[w.reel], 1, 0, 0.9))
		}
	}
	evs = append(evs, watch(t0-1000, 1, 13, 101, 1, 0, 0.3)) // not a watch-through
	if err := s.Apply(evs); err != nil {
		t.Fatal(err)
	}
	return s, evs
}

func ids(cs []Candidate, src CandidateSource) []int64 {
	var out []int64
	for _, c := range cs {
		if c.Source == src {
			out = append(out, c.Reel)
		}
	}
	return out
}

func TestSourcesPerSource(t *testing.T) {
	s, _ := sourcesStore(t)
	one := func(user int64, prof *User, q SourceQuotas, src CandidateSource) []int64 {
		t.Helper()
		got, err := s.Sources(nil, user, prof, t0, q, nil)
		if err != nil {
			t.Fatal(err)
		}
		return ids(got, src)
	}
	cases := []struct {
		name string
		user int64
		q    SourceQuotas
		src  CandidateSource
		want []int64
	}{
		{"region country 0", 1, SourceQuotas{Region: 10}, SourceRegion, []int64{10, 15, 11}},
		{"region country 1", 2, SourceQuotas{Region: 10}, SourceRegion, []int64{12, 14, 11}},
		{"region quota", 2, SourceQuotas{Region: 2}, SourceRegion, []int64{12, 14}},
		// Overall: 12 (5), 14 (4), 10 (3), 11 (3: the store saw 10 first), 15 (2).
		{"language 0", 1, SourceQuotas{Language: 10}, SourceLanguage, []int64{14, 10, 15}},
		{"language 1", 3, SourceQuotas{Language: 10}, SourceLanguage, []int64{12, 11}},
		// Followed by user 2 (authors 100, 101): within a day, newest
		// first: 13 (1 h), 11 (2 h); then by watch-throughs: 12 (5), 10
		// (3), 15 (2). 14 is 8 days old, 16 not yet uploaded.
		{"followed", 2, SourceQuotas{Followed: 10}, SourceFollowed, []int64{13, 11, 12, 10, 15}},
		{"followed author 100", 1, SourceQuotas{Followed: 10}, SourceFollowed, []int64{11, 10, 15}},
		{"followed none", 3, SourceQuotas{Followed: 10}, SourceFollowed, nil},
		{"popular", 3, SourceQuotas{Popular: 10}, SourcePopular, []int64{12, 14, 10, 11, 15}},
		{"popular quota", 3, SourceQuotas{Popular: 1}, SourcePopular, []int64{12}},
	}
	for _, c := range cases {
		if got := one(c.user, nil, c.q, c.src); !slices.Equal(got, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
	// An unknown user with a profile: country 1, language code 0 (slot 0).
	prof := &User{ID: 99, Country: 1, Language: 0}
	if got := one(99, prof, SourceQuotas{Region: 10}, SourceRegion); !slices.Equal(got, []int64{12, 14, 11}) {
		t.Errorf("unknown user's region: %v", got)
	}
	if got := one(99, prof, SourceQuotas{Language: 10}, SourceLanguage); !slices.Equal(got, []int64{14, 10, 15}) {
		t.Errorf("unknown user's language: %v", got)
	}
	// Without a profile, an unknown user is in the "other" slots: no
	// region, no language, no follows; popularity still.
	got, err := s.Sources(nil, 99, nil, t0, allQuotas, nil)
	if err != nil || len(got) != 5 || ids(got, SourcePopular) == nil {
		t.Errorf("unknown user without profile: %v, %v", got, err)
	}
	// A reel not yet uploaded (16, the most watched in country 1) never
	// appears.
	if got := one(2, nil, SourceQuotas{Popular: 1}, SourcePopular); got[0] != 12 {
		t.Errorf("popular before the upload: %v", got)
	}
	for _, src := range []CandidateSource{SourceRegion, SourceLanguage, SourceFollowed, SourcePopular} {
		if src.String() == "" || src.String()[0] == 's' {
			t.Errorf("%d: %q", src, src)
		}
	}
}

func TestSourcesExcludeAndDedup(t *testing.T) {
	s, _ := sourcesStore(t)
	got, err := s.Sources(nil, 2, nil, t0, allQuotas, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Region first (12, 14, 11), then language 1 (12, 11: both taken),
	// followed (13, 10, 15; 11 and 12 taken), popular (nothing left).
	want := []Candidate{{12, SourceRegion}, {14, SourceRegion}, {11, SourceRegion},
		{13, SourceFollowed}, {10, SourceFollowed}, {15, SourceFollowed}}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	// Excluded reels leave room for the next ones; dst keeps its entries.
	ex := func(id int64) bool { return id == 12 || id == 13 }
	got, err = s.Sources([]Candidate{{Reel: 7}}, 2, nil, t0, SourceQuotas{Region: 2, Followed: 2, Popular: 5}, ex)
	if err != nil {
		t.Fatal(err)
	}
	want = []Candidate{{7, 0}, {14, SourceRegion}, {11, SourceRegion}, {10, SourceFollowed}, {15, SourceFollowed}}
	if !slices.Equal(got, want) {
		t.Fatalf("with exclusions: got %v, want %v", got, want)
	}
}

func TestSourcesBadInput(t *testing.T) {
	s, _ := sourcesStore(t)
	if _, err := s.Sources(nil, -1, nil, t0, allQuotas, nil); !errors.Is(err, ErrBadID) {
		t.Errorf("negative user: %v", err)
	}
	if _, err := s.Sources(nil, 1, nil, t0, SourceQuotas{Region: -1}, nil); err == nil {
		t.Error("negative quota: no error")
	}
	if _, err := s.Sources(nil, 1, nil, t0-time.Hour.Milliseconds(), allQuotas, nil); !errors.Is(err, ErrPast) {
		t.Errorf("past: %v", err)
	}
	huge := SourceQuotas{Region: 1 << 62, Language: 1 << 62, Followed: 1 << 62, Popular: 1 << 62}
	got, err := s.Sources(nil, 2, nil, t0, huge, nil)
	if err != nil || len(got) != 6 {
		t.Errorf("huge quotas: %v, %v", got, err)
	}
	odd := &User{Country: -5, Language: 1 << 40}
	if got, err := s.Sources(nil, 1<<62, odd, t0, huge, nil); err != nil || len(ids(got, SourceRegion)) != 0 {
		t.Errorf("odd profile: %v, %v", got, err)
	}
	empty := newTestStore(t, Config{})
	if got, err := empty.Sources(nil, 1, nil, 0, huge, nil); err != nil || len(got) != 0 {
		t.Errorf("empty store: %v, %v", got, err)
	}
}

// sourcesWorld applies a random log: many reels (more than a list keeps),
// users in a few countries, follows, uploads, and 5 days of events, so
// that the landmark moves.
func sourcesWorld(seed uint64) (cat func(*Store) error, evs []eventlog.Event) {
	r := rand.New(rand.NewPCG(seed, 1))
	const nReels, nUsers = 1500, 60
	h := time.Hour.Milliseconds()
	cat = func(s *Store) error {
		for u := int64(1); u <= nUsers; u++ {
			if err := s.PutUser(User{ID: u, Country: int(u % 5), Language: int(u % 4)}); err != nil {
				return err
			}
			if err := s.PutFollow(u, 1000+u%7); err != nil {
				return err
			}
		}
		for i := int64(1); i <= nReels; i++ {
			if err := s.PutReel(Reel{ID: i, Author: 1000 + i%40, Upload: t0 - (i%200)*h, Language: int(i % 5), Category: 0}); err != nil {
				return err
			}
		}
		return nil
	}
	tm := t0
	for range 20000 {
		tm += int64(r.IntN(40_000))
		u := 1 + r.Int64N(nUsers)
		switch r.IntN(20) {
		case 0:
			evs = append(evs, eventlog.Event{Type: eventlog.Follow, Has: eventlog.Required(eventlog.Follow), Time: tm, User: u, Author: 1000 + r.Int64N(40)})
		case 1:
			id := nReels + 1 + r.Int64N(100)
			evs = append(evs, eventlog.Event{Type: eventlog.Upload, Has: eventlog.Required(eventlog.Upload), Time: tm, Reel: id, Author: 1000 + id%40})
		default:
			// Popularity skewed toward low ids.
			id := 1 + int64(float64(nReels)*r.Float64()*r.Float64())
			evs = append(evs, watch(tm, u, id, 1000+id%40, u, 0, r.Float32()))
		}
	}
	return cat, evs
}

func allSources(t testing.TB, s *Store, tm int64) [][]Candidate {
	t.Helper()
	var out [][]Candidate
	q := SourceQuotas{Region: 300, Language: 300, Followed: 100, Popular: 2000}
	for u := int64(0); u <= 62; u++ {
		got, err := s.Sources(nil, u, &User{Country: int(u % 3), Language: int(u % 3)}, tm, q, func(id int64) bool { return id%17 == 0 })
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, got)
	}
	return out
}

// checkLists compares every popularity list with the first SourceListLen
// reels by the counts, found by brute force.
func checkLists(t *testing.T, s *Store) {
	t.Helper()
	brute := func(name string, l *topList, score func(i int32) (float32, bool)) {
		var all []topEntry
		for i := range s.reels.recs {
			if v, ok := score(int32(i)); ok && v > 0 {
				all = append(all, topEntry{score: v, idx: int32(i)})
			}
		}
		slices.SortFunc(all, func(a, b topEntry) int {
			if below(a, b) {
				return 1
			}
			return -1
		})
		all = all[:min(len(all), SourceListLen)]
		got := slices.Clone(l.h)
		slices.SortFunc(got, func(a, b topEntry) int {
			if below(a, b) {
				return 1
			}
			return -1
		})
		if !slices.Equal(got, all) {
			t.Errorf("%s: list of %d differs from the brute force's %d", name, len(got), len(all))
		}
		for i, e := range l.h {
			if l.pos[e.idx] != int32(i) || i > 0 && below(e, l.h[(i-1)/2]) {
				t.Fatalf("%s: heap broken at %d", name, i)
			}
		}
	}
	brute("popular", &s.src.popTop, func(i int32) (float32, bool) { return s.reelWT(i), true })
	for l := range s.src.langTop {
		brute("language", &s.src.langTop[l], func(i int32) (float32, bool) { return s.reelWT(i), int(s.reels.recs[i].lang) == l })
	}
	for c, m := range s.src.region {
		brute("region", &s.src.regionTop[c], func(i int32) (float32, bool) { v, ok := m[i]; return v, ok })
	}
}

func TestSourcesListsExactAndDeterministic(t *testing.T) {
	cat, evs := sourcesWorld(3)
	cfg := Config{EmbedDim: 4, Categories: 2}
	build := func(batch int) *Store {
		s := newTestStore(t, cfg)
		if err := cat(s); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < len(evs); i += batch {
			if err := s.Apply(evs[i:min(i+batch, len(evs))]); err != nil {
				t.Fatal(err)
			}
		}
		return s
	}
	a, b := build(1), build(997)
	if a.landmark <= evs[0].Time {
		t.Fatalf("the landmark did not move (at %d)", a.landmark)
	}
	checkLists(t, a)
	tm := a.Stats().Newest
	sa, sb := allSources(t, a, tm), allSources(t, b, tm)
	if !slices.EqualFunc(sa, sb, slices.Equal) {
		t.Fatal("the same events in other batches give other sources")
	}
	full := 0
	for _, c := range sa {
		for _, src := range []CandidateSource{SourceRegion, SourceLanguage, SourceFollowed, SourcePopular} {
			if len(ids(c, src)) > 0 {
				full++
			}
		}
	}
	if full < 100 {
		t.Fatalf("only %d user×source lists are non-empty", full)
	}
	for _, c := range sa {
		seen := map[int64]bool{}
		for _, x := range c {
			if seen[x.Reel] || x.Reel%17 == 0 {
				t.Fatalf("reel %d twice or excluded", x.Reel)
			}
			seen[x.Reel] = true
		}
	}
}

func TestSourcesSnapshotRoundTrip(t *testing.T) {
	cat, evs := sourcesWorld(4)
	s := newTestStore(t, Config{EmbedDim: 4, Categories: 2})
	if err := cat(s); err != nil {
		t.Fatal(err)
	}
	half := len(evs) / 2
	if err := s.Apply(evs[:half]); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "snap")
	if err := s.SaveSnapshot(path); err != nil {
		t.Fatal(err)
	}
	l, err := LoadSnapshot(path)
	if err != nil {
		t.Fatal(err)
	}
	tm := evs[half-1].Time
	if !slices.EqualFunc(allSources(t, s, tm), allSources(t, l, tm), slices.Equal) {
		t.Fatal("sources differ after a snapshot round trip")
	}
	// And after the rest of the events, applied to both.
	for _, x := range []*Store{s, l} {
		if err := x.Apply(evs[half:]); err != nil {
			t.Fatal(err)
		}
	}
	checkLists(t, l)
	tm = evs[len(evs)-1].Time
	if !slices.EqualFunc(allSources(t, s, tm), allSources(t, l, tm), slices.Equal) {
		t.Fatal("sources differ after the same events applied past a snapshot")
	}
}

func TestSourcesLanguageChange(t *testing.T) {
	s, _ := sourcesStore(t)
	// Reel 12 (language 1, the most watched) moves to language 0.
	if err := s.PutReel(Reel{ID: 12, Author: 101, Upload: t0 - 72*time.Hour.Milliseconds(), Language: 1}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Sources(nil, 1, nil, t0, SourceQuotas{Language: 10}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if l := ids(got, SourceLanguage); !slices.Equal(l, []int64{12, 14, 10, 15}) {
		t.Errorf("language 0 after the move: %v", l)
	}
	got, _ = s.Sources(nil, 3, nil, t0, SourceQuotas{Language: 10}, nil)
	if l := ids(got, SourceLanguage); !slices.Equal(l, []int64{11}) {
		t.Errorf("language 1 after the move: %v", l)
	}
}

// TestSnapshotVersion2Loads rewrites a snapshot without per-country counts
// as version 2 (which ended before them) and loads it.
func TestSnapshotVersion2Loads(t *testing.T) {
	s := newTestStore(t, Config{EmbedDim: 4, Categories: 2})
	if err := s.PutReel(Reel{ID: 1, Author: 2, Upload: t0, Language: 1}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "snap")
	if err := s.SaveSnapshot(path); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	body := slices.Clone(b[:len(b)-len(snapEnd)-4-8]) // without the zero count of region entries
	binary.LittleEndian.PutUint64(body[len(snapMagic):], snapVersion2)
	v2 := binary.LittleEndian.AppendUint32(body, crc32.Checksum(body, castagnoli))
	v2 = append(v2, snapEnd...)
	if err := os.WriteFile(path, v2, 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := LoadSnapshot(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := l.Reels(); len(got) != 1 || got[0].Language != 1 {
		t.Fatalf("reels after a version 2 load: %+v", got)
	}
	binary.LittleEndian.PutUint64(body[len(snapMagic):], 9)
	v9 := binary.LittleEndian.AppendUint32(body, crc32.Checksum(body, castagnoli))
	if err := os.WriteFile(path, append(v9, snapEnd...), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadSnapshot(path); !errors.Is(err, ErrBadSnapshot) || !strings.Contains(err.Error(), "version 9") {
		t.Fatalf("version 9: %v", err)
	}
}

// TestSourcesConcurrent asks for sources while events are applied (run
// with -race).
func TestSourcesConcurrent(t *testing.T) {
	cat, evs := sourcesWorld(8)
	s := newTestStore(t, Config{EmbedDim: 4, Categories: 2})
	if err := cat(s); err != nil {
		t.Fatal(err)
	}
	evs = evs[:4000]
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < len(evs); i += 100 {
			if err := s.Apply(evs[i : i+100]); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for u := int64(0); ; u = (u + 1) % 60 {
		select {
		case <-done:
			return
		default:
		}
		if _, err := s.Sources(nil, u, nil, evs[len(evs)-1].Time, allQuotas, nil); err != nil {
			t.Fatal(err)
		}
	}
}
