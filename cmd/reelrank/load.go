package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/reelrank/reelrank/bench"
	"github.com/reelrank/reelrank/client"
)

// cmdBenchLoad runs `reelrank bench load`: open-loop load on a running
// server at fixed offered rates.
func cmdBenchLoad(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:7070", "server address")
	shardList := fs.String("shards", "", "drive these shards through a client.Sharded instead of --addr: shards separated by ';', each shard's replicas by ',' (\"a1,a2;b1;c1\"); partial answers are allowed and counted, and each step reports the merge overhead")
	shardTimeout := fs.Duration("shard-timeout", 0, "with --shards, the longest a shard is waited for before the answer goes without it (0: --timeout)")
	qps := fs.String("qps", "50,100,200", "offered rates, requests per second, comma-separated: one step each")
	duration := fs.Duration("duration", 10*time.Second, "measured time of each step")
	warmup := fs.Duration("warmup", 2*time.Second, "load before each step is measured")
	poisson := fs.Bool("poisson", false, "exponential gaps between sends instead of equal ones")
	timeout := fs.Duration("timeout", time.Second, "each request's budget from its intended send time")
	users := fs.Int64("users", 20_000, "users drawn uniformly from 1..N")
	reels := fs.Int64("reels", 50_000, "reel ids for recent reels, Score and Event requests, 1..N")
	n := fs.Int("n", 20, "items per Recommend")
	scoreFrac := fs.Float64("score-frac", 0, "share of Score requests")
	eventFrac := fs.Float64("event-frac", 0, "share of Event requests")
	conns := fs.Int("conns", 0, "connections (0: the client's default)")
	token := fs.String("token", "", "shared token (default $REELRANK_TOKEN)")
	useTLS := fs.Bool("tls", false, "connect with TLS (certificate not verified)")
	wall := fs.Bool("wall-clock", false, "stamp requests with the wall clock instead of leaving the time to the server")
	seed := fs.Uint64("seed", 1, "seed of the request mix")
	asJSON := fs.Bool("json", false, "one JSON object per step")
	count := fs.Int("count", 1, "repetitions of the whole sequence of steps: each step's figures of all of them are the history's samples")
	hist := addHistoryFlag(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *count < 1 {
		return fmt.Errorf("bench load: --count must be at least 1, got %d", *count)
	}
	var rates []float64
	for _, f := range strings.Split(*qps, ",") {
		r, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || !(r > 0) {
			return fmt.Errorf("bench load: --qps: %q is not a positive rate", f)
		}
		rates = append(rates, r)
	}
	shards, err := parseShards(*shardList)
	if err != nil {
		return err
	}
	if *token == "" {
		*token = os.Getenv("REELRANK_TOKEN")
	}
	opt := client.Options{Token: *token, PoolSize: *conns}
	if *useTLS {
		opt.TLS = &tls.Config{InsecureSkipVerify: true}
	}
	cfg := bench.LoadConfig{Addr: *addr, Options: opt, Rates: rates, Duration: *duration, Warmup: *warmup, Poisson: *poisson,
		Timeout: *timeout, Users: *users, Reels: *reels, N: *n, ScoreFrac: *scoreFrac, EventFrac: *eventFrac, Seed: *seed,
		Shards: shards, ShardTimeout: *shardTimeout}
	if !*wall {
		cfg.Clock = func() time.Time { return time.Time{} }
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if !*asJSON {
		target := *addr
		if len(shards) > 0 {
			target = fmt.Sprintf("%d shards (%s)", len(shards), *shardList)
		}
		fmt.Fprintf(stdout, "open-loop load on %s, %v a step after %v of warm-up; latency from the intended send time\n", target, *duration, *warmup)
	}
	enc := json.NewEncoder(stdout)
	var reps [][]bench.LoadStep
	for range *count {
		var steps []bench.LoadStep
		steps, err = bench.Load(ctx, cfg, func(s bench.LoadStep) {
			if *asJSON {
				enc.Encode(s)
				return
			}
			fmt.Fprintln(stdout, s.String())
		})
		if len(steps) > 0 && (len(reps) == 0 || len(steps) == len(reps[0])) {
			reps = append(reps, steps)
		}
		if err != nil {
			break
		}
	}
	if len(reps) > 0 && (err == nil || errors.Is(err, context.Canceled)) {
		// An interrupted run records the steps it finished.
		rec := bench.NewRun("load")
		settingsOf(fs, &rec)
		rec.AddLoadReps(reps)
		recordRun(hist, rec, stderr)
	}
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// parseShards reads --shards: shards separated by ';', each shard's
// replica addresses by ','; empty gives none.
func parseShards(s string) ([][]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out [][]string
	for i, part := range strings.Split(s, ";") {
		var addrs []string
		for _, a := range strings.Split(part, ",") {
			if a = strings.TrimSpace(a); a != "" {
				addrs = append(addrs, a)
			}
		}
		if len(addrs) == 0 {
			return nil, fmt.Errorf("bench load: --shards: shard %d has no address in %q", i, s)
		}
		out = append(out, addrs)
	}
	return out, nil
}
