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
	if err := fs.Parse(args); err != nil {
		return err
	}
	var rates []float64
	for _, f := range strings.Split(*qps, ",") {
		r, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || !(r > 0) {
			return fmt.Errorf("bench load: --qps: %q is not a positive rate", f)
		}
		rates = append(rates, r)
	}
	if *token == "" {
		*token = os.Getenv("REELRANK_TOKEN")
	}
	opt := client.Options{Token: *token, PoolSize: *conns}
	if *useTLS {
		opt.TLS = &tls.Config{InsecureSkipVerify: true}
	}
	cfg := bench.LoadConfig{Addr: *addr, Options: opt, Rates: rates, Duration: *duration, Warmup: *warmup, Poisson: *poisson,
		Timeout: *timeout, Users: *users, Reels: *reels, N: *n, ScoreFrac: *scoreFrac, EventFrac: *eventFrac, Seed: *seed}
	if !*wall {
		cfg.Clock = func() time.Time { return time.Time{} }
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if !*asJSON {
		fmt.Fprintf(stdout, "open-loop load on %s, %v a step after %v of warm-up; latency from the intended send time\n", *addr, *duration, *warmup)
	}
	enc := json.NewEncoder(stdout)
	_, err := bench.Load(ctx, cfg, func(s bench.LoadStep) {
		if *asJSON {
			enc.Encode(s)
			return
		}
		fmt.Fprintln(stdout, s.String())
	})
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
