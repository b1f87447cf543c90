package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/reelrank/reelrank/bench"
	"github.com/reelrank/reelrank/plan"
)

// cmdPlan runs `reelrank plan`: a fleet for a catalogue, a rate, a p99 and
// a recall, from a calibration file.
func cmdPlan(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("plan", flag.ContinueOnError)
	fs.SetOutput(stderr)
	reels := fs.String("reels", "", "catalogue size (e.g. 10000000, 100M, 1B)")
	qps := fs.String("qps", "", "Recommend requests a second (e.g. 300, 100k, 1.5M)")
	p99 := fs.Float64("p99", 15, "p99 target, milliseconds")
	recall := fs.Float64("recall", 0.9, "recall@k of the index against exact search")
	k := fs.Int("k", 1000, "candidates the recall is counted over")
	newReels := fs.String("new-reels-per-day", "0", "reels uploaded a day, indexed as they arrive (e.g. 10M)")
	users := fs.String("users", "10M", "users whose features every replica keeps")
	gpu := fs.Bool("gpu", false, "rank on GPUs (the calibration's GPU figures, else a reference H100's)")
	calFile := fs.String("calibration", "calibration.json", "calibration file `reelrank calibrate` wrote")
	asJSON := fs.Bool("json", false, "print the plan as JSON")
	cores := fs.Int("cores-per-replica", 16, "cores of a replica's machine")
	mem := fs.Float64("memory-per-replica", 128, "memory of a replica's machine, GiB")
	util := fs.Float64("max-utilisation", 0.7, "busy share of a replica's cores the plan keeps under")
	rtt := fs.Duration("network-rtt", 200*time.Microsecond, "round trip between the front and a shard (0: none, as on one machine)")
	shards := fs.Int("shards", 0, "fix the shards (0: the plan picks)")
	replicas := fs.Int("replicas", 0, "fix the replicas a shard (0: the plan picks)")
	nprobe := fs.Int("nprobe", 0, "fix nprobe instead of reaching --recall")
	report := fs.String("report", "", "write a Markdown report with SVG charts into this folder")
	measured := fs.String("measured", "", "`reelrank bench load --json` output to set beside the model in the report")
	emit := fs.String("emit", "", "write deployment manifests: k8s")
	image := fs.String("image", "reelrank:latest", "container image the manifests run")
	namespace := fs.String("namespace", "", "namespace of the manifests")
	tokenSecret := fs.String("token-secret", "reelrank-token", "Secret (key token) whose value the servers require of clients")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var emitDir string
	switch {
	case *emit == "" && fs.NArg() == 0:
	case *emit == "k8s" && fs.NArg() == 1:
		emitDir = fs.Arg(0)
	case *emit != "" && *emit != "k8s":
		return fmt.Errorf("plan: --emit %q: the one target is k8s", *emit)
	case *emit == "k8s":
		return errors.New("plan: --emit k8s wants a folder: plan ... --emit k8s DIR")
	default:
		return fmt.Errorf("plan: unexpected argument %q", fs.Arg(0))
	}
	n, err := parseCount(*reels)
	if err != nil {
		return fmt.Errorf("plan: --reels: %w", err)
	}
	nr, err := parseCount(*newReels)
	if err != nil {
		return fmt.Errorf("plan: --new-reels-per-day: %w", err)
	}
	q, err := parseCount(*qps)
	if err != nil {
		return fmt.Errorf("plan: --qps: %w", err)
	}
	nu, err := parseCount(*users)
	if err != nil {
		return fmt.Errorf("plan: --users: %w", err)
	}
	if !(*mem > 0) || math.IsInf(*mem, 0) {
		return fmt.Errorf("plan: --memory-per-replica %v GiB", *mem)
	}
	cal, err := plan.LoadCalibration(*calFile)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%w: run `reelrank calibrate --out %s` first", err, *calFile)
		}
		return err
	}
	if cal.Machine.CPU != bench.ThisMachine().CPU {
		fmt.Fprintf(stderr, "reelrank: plan: the calibration was taken on %s, not on this machine\n", cal.Machine.CPU)
	}
	t := plan.Target{Reels: n, QPS: float64(q), P99: time.Duration(*p99 * float64(time.Millisecond)), Recall: *recall, K: *k,
		NewReelsPerDay: nr, Users: nu, GPU: *gpu, CoresPerReplica: *cores, MemoryPerReplica: int64(*mem * (1 << 30)),
		MaxUtilisation: *util, NetworkRTT: *rtt, Shards: *shards, Replicas: *replicas, Nprobe: *nprobe}
	if *rtt == 0 {
		t.NetworkRTT = -1
	}
	p, err := plan.Make(cal, t)
	if err != nil {
		if p != nil && errors.Is(err, plan.ErrInfeasible) {
			p.Markdown(stderr)
			// The report of a target no fleet meets says why, shard
			// count by shard count, with the charts of what was weighed.
			if *report != "" {
				if rerr := writePlanReport(*report, cal, p, *measured, stderr); rerr != nil {
					return errors.Join(err, rerr)
				}
			}
		}
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(p); err != nil {
			return err
		}
	} else if err := p.Markdown(stdout); err != nil {
		return err
	}
	if *report != "" {
		if err := writePlanReport(*report, cal, p, *measured, stderr); err != nil {
			return err
		}
	}
	if emitDir != "" {
		f := plan.FleetOf(p, *image, *namespace, *tokenSecret)
		paths, err := plan.EmitK8s(emitDir, f)
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "reelrank: plan: wrote manifests for %d shards into %s (kubectl apply -f %s)\n", len(paths), emitDir, emitDir)
	}
	return nil
}

// writePlanReport writes the Markdown report and its charts into dir,
// with `bench load --json` steps from measured (a path) beside the model.
func writePlanReport(dir string, cal *plan.Calibration, p *plan.Plan, measured string, stderr io.Writer) error {
	var ms []plan.Measured
	if measured != "" {
		var err error
		if ms, err = readMeasured(measured); err != nil {
			return err
		}
	}
	if err := plan.WriteReport(dir, plan.Report{Calibration: cal, Plan: p, Measured: ms}); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "reelrank: plan: report in %s/plan.md\n", dir)
	return nil
}

// parseCount reads a count with an optional k, M or B suffix.
func parseCount(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errors.New("missing")
	}
	mul := 1.0
	switch s[len(s)-1] {
	case 'k', 'K':
		mul = 1e3
	case 'm', 'M':
		mul = 1e6
	case 'b', 'B', 'g', 'G':
		mul = 1e9
	}
	if mul != 1 {
		s = s[:len(s)-1]
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || !(v >= 0) || v*mul > 1e15 {
		return 0, fmt.Errorf("%q is not a count", s)
	}
	return int64(math.Round(v * mul)), nil
}

// readMeasured reads `reelrank bench load --json` steps.
func readMeasured(path string) ([]plan.Measured, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("plan: --measured: %w", err)
	}
	defer f.Close()
	var out []plan.Measured
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] != '{' {
			continue
		}
		var s bench.LoadStep
		if err := json.Unmarshal([]byte(line), &s); err != nil {
			return nil, fmt.Errorf("plan: --measured %s: %w", path, err)
		}
		out = append(out, plan.Measured{QPS: s.Offered, Achieved: s.Achieved, P99Us: s.P99us})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("plan: --measured %s: %w", path, err)
	}
	return out, nil
}
