package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/reelrank/reelrank/ann"
	"github.com/reelrank/reelrank/bench"
	"github.com/reelrank/reelrank/kernels"
)

// historyFlag is --history: where a bench command appends its run. Unset,
// it is bench.DefaultHistoryPath (nothing under `go test`, so that tests
// do not write into the checkout); set to "", no history.
type historyFlag struct {
	path string
	set  bool
}

func (h *historyFlag) String() string {
	if h == nil || !h.set {
		return "bench/history.jsonl in the checkout, else $XDG_STATE_HOME/reelrank/bench-history.jsonl"
	}
	return h.path
}

func (h *historyFlag) Set(s string) error { h.path, h.set = s, true; return nil }

// Path is the history file to use, or "" for none.
func (h *historyFlag) Path() string {
	if h.set {
		return h.path
	}
	if testing.Testing() {
		return ""
	}
	return bench.DefaultHistoryPath()
}

func addHistoryFlag(fs *flag.FlagSet) *historyFlag {
	h := &historyFlag{}
	fs.Var(h, "history", `append this run to FILE, one JSON line ("" for no history)`)
	return h
}

// settingsOf records a command's flags as a run's settings, but for the
// output format, secrets and --history itself.
func settingsOf(fs *flag.FlagSet, r *bench.Run) {
	fs.VisitAll(func(f *flag.Flag) {
		switch f.Name {
		case "history", "json", "token", "admin-token":
			return
		}
		r.Settings[f.Name] = f.Value.String()
	})
}

// recordRun appends r to the history h names. A history that cannot be
// written is a warning: the figures are printed already.
func recordRun(h *historyFlag, r bench.Run, stderr io.Writer) {
	path := h.Path()
	if path == "" || len(r.Metrics) == 0 {
		return
	}
	if err := bench.AppendRun(path, r); err != nil {
		fmt.Fprintf(stderr, "warning: %v\n", err)
		return
	}
	fmt.Fprintf(stderr, "recorded in %s (commit %s)\n", path, shortRev(r.Commit))
}

func shortRev(c string) string {
	if len(c) > 12 {
		return c[:12]
	}
	return c
}

// parseShare reads "5%" or "0.05" as 0.05.
func parseShare(s string) (float64, error) {
	t := strings.TrimSpace(s)
	div := 1.0
	if p, ok := strings.CutSuffix(t, "%"); ok {
		t, div = p, 100
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%q is not a share (5%% or 0.05)", s)
	}
	return v / div, nil
}

type shareFlag struct{ v float64 }

func (s *shareFlag) String() string {
	if s == nil {
		return ""
	}
	return strconv.FormatFloat(100*s.v, 'g', -1, 64) + "%"
}

func (s *shareFlag) Set(v string) (err error) { s.v, err = parseShare(v); return err }

// errRegression is the error of a comparison that flagged a regression.
var errRegression = errors.New("regression")

// cmdBenchCompare runs `reelrank bench compare A B`.
func cmdBenchCompare(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	hist := addHistoryFlag(fs)
	metric := fs.String("metric", "", "compare only the metrics whose name contains this (or matches it as a glob)")
	threshold := &shareFlag{0.05}
	fs.Var(threshold, "threshold", "a significant change for the worse past this is a regression (5% or 0.05)")
	alpha := fs.Float64("alpha", 0.05, "significance level of the Mann–Whitney U test")
	command := fs.String("command", "", "compare runs of this bench command only (default: the command of the run selected, or the newest run's)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: reelrank bench compare [--history F] [--metric M] [--threshold 5%] [--alpha 0.05] A B\n"+
			"A and B: last, prev, last~N, a run index, or a commit prefix (its runs pooled)")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		fs.Usage()
		return fmt.Errorf("bench compare: want two runs, A and B, got %d arguments", fs.NArg())
	}
	path := hist.Path()
	if path == "" {
		return errors.New("bench compare: no history file (--history)")
	}
	runs, err := bench.ReadHistory(path, stderr)
	if err != nil {
		return fmt.Errorf("bench compare: %w", err)
	}
	a, b, err := selectPair(runs, *command, fs.Arg(0), fs.Arg(1))
	if err != nil {
		return fmt.Errorf("bench compare: %w", err)
	}
	changes, err := bench.Compare(a, b, bench.CompareOptions{Metric: *metric, Threshold: threshold.v, Alpha: *alpha})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "A: %s\nB: %s\n", describeRuns(a), describeRuns(b))
	if a[0].CPU != b[0].CPU {
		fmt.Fprintf(stdout, "warning: A ran on %q, B on %q: the machines differ\n", a[0].CPU, b[0].CPU)
	}
	fmt.Fprintf(stdout, "%-40s %12s %12s %-10s %9s\n", "metric", "A", "B", "unit", "change")
	for _, c := range changes {
		fmt.Fprintln(stdout, bench.FormatChange(c))
	}
	n := bench.Regressions(changes)
	fmt.Fprintf(stdout, "%d metrics, %d regressions (worse by more than %s at p < %g)\n", len(changes), n, threshold, *alpha)
	if n > 0 {
		return fmt.Errorf("bench compare: %d %w", n, errRegression)
	}
	return nil
}

