package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/reelrank/reelrank/client"
	"github.com/reelrank/reelrank/eventlog"
	"github.com/reelrank/reelrank/wire"
)

// Doer sends one request and returns the answer; *client.Client and
// *client.Sharded are Doers.
type Doer interface {
	Do(ctx context.Context, req wire.Message) (wire.Message, error)
}

// LoadConfig is one `reelrank bench load` run: a server, the offered
// rates to step through, and the request mix. Zero fields take the
// defaults named beside them.
type LoadConfig struct {
	// Addr is the server to dial ("host:port") when Client is nil, with
	// Options (Options.Token for a server with a token, Options.TLS, the
	// pool size).
	Addr    string
	Options client.Options
	// Client, when set, sends the requests instead (and is not closed).
	Client Doer
	// Shards, when set (and Client is not), are the shards to drive
	// through a client.Sharded instead of Addr: Shards[i] lists shard i's
	// replicas, each dialled with Options. Partial answers are allowed,
	// each shard waited for at most ShardTimeout (0: Timeout), and the
	// step reports the merge overhead (LoadStep.MergeP50us).
	Shards       [][]string
	ShardTimeout time.Duration

	Rates    []float64     // offered requests per second, one step each
	Duration time.Duration // measured time of each step (10 s)
	Warmup   time.Duration // load at the step's rate before it is measured (none)
	Poisson  bool          // exponential gaps between sends instead of equal ones
	Timeout  time.Duration // each request's budget from its intended send time (1 s)

	Users      int64   // users are drawn uniformly from 1..Users (1000)
	Reels      int64   // reel ids for recent reels, Score and events, 1..Reels (1000)
	N          int     // items per Recommend (20)
	Recent     int     // recently shown reels in each context (3; negative: none)
	ScoreFrac  float64 // share of requests that are Score (0)
	ScoreReels int     // reels per Score (50)
	// EventFrac is the share of requests that are Event: an impression
	// and a watch, stamped by Clock (0). A server refuses events stamped 0
	// (the zero clock) or far from its own clock; LoadStep counts them.
	EventFrac float64
	// Clock gives the context time of requests (time.Now); a simulated
	// world's clock keeps requests inside its days, and a clock that
	// returns the zero time leaves the time to the server (0 on the wire).
	Clock func() time.Time
	Seed  uint64 // for users, reels and Poisson gaps
}

// LoadStep is the result of one offered rate. Latencies run from the
// time a request was meant to be sent, not from when it went out, so a
// stall of the server or of the generator shows in every request it
// delays (wrk2's correction for coordinated omission).
type LoadStep struct {
	Offered  float64 `json:"offered_qps"`
	Achieved float64 `json:"achieved_qps"` // answers (successes and server errors) per second
	Goodput  float64 `json:"goodput_qps"`  // successful answers per second
	Seconds  float64 `json:"seconds"`      // the span the rates are over: the step, or until its last answer

	Sent   int64 `json:"sent"` // requests meant to go out in the measured time
	OK     int64 `json:"ok"`
	Errors int64 `json:"errors"`

	// Latency of successful requests, microseconds.
	P50us  float64 `json:"p50_us"`
	P90us  float64 `json:"p90_us"`
	P99us  float64 `json:"p99_us"`
	P999us float64 `json:"p999_us"`
	MaxUs  float64 `json:"max_us"`
	MeanUs float64 `json:"mean_us"`
	// Latency of error answers (how fast "overloaded" comes back), µs.
	ErrP50us float64 `json:"err_p50_us"`
	ErrP99us float64 `json:"err_p99_us"`
	// SendLagP99us is how late the generator itself sent: a large value
	// means it could not keep the schedule, and the step measured it too.
	SendLagP99us float64 `json:"send_lag_p99_us"`

	// Errors by kind: the server shed load, a deadline passed (the
	// server's DeadlineExceeded or no answer in time), anything else.
	Overloaded int64 `json:"overloaded"`
	Deadline   int64 `json:"deadline"`
	Other      int64 `json:"other_errors"`
	// ByCode counts errors by wire error code name ("overloaded",
	// "not found", …), "timeout" for requests the server did not answer
	// in time, "connection" for broken connections and "client" for the
	// rest.
	ByCode map[string]int64 `json:"errors_by_code,omitempty"`

	Recommends     int64  `json:"recommends"`
	Scores         int64  `json:"scores"`
	Events         int64  `json:"events"`
	EventsRejected int64  `json:"events_rejected"`        // events the server refused in answered batches
	EventReason    string `json:"event_reason,omitempty"` // why the first refused one was

	// Stages are the mean stage timings of the successful Recommends.
	Stages *StageMeans `json:"stages,omitempty"`

	// Against shards (LoadConfig.Shards): Partial counts the successful
	// answers that missed some shards (each shard missing from one is in
	// MissingShards), and MergeP50us/MergeP99us/MergeMaxUs are the merge
	// overhead of the Recommends and Searches, microseconds: the call's
	// time in the client less the slowest shard's round trip, request by
	// request (fan-out and merge; no network or server time).
	Partial       int64   `json:"partial,omitempty"`
	MissingShards int64   `json:"missing_shards,omitempty"`
	MergeP50us    float64 `json:"merge_p50_us,omitempty"`
	MergeP99us    float64 `json:"merge_p99_us,omitempty"`
	MergeMaxUs    float64 `json:"merge_max_us,omitempty"`
	MergeSamples  int64   `json:"merge_samples,omitempty"`
}

