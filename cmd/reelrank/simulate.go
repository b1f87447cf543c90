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
	"sort"
	"text/tabwriter"
	"time"

	"github.com/reelrank/reelrank/sim"
)

// simulateResult is the --json line of `reelrank simulate`.
type simulateResult struct {
	Out      string         `json:"out"`
	Seed     uint64         `json:"seed"`
	Days     int            `json:"days"`
	Policy   string         `json:"policy"`
	Counts   sim.Counts     `json:"counts"`
	Files    []sim.FileInfo `json:"files"`
	Bytes    int64          `json:"bytes"`
	ElapsedS float64        `json:"elapsed_s"`
}

// cmdSimulate runs `reelrank simulate`: it writes a synthetic world and
// its event log into --out.
func cmdSimulate(args []string, stdout, stderr io.Writer) error {
	def := sim.DefaultConfig()
	fs := flag.NewFlagSet("simulate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "folder to write the world into (created if needed)")
	preset := fs.String("preset", "default", fmt.Sprintf("the world to start from, %v; the flags given override its values (the defaults below are the default preset's)", sim.PresetNames()))
	users := fs.Int("users", def.Users, "users")
	reels := fs.Int("reels", def.Reels, "reels in the catalogue at the start (uploads come on top)")
	days := fs.Int("days", def.Days, "simulated days of sessions")
	seed := fs.Uint64("seed", def.Seed, "seed of the world")
	topics := fs.Int("topics", def.Topics, "latent topics")
	dim := fs.Int("dim", def.EmbedDim, "dimension of the content embeddings")
	start := fs.String("start", def.Start.Format(time.RFC3339), "start of the first day (RFC 3339 or YYYY-MM-DD, UTC)")
	sessions := fs.Float64("sessions", def.SessionsPerDay, "mean sessions per user and day")
	sessionLen := fs.Float64("session-len", def.SessionLength, "mean impressions per session")
	uploadRate := fs.Float64("upload-rate", def.UploadRate, "mean fraction of users uploading a reel each day")
	follows := fs.Float64("follows", def.FollowsPerUser, "mean initial follows per user")
	policy := fs.String("policy", "mixture", "serving policy: mixture (popularity with uniform exploration), popularity or random")
	epsilon := fs.Float64("epsilon", 0.1, "exploration share of the mixture policy")
	threads := fs.Int("threads", 0, "goroutines (0: all cores); the output does not depend on it")
	asJSON := fs.Bool("json", false, "print one JSON object")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("simulate: unexpected argument %q", fs.Arg(0))
	}
	if *out == "" {
		return errors.New("simulate: --out is required")
	}
	cfg, err := sim.Preset(*preset)
	if err != nil {
		return fmt.Errorf("simulate: --preset: %w", err)
	}
	// The flags given override the preset's values.
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "users":
			cfg.Users = *users
		case "reels":
			cfg.Reels = *reels
		case "days":
			cfg.Days = *days
		case "seed":
			cfg.Seed = *seed
		case "topics":
			cfg.Topics = *topics
		case "dim":
			cfg.EmbedDim = *dim
		case "sessions":
			cfg.SessionsPerDay = *sessions
		case "session-len":
			cfg.SessionLength = *sessionLen
		case "upload-rate":
			cfg.UploadRate = *uploadRate
		case "follows":
			cfg.FollowsPerUser = *follows
		}
	})
	t, err := time.Parse(time.RFC3339, *start)
	if err != nil {
		if t, err = time.Parse(time.DateOnly, *start); err != nil {
			return fmt.Errorf("simulate: --start %q: want RFC 3339 or YYYY-MM-DD", *start)
		}
	}
	cfg.Start = t.UTC()
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("simulate: %w", err)
	}
	var p sim.Policy
	switch *policy {
	case "mixture":
		if !(*epsilon >= 0 && *epsilon <= 1) {
			return fmt.Errorf("simulate: --epsilon %v outside [0, 1]", *epsilon)
		}
		p = sim.NewMixture(*epsilon)
	case "popularity":
		p = sim.NewPopularityPolicy()
	case "random":
		p = &sim.RandomPolicy{}
	default:
		return fmt.Errorf("simulate: --policy %q: want mixture, popularity or random", *policy)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	fmt.Fprintf(stderr, "simulating %d users, %d reels, %d days into %s...\n", cfg.Users, cfg.Reels, cfg.Days, *out)
	s, err := sim.Generate(ctx, cfg, *out, sim.GenerateOptions{Threads: *threads, Progress: stderr, Policy: p})
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(simulateResult{
			Out: s.Dir, Seed: cfg.Seed, Days: cfg.Days, Policy: *policy, Counts: s.Counts,
			Files: s.Files, Bytes: s.Bytes, ElapsedS: s.Elapsed.Seconds(),
		})
	}
	c := s.Counts
	fmt.Fprintf(stdout, "world %s (seed %d, policy %s) in %v\n", s.Dir, cfg.Seed, *policy, s.Elapsed.Round(time.Millisecond))
	fmt.Fprintf(stdout, "  users %d, authors %d, follows %d\n", c.Users, c.Authors, c.Follows)
	fmt.Fprintf(stdout, "  reels %d: %d at the start, %d uploaded over %d days\n", c.Reels, c.InitialReels, c.Uploads, cfg.Days)
	fmt.Fprintf(stdout, "  sessions %d, impressions %d, events %d\n", c.Sessions, c.Impressions, c.Events)
	types := make([]string, 0, len(c.ByType))
	for k := range c.ByType {
		types = append(types, k)
	}
	sort.Strings(types)
	tw := tabwriter.NewWriter(stdout, 2, 8, 2, ' ', tabwriter.AlignRight)
	for _, k := range types {
		fmt.Fprintf(tw, "    %s\t%d\t%.2f%%\t\n", k, c.ByType[k], 100*float64(c.ByType[k])/float64(max(1, c.Impressions)))
	}
	fmt.Fprintln(tw, "  file\tbytes\tcrc32c\t")
	for _, f := range s.Files {
		fmt.Fprintf(tw, "    %s\t%d\t%s\t\n", f.Name, f.Bytes, f.CRC32C)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "  %.1f MB in all\n", float64(s.Bytes)/1e6)
	return nil
}