// selectPair resolves the selectors A and B among runs of one command.
func selectPair(runs []bench.Run, command, selA, selB string) ([]bench.Run, []bench.Run, error) {
	if len(runs) == 0 {
		return nil, nil, errors.New("the history has no runs")
	}
	if command == "" {
		command = runs[len(runs)-1].Command
		for _, s := range []string{selA, selB} {
			if one, err := bench.SelectRuns(runs, "", s); err == nil && len(one) == 1 && !isRelative(s) {
				command = one[0].Command
				break
			}
		}
	}
	a, err := bench.SelectRuns(runs, command, selA)
	if err != nil {
		return nil, nil, fmt.Errorf("run A: %w", err)
	}
	b, err := bench.SelectRuns(runs, command, selB)
	if err != nil {
		return nil, nil, fmt.Errorf("run B: %w", err)
	}
	return a, b, nil
}

func isRelative(s string) bool { return s == "last" || s == "prev" || strings.HasPrefix(s, "last~") }

func describeRuns(rs []bench.Run) string {
	r := rs[0]
	idx := strconv.Itoa(r.Index)
	if len(rs) > 1 {
		idx = fmt.Sprintf("%d runs from %d", len(rs), r.Index)
	}
	mod := ""
	if r.Modified {
		mod = " (modified)"
	}
	return fmt.Sprintf("%s %s, commit %s%s, %s, %s", r.Command, idx, shortRev(r.Commit), mod, r.Time.Format(time.RFC3339), r.CPU)
}

// cmdBenchPlot runs `reelrank bench plot --history F --out DIR`.
func cmdBenchPlot(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench plot", flag.ContinueOnError)
	fs.SetOutput(stderr)
	hist := addHistoryFlag(fs)
	out := fs.String("out", "", "folder to write the SVG charts into")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" || fs.NArg() > 0 {
		return errors.New("bench plot: want --out DIR and no other arguments")
	}
	path := hist.Path()
	if path == "" {
		return errors.New("bench plot: no history file (--history)")
	}
	runs, err := bench.ReadHistory(path, stderr)
	if err != nil {
		return fmt.Errorf("bench plot: %w", err)
	}
	files, err := bench.PlotHistory(runs, *out)
	if err != nil {
		return err
	}
	if len(files) == 0 {
		fmt.Fprintf(stdout, "%s: %d runs, nothing to draw (no p99, ann or load metrics)\n", path, len(runs))
		return nil
	}
	for _, f := range files {
		fmt.Fprintln(stdout, f)
	}
	return nil
}

// checkKernels are the kernels `bench check` times: a bandwidth scan,
// the 4-bit fast scan, top-k selection and the ranker's GEMM.
var checkKernels = []string{"DotBatch", "FastScan4", "TopK", "GemmPacked"}

