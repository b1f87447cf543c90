package drift

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
)

// FormatVersion is the version of the Reference's JSON form.
const FormatVersion = 1

// Default thresholds on the PSI and window sizes.
const (
	DefaultWarn      = 0.1
	DefaultThreshold = 0.25
	DefaultBins      = 10
	DefaultWindow    = 20_000
	DefaultMinCount  = 1_000
	epsilon          = 1e-4
)

// Series is one series of a Reference: bin i holds the values v with
// Edges[i-1] <= v < Edges[i] (the first bin everything below Edges[0], the
// last finite bin everything from the last edge up), and the bin after the
// finite ones holds NaN. Share has len(Edges)+2 entries summing to 1.
type Series struct {
	Name  string    `json:"name"`
	Edges []float32 `json:"edges"`
	Share []float64 `json:"share"`
}

// bin returns the bin of v.
func (s *Series) bin(v float32) int {
	if v != v {
		return len(s.Edges) + 1
	}
	return sort.Search(len(s.Edges), func(i int) bool { return v < s.Edges[i] })
}

// Reference is the training distribution of every series a model is
// monitored on.
type Reference struct {
	Version int `json:"version"`
	// Rows is how many rows the reference was built from; Sample how
	// many of them its bins were computed on.
	Rows   int64    `json:"rows"`
	Sample int      `json:"sample"`
	Series []Series `json:"series"`
}

// Names returns the series' names in order.
func (r *Reference) Names() []string {
	out := make([]string, len(r.Series))
	for i := range r.Series {
		out[i] = r.Series[i].Name
	}
	return out
}

// Validate checks the reference's shape: a known version, unique names,
// ascending finite edges, shares of the right length summing to 1.
func (r *Reference) Validate() error {
	if r.Version != FormatVersion {
		return fmt.Errorf("drift: reference version %d, want %d", r.Version, FormatVersion)
	}
	seen := make(map[string]bool, len(r.Series))
	for i := range r.Series {
		s := &r.Series[i]
		if s.Name == "" || seen[s.Name] {
			return fmt.Errorf("drift: reference series %d: empty or repeated name %q", i, s.Name)
		}
		seen[s.Name] = true
		for j, e := range s.Edges {
			if math.IsNaN(float64(e)) || math.IsInf(float64(e), 0) || (j > 0 && e <= s.Edges[j-1]) {
				return fmt.Errorf("drift: reference series %q: edges not finite and ascending at %d", s.Name, j)
			}
		}
		if len(s.Share) != len(s.Edges)+2 {
			return fmt.Errorf("drift: reference series %q: %d shares for %d edges", s.Name, len(s.Share), len(s.Edges))
		}
		sum := 0.0
		for _, p := range s.Share {
			if !(p >= 0 && p <= 1) {
				return fmt.Errorf("drift: reference series %q: share %v outside [0, 1]", s.Name, p)
			}
			sum += p
		}
		if math.Abs(sum-1) > 1e-6 {
			return fmt.Errorf("drift: reference series %q: shares sum to %v", s.Name, sum)
		}
	}
	return nil
}

// Write writes the reference as JSON.
func (r *Reference) Write(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	return enc.Encode(r)
}

// Read reads and validates a reference written by Write.
func Read(rd io.Reader) (*Reference, error) {
	var r Reference
	dec := json.NewDecoder(rd)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("drift: read reference: %w", err)
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return &r, nil
}

// Builder samples rows of values, one per series, and makes a Reference.
// It keeps a uniform reservoir of at most its capacity rows.
type Builder struct {
	names  []string
	cap    int
	rows   int64
	sample []float32 // up to cap rows of len(names)
	rng    *rand.Rand
}

// NewBuilder returns a builder over the named series keeping at most
// capacity rows (0: 20,000), sampled with seed.
func NewBuilder(names []string, capacity int, seed uint64) *Builder {
	if capacity <= 0 {
		capacity = 20_000
	}
	return &Builder{names: slices.Clone(names), cap: capacity, rng: rand.New(rand.NewPCG(seed, 0x6472696674))}
}

// Add offers one row: len(names) values in the series' order.
func (b *Builder) Add(row []float32) error {
	w := len(b.names)
	if len(row) != w {
		return fmt.Errorf("drift: add: %d values for %d series", len(row), w)
	}
	b.rows++
	if n := len(b.sample) / max(w, 1); n < b.cap {
		b.sample = append(b.sample, row...)
		return nil
	}
	if j := b.rng.Int64N(b.rows); j < int64(b.cap) {
		copy(b.sample[int(j)*w:int(j+1)*w], row)
	}
	return nil
}

// Rows counts the rows offered.
func (b *Builder) Rows() int64 { return b.rows }

