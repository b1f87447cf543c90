package features

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/reelrank/reelrank/eventlog"
)

const t0 = int64(1767571200000) // 2026-01-05T00:00:00Z

func newTestStore(t testing.TB, cfg Config) *Store {
	t.Helper()
	s, err := NewStore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func impression(tm, user, reel, author, session int64, pos int32) eventlog.Event {
	return eventlog.Event{Type: eventlog.Impression, Has: eventlog.Required(eventlog.Impression), Time: tm, User: user,
		Reel: reel, Author: author, Session: session, Position: pos, Propensity: 0.5, Arm: "test"}
}

func watch(tm, user, reel, author, session int64, pos int32, frac float32) eventlog.Event {
	return eventlog.Event{Type: eventlog.Watch, Has: eventlog.Required(eventlog.Watch), Time: tm, User: user,
		Reel: reel, Author: author, Session: session, Position: pos, Seconds: frac * 20, Fraction: frac}
}

func simple(typ eventlog.Type, tm, user, reel, author, session int64, pos int32) eventlog.Event {
	return eventlog.Event{Type: typ, Has: eventlog.Required(typ), Time: tm, User: user,
		Reel: reel, Author: author, Session: session, Position: pos}
}

// feature returns the named feature of the request's user vector, or of
// reel row i's reel or cross vector.
func feature(t testing.TB, s *Store, r *Request, i int, name string) float32 {
	t.Helper()
	sp := s.Spec()
	if j := slices.Index(sp.User, name); j >= 0 {
		return r.UserVec[j]
	}
	if j := slices.Index(sp.Reel, name); j >= 0 {
		return r.ReelVec[i*len(sp.Reel)+j]
	}
	if j := slices.Index(sp.Cross, name); j >= 0 {
		return r.CrossVec[i*len(sp.Cross)+j]
	}
	t.Fatalf("no feature %q", name)
	return 0
}

func TestSpecNamesUniqueAndSized(t *testing.T) {
	s := newTestStore(t, Config{})
	sp := s.Spec()
	seen := map[string]bool{}
	for _, n := range slices.Concat(sp.User, sp.Reel, sp.Cross) {
		if seen[n] {
			t.Fatalf("feature %q named twice", n)
		}
		seen[n] = true
	}
	r := &Request{User: 1, Reels: []int64{1, 2, 3}, Context: Context{Time: t0}, Embeddings: true}
	if err := s.Features(r); err != nil {
		t.Fatal(err)
	}
	if len(r.UserVec) != len(sp.User) || len(r.ReelVec) != 3*len(sp.Reel) || len(r.CrossVec) != 3*len(sp.Cross) || len(r.Emb) != 3*64 {
		t.Fatalf("sizes %d %d %d %d", len(r.UserVec), len(r.ReelVec), len(r.CrossVec), len(r.Emb))
	}
	other := newTestStore(t, Config{Categories: 16})
	if sp.Equal(other.Spec()) {
		t.Fatal("specs of different category counts compare equal")
	}
	if !sp.Equal(newTestStore(t, Config{}).Spec()) {
		t.Fatal("equal configs give different specs")
	}
}

func TestDecayedCountersAndSmoothing(t *testing.T) {
	s := newTestStore(t, Config{})
	var evs []eventlog.Event
	times := []int64{0, 10 * 60e3, 3 * 3600e3, 30 * 3600e3}
	for i, dt := range times {
		evs = append(evs, impression(t0+dt, int64(10+i), 7, 3, int64(100+i), 0))
		if i%2 == 0 {
			evs = append(evs, watch(t0+dt+1000, int64(10+i), 7, 3, int64(100+i), 0, 0.9))
		}
	}
	if err := s.Apply(evs); err != nil {
		t.Fatal(err)
	}
	now := t0 + 31*3600e3
	r := &Request{User: 99, Reels: []int64{7}, Context: Context{Time: now}}
	if err := s.Features(r); err != nil {
		t.Fatal(err)
	}
	for _, w := range []struct {
		name string
		tau  float64
	}{{"1h", 3600e3}, {"1d", 86400e3}, {"7d", 7 * 86400e3}} {
		var imp, wt float64
		for i, dt := range times {
			imp += math.Exp(-float64(now-(t0+dt)) / w.tau)
			if i%2 == 0 {
				wt += math.Exp(-float64(now-(t0+dt+1000)) / w.tau)
			}
		}
		if got, want := feature(t, s, r, 0, "reel_log_imp_"+w.name), math.Log1p(imp); math.Abs(float64(got)-want) > 1e-5 {
			t.Errorf("reel_log_imp_%s = %v, want %v", w.name, got, want)
		}
		// The prior is the global rate: this reel is the only one.
		p := (wt + 100*defaultRates[cWT]) / (imp + 100)
		want := (wt + 20*p) / (imp + 20)
		if got := feature(t, s, r, 0, "reel_wt_rate_"+w.name); math.Abs(float64(got)-want) > 1e-5 {
			t.Errorf("reel_wt_rate_%s = %v, want %v", w.name, got, want)
		}
	}
	if got := feature(t, s, r, 0, "author_log_imp_7d"); got != feature(t, s, r, 0, "reel_log_imp_7d") {
		t.Errorf("the author's only reel: author_log_imp_7d %v != reel's", got)
	}
}

func TestCountersIgnoreOrderAndRebase(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var evs []eventlog.Event
	// 40 days: the 1 h window forces several landmark moves.
	for i := range 3000 {
		tm := t0 + int64(i)*40*86400e3/3000
		u, r := int64(rng.IntN(50)), int64(rng.IntN(30))
		evs = append(evs, impression(tm, u, r, r%7, int64(i), 0))
		if rng.IntN(2) == 0 {
			evs = append(evs, watch(tm+500, u, r, r%7, int64(i), 0, rng.Float32()))
		}
		if rng.IntN(5) == 0 {
			evs = append(evs, simple(eventlog.Like, tm+600, u, r, r%7, int64(i), 0))
		}
	}
	a := newTestStore(t, Config{})
	if err := a.Apply(evs); err != nil {
		t.Fatal(err)
	}
	b := newTestStore(t, Config{})
	shuffled := slices.Clone(evs)
	rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	// Sessions aside, the counters do not depend on order; apply the
	// shuffled events in pieces.
	for len(shuffled) > 0 {
		n := min(len(shuffled), 1+rng.IntN(500))
		if err := b.Apply(shuffled[:n]); err != nil {
			t.Fatal(err)
		}
		shuffled = shuffled[n:]
	}
	now := evs[len(evs)-1].Time + 1000
	ra := &Request{User: 3, Reels: []int64{1, 2, 3, 29, 1000}, Context: Context{Time: now}}
	rb := &Request{User: 3, Reels: slices.Clone(ra.Reels), Context: ra.Context}
	if err := a.Features(ra); err != nil {
		t.Fatal(err)
	}
	if err := b.Features(rb); err != nil {
		t.Fatal(err)
	}
	for i, n := range a.Spec().Reel {
		for j := range ra.Reels {
			x, y := ra.ReelVec[j*len(a.Spec().Reel)+i], rb.ReelVec[j*len(a.Spec().Reel)+i]
			if math.Abs(float64(x-y)) > 1e-4*max(1, math.Abs(float64(x))) {
				t.Errorf("reel %d %s: %v in order, %v shuffled", ra.Reels[j], n, x, y)
			}
		}
	}
	// Against the direct sum over the whole 40 days, after rebasing.
	var want float64
	for _, e := range evs {
		if e.Type == eventlog.Impression && e.Reel == 2 {
			want += math.Exp(-float64(now-e.Time) / (7 * 86400e3))
		}
	}
	if got := feature(t, a, ra, 1, "reel_log_imp_7d"); math.Abs(float64(got)-math.Log1p(want)) > 1e-5 {
		t.Errorf("reel_log_imp_7d = %v, want %v", got, math.Log1p(want))
	}
	if a.landmark == t0 {
		t.Error("the landmark never moved over 40 days")
	}
}

func TestErrPastAndTolerance(t *testing.T) {
	s := newTestStore(t, Config{Tolerance: 10 * time.Second})
	if err := s.Apply([]eventlog.Event{impression(t0+60e3, 1, 2, 3, 4, 0)}); err != nil {
		t.Fatal(err)
	}
	r := &Request{User: 1, Reels: []int64{2}, Context: Context{Time: t0 + 55e3}}
	if err := s.Features(r); err != nil {
		t.Fatalf("5 s before the newest event, within tolerance: %v", err)
	}
	r.Context.Time = t0
	if err := s.Features(r); !errors.Is(err, ErrPast) {
		t.Fatalf("a minute before the newest event: %v, want ErrPast", err)
	}
}

func TestColdStart(t *testing.T) {
	s := newTestStore(t, Config{})
	if err := s.PutUser(User{ID: 5, Country: 3, Language: 1, AgeBucket: 2, Device: 1}); err != nil {
		t.Fatal(err)
	}
	r := &Request{User: 6, Reels: []int64{42}, Context: Context{Time: t0, Profile: &User{Country: 2, Device: 99}}}
	if err := s.Features(r); err != nil {
		t.Fatal(err)
	}
	if feature(t, s, r, 0, "country_2") != 1 || feature(t, s, r, 0, "device_other") != 1 {
		t.Error("an unknown user's profile does not come from the request")
	}
	if got := feature(t, s, r, 0, "reel_wt_rate_1d"); math.Abs(float64(got)-defaultRates[cWT]) > 1e-6 {
		t.Errorf("unknown reel's watch-through rate %v, want the prior %v", got, defaultRates[cWT])
	}
	if feature(t, s, r, 0, "reel_known") != 0 || r.Known != 0 {
		t.Error("unknown reel marked known")
	}
	r.User = 5
	if err := s.Features(r); err != nil {
		t.Fatal(err)
	}
	if feature(t, s, r, 0, "country_3") != 1 || feature(t, s, r, 0, "country_2") != 0 || feature(t, s, r, 0, "device_1") != 1 {
		t.Error("a known user's profile is not the stored one")
	}
	for _, v := range slices.Concat(r.UserVec, r.ReelVec, r.CrossVec) {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			t.Fatal("a cold-start feature is not finite")
		}
	}
}

