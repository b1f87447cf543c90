package sim

import (
	"math"
	"testing"

	"github.com/reelrank/reelrank/eventlog"
)

// empirical draws n choices for slot s and checks each reel's frequency
// against Prob, that Choose's propensity is Prob, and that Prob sums to 1.
func empirical(t *testing.T, name string, p Policy, s *Slot, n int) map[string]int {
	t.Helper()
	r := NewRand(5)
	counts := map[int64]int{}
	arms := map[string]int{}
	for range n {
		reel, prop, arm := p.Choose(s, r)
		if reel < 1 || reel > s.Available || s.shown(reel) {
			t.Fatalf("%s: chose reel %d of %d (shown %v)", name, reel, s.Available, s.Shown)
		}
		if want := p.Prob(s, reel); prop != want {
			t.Fatalf("%s: Choose says %v for reel %d, Prob %v", name, prop, reel, want)
		}
		counts[reel]++
		arms[arm]++
	}
	var total float64
	for reel := int64(1); reel <= s.Available; reel++ {
		q := p.Prob(s, reel)
		total += q
		if s.shown(reel) {
			if q != 0 || counts[reel] != 0 {
				t.Errorf("%s: shown reel %d has prob %v, %d draws", name, reel, q, counts[reel])
			}
			continue
		}
		within(t, name, float64(counts[reel])/float64(n), q, n)
	}
	if math.Abs(total-1) > 1e-9 {
		t.Errorf("%s: probabilities sum to %v", name, total)
	}
	return arms
}

func TestRandomPolicy(t *testing.T) {
	p := &RandomPolicy{}
	s := &Slot{Available: 12, Shown: []int64{3, 7}}
	empirical(t, "random", p, s, 60_000)
	if got := p.Prob(s, 1); got != 0.1 {
		t.Errorf("Prob = %v, want 1/(12-2)", got)
	}
	if r, _, _ := p.Choose(&Slot{Available: 2, Shown: []int64{1, 2}}, NewRand(1)); r != 0 {
		t.Errorf("nothing left to show: chose %d", r)
	}
}

func popWorld(t *testing.T) (*World, *PopularityPolicy) {
	w := memWorld(t, testConfig())
	p := NewPopularityPolicy()
	if err := p.Init(w); err != nil {
		t.Fatal(err)
	}
	// Reels 2 and 5 become popular, 5 more so; then a day passes.
	var evs []eventlog.Event
	for range 30 {
		evs = append(evs, eventlog.Event{Type: eventlog.Watch, Reel: 2}, eventlog.Event{Type: eventlog.Like, Reel: 5},
			eventlog.Event{Type: eventlog.Share, Reel: 5})
	}
	p.Observe(evs)
	p.Advance(w.startMS + msPerDay)
	return w, p
}

func TestPopularityPolicy(t *testing.T) {
	_, p := popWorld(t)
	s := &Slot{Available: 20, Shown: []int64{9}}
	empirical(t, "popularity", p, s, 100_000)
	if !(p.Prob(s, 5) > p.Prob(s, 2) && p.Prob(s, 2) > 5*p.Prob(s, 11)) {
		t.Errorf("popular reels are not favoured: %v %v %v", p.Prob(s, 5), p.Prob(s, 2), p.Prob(s, 11))
	}
	// The propensity is the weight over the total weight of the eligible reels.
	w5 := p.weight(5)
	var tot float64
	for r := int64(1); r <= 20; r++ {
		if r != 9 {
			tot += p.Prior + float64(p.pop[r-1])
		}
	}
	if got := p.Prob(s, 5); math.Abs(got-w5/tot) > 1e-12 {
		t.Errorf("Prob = %v, weight/total = %v", got, w5/tot)
	}
	// Popularity decays: two more days without events halve it twice.
	before := p.pop[4]
	p.Advance(p.last + 2*msPerDay)
	if got := p.pop[4]; math.Abs(float64(got)-float64(before)/2) > 1e-3*float64(before) {
		t.Errorf("after one half-life: %v, want %v", got, before/2)
	}
}

func TestMixture(t *testing.T) {
	w, _ := popWorld(t)
	m := NewMixture(0.3)
	if err := m.Init(w); err != nil {
		t.Fatal(err)
	}
	base := m.Base.(*PopularityPolicy)
	base.Observe([]eventlog.Event{{Type: eventlog.Share, Reel: 4}, {Type: eventlog.Share, Reel: 4}})
	base.Advance(w.startMS + msPerDay)
	s := &Slot{Available: 15, Shown: []int64{1, 2}}
	arms := empirical(t, "mixture", m, s, 100_000)
	if len(arms) != 2 || arms["explore"] == 0 || arms["popularity"] == 0 {
		t.Errorf("arms %v", arms)
	}
	within(t, "explore share", float64(arms["explore"])/100_000, 0.3, 100_000)
	for r := int64(3); r <= 15; r++ {
		want := 0.3/13 + 0.7*base.Prob(s, r)
		if got := m.Prob(s, r); math.Abs(got-want) > 1e-15 {
			t.Errorf("reel %d: %v, want ε/n + (1-ε)·popularity = %v", r, got, want)
		}
	}
	if err := (&Mixture{Epsilon: 2}).Init(w); err == nil {
		t.Error("a mixture without policies and epsilon 2 initialised")
	}
	if err := (&PopularityPolicy{}).Init(w); err == nil {
		t.Error("a popularity policy of prior 0 initialised")
	}
}

// badPolicy shows a reel that does not exist yet.
type badPolicy struct{ RandomPolicy }

func (badPolicy) Choose(s *Slot, _ *Rand) (int64, float64, string) { return s.Available + 1, 1, "bad" }