// MinRelativeWidth is the narrowest a reference bin may be, as a share of
// the median's magnitude: moves of a series smaller than about a tenth of
// its typical value are below the monitor's resolution.
const MinRelativeWidth = 0.1

// Build makes the reference with up to bins quantile bins a series (0:
// DefaultBins), plus a bin above the largest training value. Quantiles
// closer to the one before than 1/(2·bins) of the spread of the middle
// 90% of values, or than MinRelativeWidth of the median's magnitude,
// merge into it, repeated ones too: a binary feature gets three or four
// bins, and a value bunched near one point a few wide ones.
func (b *Builder) Build(bins int) (*Reference, error) {
	if bins <= 0 {
		bins = DefaultBins
	}
	w := len(b.names)
	n := 0
	if w > 0 {
		n = len(b.sample) / w
	}
	if n == 0 {
		return nil, errors.New("drift: build reference: no rows")
	}
	ref := &Reference{Version: FormatVersion, Rows: b.rows, Sample: n, Series: make([]Series, w)}
	col := make([]float32, 0, n)
	for j, name := range b.names {
		col = col[:0]
		nan := 0
		for i := 0; i < n; i++ {
			v := b.sample[i*w+j]
			if v != v {
				nan++
				continue
			}
			col = append(col, v)
		}
		slices.Sort(col)
		s := Series{Name: name}
		if len(col) > 0 {
			// Quantile edges, none closer to the one before than a
			// fraction of the spread of the middle 90%, nor than
			// MinRelativeWidth of the median: a value bunched near one
			// point (a smoothed rate near its prior, the global rate)
			// would otherwise get bins so narrow that a move within its
			// day-to-day noise crosses most of them.
			lo, hi := col[len(col)/20], col[len(col)-1-len(col)/20]
			minGap := max(float64(hi-lo)/float64(2*bins), MinRelativeWidth*math.Abs(float64(col[len(col)/2])))
			for q := 1; q < bins; q++ {
				e := col[q*len(col)/bins]
				if math.IsInf(float64(e), 0) {
					continue
				}
				if len(s.Edges) == 0 || (e > s.Edges[len(s.Edges)-1] && float64(e-s.Edges[len(s.Edges)-1]) >= minGap) {
					s.Edges = append(s.Edges, e)
				}
			}
			// Values above any seen in training get a bin of their own,
			// so that a feature constant in training (a country no
			// training user had) still shows a shift when it moves.
			top := math.Nextafter32(col[len(col)-1], float32(math.Inf(1)))
			if !math.IsInf(float64(top), 0) && (len(s.Edges) == 0 || top > s.Edges[len(s.Edges)-1]) {
				s.Edges = append(s.Edges, top)
			}
		}
		counts := make([]float64, len(s.Edges)+2)
		for _, v := range col {
			counts[s.bin(v)]++
		}
		counts[len(counts)-1] = float64(nan)
		for i := range counts {
			counts[i] /= float64(n)
		}
		s.Share = counts
		ref.Series[j] = s
	}
	return ref, nil
}

// Options tune a Monitor.
type Options struct {
	// Window is how many recent values of a series the window holds
	// (0: DefaultWindow); it slides in Slots steps (0: 10).
	Window, Slots int
	// MinCount is how many values a series needs in its window before it
	// is judged (0: DefaultMinCount).
	MinCount int
	// Warn and Threshold are the PSI above which a series is marked
	// "shift" and "drift" (0: DefaultWarn, DefaultThreshold).
	Warn, Threshold float64
	// Exempt names prefixes of series that are reported but never
	// marked: features that cycle faster than the window (the hour of
	// the day) differ from a reference spread over days without any
	// change in the population.
	Exempt []string
}

func (o Options) withDefaults() Options {
	if o.Window <= 0 {
		o.Window = DefaultWindow
	}
	if o.Slots <= 0 {
		o.Slots = 10
	}
	o.Slots = min(o.Slots, o.Window)
	if o.MinCount <= 0 {
		o.MinCount = min(DefaultMinCount, o.Window)
	}
	if o.Warn <= 0 {
		o.Warn = DefaultWarn
	}
	if o.Threshold <= 0 {
		o.Threshold = DefaultThreshold
	}
	return o
}

// Monitor keeps the bin counts of each series of a Reference over a
// sliding window of the values added since. It is safe for concurrent
// use.
type Monitor struct {
	ref *Reference
	opt Options
	per int // values per slot

	mu     sync.Mutex
	series []monSeries
}

type monSeries struct {
	slots [][]uint32 // Slots rings of len(Share) counts
	fill  []int      // values in each slot
	cur   int
	total int64 // values ever added
}

