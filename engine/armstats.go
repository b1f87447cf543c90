package engine

import (
	"fmt"
	"math"
	"math/bits"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reelrank/reelrank/eventlog"
	"github.com/reelrank/reelrank/internal/hashx"
)

// latWindow is how many recent Recommend latencies an arm keeps for its
// percentiles.
const latWindow = 2048

// armStats are one arm's online metrics: its Recommend requests, and the
// events that came back for the impressions it served.
type armStats struct {
	requests, errors, degenerate atomic.Int64
	checkTick                    atomic.Int64

	mu                                        sync.Mutex
	impressions, watchThrough, watches, skips int64
	likes, comments, shares, follows          int64
	seconds, secondsSq                        float64
	lat                                       [latWindow]float32 // µs
	latN                                      int
	reels, authors                            hll
}

func newArmStats() *armStats { return &armStats{} }

// request records one Recommend: its latency, whether it failed, whether
// its scores were degenerate, and the reels and authors it served.
func (s *armStats) request(took time.Duration, failed, degenerate bool, reels, authors []int64) {
	s.requests.Add(1)
	if failed {
		s.errors.Add(1)
	}
	if degenerate {
		s.degenerate.Add(1)
	}
	s.mu.Lock()
	s.lat[s.latN%latWindow] = float32(took.Microseconds())
	s.latN++
	for _, id := range reels {
		s.reels.add(uint64(id))
	}
	for _, id := range authors {
		if id >= 0 {
			s.authors.add(uint64(id))
		}
	}
	s.mu.Unlock()
}

// tally counts one event batch's share for an arm.
type tally struct {
	impressions, watchThrough, watches, skips int64
	likes, comments, shares, follows          int64
	seconds, secondsSq                        float64
}

func (t *tally) add(ev *eventlog.Event, theta float32) {
	switch ev.Type {
	case eventlog.Impression:
		t.impressions++
	case eventlog.Watch:
		t.watches++
		t.seconds += float64(ev.Seconds)
		t.secondsSq += float64(ev.Seconds) * float64(ev.Seconds)
		if ev.Fraction >= theta {
			t.watchThrough++
		}
	case eventlog.Skip:
		t.skips++
		t.seconds += float64(ev.Seconds)
		t.secondsSq += float64(ev.Seconds) * float64(ev.Seconds)
	case eventlog.Like:
		t.likes++
	case eventlog.Comment:
		t.comments++
	case eventlog.Share:
		t.shares++
	case eventlog.Follow:
		t.follows++
	}
}

func (s *armStats) addTally(t *tally) {
	s.mu.Lock()
	s.impressions += t.impressions
	s.watchThrough += t.watchThrough
	s.watches += t.watches
	s.skips += t.skips
	s.likes += t.likes
	s.comments += t.comments
	s.shares += t.shares
	s.follows += t.follows
	s.seconds += t.seconds
	s.secondsSq += t.secondsSq
	s.mu.Unlock()
}

// Rate is a rate per impression with its 95% confidence interval.
type Rate struct {
	Value float64 `json:"value"`
	Lo    float64 `json:"lo"`
	Hi    float64 `json:"hi"`
}

// String prints the rate and its interval.
func (r Rate) String() string { return fmt.Sprintf("%.4f [%.4f, %.4f]", r.Value, r.Lo, r.Hi) }

// z95 is the two-sided 95% normal quantile.
const z95 = 1.959963984540054

// wilson returns k successes in n trials with Wilson's 95% interval (k
// over n is clamped to 1: a rate per impression of events that may repeat
// is read as a proportion for its interval).
func wilson(k, n int64) Rate {
	if n <= 0 {
		return Rate{}
	}
	v := float64(k) / float64(n)
	p := min(v, 1)
	nn := float64(n)
	d := 1 + z95*z95/nn
	c := (p + z95*z95/(2*nn)) / d
	h := z95 * math.Sqrt(p*(1-p)/nn+z95*z95/(4*nn*nn)) / d
	return Rate{Value: v, Lo: max(0, c-h), Hi: min(1, c+h)}
}