// StageMeans are means over successful Recommend answers of their
// timings (microseconds) and candidate counts.
type StageMeans struct {
	FeaturesUs float64 `json:"features_us"`
	TowerUs    float64 `json:"tower_us"`
	ANNUs      float64 `json:"ann_us"`
	RankUs     float64 `json:"rank_us"`
	PostrankUs float64 `json:"postrank_us"`
	TotalUs    float64 `json:"total_us"`
	ANN        float64 `json:"ann_candidates"`
	Fresh      float64 `json:"fresh_candidates"`
	Explore    float64 `json:"explore_candidates"`
	Ranked     float64 `json:"ranked"`
}

// ms formats microseconds as milliseconds with three significant digits.
func ms(us float64) string {
	v := us / 1000
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0fms", v)
	case v >= 10:
		return fmt.Sprintf("%.1fms", v)
	}
	return fmt.Sprintf("%.2fms", v)
}

// String is the step on one line, for people.
func (s LoadStep) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "offered %.0f/s  achieved %.1f/s  goodput %.1f/s", s.Offered, s.Achieved, s.Goodput)
	if s.OK > 0 {
		fmt.Fprintf(&b, "  p50 %s  p99 %s  p99.9 %s  max %s", ms(s.P50us), ms(s.P99us), ms(s.P999us), ms(s.MaxUs))
	} else {
		b.WriteString("  no successes")
	}
	fmt.Fprintf(&b, "  errors %d", s.Errors)
	if s.Errors > 0 {
		codes := make([]string, 0, len(s.ByCode))
		for c := range s.ByCode {
			codes = append(codes, c)
		}
		sort.Strings(codes)
		b.WriteString(" (")
		for i, c := range codes {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%s %d", c, s.ByCode[c])
		}
		fmt.Fprintf(&b, "; error p99 %s)", ms(s.ErrP99us))
	}
	if s.EventsRejected > 0 {
		fmt.Fprintf(&b, "  events refused %d (%s)", s.EventsRejected, s.EventReason)
	}
	if s.MergeSamples > 0 {
		fmt.Fprintf(&b, "  merge p50 %.0fµs p99 %.0fµs max %.0fµs", s.MergeP50us, s.MergeP99us, s.MergeMaxUs)
	}
	if s.Partial > 0 {
		fmt.Fprintf(&b, "  partial %d (%d shard answers missing)", s.Partial, s.MissingShards)
	}
	if st := s.Stages; st != nil {
		fmt.Fprintf(&b, "  stages features %s tower %s ann %s rank %s postrank %s total %s",
			ms(st.FeaturesUs), ms(st.TowerUs), ms(st.ANNUs), ms(st.RankUs), ms(st.PostrankUs), ms(st.TotalUs))
	}
	if s.SendLagP99us > 1000 {
		fmt.Fprintf(&b, "  (generator late by %s at p99)", ms(s.SendLagP99us))
	}
	return b.String()
}

