package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"github.com/reelrank/reelrank/loop"
	"github.com/reelrank/reelrank/sim"
)

// cmdLoop runs `reelrank loop`: the simulator's users served by the
// engine, nightly retraining, the report.
func cmdLoop(args []string, stdout, stderr io.Writer) error {
	def := loop.DefaultWorld()
	fs := flag.NewFlagSet("loop", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "folder to write the world, the engine's log and the report into")
	preset := fs.String("preset", "", fmt.Sprintf("start from a simulator preset %v instead of the loop's world (%d users, %d reels, %d days, a session a user a day); the flags given override it",
		sim.PresetNames(), def.Users, def.Reels, def.Days))
	days := fs.Int("days", def.Days, "simulated days")
	users := fs.Int("users", def.Users, "users")
	reels := fs.Int("reels", def.Reels, "reels at the start (uploads come on top)")
	sessions := fs.Float64("sessions", def.SessionsPerDay, "mean sessions per user and day")
	seed := fs.Uint64("seed", def.Seed, "seed of the world, the engine and the training")
	arms := fs.String("arms", strings.Join(loop.ArmKinds(), ","), "arms, an equal share of users each: "+strings.Join(loop.ArmKinds(), ", ")+" (epsilon is the control and must be there)")
	warmup := fs.Int("warmup", 2, "days the simulator's popularity policy serves before the first model")
	epsilon := fs.Float64("epsilon", 0.05, "exploration share of the exploring arms")
	fresh := fs.Float64("fresh-share", 0.1, "exploration share of the fresh arm, among reels uploaded within the fresh window")
	page := fs.Int("page", 8, "reels a request asks for")
	period := fs.Duration("period", 15*time.Minute, "how often the served events reach the engine (simulated time)")
	threads := fs.Int("threads", 0, "goroutines (0: all cores; 1: deterministic)")
	asJSON := fs.Bool("json", false, "print the report as one JSON object")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("loop: unexpected argument %q", fs.Arg(0))
	}
	if *out == "" {
		return errors.New("loop: --out is required")
	}
	world := def
	if *preset != "" {
		var err error
		if world, err = sim.Preset(*preset); err != nil {
			return fmt.Errorf("loop: --preset: %w", err)
		}
	}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "days":
			world.Days = *days
		case "users":
			world.Users = *users
		case "reels":
			world.Reels = *reels
		case "sessions":
			world.SessionsPerDay = *sessions
		case "seed":
			world.Seed = *seed
		}
	})
	armList, err := loop.ParseArms(*arms)
	if err != nil {
		return err
	}
	cfg := loop.Config{World: world, Warmup: *warmup, Arms: armList, Epsilon: *epsilon, FreshShare: *fresh,
		PageSize: *page, Period: *period, Threads: *threads, Seed: *seed}
	start := time.Now()
	cfg.Progress = prefixWriter{w: stderr, start: start}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	fmt.Fprintf(stderr, "loop: %d users, %d reels, %d days, arms %s, into %s\n", world.Users, world.Reels, world.Days, strings.Join(armList, ","), *out)
	rep, err := loop.Run(ctx, cfg, *out)
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(rep)
	}
	fmt.Fprintf(stdout, "report: %s (charts beside it), %s\n\n", filepath.Join(*out, loop.ReportMD), filepath.Join(*out, loop.ReportJSON))
	fmt.Fprintf(stdout, "day %d:\n", world.Days)
	for _, a := range armList {
		if f, ok := rep.Figure(world.Days, a); ok {
			fmt.Fprintf(stdout, "  %-9s watch %6.1f s/user  watch-through %.4f  reels %5d  authors %5d  fresh %.3f  topics/user %.2f  regret %.4f (cumulative %.3f)\n",
				a, f.WatchTimePerUser, f.WatchThroughRate, f.Reels, f.Authors, f.FreshShare, f.TopicsPerUser, f.Regret, f.CumulativeRegret)
		}
	}
	return nil
}

// prefixWriter stamps each progress line with the seconds since start.
type prefixWriter struct {
	w     io.Writer
	start time.Time
}

func (p prefixWriter) Write(b []byte) (int, error) {
	if _, err := fmt.Fprintf(p.w, "[%6.1fs] %s", time.Since(p.start).Seconds(), b); err != nil {
		return 0, err
	}
	return len(b), nil
}
