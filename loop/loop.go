package loop

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/reelrank/reelrank/engine"
	"github.com/reelrank/reelrank/sim"
	"github.com/reelrank/reelrank/train"
)

// The arms a loop can run, by kind. Each serves an equal share of the
// users.
const (
	// ArmEpsilon is the control: the model trained with inverse-propensity
	// weights, ε-greedy exploration of uncertain reels. New models reach
	// it through the canary.
	ArmEpsilon = "epsilon"
	// ArmNone serves the control's model with no exploration.
	ArmNone = "none"
	// ArmThompson explores uncertain reels by Thompson sampling of their
	// watch-through rate.
	ArmThompson = "thompson"
	// ArmFresh explores the reels uploaded within the fresh window, at
	// Config.FreshShare: a fresh-reel share.
	ArmFresh = "fresh"
	// ArmNoIPS serves a model trained without inverse-propensity weights,
	// with the control's exploration.
	ArmNoIPS = "noips"
	// ArmHoldout serves by popularity alone (the engine's holdout).
	ArmHoldout = "holdout"
)

// ArmKinds lists the arms a loop can run, in the order they are reported.
func ArmKinds() []string {
	return []string{ArmEpsilon, ArmNone, ArmThompson, ArmFresh, ArmNoIPS, ArmHoldout}
}

// Config configures a loop. The zero value of a field means its default.
type Config struct {
	// World is the simulated world; its Days are the loop's days.
	World sim.Config
	// Warmup is how many days the simulator's own policy (popularity with
	// a uniform exploration slice) serves before the first model is
	// trained (default 2, at least 2: a day to train on and one to
	// validate on).
	Warmup int
	// Arms are the arm kinds to run (default all of ArmKinds); ArmEpsilon,
	// the control, is always among them.
	Arms []string
	// Epsilon is the share of exploration slots of the exploring arms
	// (default 0.05), and FreshShare the fresh-reel arm's (default 0.1).
	Epsilon, FreshShare float64
	// PageSize is how many reels a request asks for; the session asks
	// again when it has shown them all (default 8).
	PageSize int
	// Period is how often the served events reach the engine (default 15
	// simulated minutes).
	Period time.Duration
	// CanaryShare is the share of users a nightly model serves as a
	// canary before it replaces the control (default half the control's
	// share).
	CanaryShare float64
	// Train is the nightly training's configuration; the loop sets its
	// IPS, ValidDays, TestDays, Version and Seed.
	Train train.Config
	// RegretSample bounds the impressions per arm and day whose regret
	// the oracle computes (default 400).
	RegretSample int
	// Threads bounds the goroutines of the simulator and of training
	// (default GOMAXPROCS). With one thread a loop is deterministic.
	Threads int
	// Seed seeds the engine's exploration and the training (the world has
	// its own).
	Seed uint64
	// Progress receives a line per stage and per simulated day; nil for
	// none.
	Progress io.Writer
}

// DefaultWorld is the loop's default world: 4,000 users, 6,000 reels,
// 14 days, a session a user a day, so that a 2-core machine runs the
// whole loop, nightly training included, in minutes.
func DefaultWorld() sim.Config {
	c := sim.DefaultConfig()
	c.Users, c.Reels, c.Days = 4000, 6000, 14
	c.SessionsPerDay = 1
	return c
}

func (c *Config) fill() {
	if c.World.Users == 0 {
		c.World = DefaultWorld()
	}
	if c.Warmup == 0 {
		c.Warmup = 2
	}
	if len(c.Arms) == 0 {
		c.Arms = ArmKinds()
	}
	if c.Epsilon == 0 {
		c.Epsilon = 0.05
	}
	if c.FreshShare == 0 {
		c.FreshShare = 0.1
	}
	if c.PageSize == 0 {
		c.PageSize = 8
	}
	if c.Period == 0 {
		c.Period = 15 * time.Minute
	}
	if c.CanaryShare == 0 {
		c.CanaryShare = 0.5 / float64(len(c.Arms))
	}
	if c.RegretSample == 0 {
		c.RegretSample = 400
	}
	// Nightly training lighter than a one-off run's: fewer epochs, fewer
	// users to measure retrieval on, so that fourteen nights fit in
	// minutes on two cores.
	if c.Train.Ranker.Epochs == 0 {
		c.Train.Ranker.Epochs = 4
	}
	if c.Train.Towers.Epochs == 0 {
		c.Train.Towers.Epochs = 2
	}
	if c.Train.RetrievalUsers == 0 {
		c.Train.RetrievalUsers = 200
	}
}

