package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reelrank/reelrank/bench"
	"github.com/reelrank/reelrank/client/clienttest"
)

// writeHistory writes runs as a history file and returns its path.
func writeHistory(t *testing.T, runs ...bench.Run) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "history.jsonl")
	for _, r := range runs {
		if err := bench.AppendRun(path, r); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

func loadRun(commit string, p99 float64) bench.Run {
	r := bench.NewRun("load")
	r.Commit = commit
	r.Add("qps=100/p99_us", "us", 0, p99, p99+1, p99+2, p99+3, p99+4, p99+5)
	r.Add("qps=100/achieved_qps", "qps", 0, 100, 100.5, 99.5, 100.2, 99.8, 100.1)
	return r
}

func TestBenchCompareExitStatus(t *testing.T) {
	k := bench.NewRun("kernels")
	k.Commit = "cccc000000"
	k.Add("Dot/d=128", "GB/s", 10)
	path := writeHistory(t, loadRun("aaaa000000", 1000), k, loadRun("bbbb000000", 1010), loadRun("dddd000000", 1500))
	// A corrupt line is skipped with a warning.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("garbage\n")
	f.Close()

	var out, errb bytes.Buffer
	// 1000 → 1010 is +1%, under the threshold: no regression, exit 0.
	err = run([]string{"bench", "compare", "--history", path, "aaaa", "bbbb"}, &out, &errb)
	if err != nil {
		t.Fatalf("aaaa bbbb: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "0 regressions") || !strings.Contains(errb.String(), "history.jsonl:5: skipped") {
		t.Errorf("aaaa bbbb:\n%s\n%s", out.String(), errb.String())
	}
	// prev → last: the load runs at bbbb and dddd (the kernels run between is
	// another command's): +48%, a regression, an error.
	out.Reset()
	err = run([]string{"bench", "compare", "--history", path, "prev", "last"}, &out, &errb)
	if !errors.Is(err, errRegression) || !strings.Contains(out.String(), "REGRESSION") ||
		!strings.Contains(out.String(), "commit bbbb000000") || !strings.Contains(out.String(), "commit dddd000000") {
		t.Fatalf("prev last: %v\n%s", err, out.String())
	}
	// Run indexes and the metric filter: achieved_qps alone did not change.
	out.Reset()
	if err := run([]string{"bench", "compare", "--history", path, "--metric", "achieved", "0", "3"}, &out, &errb); err != nil {
		t.Fatalf("0 3 --metric achieved: %v\n%s", err, out.String())
	}
	// A high threshold lets the +48% pass.
	out.Reset()
	if err := run([]string{"bench", "compare", "--history", path, "--threshold", "60%", "prev", "last"}, &out, &errb); err != nil {
		t.Fatalf("--threshold 60%%: %v\n%s", err, out.String())
	}
	for _, args := range [][]string{
		{"--history", path, "last"},
		{"--history", path, "last", "nope"},
		{"--history", path, "--alpha", "2", "prev", "last"},
		{"--history", path, "--threshold", "x%", "prev", "last"},
		{"--history", filepath.Join(t.TempDir(), "none.jsonl"), "prev", "last"},
		{"--history", "", "prev", "last"},
		{"--history", path, "--command", "gpu", "prev", "last"},
	} {
		if err := run(append([]string{"bench", "compare"}, args...), &out, &errb); err == nil || errors.Is(err, errRegression) {
			t.Errorf("compare %q: %v", args, err)
		}
	}
}

func TestBenchKernelsHistory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "h.jsonl")
	var out, errb bytes.Buffer
	if err := run([]string{"bench", "kernels", "--time", "1ms", "--count", "2", "--history", path, "--json"}, &out, &errb); err != nil {
		t.Fatal(err, errb.String())
	}
	runs, err := bench.ReadHistory(path, &errb)
	if err != nil || len(runs) != 1 {
		t.Fatalf("%d runs, %v", len(runs), err)
	}
	r := runs[0]
	if r.Command != "kernels" || r.Commit == "" || r.CPU == "" || r.Cores < 1 || r.SIMD == "" || r.Time.IsZero() ||
		r.Settings["time"] != "1ms" || r.Settings["count"] != "2" || r.Settings["json"] != "" {
		t.Fatalf("run %+v", r)
	}
	m, ok := r.Metric("Dot/d=128")
	if !ok || len(m.Samples) != 2 || m.Unit != "GB/s" || m.Better != bench.HigherIsBetter {
		t.Fatalf("Dot metric %+v", m)
	}
	// Under go test, no --history writes nothing.
	h := &historyFlag{}
	if h.Path() != "" {
		t.Fatalf("default history under test: %q", h.Path())
	}
	if err := run([]string{"bench", "kernels", "--time", "1ms", "--count", "0"}, &out, &errb); err == nil {
		t.Error("--count 0 accepted")
	}
}

