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
	"strings"
	"text/tabwriter"
	"time"

	"github.com/reelrank/reelrank/client"
	"github.com/reelrank/reelrank/drift"
	"github.com/reelrank/reelrank/engine"
	"github.com/reelrank/reelrank/wire"
)

// adminFlags are the connection flags of `model` and `drift`.
type adminFlags struct {
	addr, token string
	useTLS      bool
	timeout     time.Duration
	asJSON      bool
}

func (f *adminFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.addr, "addr", "127.0.0.1:7070", "server address")
	fs.StringVar(&f.token, "token", "", "the server's admin token (default $REELRANK_ADMIN_TOKEN)")
	fs.BoolVar(&f.useTLS, "tls", false, "connect with TLS (certificate not verified)")
	fs.DurationVar(&f.timeout, "timeout", 10*time.Minute, "budget of the request (a load may build an index)")
	fs.BoolVar(&f.asJSON, "json", false, "print the server's JSON status")
}

// call sends one AdminRequest and decodes the status it answers.
func (f *adminFlags) call(req *wire.AdminRequest) (*engine.Status, []byte, error) {
	if f.token == "" {
		f.token = os.Getenv("REELRANK_ADMIN_TOKEN")
	}
	opt := client.Options{Token: f.token, NoIdempotencyKey: true}
	if f.useTLS {
		opt.TLS = &tls.Config{InsecureSkipVerify: true}
	}
	ctx, cancel := context.WithTimeout(context.Background(), f.timeout)
	defer cancel()
	c, err := client.Dial(ctx, f.addr, opt)
	if err != nil {
		return nil, nil, err
	}
	defer c.Close()
	resp, err := c.Admin(ctx, req)
	if err != nil {
		return nil, nil, err
	}
	var st engine.Status
	if err := json.Unmarshal(resp.JSON, &st); err != nil {
		return nil, nil, fmt.Errorf("the server's status: %w", err)
	}
	return &st, resp.JSON, nil
}

const modelUsage = `usage:
  reelrank model load --bundle DIR [--share P] [--weights '{"like":2}'] [--force]
  reelrank model promote [--reason TEXT]
  reelrank model rollback [--reason TEXT]
  reelrank model shares [--canary P] [--holdout P]
  reelrank model status
each with [--addr A --token T --tls --json]
`

// cmdModel runs `reelrank model`: changes and status of a running
// server's models.
func cmdModel(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, modelUsage)
		return errors.New("model: want load, promote, rollback, shares or status")
	}
	op := args[0]
	fs := flag.NewFlagSet("model "+op, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f adminFlags
	f.register(fs)
	req := &wire.AdminRequest{Share: -1, Holdout: -1}
	switch op {
	case "load":
		req.Op = wire.AdminLoad
		fs.StringVar(&req.Bundle, "bundle", "", "model folder to load, as the server's machine sees it (`reelrank train --out`)")
		fs.Float64Var(&req.Share, "share", -1, "share of users it serves (default: the server's --canary-share)")
		fs.StringVar(&req.Weights, "weights", "", `its arm's head weights, a JSON object such as '{"like": 2}'`)
		fs.BoolVar(&req.Force, "force", false, "skip the probe requests (a drill of the canary's rollback)")
	case "promote":
		req.Op = wire.AdminPromote
		fs.StringVar(&req.Reason, "reason", "", "recorded with the change")
	case "rollback":
		req.Op = wire.AdminRollback
		fs.StringVar(&req.Reason, "reason", "", "recorded with the change")
	case "shares":
		req.Op = wire.AdminShares
		fs.Float64Var(&req.Share, "canary", -1, "the canary's share of users (negative: unchanged)")
		fs.Float64Var(&req.Holdout, "holdout", -1, "the holdout's share of users (negative: unchanged)")
	case "status":
		req.Op = wire.AdminStatus
	default:
		fmt.Fprint(stderr, modelUsage)
		return fmt.Errorf("model: unknown operation %q", op)
	}
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("model %s: unexpected argument %q", op, fs.Arg(0))
	}
	if op == "load" && req.Bundle == "" {
		return errors.New("model load: --bundle is required")
	}
	st, raw, err := f.call(req)
	if err != nil {
		return fmt.Errorf("model %s: %w", op, err)
	}
	if f.asJSON {
		_, err := fmt.Fprintf(stdout, "%s\n", raw)
		return err
	}
	return printStatus(stdout, st)
}