// cmdBenchCheck runs `reelrank bench check` (make bench-check): a short
// fixed set, repeated, compared with the baseline of this CPU model.
func cmdBenchCheck(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	hist := addHistoryFlag(fs)
	dir := fs.String("baseline-dir", "", "folder of the baselines, one <cpu>.jsonl a CPU model (default bench/baseline in the checkout)")
	count := fs.Int("count", 6, "repetitions, the samples of each metric")
	budget := fs.Duration("time", 100*time.Millisecond, "time spent on each kernel a repetition")
	threshold := &shareFlag{0.10}
	fs.Var(threshold, "threshold", "a significant change for the worse past this fails the check")
	alpha := fs.Float64("alpha", 0.05, "significance level")
	update := fs.Bool("update", false, "record this run as the baseline, whatever it compares like")
	noANN := fs.Bool("no-ann", false, "kernels only, no index search")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *count < 1 || *budget <= 0 || fs.NArg() > 0 {
		return fmt.Errorf("bench check: --count %d (>= 1), --time %v (> 0), arguments %q", *count, *budget, fs.Args())
	}
	if *dir == "" {
		wd, err := os.Getwd()
		if err != nil {
			return fmt.Errorf("bench check: %w", err)
		}
		root := bench.RepoRoot(wd)
		if root == "" {
			return errors.New("bench check: not in a reelrank checkout: give --baseline-dir")
		}
		*dir = filepath.Join(root, "bench", "baseline")
	}
	run := bench.NewRun("check")
	settingsOf(fs, &run)
	delete(run.Settings, "baseline-dir")
	delete(run.Settings, "update")
	delete(run.Settings, "threshold")
	delete(run.Settings, "alpha")
	var cases []bench.KernelCase
	for _, c := range bench.KernelCases() {
		for _, k := range checkKernels {
			if c.Kernel == k {
				cases = append(cases, c)
			}
		}
	}
	fmt.Fprintf(stderr, "bench check: %d kernels, %d repetitions of %v each\n", len(cases), *count, *budget)
	var reps [][]bench.Figure
	for i := range *count {
		figs, err := bench.RunKernels(cases, *budget, uint64(i+1))
		if err != nil {
			return fmt.Errorf("bench check: %w", err)
		}
		reps = append(reps, figs)
	}
	run.AddKernelFigures(reps)
	if !*noANN {
		rows, err := checkANN(*count, stderr)
		if err != nil {
			return fmt.Errorf("bench check: %w", err)
		}
		// Recall is fixed by the seed: only the speed is compared.
		for _, reps := range rows {
			for i := range reps {
				reps[i].BuildS = 0
			}
		}
		run.AddANNRows(rows, nil)
	}
	recordRun(hist, run, stderr)

	base := filepath.Join(*dir, bench.SanitizeName(run.CPU)+".jsonl")
	if *update {
		return writeBaseline(base, run, stdout)
	}
	prev, err := bench.ReadHistory(base, stderr)
	if errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(stdout, "bench check: no baseline for %q (%s): recording this run as it\n", run.CPU, base)
		return writeBaseline(base, run, stdout)
	}
	if err != nil {
		return fmt.Errorf("bench check: %w", err)
	}
	var old []bench.Run
	for _, r := range prev {
		if r.Command == "check" && r.Settings["time"] == run.Settings["time"] && r.Settings["no-ann"] == run.Settings["no-ann"] {
			old = append(old, r)
		}
	}
	if len(old) == 0 {
		return fmt.Errorf("bench check: %s has no check run with --time %s: rerun with --update to record one", base, run.Settings["time"])
	}
	a := old[len(old)-1]
	changes, err := bench.Compare([]bench.Run{a}, []bench.Run{run}, bench.CompareOptions{Threshold: threshold.v, Alpha: *alpha})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "baseline: %s\nthis run: %s\n", describeRuns([]bench.Run{a}), describeRuns([]bench.Run{run}))
	for _, c := range changes {
		fmt.Fprintln(stdout, bench.FormatChange(c))
	}
	n := bench.Regressions(changes)
	fmt.Fprintf(stdout, "%d metrics, %d regressions (worse by more than %s at p < %g)\n", len(changes), n, threshold, *alpha)
	if n > 0 {
		return fmt.Errorf("bench check: %d %w against %s", n, errRegression, base)
	}
	return nil
}

func writeBaseline(path string, r bench.Run, stdout io.Writer) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("bench check: %w", err)
	}
	// The baseline holds the newest run alone: a new one replaces it.
	tmp := path + ".tmp"
	os.Remove(tmp)
	if err := bench.AppendRun(tmp, r); err != nil {
		return fmt.Errorf("bench check: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("bench check: %w", err)
	}
	fmt.Fprintf(stdout, "bench check: baseline for %q written to %s (commit it)\n", r.CPU, path)
	return nil
}