func TestBenchPlotCommand(t *testing.T) {
	path := writeHistory(t, loadRun("aaaa000000", 1000), loadRun("bbbb000000", 1100))
	dir := filepath.Join(t.TempDir(), "plots")
	var out, errb bytes.Buffer
	if err := run([]string{"bench", "plot", "--history", path, "--out", dir}, &out, &errb); err != nil {
		t.Fatal(err, errb.String())
	}
	for _, f := range []string{"p99-over-commits.svg", "load-latency.svg"} {
		if b, err := os.ReadFile(filepath.Join(dir, f)); err != nil || !bytes.Contains(b, []byte("<svg")) {
			t.Errorf("%s: %v", f, err)
		}
	}
	if err := run([]string{"bench", "plot", "--history", path}, &out, &errb); err == nil {
		t.Error("no --out accepted")
	}
}

func TestBenchCheckBaseline(t *testing.T) {
	dir := t.TempDir()
	hist := filepath.Join(dir, "h.jsonl")
	args := []string{"bench", "check", "--baseline-dir", dir, "--history", hist, "--count", "2", "--time", "1ms", "--no-ann"}
	var out, errb bytes.Buffer
	if err := run(args, &out, &errb); err != nil {
		t.Fatal(err, errb.String())
	}
	if !strings.Contains(out.String(), "no baseline for") {
		t.Fatalf("first check:\n%s", out.String())
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	if len(files) != 2 {
		t.Fatalf("files %q", files)
	}
	// Against the baseline: two samples a side cannot be significant.
	out.Reset()
	if err := run(args, &out, &errb); err != nil {
		t.Fatal(err, out.String(), errb.String())
	}
	if !strings.Contains(out.String(), "baseline: check") || !strings.Contains(out.String(), "0 regressions") {
		t.Fatalf("second check:\n%s", out.String())
	}
	runs, err := bench.ReadHistory(hist, nil)
	if err != nil || len(runs) != 2 {
		t.Fatalf("history: %d runs, %v", len(runs), err)
	}
	// A baseline far faster than anything: every kernel regressed.
	base := filepath.Join(dir, bench.SanitizeName(runs[0].CPU)+".jsonl")
	fast := runs[0]
	for i := range fast.Metrics {
		fast.Metrics[i].Samples = []float64{1e9, 1e9 + 1, 1e9 + 2, 1e9 + 3}
	}
	os.Remove(base)
	if err := bench.AppendRun(base, fast); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	args[7] = "4" // --count 4: significant at 0.05
	args = append(args, "--history", "")
	err = run(args, &out, &errb)
	if !errors.Is(err, errRegression) {
		t.Fatalf("against a fast baseline: %v\n%s", err, out.String())
	}
	if _, err := os.Stat(base); err != nil {
		t.Fatal(err)
	}
}

// TestBenchLoadHistory runs bench load twice over two rates against a fake
// server and finds each step's figures with two samples in the history.
func TestBenchLoadHistory(t *testing.T) {
	s, err := clienttest.Start(clienttest.Static("v1"), clienttest.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	path := filepath.Join(t.TempDir(), "h.jsonl")
	out, err := runCmd(t, "bench", "load", "--addr", s.Addr, "--qps", "100,200", "--duration", "100ms", "--warmup", "20ms",
		"--count", "2", "--history", path, "--json")
	if err != nil {
		t.Fatal(err, out)
	}
	runs, err := bench.ReadHistory(path, nil)
	if err != nil || len(runs) != 1 || runs[0].Command != "load" || runs[0].Settings["qps"] != "100,200" {
		t.Fatalf("%+v %v", runs, err)
	}
	for _, name := range []string{"qps=100/p99_us", "qps=200/p99_us", "qps=200/achieved_qps", "qps=100/errors"} {
		if m, ok := runs[0].Metric(name); !ok || len(m.Samples) != 2 {
			t.Errorf("%s: %+v", name, m)
		}
	}
	if m, _ := runs[0].Metric("qps=100/p99_us"); m.Better != bench.LowerIsBetter || !(m.Value > 0) {
		t.Errorf("p99: %+v", m)
	}
	if _, err := runCmd(t, "bench", "load", "--addr", s.Addr, "--count", "0"); err == nil {
		t.Error("--count 0 accepted")
	}
}

// TestBenchImportPeer imports a peer's points and finds its line in the
// recall-QPS chart beside a run of ours.
func TestBenchImportPeer(t *testing.T) {
	dir := t.TempDir()
	ours := bench.NewRun("ann")
	ours.AddANNRows([][]bench.ANNRow{{{NProbe: 4, RecallAtK: 0.8, QPS1Thread: 9000}, {NProbe: 16, RecallAtK: 0.95, QPS1Thread: 3000}}}, nil)
	path := writeHistory(t, ours)
	peer := filepath.Join(dir, "faiss.jsonl")
	if err := os.WriteFile(peer, []byte(`{"nprobe": 8, "recall@k": 0.85, "qps_1thread": 7000}
{"nprobe": 32, "recall@k": 0.97, "qps_1thread": 2000}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := runCmd(t, "bench", "import", "--history", path, "--engine", "faiss-ivfpq", "--base", "reels1m", peer); err != nil {
		t.Fatal(err, out)
	}
	runs, err := bench.ReadHistory(path, nil)
	if err != nil || len(runs) != 2 || runs[1].Engine != "faiss-ivfpq" || runs[1].Commit != "unknown" {
		t.Fatalf("%+v %v", runs, err)
	}
	if m, ok := runs[1].Metric("nprobe=32/recall@k"); !ok || m.Value != 0.97 {
		t.Fatalf("peer recall %+v", m)
	}
	plots := filepath.Join(dir, "plots")
	if out, err := runCmd(t, "bench", "plot", "--history", path, "--out", plots); err != nil {
		t.Fatal(err, out)
	}
	b, err := os.ReadFile(filepath.Join(plots, "recall-qps.svg"))
	if err != nil || !bytes.Contains(b, []byte("faiss-ivfpq reels1m")) {
		t.Fatalf("recall-qps.svg lacks the peer: %v", err)
	}
	bad := filepath.Join(dir, "bad.jsonl")
	os.WriteFile(bad, []byte(`{"nprobe": 0, "recall@k": 2}`), 0o644)
	for _, args := range [][]string{
		{"--history", path, peer},
		{"--history", path, "--engine", "reelrank", peer},
		{"--history", path, "--engine", "x", bad},
		{"--history", path, "--engine", "x", filepath.Join(dir, "none")},
		{"--history", "", "--engine", "x", peer},
	} {
		if _, err := runCmd(t, append([]string{"bench", "import"}, args...)...); err == nil {
			t.Errorf("import %q accepted", args)
		}
	}
}