// withDefaults checks cfg and fills its zero fields.
func (cfg LoadConfig) withDefaults() (LoadConfig, error) {
	if len(cfg.Rates) == 0 {
		return cfg, errors.New("bench load: no rates")
	}
	for _, r := range cfg.Rates {
		if !(r > 0) || math.IsInf(r, 0) {
			return cfg, fmt.Errorf("bench load: rate %v is not a positive number", r)
		}
	}
	if cfg.Client == nil && cfg.Addr == "" && len(cfg.Shards) == 0 {
		return cfg, errors.New("bench load: no address, no shards and no client")
	}
	for i, s := range cfg.Shards {
		if len(s) == 0 {
			return cfg, fmt.Errorf("bench load: shard %d has no address", i)
		}
	}
	if cfg.ShardTimeout < 0 {
		return cfg, fmt.Errorf("bench load: negative shard timeout %v", cfg.ShardTimeout)
	}
	switch {
	case cfg.Duration < 0 || cfg.Warmup < 0 || cfg.Timeout < 0:
		return cfg, fmt.Errorf("bench load: negative duration %v, warmup %v or timeout %v", cfg.Duration, cfg.Warmup, cfg.Timeout)
	case cfg.Users < 0 || cfg.Reels < 0 || cfg.ScoreReels < 0:
		return cfg, fmt.Errorf("bench load: negative users %d, reels %d or score reels %d", cfg.Users, cfg.Reels, cfg.ScoreReels)
	case cfg.N < 0 || cfg.N > wire.MaxN:
		return cfg, fmt.Errorf("bench load: n = %d outside 1..%d", cfg.N, wire.MaxN)
	case !(cfg.ScoreFrac >= 0 && cfg.EventFrac >= 0 && cfg.ScoreFrac+cfg.EventFrac <= 1):
		return cfg, fmt.Errorf("bench load: score share %v and event share %v must be in [0, 1] and add up to at most 1",
			cfg.ScoreFrac, cfg.EventFrac)
	case cfg.Recent > wire.MaxRecent || cfg.ScoreReels > wire.MaxCandidates:
		return cfg, fmt.Errorf("bench load: %d recent reels or %d score reels over the protocol's limits", cfg.Recent, cfg.ScoreReels)
	}
	if cfg.Duration == 0 {
		cfg.Duration = 10 * time.Second
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = time.Second
	}
	if cfg.Users == 0 {
		cfg.Users = 1000
	}
	if cfg.Reels == 0 {
		cfg.Reels = 1000
	}
	if cfg.N == 0 {
		cfg.N = 20
	}
	if cfg.Recent == 0 {
		cfg.Recent = 3
	}
	if cfg.ScoreReels == 0 {
		cfg.ScoreReels = 50
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	return cfg, nil
}

// Load offers the server each rate of cfg.Rates in turn, open loop: the
// send times are fixed in advance (equal gaps, or Poisson), and a request
// goes out at its time whether or not earlier ones have been answered.
// Each step runs cfg.Warmup then cfg.Duration, waits for the answers of
// its requests (at most cfg.Timeout), and is passed to report (when not
// nil) before the next begins. It returns the steps done, and ctx's error
// when ctx ends first.
func Load(ctx context.Context, cfg LoadConfig, report func(LoadStep)) ([]LoadStep, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	d := cfg.Client
	var cur atomic.Pointer[tally] // the step whose merge overheads are recorded
	if d == nil && len(cfg.Shards) > 0 {
		st := cfg.ShardTimeout
		if st == 0 {
			st = cfg.Timeout
		}
		sh, err := client.DialSharded(ctx, cfg.Shards, cfg.Options, client.ShardedOptions{AllowPartial: true, ShardTimeout: st,
			Observe: func(o client.Observation) {
				if t := cur.Load(); t != nil {
					t.observe(o)
				}
			}})
		if err != nil {
			return nil, fmt.Errorf("bench load: %w", err)
		}
		defer sh.Close()
		d = sh
	}
	if d == nil {
		c, err := client.Dial(ctx, cfg.Addr, cfg.Options)
		if err != nil {
			return nil, fmt.Errorf("bench load: %w", err)
		}
		defer c.Close()
		d = c
	}
	g := &mix{cfg: &cfg, rng: rand.New(rand.NewPCG(cfg.Seed, 0x5eed))}
	var steps []LoadStep
	for _, rate := range cfg.Rates {
		st, err := runStep(ctx, d, &cfg, rate, g, &cur)
		if err != nil {
			return steps, err
		}
		steps = append(steps, st)
		if report != nil {
			report(st)
		}
	}
	return steps, nil
}

// maxLatencyUs bounds the histograms: a minute, or twice the timeout.
func maxLatencyUs(timeout time.Duration) int64 {
	return max(int64(time.Minute/time.Microsecond), 2*timeout.Microseconds())
}

// tally gathers one step's outcomes; its methods are safe for concurrent
// use.
type tally struct {
	mu            sync.Mutex
	ok, errs, lag *hdrhistogram.Histogram
	maxUs         int64
	st            LoadStep
	stages        wire.Timings // sums over the successful Recommends
	stageN        int64
	answers       int64 // successes and server errors
	lastAnswer    time.Time
	// merge holds the merge overheads (ns) of the Recommends and Searches
	// a Sharded began in [from, end).
	merge     *hdrhistogram.Histogram
	from, end time.Time
}

// observe records a Sharded's fan-out of a measured request.
func (t *tally) observe(o client.Observation) {
	if o.Slowest <= 0 || (o.Kind != wire.KindRecommendRequest && o.Kind != wire.KindSearchRequest) {
		return
	}
	began := time.Now().Add(-o.Total)
	t.mu.Lock()
	defer t.mu.Unlock()
	if began.Before(t.from) || !began.Before(t.end) {
		return
	}
	t.merge.RecordValue(min(max(o.Overhead().Nanoseconds(), 1), t.merge.HighestTrackableValue()))
}

func newTally(timeout time.Duration) *tally {
	hi := maxLatencyUs(timeout)
	return &tally{ok: hdrhistogram.New(1, hi, 3), errs: hdrhistogram.New(1, hi, 3), lag: hdrhistogram.New(1, hi, 3),
		merge: hdrhistogram.New(1, int64(time.Minute), 3), maxUs: hi, st: LoadStep{ByCode: map[string]int64{}}}
}

func (t *tally) clamp(d time.Duration) int64 { return min(max(d.Microseconds(), 1), t.maxUs) }

// record adds one measured request: its latency from its intended send
// time, its answer or error, and when the answer came.
func (t *tally) record(lat time.Duration, m wire.Message, err error, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.st.Sent++
	var pe *client.PartialError
	if err != nil && m != nil && errors.As(err, &pe) {
		// Some shards answered: a success, counted partial.
		t.st.Partial++
		t.st.MissingShards += int64(len(pe.Failed))
		err = nil
	}
	answered := err == nil
	if err != nil {
		t.st.Errors++
		code, kind, fromServer := classify(err)
		answered = fromServer
		t.st.ByCode[code]++
		switch kind {
		case kindOverloaded:
			t.st.Overloaded++
		case kindDeadline:
			t.st.Deadline++
		default:
			t.st.Other++
		}
		if fromServer {
			t.errs.RecordValue(t.clamp(lat))
		}
	} else {
		t.st.OK++
		t.ok.RecordValue(t.clamp(lat))
		switch r := m.(type) {
		case *wire.RecommendResponse:
			s := &t.stages
			s.Features += r.Timings.Features
			s.Tower += r.Timings.Tower
			s.ANN += r.Timings.ANN
			s.Rank += r.Timings.Rank
			s.Postrank += r.Timings.Postrank
			s.Total += r.Timings.Total
			s.ANNCandidates += r.Timings.ANNCandidates
			s.FreshCandidates += r.Timings.FreshCandidates
			s.ExploreCandidates += r.Timings.ExploreCandidates
			s.Ranked += r.Timings.Ranked
			t.stageN++
		case *wire.EventResponse:
			t.st.EventsRejected += int64(r.Rejected)
			if t.st.EventReason == "" {
				t.st.EventReason = r.Reason
			}
		}
	}
	if answered {
		t.answers++
		if at.After(t.lastAnswer) {
			t.lastAnswer = at
		}
	}
}

// sent counts one send of the measured time, and how late it went out.
func (t *tally) sent(k wire.Kind, lag time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lag.RecordValue(t.clamp(lag))
	switch k {
	case wire.KindRecommendRequest:
		t.st.Recommends++
	case wire.KindScoreRequest:
		t.st.Scores++
	case wire.KindEventRequest:
		t.st.Events++
	}
}

// step finishes the step's figures; from is the start of the measured
// time, dur its length.
func (t *tally) step(rate float64, from time.Time, dur time.Duration) LoadStep {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.st
	s.Offered = rate
	span := dur
	if t.answers > 0 {
		span = max(span, t.lastAnswer.Sub(from))
	}
	s.Seconds = span.Seconds()
	s.Achieved = float64(t.answers) / s.Seconds
	s.Goodput = float64(s.OK) / s.Seconds
	if s.OK > 0 {
		s.P50us = float64(t.ok.ValueAtQuantile(50))
		s.P90us = float64(t.ok.ValueAtQuantile(90))
		s.P99us = float64(t.ok.ValueAtQuantile(99))
		s.P999us = float64(t.ok.ValueAtQuantile(99.9))
		s.MaxUs = float64(t.ok.Max())
		s.MeanUs = t.ok.Mean()
	}
	if t.errs.TotalCount() > 0 {
		s.ErrP50us = float64(t.errs.ValueAtQuantile(50))
		s.ErrP99us = float64(t.errs.ValueAtQuantile(99))
	}
	if t.lag.TotalCount() > 0 {
		s.SendLagP99us = float64(t.lag.ValueAtQuantile(99))
	}
	if n := t.merge.TotalCount(); n > 0 {
		s.MergeSamples = n
		s.MergeP50us = float64(t.merge.ValueAtQuantile(50)) / 1e3
		s.MergeP99us = float64(t.merge.ValueAtQuantile(99)) / 1e3
		s.MergeMaxUs = float64(t.merge.Max()) / 1e3
	}
	if len(s.ByCode) == 0 {
		s.ByCode = nil
	}
	if n := float64(t.stageN); n > 0 {
		us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) / n }
		g := &t.stages
		s.Stages = &StageMeans{FeaturesUs: us(g.Features), TowerUs: us(g.Tower), ANNUs: us(g.ANN), RankUs: us(g.Rank),
			PostrankUs: us(g.Postrank), TotalUs: us(g.Total), ANN: float64(g.ANNCandidates) / n,
			Fresh: float64(g.FreshCandidates) / n, Explore: float64(g.ExploreCandidates) / n, Ranked: float64(g.Ranked) / n}
	}
	return s
}

