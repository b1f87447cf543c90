package engine

import (
	"math"
	"math/rand/v2"
	"slices"

	"github.com/reelrank/reelrank/kernels"
)

// slot is one placed candidate.
type slot struct {
	cand     int32   // index into the candidates
	prop     float64 // the probability the policy put it here, given the slots above
	explored bool    // placed by an exploration draw
}

// postranker fills the slots of a response from the scored candidates:
// greedy by score under the author-diversity rule, with exploration slots.
// Its inputs are set by the caller; its buffers are reused across
// requests.
type postranker struct {
	// Inputs, one entry per candidate.
	score     []float32 // final score
	author    []int64   // -1: unknown, never blocks
	uncertain []bool    // little evidence: eligible for exploration
	alpha     []float64 // Beta posterior of the watch-through rate (Thompson)
	beta      []float64
	recent    []int64 // authors of the reels shown just before, oldest first

	eps        float64
	mode       Exploration
	rounds     int
	window     int
	exploreMax int

	// Scratch.
	sel, esel *kernels.Selector
	top       []kernels.Result
	order     []int32 // candidates best first: a prefix of all of them until full
	full      bool
	ptr       int // order[:ptr] are all taken
	taken     []bool
	uscore    []float32
	uidx      []int64
	eset      []int32   // E: the uncertain candidates eligible for exploration, best first
	epos      []int32   // per candidate: its position in E, or -1
	ej        []int32   // positions in E eligible at this slot
	elig      []bool    // per position in E: allowed at this slot
	theta     []float32 // rounds × len(E) draws
	gam       []gamma   // per position in E: its two Gamma samplers
	tops      []int32   // per round: the positions of its topL best draws
	drawn     bool
	wins      []int32 // per position in E
	win       []int64 // the authors of the last window-1 slots, oldest first
	out       []slot
}

// reset sizes the inputs for n candidates.
func (p *postranker) reset(n int) {
	p.score = grow(p.score, n)
	p.author = p.author[:0]
	p.uncertain = grow(p.uncertain, n)
	p.alpha = grow(p.alpha, n)
	p.beta = grow(p.beta, n)
	p.recent = p.recent[:0]
	p.drawn = false
}

func grow[T any](b []T, n int) []T {
	if cap(b) < n {
		return make([]T, n)
	}
	return b[:n]
}

// allowed reports whether an author may take the next slot.
func (p *postranker) allowed(a int64) bool {
	if a < 0 {
		return true
	}
	return !slices.Contains(p.win, a)
}

// place pushes a placed candidate's author into the diversity window.
func (p *postranker) place(a int64) {
	if p.window <= 1 {
		return
	}
	if len(p.win) == p.window-1 {
		copy(p.win, p.win[1:])
		p.win = p.win[:len(p.win)-1]
	}
	p.win = append(p.win, a)
}

// prepare orders the candidates and builds the exploration set, for
// slots to fill.
func (p *postranker) prepare(slots int) {
	n := len(p.score)
	p.taken = grow(p.taken, n)
	clear(p.taken)
	p.ptr, p.full = 0, false
	// The best few by score; the whole order only if diversity skips past
	// them.
	k := min(n, slots*p.window+32)
	p.order = p.order[:0]
	if k > 0 {
		if p.sel == nil {
			p.sel = kernels.NewSelector(k, true)
		}
		p.sel.ResetK(k)
		p.sel.Push(p.score, nil)
		p.top = p.sel.Results(p.top[:0])
		for _, r := range p.top {
			p.order = append(p.order, int32(r.ID))
		}
		p.full = len(p.order) == n
	}
	// E: the uncertain candidates, the best exploreMax by score.
	p.epos = grow(p.epos, n)
	p.eset = p.eset[:0]
	p.uscore, p.uidx = p.uscore[:0], p.uidx[:0]
	for i := range n {
		p.epos[i] = -1
		if p.uncertain[i] {
			p.uscore = append(p.uscore, p.score[i])
			p.uidx = append(p.uidx, int64(i))
		}
	}
	if p.eps > 0 && p.exploreMax > 0 && len(p.uidx) > 0 {
		k := min(len(p.uidx), p.exploreMax)
		if p.esel == nil {
			p.esel = kernels.NewSelector(k, true)
		}
		p.esel.ResetK(k)
		p.esel.Push(p.uscore, p.uidx)
		p.top = p.esel.Results(p.top[:0])
		for _, r := range p.top {
			p.epos[r.ID] = int32(len(p.eset))
			p.eset = append(p.eset, int32(r.ID))
		}
	}
	p.win = p.win[:0]
	if p.window > 1 {
		for _, a := range p.recent[max(0, len(p.recent)-(p.window-1)):] {
			p.place(a)
		}
	}
}

