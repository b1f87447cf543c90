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
	"github.com/reelrank/reelrank/drift"
	"github.com/reelrank/reelrank/engine"
	"github.com/reelrank/reelrank/eventlog"
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
	BrokenShare  float64 `json:"broken_share,omitempty"`
	BrokenRolled bool    `json:"broken_rolled_back"`
	BrokenServed int64   `json:"broken_requests_served"`
	BrokenAfterS float64 `json:"broken_rolled_back_after_s"`
	BrokenReason string  `json:"broken_reason,omitempty"`
	// Drift: the next day's events replayed, then impressions of users
	// the catalogue does not know (a new country's users arriving).
	DriftDayEvents      int      `json:"drift_day_events"`
	DriftDayImpressions int      `json:"drift_day_impressions"`
	DriftDayRows        int      `json:"drift_day_rows"`
	DriftDayFlags       []string `json:"drift_day_flagged"`
	DriftDayUserFlags   []string `json:"drift_day_user_flagged"`
	DriftDayWorst       string   `json:"drift_day_worst"`
	DriftShiftedAt      int      `json:"drift_new_users_flagged_after_impressions"`
	DriftShiftedFlags   []string `json:"drift_new_users_flagged"`
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
	noProbe := fs.Bool("no-probe", false, "load the candidate without its probe requests (to measure what they cost)")
	noPromote := fs.Bool("no-promote", false, "load the candidate at 50% without promoting it (to tell the load's cost from the promotion's)")
	hist := addHistoryFlag(fs)
	dayFile := fs.String("day", "", "event log of the day after the served version's log, replayed as the unshifted day for the drift figure (serve with --max-lead past its end); empty: no drift figure")
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
			if _, err := admin(&wire.AdminRequest{Op: wire.AdminLoad, Bundle: mustAbs(*candidate), Share: 0.5, Force: *noProbe}); err != nil {
				swapDone <- err
				return
			}
			rep.LoadS = time.Since(t0).Seconds()
			if *noPromote {
				swapDone <- nil
				return
			}
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
		<-done
		logf("broken canary at %.0f%%: rolled back %v after %.1f s: %s", 100**brokenShare, rep.BrokenRolled, rep.BrokenAfterS, rep.BrokenReason)
	}

	// 3. Drift: the day after the served version's log, then new users.
	if *dayFile != "" {
		if err := driftDrill(ctx, f, opt, *dayFile, &rep, admin, logf); err != nil {
			return fmt.Errorf("bench ops: drift: %w", err)
		}
	}
	rec := bench.NewRun("ops")
	settingsOf(fs, &rec)
	rec.AddLoadSteps(steps)
	rec.Add("load_s", "s", rep.LoadS)
	rec.Add("promote_s", "s", rep.PromoteS)
	rec.Add("swap_errors", "errors", float64(rep.SwapErrors))
	if rep.BrokenRolled {
		rec.Add("broken_rolled_back_after_s", "s", rep.BrokenAfterS)
	}
	recordRun(hist, rec, stderr)
	if f.asJSON {
		return json.NewEncoder(stdout).Encode(rep)
	}
	fmt.Fprintf(stdout, "%s\n", rep.CPU)
	fmt.Fprintf(stdout, "swap at %.0f requests/s: p99 %.2f ms before, %.2f ms during, %.2f ms after (p50 %.2f/%.2f/%.2f); errors %d/%d/%d; load %.2f s, promote %.3f s\n",
		rep.QPS, rep.Before.P99us/1000, rep.During.P99us/1000, rep.After.P99us/1000, rep.Before.P50us/1000, rep.During.P50us/1000,
		rep.After.P50us/1000, rep.Before.Errors, rep.During.Errors, rep.After.Errors, rep.LoadS, rep.PromoteS)
	if rep.BrokenShare > 0 {
		fmt.Fprintf(stdout, "broken canary at %.0f%%: rolled back %v after %.1f s (at least %d requests served, by the last status before): %s\n",
			100*rep.BrokenShare, rep.BrokenRolled, rep.BrokenAfterS, rep.BrokenServed, rep.BrokenReason)
	}
	if rep.DriftDayEvents > 0 {
		fmt.Fprintf(stdout, "drift: the next day (%d events, %d impressions, %d monitored rows) flagged %d series, %d of them user series (worst %s); new users' impressions flagged user series after %d impressions: %s\n",
			rep.DriftDayEvents, rep.DriftDayImpressions, rep.DriftDayRows, len(rep.DriftDayFlags), len(rep.DriftDayUserFlags), rep.DriftDayWorst,
			rep.DriftShiftedAt, strings.Join(rep.DriftShiftedFlags, ", "))
		if len(rep.DriftDayFlags) > 0 {
			fmt.Fprintf(stdout, "  the next day's flags: %s\n", strings.Join(rep.DriftDayFlags, ", "))
		}
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

// driftDrill replays the day's events, reads the drift report, then sends
// impressions of new users (ids from 10^9, unknown to the catalogue) on the
// day's reels until the monitor flags a user series the day did not.
func driftDrill(ctx context.Context, f adminFlags, opt client.Options, day string, rep *opsReport,
	admin func(*wire.AdminRequest) (*engine.Status, error), logf func(string, ...any)) error {
	c, err := client.Dial(ctx, f.addr, opt)
	if err != nil {
		return err
	}
	defer c.Close()
	report := func() (*engine.DriftStatus, error) {
		st, err := admin(&wire.AdminRequest{Op: wire.AdminDrift})
		if err != nil {
			return nil, err
		}
		if st.Drift == nil {
			return nil, errors.New("the served model has no drift reference")
		}
		return st.Drift, nil
	}
	flags := func(d *engine.DriftStatus, prefix string) []string {
		var out []string
		for _, s := range d.Series {
			if s.Level == drift.Drift && strings.HasPrefix(s.Name, prefix) {
				out = append(out, fmt.Sprintf("%s (PSI %.2f)", s.Name, s.PSI))
			}
		}
		return out
	}
	send := func(evs []wire.Event) error {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		r, err := c.Event(rctx, &wire.EventRequest{Events: evs})
		if err != nil {
			return err
		}
		if r.Rejected > 0 {
			return fmt.Errorf("%d of %d events refused: %s", r.Rejected, len(evs), r.Reason)
		}
		return nil
	}
	fh, err := os.Open(day)
	if err != nil {
		return err
	}
	defer fh.Close()
	rd := eventlog.NewReader(fh, eventlog.Options{})
	var imps []eventlog.Event
	var batch []wire.Event
	logf("drift: replaying %s", day)
	for {
		evs, err := rd.Next()
		for i := range evs {
			ev := &evs[i]
			if ev.Type == eventlog.Impression {
				imps = append(imps, *ev)
				rep.DriftDayImpressions++
			}
			batch = append(batch, wireEvent(ev))
			if len(batch) == 1000 {
				if err := send(batch); err != nil {
					return err
				}
				rep.DriftDayEvents += len(batch)
				batch = batch[:0]
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
	}
	if len(batch) > 0 {
		if err := send(batch); err != nil {
			return err
		}
		rep.DriftDayEvents += len(batch)
	}
	d, err := report()
	if err != nil {
		return err
	}
	rep.DriftDayFlags = flags(d, "")
	rep.DriftDayUserFlags = flags(d, engine.DriftUser)
	for _, s := range d.Series {
		if s.Level != "" {
			rep.DriftDayWorst = fmt.Sprintf("%s, PSI %.3f", s.Name, s.PSI)
			rep.DriftDayRows = s.Count
			break
		}
	}
	logf("drift: the day flagged %d series; worst %s", len(rep.DriftDayFlags), rep.DriftDayWorst)
	if len(imps) == 0 {
		return errors.New("the day holds no impressions")
	}
	// New users: the day's impressions again, at the day's end, by users
	// the catalogue does not know.
	last := imps[len(imps)-1].Time
	for sent := 0; sent < len(imps); {
		batch = batch[:0]
		for k := 0; k < 200 && sent < len(imps); k++ {
			ev := imps[sent]
			ev.User = 1_000_000_000 + int64(sent)
			ev.Session = 1_000_000_000 + int64(sent)
			ev.Time = last
			batch = append(batch, wireEvent(&ev))
			sent++
		}
		if err := send(batch); err != nil {
			return err
		}
		d, err := report()
		if err != nil {
			return err
		}
		if fl := flags(d, engine.DriftUser); len(fl) > len(rep.DriftDayUserFlags) {
			rep.DriftShiftedAt, rep.DriftShiftedFlags = sent, fl
			break
		}
	}
	logf("drift: new users flagged after %d impressions: %v", rep.DriftShiftedAt, rep.DriftShiftedFlags)
	return nil
}

func wireEvent(ev *eventlog.Event) wire.Event {
	return wire.Event{Type: wire.EventType(ev.Type), Has: uint16(ev.Has), Time: ev.Time, User: ev.User, Reel: ev.Reel, Author: ev.Author,
		Session: ev.Session, Position: ev.Position, Propensity: ev.Propensity, Arm: ev.Arm, Seconds: ev.Seconds, Fraction: ev.Fraction}
}
