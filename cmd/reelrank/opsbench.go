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
	"path/filepath"
	"strings"
	"time"

	"github.com/reelrank/reelrank/ann"
	"github.com/reelrank/reelrank/bench"
	"github.com/reelrank/reelrank/client"
	"github.com/reelrank/reelrank/engine"
	"github.com/reelrank/reelrank/kernels"
	"github.com/reelrank/reelrank/modeldir"
	"github.com/reelrank/reelrank/ranker"
	"github.com/reelrank/reelrank/wire"
)

// opsReport is what `reelrank bench ops` measured.
type opsReport struct {
	CPU string `json:"cpu"`
	// Swap: a load and promotion of the candidate under open-loop load.
	QPS        float64        `json:"qps"`
	Before     bench.LoadStep `json:"before"`
	During     bench.LoadStep `json:"during"`
	After      bench.LoadStep `json:"after"`
	LoadS      float64        `json:"load_s"`
	PromoteS   float64        `json:"promote_s"`
	SwapErrors int64          `json:"swap_errors"`
	// Broken: a constant-score copy of the candidate forced in as a
	// canary at BrokenShare.
	BrokenShare    float64 `json:"broken_share,omitempty"`
	BrokenRolled   bool    `json:"broken_rolled_back"`
	BrokenServed   int64   `json:"broken_requests_served"`
	BrokenAfterS   float64 `json:"broken_rolled_back_after_s"`
	BrokenReason   string  `json:"broken_reason,omitempty"`
	BrokenRequests int64   `json:"requests_during_drill"`
	// Drift: a day of the usual users, then new users of one country.
	DriftUnshifted      int      `json:"drift_unshifted_requests"`
	DriftUnshiftedFlags []string `json:"drift_unshifted_flagged"`
	DriftShiftedAt      int      `json:"drift_shifted_flagged_after"`
	DriftShiftedFlags   []string `json:"drift_shifted_flagged"`
}