// NewMonitor returns a monitor of ref's series.
func NewMonitor(ref *Reference, opt Options) (*Monitor, error) {
	if ref == nil {
		return nil, errors.New("drift: new monitor: nil reference")
	}
	if err := ref.Validate(); err != nil {
		return nil, err
	}
	opt = opt.withDefaults()
	m := &Monitor{ref: ref, opt: opt, per: max(1, opt.Window/opt.Slots), series: make([]monSeries, len(ref.Series))}
	for i := range m.series {
		s := &m.series[i]
		s.slots = make([][]uint32, opt.Slots)
		for k := range s.slots {
			s.slots[k] = make([]uint32, len(ref.Series[i].Share))
		}
		s.fill = make([]int, opt.Slots)
	}
	return m, nil
}

// Reference returns the monitor's reference.
func (m *Monitor) Reference() *Reference { return m.ref }

// Index returns the position of the named series, or -1.
func (m *Monitor) Index(name string) int {
	for i := range m.ref.Series {
		if m.ref.Series[i].Name == name {
			return i
		}
	}
	return -1
}

// AddRows adds rows of width values: value j of a row goes to series
// cols[j] (a column with a negative entry is skipped). rows must hold a
// whole number of rows.
func (m *Monitor) AddRows(cols []int, rows []float32) {
	w := len(cols)
	if w == 0 || len(rows) < w {
		return
	}
	n := len(rows) / w
	m.mu.Lock()
	defer m.mu.Unlock()
	for j, c := range cols {
		if c < 0 || c >= len(m.series) {
			continue
		}
		s := &m.series[c]
		rs := &m.ref.Series[c]
		for i := 0; i < n; i++ {
			if s.fill[s.cur] >= m.per {
				s.cur = (s.cur + 1) % len(s.slots)
				clear(s.slots[s.cur])
				s.fill[s.cur] = 0
			}
			s.slots[s.cur][rs.bin(rows[i*w+j])]++
			s.fill[s.cur]++
			s.total++
		}
	}
}

// Level names a PSI: "ok", "shift" or "drift" ("" when the window holds
// too few values to say).
type Level string

// The levels.
const (
	Unknown Level = ""
	OK      Level = "ok"
	Shift   Level = "shift"
	Drift   Level = "drift"
)

// SeriesReport is one series' state.
type SeriesReport struct {
	Name string  `json:"name"`
	PSI  float64 `json:"psi"`
	// Count is how many values the window holds; Total how many were
	// ever added.
	Count int   `json:"count"`
	Total int64 `json:"total"`
	Level Level `json:"level"`
	// Exempt says the series is reported but never marked (Options.Exempt).
	Exempt bool `json:"exempt,omitempty"`
	// Share is the window's share per bin, beside the reference's.
	Share     []float64 `json:"share,omitempty"`
	Reference []float64 `json:"reference,omitempty"`
}

// Report returns every series' PSI over the window, worst first (series
// with too few values last).
func (m *Monitor) Report() []SeriesReport {
	m.mu.Lock()
	out := make([]SeriesReport, len(m.series))
	for i := range m.series {
		s := &m.series[i]
		rs := &m.ref.Series[i]
		counts := make([]float64, len(rs.Share))
		n := 0
		for k := range s.slots {
			for b, c := range s.slots[k] {
				counts[b] += float64(c)
			}
			n += s.fill[k]
		}
		r := SeriesReport{Name: rs.Name, Count: n, Total: s.total, Reference: rs.Share}
		if n > 0 {
			for b := range counts {
				counts[b] /= float64(n)
			}
			r.Share = counts
			r.PSI = PSI(rs.Share, counts)
		}
		r.Exempt = m.exempt(rs.Name)
		if !r.Exempt {
			r.Level = m.level(r.PSI, n)
		}
		out[i] = r
	}
	m.mu.Unlock()
	sort.SliceStable(out, func(i, j int) bool {
		ki, kj := out[i].Level != Unknown, out[j].Level != Unknown
		if ki != kj {
			return ki
		}
		return out[i].PSI > out[j].PSI
	})
	return out
}

func (m *Monitor) exempt(name string) bool {
	for _, p := range m.opt.Exempt {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

func (m *Monitor) level(psi float64, n int) Level {
	switch {
	case n < m.opt.MinCount:
		return Unknown
	case psi > m.opt.Threshold:
		return Drift
	case psi > m.opt.Warn:
		return Shift
	}
	return OK
}

// PSI is the population stability index of actual against expected, two
// distributions over the same bins; shares are floored at 1e-4.
func PSI(expected, actual []float64) float64 {
	s := 0.0
	for i := range expected {
		e, a := max(expected[i], epsilon), epsilon
		if i < len(actual) {
			a = max(actual[i], epsilon)
		}
		s += (a - e) * math.Log(a/e)
	}
	return s
}
