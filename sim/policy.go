package sim

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/reelrank/reelrank/eventlog"
)

// Slot is one position of a session that a policy fills.
type Slot struct {
	User      int64   // the viewer
	Time      int64   // ms since the Unix epoch
	Session   int64   // the session id
	Position  int     // from 0
	Shown     []int64 // the reels already shown in this session, in order (distinct); do not keep or change
	Available int64   // the reels uploaded by Time are ids 1..Available
}

func (s *Slot) shown(reel int64) bool { return slices.Contains(s.Shown, reel) }

// Policy decides what users see. The session runner calls it for every
// slot of every session and logs, per impression, the reel, the propensity
// and the arm it returns.
//
// The concurrency contract. Generate runs in periods
// (GenerateOptions.Period, one simulated day by default); a period runs
// the sessions planned to start in it. During a period, Choose and Prob are called from many goroutines at once
// (users' sessions run in parallel); they must only read the policy's state,
// and every random choice must come from the *Rand given to Choose, which
// is seeded from the session alone. Between periods, from one goroutine and
// never beside Choose, Observe receives the period's events in log order
// (possibly in several batches), then Advance marks the end of the period;
// that is where a policy updates what it learned. This way the log depends
// only on the seed, never on scheduling or on the number of threads.
type Policy interface {
	// Init is called once, before the first period, with the world (its
	// reels in upload order, their authors, the initial follow graph).
	Init(w *World) error
	// Choose picks a reel for the slot: an id in 1..s.Available not in
	// s.Shown, the exact probability with which this call could have
	// picked it (in (0, 1]), and the arm that served it. A reel of 0 ends
	// the session (nothing left to show).
	Choose(s *Slot, r *Rand) (reel int64, prop float64, arm string)
	// Prob returns the probability that Choose picks reel for the slot.
	Prob(s *Slot, reel int64) float64
	// Observe takes logged events, in time order.
	Observe(events []eventlog.Event)
	// Advance ends a period: the events up to now have been observed.
	Advance(now int64)
}

// RandomPolicy shows a reel drawn uniformly from the available catalogue,
// less the reels already shown in the session.
type RandomPolicy struct {
	Arm string // the logged arm; "random" when empty
}

func (p *RandomPolicy) arm() string {
	if p.Arm == "" {
		return "random"
	}
	return p.Arm
}

// Init implements Policy.
func (p *RandomPolicy) Init(*World) error { return nil }

// Choose implements Policy.
func (p *RandomPolicy) Choose(s *Slot, r *Rand) (int64, float64, string) {
	n := s.Available - int64(len(s.Shown))
	if n <= 0 {
		return 0, 0, p.arm()
	}
	for {
		reel := 1 + r.IntN(s.Available)
		if !s.shown(reel) {
			return reel, 1 / float64(n), p.arm()
		}
	}
}

// Prob implements Policy: 1/(available - shown) for an eligible reel.
func (p *RandomPolicy) Prob(s *Slot, reel int64) float64 {
	n := s.Available - int64(len(s.Shown))
	if reel < 1 || reel > s.Available || n <= 0 || s.shown(reel) {
		return 0
	}
	return 1 / float64(n)
}

// Observe implements Policy; a random policy learns nothing.
func (p *RandomPolicy) Observe([]eventlog.Event) {}

// Advance implements Policy.
func (p *RandomPolicy) Advance(int64) {}

// PopularityPolicy samples a reel with probability proportional to its
// smoothed recent popularity: Prior plus an exponentially decayed sum of
// the engagement it got (Watch per watch, Like per like, ...), refreshed at
// every Advance (each simulated day). At Init every reel starts from
// FollowerPrior·ln(1+followers of its author), so the first day is not
// uniform. Reels already shown in the session are excluded and the
// propensity renormalised over the rest.
type PopularityPolicy struct {
	Arm           string  // "popularity" when empty
	Prior         float64 // pseudo-count of every reel (> 0)
	HalfLife      float64 // days for popularity to halve
	FollowerPrior float64
	Watch         float64 // weight of a watch (not a skip)
	Like          float64
	Comment       float64
	Share         float64
	Follow        float64

	pop     []float32 // decayed score per reel
	pending []float32 // this period's score per reel
	cum     []float64 // cum[i] = Σ_{j<=i} (Prior + pop[j])
	last    int64     // time of the last Advance, ms
}

// NewPopularityPolicy returns a popularity policy with default settings.
func NewPopularityPolicy() *PopularityPolicy {
	return &PopularityPolicy{Arm: "popularity", Prior: 1, HalfLife: 2, FollowerPrior: 0.5,
		Watch: 1, Like: 2, Comment: 2, Share: 3, Follow: 2}
}

// Init implements Policy.
func (p *PopularityPolicy) Init(w *World) error {
	if !(p.Prior > 0) || math.IsInf(p.Prior, 0) || !(p.HalfLife > 0) || p.FollowerPrior < 0 {
		return fmt.Errorf("sim: popularity policy: prior %v and half-life %v must be positive, follower prior %v not negative",
			p.Prior, p.HalfLife, p.FollowerPrior)
	}
	n := w.NumReels()
	p.pop = make([]float32, n)
	p.pending = make([]float32, n)
	p.cum = make([]float64, n)
	for i := range p.pop {
		p.pop[i] = float32(p.FollowerPrior * math.Log1p(float64(w.users[w.reels[i].author-1].followers)))
	}
	p.last = w.startMS
	p.rebuild()
	return nil
}