func TestBadInputs(t *testing.T) {
	s := newTestStore(t, Config{EmbedDim: 4, Categories: 2})
	if err := s.PutReel(Reel{ID: 1, Author: 2, Embedding: []float32{1, 2, 3}, Category: -1}); !errors.Is(err, ErrBadEmbedding) {
		t.Errorf("short embedding: %v", err)
	}
	if err := s.PutReel(Reel{ID: 1, Author: 2, Embedding: []float32{1, float32(math.NaN()), 3, 4}, Category: -1}); !errors.Is(err, ErrBadEmbedding) {
		t.Errorf("NaN embedding: %v", err)
	}
	if err := s.PutReel(Reel{ID: 1, Author: 2, Category: 5}); err == nil {
		t.Error("category out of range accepted")
	}
	if err := s.PutReel(Reel{ID: -1}); !errors.Is(err, ErrBadID) {
		t.Errorf("negative id: %v", err)
	}
	if err := s.Features(&Request{User: -3, Context: Context{Time: t0}}); !errors.Is(err, ErrBadID) {
		t.Errorf("negative user: %v", err)
	}
	if _, err := NewStore(Config{Windows: []time.Duration{time.Second}}); err == nil {
		t.Error("a 1 s window accepted")
	}
	if _, err := NewStore(Config{WatchThrough: 2}); err == nil {
		t.Error("WatchThrough 2 accepted")
	}
	good := impression(t0, 1, 2, 3, 4, 0)
	noUser := good
	noUser.Has &^= eventlog.FUser
	nan := watch(t0+1, 1, 2, 3, 4, 0, 0.5)
	nan.Fraction = float32(math.NaN())
	err := s.Apply([]eventlog.Event{good, noUser, nan, simple(eventlog.Like, t0+2, 1, 2, 3, 4, 0)})
	var ae *ApplyError
	if !errors.As(err, &ae) || ae.Bad != 2 || ae.Total != 4 || ae.First[0].Index != 1 || ae.First[1].Index != 2 {
		t.Fatalf("Apply error %v", err)
	}
	if st := s.Stats(); st.Applied != 2 {
		t.Fatalf("applied %d events, want the 2 good ones", st.Applied)
	}
}

