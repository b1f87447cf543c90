package client

import (
	"slices"
	"sync"
	"time"
)

// maxKinds bounds the wire kinds a Client keeps latencies for.
const maxKinds = 32

// Hedging by percentile: the last latencyWindow answers of a kind are
// kept; the percentile is recomputed every latencyRefresh answers, and
// used once hedgeMinSamples have been seen.
const (
	latencyWindow   = 512
	latencyRefresh  = 32
	hedgeMinSamples = 64
)

// latencies is a ring of the latest answer times of one request kind.
type latencies struct {
	mu       sync.Mutex
	ring     [latencyWindow]time.Duration
	n        int // answers recorded
	scratch  []time.Duration
	cached   time.Duration
	cachedAt int // n when cached was computed
	cachedQ  float64
}

func (l *latencies) record(d time.Duration) {
	l.mu.Lock()
	l.ring[l.n%latencyWindow] = d
	l.n++
	l.mu.Unlock()
}

// percentile returns the q-quantile (0 < q < 1) of the recent latencies,
// false while there are fewer than hedgeMinSamples.
func (l *latencies) percentile(q float64) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n < hedgeMinSamples {
		return 0, false
	}
	if l.cachedAt == 0 || l.n-l.cachedAt >= latencyRefresh || q != l.cachedQ {
		m := min(l.n, latencyWindow)
		l.scratch = append(l.scratch[:0], l.ring[:m]...)
		slices.Sort(l.scratch)
		l.cached = l.scratch[min(int(q*float64(m)), m-1)]
		l.cachedAt, l.cachedQ = l.n, q
	}
	return l.cached, true
}