// fullOrder replaces the prefix order by the order of every candidate:
// by score, best first, ties by index, as the selector orders them.
func (p *postranker) fullOrder() {
	n := len(p.score)
	p.order = p.order[:0]
	for i := range n {
		if !math.IsNaN(float64(p.score[i])) {
			p.order = append(p.order, int32(i))
		}
	}
	slices.SortFunc(p.order, func(a, b int32) int {
		sa, sb := p.score[a], p.score[b]
		switch {
		case sa > sb:
			return -1
		case sa < sb:
			return 1
		}
		return int(a - b)
	})
	p.ptr, p.full = 0, true
}

// greedy returns the best candidate not yet placed whose author the
// diversity rule allows, or -1.
func (p *postranker) greedy() int32 {
	for {
		for p.ptr < len(p.order) && p.taken[p.order[p.ptr]] {
			p.ptr++
		}
		for _, i := range p.order[p.ptr:] {
			if !p.taken[i] && p.allowed(p.author[i]) {
				return i
			}
		}
		if p.full {
			return -1
		}
		p.fullOrder()
	}
}

// topL is how many of a round's best draws draw keeps, best first: the
// winner among the reels a slot allows is almost always among them.
const topL = 8

// draw makes the Thompson rounds: per round, a watch-through rate drawn
// from every E reel's Beta posterior; it keeps each round's topL best.
func (p *postranker) draw(r *rand.Rand) {
	m := len(p.eset)
	p.theta = grow(p.theta, p.rounds*m)
	p.gam = grow(p.gam, 2*m)
	for k, i := range p.eset {
		p.gam[2*k], p.gam[2*k+1] = newGamma(p.alpha[i]), newGamma(p.beta[i])
	}
	L := min(topL, m)
	p.tops = grow(p.tops, p.rounds*L)
	for t := range p.rounds {
		row := p.theta[t*m : (t+1)*m]
		for k := range row {
			x, y := p.gam[2*k].sample(r), p.gam[2*k+1].sample(r)
			v := float32(0.5)
			if s := x + y; s > 0 {
				v = float32(x / s)
			}
			row[k] = v
		}
		// The round's best L positions, by draw, ties to the lower
		// position: the order the full scan in winners keeps.
		top := p.tops[t*L : t*L : (t+1)*L]
		for k, v := range row {
			if len(top) == L && !(v > row[top[L-1]]) {
				continue
			}
			j := len(top)
			if j == L {
				j--
			} else {
				top = top[:j+1]
			}
			for j > 0 && v > row[top[j-1]] {
				top[j] = top[j-1]
				j--
			}
			top[j] = int32(k)
		}
	}
	p.drawn = true
}

