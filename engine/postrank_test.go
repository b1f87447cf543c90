package engine

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// smallPostranker is a hand-made set of 9 candidates, best first: authors
// repeat, some reels are uncertain, and the exploration set holds the best
// 4 of them (candidates 1, 2, 4 and 5).
func smallPostranker(mode Exploration, eps float64) *postranker {
	p := &postranker{}
	p.reset(9)
	copy(p.score, []float32{0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1})
	p.author = append(p.author, 1, 1, 2, 3, 2, -1, 4, 5, 3)
	copy(p.uncertain, []bool{false, true, true, false, true, true, true, true, false})
	copy(p.alpha, []float64{0, 3, 5, 0, 1.5, 8, 2, 0.5, 0})
	copy(p.beta, []float64{0, 7, 5, 0, 3, 12, 2, 4, 0})
	p.eps, p.mode, p.rounds, p.window, p.exploreMax = eps, mode, 16, 3, 4
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

// TestPostrankEpsilonGreedyAnalytic recomputes every slot's propensity
// from the inputs by the formulas of the package doc.
func TestPostrankEpsilonGreedyAnalytic(t *testing.T) {
	const eps = 0.35
	p := smallPostranker(EpsilonGreedy, eps)
	E := []int32{1, 2, 4, 5} // the best 4 uncertain candidates by score
	for seed := range 2000 {
		slots := p.run(rand.New(rand.NewPCG(uint64(seed), 5)), 4)
		taken := map[int32]bool{}
		var authors []int64
		allowed := func(i int32) bool {
			a := p.author[i]
			for _, b := range authors[max(0, len(authors)-2):] {
				if a >= 0 && a == b {
					return false
				}
			}
			return true
		}
		for j, s := range slots {
			g := int32(-1)
			for i := range int32(9) { // by score, best first
				if !taken[i] && allowed(i) {
					g = i
					break
				}
			}
			var ej []int32
			for _, i := range E {
				if !taken[i] && allowed(i) {
					ej = append(ej, i)
				}
			}
			inEj := func(i int32) bool {
				for _, x := range ej {
					if x == i {
						return true
					}
				}
				return false
			}
			var want float64
			switch {
			case len(ej) == 0:
				want = 1
			case s.explored:
				if !inEj(s.cand) {
					t.Fatalf("seed %d slot %d: explored reel %d not in E_j %v", seed, j, s.cand, ej)
				}
				want = eps / float64(len(ej))
				if s.cand == g {
					want += 1 - eps
				}
			default:
				if s.cand != g {
					t.Fatalf("seed %d slot %d: greedy slot holds %d, want %d", seed, j, s.cand, g)
				}
				want = 1 - eps
				if inEj(g) {
					want += eps / float64(len(ej))
				}
			}
			if math.Abs(s.prop-want) > 1e-12 {
				t.Fatalf("seed %d slot %d: propensity %v, want %v", seed, j, s.prop, want)
			}
			taken[s.cand] = true
			authors = append(authors, p.author[s.cand])
		}
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