// cmdBenchOps runs `reelrank bench ops`: the operations figures on a
// running server (started with its admin token, or none): a load and
// promotion of a candidate version under open-loop load, a broken copy of
// it at a share rolled back by the canary, and the drift monitor on the
// usual users and on new users of one country.
func cmdBenchOps(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench ops", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f adminFlags
	f.register(fs)
	candidate := fs.String("candidate", "", "model folder to load and promote (trained for the served catalogue)")
	qps := fs.Float64("qps", 200, "offered Recommend rate during the swap and the drill")
	duration := fs.Duration("duration", 10*time.Second, "each of the three swap steps: before, during, after")
	users := fs.Int64("users", 20_000, "users of the load, 1..N")
	brokenShare := fs.Float64("broken-share", 0.1, "share of the constant-score canary (0: no drill)")
	drillMax := fs.Duration("drill-max", 60*time.Second, "longest the broken canary may run")
	driftN := fs.Int("drift-requests", 20_000, "requests of the usual users before the new country's (0: no drift figure)")
	country := fs.Uint("country", 1, "profile code of the new users' country (the store's order, from 1)")
	language := fs.Uint("language", 1, "profile code of their language")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *candidate == "" {
		return errors.New("bench ops: --candidate is required")
	}
	if f.token == "" {
		f.token = os.Getenv("REELRANK_ADMIN_TOKEN")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	logf := func(format string, a ...any) { fmt.Fprintf(stderr, "bench ops: "+format+"\n", a...) }
	rep := opsReport{CPU: kernels.CPUName(), QPS: *qps, BrokenShare: *brokenShare}

	// The candidate's index, built now so that the load times its opening.
	v, err := modeldir.Open(ctx, *candidate, modeldir.Options{Logf: logf})
	if err != nil {
		return fmt.Errorf("bench ops: %w", err)
	}
	var broken string
	if *brokenShare > 0 {
		if broken, err = writeBroken(v); err != nil {
			v.Close()
			return fmt.Errorf("bench ops: %w", err)
		}
		defer os.RemoveAll(filepath.Dir(broken))
		bv, err := modeldir.Open(ctx, broken, modeldir.Options{Logf: logf})
		if err != nil {
			v.Close()
			return fmt.Errorf("bench ops: %w", err)
		}
		bv.Close()
	}
	v.Close()

	opt := client.Options{Token: f.token}
	if f.useTLS {
		opt.TLS = &tls.Config{InsecureSkipVerify: true}
	}
	admin := func(req *wire.AdminRequest) (*engine.Status, error) {
		req.Share, req.Holdout = orDefault(req.Share), orDefault(req.Holdout)
		st, _, err := f.call(req)
		return st, err
	}

	// 1. Load and promote under load.
	cfg := bench.LoadConfig{Addr: f.addr, Options: opt, Rates: []float64{*qps, *qps, *qps}, Duration: *duration, Users: *users,
		Reels: 50_000, N: 20, Clock: func() time.Time { return time.Time{} }, Seed: 7}
	swapDone := make(chan error, 1)
	step := 0
	logf("swap: %v at %.0f requests/s before, during and after a load and promotion of %s", *duration, *qps, *candidate)
	steps, err := bench.Load(ctx, cfg, func(s bench.LoadStep) {
		step++
		if step != 1 {
			return
		}
		go func() {
			t0 := time.Now()
			if _, err := admin(&wire.AdminRequest{Op: wire.AdminLoad, Bundle: mustAbs(*candidate), Share: 0.5}); err != nil {
				swapDone <- err
				return
			}
			rep.LoadS = time.Since(t0).Seconds()
			t1 := time.Now()
			_, err := admin(&wire.AdminRequest{Op: wire.AdminPromote, Reason: "bench ops"})
			rep.PromoteS = time.Since(t1).Seconds()
			swapDone <- err
		}()
	})
	if err != nil {
		return fmt.Errorf("bench ops: swap: %w", err)
	}
	if err := <-swapDone; err != nil {
		return fmt.Errorf("bench ops: swap: %w", err)
	}
	rep.Before, rep.During, rep.After = steps[0], steps[1], steps[2]
	rep.SwapErrors = steps[1].Errors + steps[2].Errors
	logf("swap: p99 %.2f ms before, %.2f ms during, %.2f ms after; %d errors; load %.2f s, promote %.3f s",
		steps[0].P99us/1000, steps[1].P99us/1000, steps[2].P99us/1000, rep.SwapErrors, rep.LoadS, rep.PromoteS)

	// 2. The broken canary.
	if broken != "" {
		if _, err := admin(&wire.AdminRequest{Op: wire.AdminLoad, Bundle: broken, Share: *brokenShare, Force: true}); err != nil {
			return fmt.Errorf("bench ops: broken canary: %w", err)
		}
		t0 := time.Now()
		dctx, cancel := context.WithTimeout(ctx, *drillMax)
		dcfg := cfg
		dcfg.Rates, dcfg.Duration, dcfg.Seed = []float64{*qps}, *drillMax, 8
		done := make(chan []bench.LoadStep, 1)
		go func() {
			st, _ := bench.Load(dctx, dcfg, nil)
			done <- st
		}()
		for dctx.Err() == nil {
			time.Sleep(100 * time.Millisecond)
			st, err := admin(&wire.AdminRequest{Op: wire.AdminStatus})
			if err != nil {
				cancel()
				return fmt.Errorf("bench ops: status: %w", err)
			}
			if last := st.History[len(st.History)-1]; last.Action == "rollback" {
				rep.BrokenRolled, rep.BrokenReason, rep.BrokenAfterS = true, last.Reason, time.Since(t0).Seconds()
				break
			}
			for _, a := range st.Arms {
				if a.Role == engine.RoleCanary {
					rep.BrokenServed = a.Metrics.Requests
				}
			}
		}
		cancel()
		if st := <-done; len(st) > 0 {
			rep.BrokenRequests = st[0].Sent
		}
		logf("broken canary at %.0f%%: rolled back %v after %.1f s: %s", 100**brokenShare, rep.BrokenRolled, rep.BrokenAfterS, rep.BrokenReason)
	}

	// 3. Drift.
	if *driftN > 0 {
		c, err := client.Dial(ctx, f.addr, opt)
		if err != nil {
			return fmt.Errorf("bench ops: %w", err)
		}
		defer c.Close()
		flagged := func() ([]string, error) {
			st, err := admin(&wire.AdminRequest{Op: wire.AdminDrift})
			if err != nil {
				return nil, err
			}
			if st.Drift == nil {
				return nil, errors.New("the served model has no drift reference")
			}
			var out []string
			for _, s := range st.Drift.Series {
				if s.Level == "drift" {
					out = append(out, fmt.Sprintf("%s %.2f", s.Name, s.PSI))
				}
			}
			return out, nil
		}
		send := func(user int64, country, lang uint16) error {
			rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			_, err := c.Recommend(rctx, &wire.RecommendRequest{User: user, N: 20,
				Context: wire.Context{Country: country, Language: lang}})
			return err
		}
		logf("drift: %d requests of the usual users", *driftN)
		for i := 0; i < *driftN; i++ {
			if err := send(1+int64(i*7919)%*users, 0, 0); err != nil {
				return fmt.Errorf("bench ops: drift: %w", err)
			}
		}
		rep.DriftUnshifted = *driftN
		if rep.DriftUnshiftedFlags, err = flagged(); err != nil {
			return fmt.Errorf("bench ops: drift: %w", err)
		}
		logf("drift: new users of country %d arriving", *country)
		for i := 1; i <= 4**driftN; i++ {
			if err := send(100_000_000+int64(i), uint16(*country), uint16(*language)); err != nil {
				return fmt.Errorf("bench ops: drift: %w", err)
			}
			if i%100 == 0 {
				fl, err := flagged()
				if err != nil {
					return fmt.Errorf("bench ops: drift: %w", err)
				}
				if len(fl) > 0 {
					rep.DriftShiftedAt, rep.DriftShiftedFlags = i, fl
					break
				}
			}
		}
		logf("drift: unshifted flagged %v; shifted flagged after %d requests: %v", rep.DriftUnshiftedFlags, rep.DriftShiftedAt, rep.DriftShiftedFlags)
	}
	if f.asJSON {
		return json.NewEncoder(stdout).Encode(rep)
	}
	fmt.Fprintf(stdout, "%s\n", rep.CPU)
	fmt.Fprintf(stdout, "swap at %.0f requests/s: p99 %.2f ms before, %.2f ms during, %.2f ms after (p50 %.2f/%.2f/%.2f); errors %d/%d/%d; load %.2f s, promote %.3f s\n",
		rep.QPS, rep.Before.P99us/1000, rep.During.P99us/1000, rep.After.P99us/1000, rep.Before.P50us/1000, rep.During.P50us/1000,
		rep.After.P50us/1000, rep.Before.Errors, rep.During.Errors, rep.After.Errors, rep.LoadS, rep.PromoteS)
	if rep.BrokenShare > 0 {
		fmt.Fprintf(stdout, "broken canary at %.0f%%: rolled back %v after %.1f s, having served %d requests (of %d sent): %s\n",
			100*rep.BrokenShare, rep.BrokenRolled, rep.BrokenAfterS, rep.BrokenServed, rep.BrokenRequests, rep.BrokenReason)
	}
	if rep.DriftUnshifted > 0 {
		fmt.Fprintf(stdout, "drift: %d requests of the usual users flagged %d series %v; new users of country %d flagged after %d requests: %s\n",
			rep.DriftUnshifted, len(rep.DriftUnshiftedFlags), rep.DriftUnshiftedFlags, *country, rep.DriftShiftedAt, strings.Join(rep.DriftShiftedFlags, ", "))
	}
	return nil
}

func orDefault(v float64) float64 {
	if v == 0 {
		return -1
	}
	return v
}

func mustAbs(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// writeBroken writes a copy of version v whose ranker's heads ignore their
// input (every candidate gets the same scores), as version "<v>-broken",
// into a new temporary folder.
func writeBroken(v *modeldir.Version) (string, error) {
	b, err := ranker.Load(filepath.Join(v.Dir(), modeldir.BundleFolder))
	if err != nil {
		return "", err
	}
	b.Version += "-broken"
	for i := range b.Ranker.Heads {
		clear(b.Ranker.Heads[i].W)
	}
	vecs, err := ann.ReadFvecs(filepath.Join(v.Dir(), modeldir.VectorsFile), 0)
	if err != nil {
		return "", err
	}
	ids, err := modeldir.ReadIDs(filepath.Join(v.Dir(), modeldir.IDsFile), vecs.Len())
	if err != nil {
		return "", err
	}
	store, err := v.LoadSnapshot()
	if err != nil {
		return "", err
	}
	parent, err := os.MkdirTemp("", "reelrank-broken-")
	if err != nil {
		return "", err
	}
	dir := filepath.Join(parent, "model")
	if err := modeldir.Write(dir, modeldir.Contents{Bundle: b, IDs: ids, Vectors: vecs, Store: store, Reference: v.Reference()}); err != nil {
		os.RemoveAll(parent)
		return "", err
	}
	return dir, nil
}
