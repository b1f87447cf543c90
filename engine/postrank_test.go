package engine

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// smallPostranker is a hand-made set of 7 candidates: authors repeat, some
// reels are uncertain, and the exploration set holds the best 3 of them.
func smallPostranker(mode Exploration, eps float64) *postranker {
	p := &postranker{}
	p.reset(7)
	copy(p.score, []float32{0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3})
	p.author = append(p.author, 1, 1, 2, 3, 2, -1, 4)
	copy(p.uncertain, []bool{false, true, true, false, true, true, true})
	copy(p.alpha, []float64{0, 3, 5, 0, 1.5, 8, 2})
	copy(p.beta, []float64{0, 7, 5, 0, 3, 12, 2})
	p.eps, p.mode, p.rounds, p.window, p.exploreMax = eps, mode, 16, 3, 3
	return p
}

// TestPostrankPropensitiesExact runs the policy many times and compares
// the frequency of every list with the product of its propensities: the
// propensity of a slot is the policy's probability given the slots above,
// so their product is the probability of the whole list.
func TestPostrankPropensitiesExact(t *testing.T) {
	trials := 200_000
	if testing.Short() {
		trials = 40_000
		if raceEnabled {
			trials = 10_000
		}
	}
	for _, mode := range []Exploration{EpsilonGreedy, Thompson} {
		t.Run(mode.String(), func(t *testing.T) {
			p := smallPostranker(mode, 0.35)
			if mode == Thompson {
				// Thompson's propensities are given its draws: fix them.
				p.prepare(4)
				p.draw(rand.New(rand.NewPCG(1, 2)))
			}
			freq := map[string]int{}
			prob := map[string]float64{}
			for i := range trials {
				slots := p.run(rand.New(rand.NewPCG(uint64(i), 99)), 4)
				if len(slots) != 4 {
					t.Fatalf("%d slots", len(slots))
				}
				key, pr := "", 1.0
				for _, s := range slots {
					if !(s.prop > 0 && s.prop <= 1) {
						t.Fatalf("propensity %v", s.prop)
					}
					key += fmt.Sprintf("%d,", s.cand)
					pr *= s.prop
				}
				if old, ok := prob[key]; ok && math.Abs(old-pr) > 1e-12 {
					t.Fatalf("list %s: propensities %v then %v", key, old, pr)
				}
				prob[key] = pr
				freq[key]++
			}
			total := 0.0
			for key, pr := range prob {
				total += pr
				got := float64(freq[key]) / float64(trials)
				if tol := 5*math.Sqrt(pr*(1-pr)/float64(trials)) + 1e-4; math.Abs(got-pr) > tol {
					t.Errorf("list %s: frequency %.5f, propensities give %.5f", key, got, pr)
				}
			}
			// The lists seen carry (almost) all the probability.
			if total > 1+1e-9 || total < 0.99 {
				t.Errorf("the lists seen carry probability %v", total)
			}
			t.Logf("%d lists", len(prob))
		})
	}
}

func TestPostrankDiversityPastThePrefix(t *testing.T) {
	// The 60 best candidates share one author: the greedy order must look
	// past the prefix it selected first.
	p := &postranker{}
	n := 200
	p.reset(n)
	for i := range n {
		p.score[i] = float32(n - i)
		a := int64(1)
		if i >= 60 {
			a = int64(i)
		}
		p.author = append(p.author, a)
	}
	p.window, p.exploreMax = 5, 10
	slots := p.run(rand.New(rand.NewPCG(1, 1)), 6)
	want := []int32{0, 60, 61, 62, 63, 1}
	for j, s := range slots {
		if s.cand != want[j] || s.prop != 1 {
			t.Fatalf("slot %d: %+v, want candidate %d", j, s, want[j])
		}
	}
	// Nothing left that the rule allows: the list stops short.
	p.reset(3)
	copy(p.score, []float32{3, 2, 1})
	p.author = append(p.author, 1, 1, 1)
	p.window = 5
	if slots := p.run(rand.New(rand.NewPCG(1, 1)), 3); len(slots) != 1 {
		t.Fatalf("%d slots from one author", len(slots))
	}
}

func TestBetaSample(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, c := range []struct{ a, b float64 }{{2, 5}, {0.3, 0.7}, {40, 60}} {
		n := 50_000
		var sum, sq float64
		for range n {
			x := betaSample(r, c.a, c.b)
			if !(x >= 0 && x <= 1) {
				t.Fatalf("Beta(%v, %v) gave %v", c.a, c.b, x)
			}
			sum += x
			sq += x * x
		}
		mean := sum / float64(n)
		vari := sq/float64(n) - mean*mean
		wm := c.a / (c.a + c.b)
		wv := c.a * c.b / ((c.a + c.b) * (c.a + c.b) * (c.a + c.b + 1))
		if math.Abs(mean-wm) > 0.01 || math.Abs(vari-wv) > 0.1*wv+1e-4 {
			t.Errorf("Beta(%v, %v): mean %v var %v, want %v %v", c.a, c.b, mean, vari, wm, wv)
		}
	}
}