func (p *PopularityPolicy) rebuild() {
	var s float64
	for i, x := range p.pop {
		s += p.Prior + float64(x)
		p.cum[i] = s
	}
}

func (p *PopularityPolicy) arm() string {
	if p.Arm == "" {
		return "popularity"
	}
	return p.Arm
}

// weight returns reel's sampling weight as the sampler sees it.
func (p *PopularityPolicy) weight(reel int64) float64 {
	if reel == 1 {
		return p.cum[0]
	}
	return p.cum[reel-1] - p.cum[reel-2]
}

func (p *PopularityPolicy) total(s *Slot) float64 {
	if s.Available < 1 || s.Available > int64(len(p.cum)) {
		return 0
	}
	t := p.cum[s.Available-1]
	for _, r := range s.Shown {
		t -= p.weight(r)
	}
	return t
}

// Choose implements Policy.
func (p *PopularityPolicy) Choose(s *Slot, r *Rand) (int64, float64, string) {
	if s.Available <= int64(len(s.Shown)) || s.Available > int64(len(p.cum)) {
		return 0, 0, p.arm()
	}
	all := p.cum[:s.Available]
	top := all[len(all)-1]
	for {
		u := r.Float64() * top
		i, _ := slices.BinarySearch(all, u)
		for i < len(all) && all[i] <= u {
			i++ // the first prefix sum above u
		}
		if i == len(all) {
			continue
		}
		reel := int64(i + 1)
		if !s.shown(reel) {
			return reel, p.weight(reel) / p.total(s), p.arm()
		}
	}
}

// Prob implements Policy: the reel's weight over the total weight of the
// eligible reels.
func (p *PopularityPolicy) Prob(s *Slot, reel int64) float64 {
	if reel < 1 || reel > s.Available || s.Available > int64(len(p.cum)) || s.shown(reel) {
		return 0
	}
	return p.weight(reel) / p.total(s)
}

// Observe implements Policy: it adds the events' engagement to this
// period's popularity.
func (p *PopularityPolicy) Observe(events []eventlog.Event) {
	for i := range events {
		e := &events[i]
		if e.Reel < 1 || e.Reel > int64(len(p.pending)) {
			continue
		}
		var x float64
		switch e.Type {
		case eventlog.Watch:
			x = p.Watch
		case eventlog.Like:
			x = p.Like
		case eventlog.Comment:
			x = p.Comment
		case eventlog.Share:
			x = p.Share
		case eventlog.Follow:
			x = p.Follow
		}
		p.pending[e.Reel-1] += float32(x)
	}
}

// Advance implements Policy: popularity decays by the time since the last
// Advance, gains the period's engagement, and the sampler is rebuilt.
func (p *PopularityPolicy) Advance(now int64) {
	days := float64(now-p.last) / msPerDay
	if days < 0 {
		days = 0
	}
	decay := float32(math.Exp2(-days / p.HalfLife))
	for i := range p.pop {
		p.pop[i] = p.pop[i]*decay + p.pending[i]
		p.pending[i] = 0
	}
	p.last = now
	p.rebuild()
}

// Mixture serves Explore with probability Epsilon and Base otherwise. Its
// propensity is the exact mixture probability ε·Explore.Prob + (1-ε)·Base.Prob
// of the chosen reel; the arm says which of the two picked it, so Base and
// Explore must log distinct arms.
type Mixture struct {
	Base    Policy
	Explore Policy
	Epsilon float64
}

// NewMixture returns popularity with epsilon uniform exploration, the
// default policy of Generate: arms "popularity" and "explore".
func NewMixture(epsilon float64) *Mixture {
	return &Mixture{Base: NewPopularityPolicy(), Explore: &RandomPolicy{Arm: "explore"}, Epsilon: epsilon}
}

// ErrPolicy is wrapped by errors about a policy's settings or choices.
var ErrPolicy = errors.New("sim: policy")

// Init implements Policy.
func (m *Mixture) Init(w *World) error {
	if m.Base == nil || m.Explore == nil || !(m.Epsilon >= 0 && m.Epsilon <= 1) {
		return fmt.Errorf("%w: mixture needs a base, an explore policy and epsilon in [0, 1], got epsilon %v", ErrPolicy, m.Epsilon)
	}
	if err := m.Base.Init(w); err != nil {
		return err
	}
	return m.Explore.Init(w)
}

// Choose implements Policy.
func (m *Mixture) Choose(s *Slot, r *Rand) (int64, float64, string) {
	var reel int64
	var arm string
	if r.Float64() < m.Epsilon {
		reel, _, arm = m.Explore.Choose(s, r)
	} else {
		reel, _, arm = m.Base.Choose(s, r)
	}
	if reel == 0 {
		return 0, 0, arm
	}
	return reel, m.Prob(s, reel), arm
}

// Prob implements Policy.
func (m *Mixture) Prob(s *Slot, reel int64) float64 {
	return m.Epsilon*m.Explore.Prob(s, reel) + (1-m.Epsilon)*m.Base.Prob(s, reel)
}

// Observe implements Policy.
func (m *Mixture) Observe(events []eventlog.Event) {
	m.Base.Observe(events)
	m.Explore.Observe(events)
}

// Advance implements Policy.
func (m *Mixture) Advance(now int64) {
	m.Base.Advance(now)
	m.Explore.Advance(now)
}