// checkANN times search on a small generated index (50,000 clustered
// vectors of 64 dimensions, inner product, k = 10): count repetitions of
// bench.RunANN over one index file.
func checkANN(count int, stderr io.Writer) ([][]bench.ANNRow, error) {
	dir, err := os.MkdirTemp("", "reelrank-bench-check-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	const n, nq, d, k, clusters = 50_000, 1000, 64, 10, 64
	r := rand.New(rand.NewPCG(7, 11))
	centres := make([]float32, clusters*d)
	for i := range centres {
		centres[i] = float32(r.NormFloat64())
	}
	mk := func(rows int) ann.Vectors {
		v := ann.Vectors{Data: make([]float32, rows*d), Dim: d}
		for i := range rows {
			c := r.IntN(clusters)
			for j := range d {
				v.Data[i*d+j] = centres[c*d+j] + 0.5*float32(r.NormFloat64())
			}
		}
		return v
	}
	base, q := mk(n), mk(nq)
	truth := make([]int32, nq*k)
	scores := make([]float32, n)
	for i := range nq {
		kernels.DotBatch(scores, q.Row(i), base.Data)
		for j, res := range kernels.TopK(nil, scores, nil, k, true) {
			truth[i*k+j] = int32(res.ID)
		}
	}
	qp, gp, ip := filepath.Join(dir, "q.fvecs"), filepath.Join(dir, "gt.ivecs"), filepath.Join(dir, "x.idx")
	if err := ann.WriteFvecs(qp, q); err != nil {
		return nil, err
	}
	if err := ann.WriteIvecs(gp, truth, k); err != nil {
		return nil, err
	}
	opt := ann.Options{Metric: kernels.InnerProduct, Lists: 128, M: 32, Bits: 4, Refine: ann.RefineF16, Seed: 1, Threads: 1}
	ix, _, err := bench.BuildIndex(base, opt)
	if err != nil {
		return nil, err
	}
	if err := ix.Save(ip); err != nil {
		return nil, err
	}
	cfg := bench.ANNConfig{IndexPath: ip, Query: qp, GT: gp, K: k, NProbes: []int{4, 16}, RefineFactor: 4, Threads: 1, Index: opt}
	var reps [][]bench.ANNRow
	for range count {
		rows, err := bench.RunANN(cfg, io.Discard)
		if err != nil {
			return nil, err
		}
		reps = append(reps, rows)
	}
	fmt.Fprintf(stderr, "bench check: index of %d vectors, %d queries, %d repetitions\n", n, nq, count)
	return reps, nil
}

// cmdBenchImport runs `reelrank bench import --engine NAME FILE`: a peer's
// recall and speed (JSON lines with the keys of `bench ann --json`: nprobe,
// the peer's search knob, recall@k, qps_1thread, p99_us, ...) recorded as
// an ann run of that engine, which bench plot draws beside ours.
func cmdBenchImport(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	hist := addHistoryFlag(fs)
	engine := fs.String("engine", "", "the peer's name (faiss, scann, hnswlib, ...)")
	dataset := fs.String("base", "", "the data set's name, for the chart's legend")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *engine == "" || *engine == "reelrank" || fs.NArg() != 1 {
		return errors.New("bench import: want --engine NAME (not reelrank) and one file of JSON lines")
	}
	path := hist.Path()
	if path == "" {
		return errors.New("bench import: no history file (--history)")
	}
	f, err := os.Open(fs.Arg(0))
	if err != nil {
		return fmt.Errorf("bench import: %w", err)
	}
	defer f.Close()
	dec := json.NewDecoder(f)
	var rows []bench.ANNRow
	for {
		var row bench.ANNRow
		if err := dec.Decode(&row); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return fmt.Errorf("bench import: %s: row %d: %w", fs.Arg(0), len(rows)+1, err)
		}
		if row.NProbe < 1 || !(row.RecallAtK >= 0 && row.RecallAtK <= 1) || !(row.QPS1Thread >= 0) {
			return fmt.Errorf("bench import: %s: row %d: want nprobe >= 1, recall@k in [0, 1], qps_1thread >= 0", fs.Arg(0), len(rows)+1)
		}
		rows = append(rows, row)
	}
	if len(rows) == 0 {
		return fmt.Errorf("bench import: %s: no rows", fs.Arg(0))
	}
	rec := bench.NewRun("ann")
	rec.Engine, rec.Commit, rec.Modified = *engine, "unknown", false
	rec.Settings["file"] = filepath.Base(fs.Arg(0))
	if *dataset != "" {
		rec.Settings["base"] = *dataset
	}
	rec.AddANNRows([][]bench.ANNRow{rows}, nil)
	if err := bench.AppendRun(path, rec); err != nil {
		return fmt.Errorf("bench import: %w", err)
	}
	fmt.Fprintf(stdout, "%d points of %s recorded in %s\n", len(rows), *engine, path)
	return nil
}