type errKind int

const (
	kindOther errKind = iota
	kindOverloaded
	kindDeadline
)

// classify names an error: its code, its kind, and whether the server
// sent it (an answer) or it arose on this side.
func classify(err error) (code string, kind errKind, fromServer bool) {
	var we *wire.Error
	switch {
	case errors.As(err, &we):
		switch we.Code {
		case wire.Overloaded:
			kind = kindOverloaded
		case wire.DeadlineExceeded:
			kind = kindDeadline
		}
		return we.Code.String(), kind, true
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout", kindDeadline, false
	case errors.Is(err, client.ErrConnLost):
		return "connection", kindOther, false
	}
	return "client", kindOther, false
}

// runStep offers one rate: warmup, then the measured time, then the wait
// for the last answers.
func runStep(ctx context.Context, d Doer, cfg *LoadConfig, rate float64, g *mix, cur *atomic.Pointer[tally]) (LoadStep, error) {
	t := newTally(cfg.Timeout)
	start := time.Now()
	from := start.Add(cfg.Warmup)
	end := from.Add(cfg.Duration)
	t.from, t.end = from, end
	cur.Store(t)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	var wg sync.WaitGroup
	next := start
	offset := 0.0 // of the next send from start, in nanoseconds: no rounding piles up
	for i := 1; next.Before(end); i++ {
		if wait := time.Until(next); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-ctx.Done():
			}
		}
		if ctx.Err() != nil {
			break
		}
		req := g.next()
		measured := !next.Before(from)
		if measured {
			t.sent(req.Kind(), time.Since(next))
		}
		intended := next
		wg.Go(func() {
			rctx, cancel := context.WithDeadline(ctx, intended.Add(cfg.Timeout))
			m, err := d.Do(rctx, req)
			cancel()
			now := time.Now()
			if measured && ctx.Err() == nil {
				t.record(now.Sub(intended), m, err, now)
			}
		})
		if cfg.Poisson {
			offset += g.rng.ExpFloat64() * 1e9 / rate
		} else {
			offset = float64(i) * 1e9 / rate
		}
		next = start.Add(time.Duration(math.Round(offset)))
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return LoadStep{}, fmt.Errorf("bench load: step at %v/s: %w", rate, err)
	}
	return t.step(rate, from, cfg.Duration), nil
}