// printStatus prints the arms, their metrics and the last changes.
func printStatus(w io.Writer, st *engine.Status) error {
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "arm\trole\tversion\tshare\trequests\terr%\tp99 ms\timpressions\twatch-through [95%]\tlikes\tshares\tfollows\twatch s\treels\tauthors")
	for _, a := range st.Arms {
		m := &a.Metrics
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.1f%%\t%d\t%.2f\t%.2f\t%d\t%.4f [%.4f, %.4f]\t%.4f\t%.4f\t%.4f\t%.1f\t%d\t%d\n",
			a.Name, a.Role, a.Version, 100*a.Share, m.Requests, 100*m.ErrorRate, m.P99ms, m.Impressions,
			m.WatchThrough.Value, m.WatchThrough.Lo, m.WatchThrough.Hi, m.Likes.Value, m.Shares.Value, m.Follows.Value,
			m.WatchSeconds.Value, m.DistinctReels, m.DistinctAuthors)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	p := st.Policy
	fmt.Fprintf(w, "canary policy: share %.0f%%, promote after %d impressions; roll back below the control's watch-through by %.3f at %.0f%% (from %d impressions), on +%.1f points of errors or p99 over %.2f×+%.0f ms (from %d requests)\n",
		100*p.Share, p.PromoteImpressions, p.Margin, 100*p.Confidence, p.MinImpressions, 100*p.MaxErrorRate, p.P99Factor, p.P99SlackMs, p.MinRequests)
	if n := len(st.History); n > 0 {
		fmt.Fprintln(w, "changes, newest last:")
		for _, c := range st.History[max(0, n-10):] {
			fmt.Fprintf(w, "  %s  %-8s %-12s %s\n", c.Time.Format(time.RFC3339), c.Action, c.Version, c.Reason)
		}
	}
	if d := st.Drift; d != nil {
		fmt.Fprintf(w, "drift of %s: %d series drifted, %d shifted\n", d.Version, d.Drifted, d.Shifted)
	}
	return nil
}

// cmdDrift runs `reelrank drift`: the control model's drift, worst first.
func cmdDrift(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("drift", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f adminFlags
	f.register(fs)
	top := fs.Int("top", 20, "series to print (0: all)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("drift: unexpected argument %q", fs.Arg(0))
	}
	st, _, err := f.call(&wire.AdminRequest{Op: wire.AdminDrift, Share: -1, Holdout: -1})
	if err != nil {
		return fmt.Errorf("drift: %w", err)
	}
	d := st.Drift
	if d == nil {
		return errors.New("drift: the served model has no training reference (train it again to write reference.json)")
	}
	if f.asJSON {
		enc := json.NewEncoder(stdout)
		for _, s := range d.Series {
			if err := enc.Encode(s); err != nil {
				return err
			}
		}
		return nil
	}
	fmt.Fprintf(stdout, "model %s: %d of %d series drifted (PSI > %.2f), %d shifted (> %.2f)\n", d.Version, d.Drifted, len(d.Series),
		drift.DefaultThreshold, d.Shifted, drift.DefaultWarn)
	tw := tabwriter.NewWriter(stdout, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "series\tpsi\tlevel\tvalues\tbins: window vs training")
	for i, s := range d.Series {
		if *top > 0 && i == *top {
			break
		}
		level := string(s.Level)
		if level == "" {
			level = "too few"
		}
		fmt.Fprintf(tw, "%s\t%.4f\t%s\t%d\t%s\n", s.Name, s.PSI, level, s.Count, binsLine(s.Share, s.Reference))
	}
	return tw.Flush()
}

// binsLine prints the window's and the reference's shares per bin, in
// percent.
func binsLine(have, want []float64) string {
	var b strings.Builder
	for i := range want {
		h := 0.0
		if i < len(have) {
			h = have[i]
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%.0f/%.0f", 100*h, 100*want[i])
	}
	return b.String()
}