// ErrConfig is wrapped by the errors of a bad Config.
var ErrConfig = errors.New("loop: invalid config")

func (c *Config) check() error {
	bad := func(format string, a ...any) error { return fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(format, a...)) }
	if err := c.World.Validate(); err != nil {
		return fmt.Errorf("loop: %w", err)
	}
	switch {
	case c.Warmup < 2 || c.Warmup >= c.World.Days:
		return bad("warm-up of %d days in a world of %d: want at least 2 and fewer than the days", c.Warmup, c.World.Days)
	case !(c.Epsilon > 0 && c.Epsilon < 1) || !(c.FreshShare > 0 && c.FreshShare < 1):
		return bad("epsilon %v and fresh share %v: want (0, 1)", c.Epsilon, c.FreshShare)
	case c.PageSize < 1 || c.PageSize > engine.MaxN:
		return bad("page size %d outside 1..%d", c.PageSize, engine.MaxN)
	case c.RegretSample < 1:
		return bad("regret sample %d", c.RegretSample)
	case !(c.CanaryShare > 0 && c.CanaryShare < 1/float64(len(c.Arms))):
		return bad("canary share %v: want more than 0 and less than an arm's share %.4f", c.CanaryShare, 1/float64(len(c.Arms)))
	}
	seen := map[string]bool{}
	for _, a := range c.Arms {
		if !slices.Contains(ArmKinds(), a) {
			return bad("arm %q: want one of %s", a, strings.Join(ArmKinds(), ", "))
		}
		if seen[a] {
			return bad("arm %q twice", a)
		}
		seen[a] = true
	}
	if !seen[ArmEpsilon] {
		return bad("the arms lack %q, the control", ArmEpsilon)
	}
	return nil
}

// ParseArms reads a comma-separated list of arm kinds.
func ParseArms(s string) ([]string, error) {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no arms in %q", ErrConfig, s)
	}
	return out, nil
}

// The loop's folder.
const (
	WorldFolder  = "world" // the simulated world; its events.jsonl is what was served
	ServeFolder  = "serve" // the engine's durable state: its event log and checkpoints
	ReportMD     = "report.md"
	ReportJSON   = "report.json"
	chartsPrefix = "chart-"
)

// Run runs the loop into dir: it builds the world, serves its users with
// the engine, day after day, retrains every night on what was served,
// and writes the report (report.md with its SVG charts, report.json). An
// earlier loop's folders in dir are replaced.
func Run(ctx context.Context, cfg Config, dir string) (*Report, error) {
	cfg.fill()
	if err := cfg.check(); err != nil {
		return nil, err
	}
	began := time.Now()
	for _, sub := range []string{ServeFolder, WorldFolder} {
		if err := os.RemoveAll(filepath.Join(dir, sub)); err != nil {
			return nil, fmt.Errorf("loop: %w", err)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("loop: %w", err)
	}
	s := newServer(ctx, cfg, filepath.Join(dir, ServeFolder))
	defer s.close()
	sum, err := sim.Generate(ctx, cfg.World, filepath.Join(dir, WorldFolder),
		sim.GenerateOptions{Threads: cfg.Threads, Progress: cfg.Progress, Policy: s, Period: cfg.Period})
	if err != nil {
		if s.err != nil {
			return nil, s.err
		}
		return nil, fmt.Errorf("loop: %w", err)
	}
	if s.err != nil {
		return nil, s.err
	}
	s.logf("loop: %d sessions, %d impressions served in %.0f s; computing the report", sum.Counts.Sessions, sum.Counts.Impressions, time.Since(began).Seconds())
	rep, err := s.report(ctx)
	if err != nil {
		return nil, err
	}
	rep.Seconds = math.Round(time.Since(began).Seconds()*10) / 10
	if err := rep.write(dir); err != nil {
		return nil, err
	}
	return rep, nil
}
