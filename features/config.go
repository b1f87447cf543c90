package features

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Config sizes the store and sets its decay windows. The zero value of a
// field means its default; see DefaultConfig.
type Config struct {
	// EmbedDim is the dimension of reels' content embeddings (default 64).
	EmbedDim int
	// Categories is the number of reel categories, derived by k-means over
	// the content embeddings when reels carry none (default 32).
	Categories int
	// Windows are the time constants of the decayed counters: an event of
	// age a counts exp(-a/w). Default 1 h, 1 day, 7 days. At most 3.
	Windows []time.Duration
	// CategoryWindow decays the per-user category counts (default 7 days).
	CategoryWindow time.Duration
	// HistoryWindow decays the weights of the watch-history embedding
	// (default 3 days).
	HistoryWindow time.Duration
	// PriorStrength is the number of pseudo-impressions at the global rate
	// that every ratio is smoothed with (default 20).
	PriorStrength float64
	// WatchThrough is the fraction watched from which a watch counts as a
	// watch-through in the counters (default 0.8).
	WatchThrough float32
	// Countries, Languages, AgeBuckets and Devices are the widths of the
	// profile one-hots; a value at or past the width, or an unknown user,
	// lands in the last slot (defaults 16, 12, 7, 5: the simulated world's
	// 12 countries, 9 languages, 6 age buckets and 4 devices, and "other").
	Countries, Languages, AgeBuckets, Devices int
	// LastReels is how many of the session's last reels' categories the
	// session features describe (default 3).
	LastReels int
	// Tolerance is how far before the newest applied event a request's time
	// may lie and still be answered (default 60 s); see ErrPast.
	Tolerance time.Duration
}

// DefaultConfig returns the configuration the zero value stands for.
func DefaultConfig() Config { return Config{}.withDefaults() }

// maxWindows bounds the decay windows: a reel's counters and metadata
// then fit one 128-byte record, two cache lines per candidate.
const maxWindows = 3

func (c Config) withDefaults() Config {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.EmbedDim, 64)
	def(&c.Categories, 32)
	def(&c.Countries, 16)
	def(&c.Languages, 12)
	def(&c.AgeBuckets, 7)
	def(&c.Devices, 5)
	def(&c.LastReels, 3)
	if len(c.Windows) == 0 {
		c.Windows = []time.Duration{time.Hour, 24 * time.Hour, 7 * 24 * time.Hour}
	} else {
		c.Windows = append([]time.Duration(nil), c.Windows...)
	}
	if c.CategoryWindow == 0 {
		c.CategoryWindow = 7 * 24 * time.Hour
	}
	if c.HistoryWindow == 0 {
		c.HistoryWindow = 3 * 24 * time.Hour
	}
	if c.PriorStrength == 0 {
		c.PriorStrength = 20
	}
	if c.WatchThrough == 0 {
		c.WatchThrough = 0.8
	}
	if c.Tolerance == 0 {
		c.Tolerance = time.Minute
	}
	return c
}

// Validate reports the first field out of range, after defaults.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.EmbedDim < 1 || c.EmbedDim > 4096:
		return fmt.Errorf("features: EmbedDim %d outside [1, 4096]", c.EmbedDim)
	case c.Categories < 1 || c.Categories > 1024:
		return fmt.Errorf("features: Categories %d outside [1, 1024]", c.Categories)
	case len(c.Windows) > maxWindows:
		return fmt.Errorf("features: %d windows, at most %d", len(c.Windows), maxWindows)
	case c.Countries < 1 || c.Languages < 1 || c.AgeBuckets < 1 || c.Devices < 1 ||
		c.Countries > 256 || c.Languages > 256 || c.AgeBuckets > 256 || c.Devices > 256:
		return errors.New("features: profile widths must lie in [1, 256]")
	case c.LastReels < 1 || c.LastReels > 16:
		return fmt.Errorf("features: LastReels %d outside [1, 16]", c.LastReels)
	case !(c.PriorStrength > 0) || math.IsInf(c.PriorStrength, 0):
		return fmt.Errorf("features: PriorStrength %v must be positive", c.PriorStrength)
	case !(c.WatchThrough > 0 && c.WatchThrough <= 1):
		return fmt.Errorf("features: WatchThrough %v outside (0, 1]", c.WatchThrough)
	case c.Tolerance < 0:
		return fmt.Errorf("features: negative Tolerance %v", c.Tolerance)
	}
	fastest := c.CategoryWindow
	for _, w := range append(c.Windows, c.CategoryWindow, c.HistoryWindow) {
		if w < time.Minute || w > 365*24*time.Hour {
			return fmt.Errorf("features: window %v outside [1m, 1y]", w)
		}
		fastest = min(fastest, w)
	}
	// A request up to Tolerance in the past reads the counters with a
	// factor up to exp(Tolerance/window): 20 windows keep float32 finite.
	if c.Tolerance > 20*fastest {
		return fmt.Errorf("features: Tolerance %v over 20 times the fastest window %v", c.Tolerance, fastest)
	}
	return nil
}