// mix draws the requests of a run. It is used by one goroutine.
type mix struct {
	cfg *LoadConfig
	rng *rand.Rand
}

func (g *mix) reel() int64 { return 1 + g.rng.Int64N(g.cfg.Reels) }

// context returns a plausible request context for user: now by the
// config's clock, a session, a slot a few swipes in, recent reels.
func (g *mix) context(user int64) wire.Context {
	c := wire.Context{
		Time:     unixMilli(g.cfg.Clock()),
		Session:  user<<16 | g.rng.Int64N(1<<16),
		Position: int32(g.rng.IntN(30)),
	}
	if g.cfg.Recent > 0 {
		c.Recent = make([]int64, g.cfg.Recent)
		for i := range c.Recent {
			c.Recent[i] = g.reel()
		}
	}
	return c
}

// next returns the next request: a Recommend, or by the configured
// shares a Score or an Event batch.
func (g *mix) next() wire.Message {
	user := 1 + g.rng.Int64N(g.cfg.Users)
	x := g.rng.Float64()
	switch {
	case x < g.cfg.ScoreFrac:
		reels := make([]int64, g.cfg.ScoreReels)
		for i := range reels {
			reels[i] = g.reel()
		}
		return &wire.ScoreRequest{User: user, Context: g.context(user), Reels: reels}
	case x < g.cfg.ScoreFrac+g.cfg.EventFrac:
		c := g.context(user)
		reel := g.reel()
		author := 1 + (reel*7919)%g.cfg.Users
		secs := float32(1 + g.rng.IntN(30))
		watched := c.Time + int64(secs*1000)
		if c.Time == 0 {
			watched = 0 // both left to the server's clock
		}
		return &wire.EventRequest{Events: []wire.Event{
			{Type: wire.EventImpression, Has: uint16(eventlog.Required(eventlog.Impression)), Time: c.Time, User: user,
				Reel: reel, Author: author, Session: c.Session, Position: c.Position, Propensity: 1, Arm: "load"},
			{Type: wire.EventWatch, Has: uint16(eventlog.Required(eventlog.Watch)), Time: watched,
				User: user, Reel: reel, Author: author, Session: c.Session, Position: c.Position, Seconds: secs,
				Fraction: secs / 30},
		}}
	}
	return &wire.RecommendRequest{User: user, N: g.cfg.N, Context: g.context(user)}
}

// unixMilli is t in ms since the Unix epoch, or 0 (the server's own
// clock) for the zero time.
func unixMilli(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}