// winners counts, over the rounds, how often each E reel is the best
// draw among those the slot allows (p.elig), into p.wins (by position in
// E), and returns the winner of round pick (a position in E), or -1 for
// pick < 0.
func (p *postranker) winners(pick int) int32 {
	m := len(p.eset)
	L := min(topL, m)
	p.wins = grow(p.wins, m)
	clear(p.wins)
	w := int32(-1)
	for t := range p.rounds {
		best := int32(-1)
		for _, e := range p.tops[t*L : (t+1)*L] {
			if p.elig[e] {
				best = e
				break
			}
		}
		if best < 0 {
			// None of the round's best is allowed here: scan the round.
			row := p.theta[t*m : (t+1)*m]
			for _, e := range p.ej {
				if best < 0 || row[e] > row[best] {
					best = e
				}
			}
		}
		p.wins[best]++
		if t == pick {
			w = best
		}
	}
	return w
}

// run fills up to slots slots and returns them. See the package doc for
// the policy and its propensities.
func (p *postranker) run(r *rand.Rand, slots int) []slot {
	p.prepare(slots)
	p.out = p.out[:0]
	for range slots {
		g := p.greedy()
		if g < 0 {
			break
		}
		// E_j: the exploration set's reels that may take this slot.
		p.ej = p.ej[:0]
		p.elig = grow(p.elig, len(p.eset))
		for k, i := range p.eset {
			ok := !p.taken[i] && p.allowed(p.author[i])
			p.elig[k] = ok
			if ok {
				p.ej = append(p.ej, int32(k))
			}
		}
		s := slot{cand: g, prop: 1}
		if len(p.ej) > 0 && p.eps > 0 {
			explore := p.eps >= 1 || r.Float64() < p.eps
			if p.mode == Thompson && !p.drawn && (explore || p.epos[g] >= 0) {
				p.draw(r)
			}
			if explore {
				var pick int32
				var pp float64 // the probability the exploration draw picks it
				switch p.mode {
				case Thompson:
					w := p.winners(r.IntN(p.rounds))
					pick = p.eset[w]
					pp = float64(p.wins[w]) / float64(p.rounds)
				default:
					pick = p.eset[p.ej[r.IntN(len(p.ej))]]
					pp = 1 / float64(len(p.ej))
				}
				s = slot{cand: pick, prop: p.eps * pp, explored: true}
				if pick == g {
					s.prop += 1 - p.eps
				}
			} else {
				s.prop = (1 - p.eps) + p.eps*p.explorePick(g)
			}
		}
		p.taken[s.cand] = true
		p.place(p.author[s.cand])
		p.out = append(p.out, s)
	}
	return p.out
}

// explorePick returns the probability that an exploration draw at this
// slot would pick candidate i.
func (p *postranker) explorePick(i int32) float64 {
	e := p.epos[i]
	if e < 0 || !p.elig[e] {
		return 0
	}
	if p.mode != Thompson {
		return 1 / float64(len(p.ej))
	}
	p.winners(-1)
	return float64(p.wins[e]) / float64(p.rounds)
}

// betaSample draws from Beta(a, b) as X/(X+Y) of two Gamma draws.
func betaSample(r *rand.Rand, a, b float64) float64 {
	x, y := newGamma(a).sample(r), newGamma(b).sample(r)
	if s := x + y; s > 0 {
		return x / s
	}
	return 0.5
}

// gamma draws from Gamma(a, 1) by Marsaglia and Tsang's method, its
// constants computed once; a < 1 draws Gamma(a+1)·U^(1/a).
type gamma struct {
	d, c, inv float64 // inv = 1/a when a < 1, else 0
}

func newGamma(a float64) gamma {
	var g gamma
	if a < 1 {
		g.inv = 1 / a
		a++
	}
	g.d = a - 1.0/3
	g.c = 1 / math.Sqrt(9*g.d)
	return g
}

func (g gamma) sample(r *rand.Rand) float64 {
	for {
		x := r.NormFloat64()
		v := 1 + g.c*x
		if v <= 0 {
			continue
		}
		v = v * v * v
		u := r.Float64()
		if u < 1-0.0331*x*x*x*x || math.Log(u) < 0.5*x*x+g.d*(1-v+math.Log(v)) {
			if g.inv != 0 {
				return g.d * v * math.Pow(r.Float64(), g.inv)
			}
			return g.d * v
		}
	}
}