func TestFitCategories(t *testing.T) {
	const d, k = 8, 4
	s := newTestStore(t, Config{EmbedDim: d, Categories: k})
	rng := rand.New(rand.NewPCG(3, 4))
	blob := func(b int) []float32 {
		e := make([]float32, d)
		for j := range e {
			e[j] = float32(rng.NormFloat64() * 0.05)
		}
		e[b] += 5
		return e
	}
	for i := range 400 {
		if err := s.PutReel(Reel{ID: int64(i), Author: 1, Upload: t0, Duration: 10, Embedding: blob(i % k), Category: -1}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.FitCategories(1); err != nil {
		t.Fatal(err)
	}
	cat := func(id int64) int16 { i, _ := s.reels.index.get(id); return s.reels.recs[i].cat }
	for i := range int64(400) {
		if cat(i) != cat(i%k) {
			t.Fatalf("reel %d in category %d, its blob's first reel in %d", i, cat(i), cat(i%k))
		}
	}
	if err := s.PutReel(Reel{ID: 1000, Author: 1, Embedding: blob(2), Category: -1}); err != nil {
		t.Fatal(err)
	}
	if cat(1000) != cat(2) {
		t.Error("a reel put after fitting is not assigned to its blob's category")
	}
	small := newTestStore(t, Config{EmbedDim: d, Categories: k})
	if err := small.FitCategories(1); err == nil {
		t.Error("fitting with no embeddings did not fail")
	}
}