// ArmMetrics are an arm's online metrics since it started serving.
type ArmMetrics struct {
	// Requests counts the Recommend requests the arm answered; Errors the
	// failed ones; Degenerate those whose scores were NaN or the same for
	// every candidate.
	Requests   int64   `json:"requests"`
	Errors     int64   `json:"errors"`
	Degenerate int64   `json:"degenerate"`
	ErrorRate  float64 `json:"error_rate"`
	// P50 and P99 are over the arm's last 2,048 requests, in ms.
	P50ms float64 `json:"p50_ms"`
	P99ms float64 `json:"p99_ms"`
	// Impressions the arm served, as the events that came back say, and
	// rates per impression.
	Impressions  int64 `json:"impressions"`
	WatchThrough Rate  `json:"watch_through"`
	Likes        Rate  `json:"likes"`
	Comments     Rate  `json:"comments"`
	Shares       Rate  `json:"shares"`
	Follows      Rate  `json:"follows"`
	// WatchSeconds is the seconds watched (watches and skips) per
	// impression, with a normal 95% interval.
	WatchSeconds Rate `json:"watch_seconds"`
	// DistinctReels and DistinctAuthors are estimates (HyperLogLog, about
	// 3% error) of how many reels and authors the arm served.
	DistinctReels   int64 `json:"distinct_reels"`
	DistinctAuthors int64 `json:"distinct_authors"`
}

// snapshot reads the metrics.
func (s *armStats) snapshot() ArmMetrics {
	m := ArmMetrics{Requests: s.requests.Load(), Errors: s.errors.Load(), Degenerate: s.degenerate.Load()}
	if m.Requests > 0 {
		m.ErrorRate = float64(m.Errors+m.Degenerate) / float64(m.Requests)
	}
	s.mu.Lock()
	n := min(s.latN, latWindow)
	lat := slices.Clone(s.lat[:n])
	m.Impressions = s.impressions
	m.WatchThrough = wilson(s.watchThrough, s.impressions)
	m.Likes = wilson(s.likes, s.impressions)
	m.Comments = wilson(s.comments, s.impressions)
	m.Shares = wilson(s.shares, s.impressions)
	m.Follows = wilson(s.follows, s.impressions)
	if s.impressions > 0 {
		nn := float64(s.impressions)
		mean := s.seconds / nn
		sd := math.Sqrt(max(0, s.secondsSq/nn-mean*mean))
		h := z95 * sd / math.Sqrt(nn)
		m.WatchSeconds = Rate{Value: mean, Lo: max(0, mean-h), Hi: mean + h}
	}
	m.DistinctReels, m.DistinctAuthors = s.reels.estimate(), s.authors.estimate()
	s.mu.Unlock()
	if n > 0 {
		slices.Sort(lat)
		m.P50ms = float64(lat[n/2]) / 1000
		m.P99ms = float64(lat[min(n-1, n*99/100)]) / 1000
	}
	return m
}

// hll is a HyperLogLog counter of 2^10 registers.
type hll struct {
	reg [1 << hllBits]uint8
}

const hllBits = 10

func (h *hll) add(v uint64) {
	z := hashx.Mix64(v)
	i := z >> (64 - hllBits)
	rank := uint8(bits.LeadingZeros64(z<<hllBits|1<<(hllBits-1)) + 1)
	if rank > h.reg[i] {
		h.reg[i] = rank
	}
}

func (h *hll) estimate() int64 {
	const m = 1 << hllBits
	sum, zeros := 0.0, 0
	for _, r := range h.reg {
		sum += math.Ldexp(1, -int(r))
		if r == 0 {
			zeros++
		}
	}
	alpha := 0.7213 / (1 + 1.079/m)
	est := alpha * m * m / sum
	if est <= 2.5*m && zeros > 0 {
		est = m * math.Log(float64(m)/float64(zeros))
	}
	return int64(math.Round(est))
}
