package bench

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func testRun(command, commit string, metrics ...Metric) Run {
	return Run{Version: HistoryVersion, Command: command, Commit: commit, CPU: "Test CPU @ 1GHz", Cores: 2, SIMD: "avx2",
		Time: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), Settings: map[string]string{"time": "1ms"}, Metrics: metrics}
}

func TestHistoryAppendRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "history.jsonl")
	if _, err := ReadHistory(path, nil); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing history: %v", err)
	}
	a := testRun("kernels", "aaaa1111")
	a.Add("Dot/d=128", "GB/s", 0, 10, 12, 11)
	if err := AppendRun(path, a); err != nil {
		t.Fatal(err)
	}
	// A corrupt line, then a line cut short by a crash (no newline).
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("{not json}\n{\"v\":99,\"command\":\"kernels\"}\n{\"v\":1,\"command\":\"ker")
	f.Close()
	b := testRun("kernels", "bbbb2222")
	b.Add("Dot/d=128", "GB/s", 9)
	if err := AppendRun(path, b); err != nil {
		t.Fatal(err)
	}
	var warn bytes.Buffer
	runs, err := ReadHistory(path, &warn)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 2 || runs[0].Commit != "aaaa1111" || runs[1].Commit != "bbbb2222" || runs[1].Index != 1 {
		t.Fatalf("runs %+v", runs)
	}
	m, ok := runs[0].Metric("Dot/d=128")
	if !ok || m.Value != 11 || len(m.Samples) != 3 || m.Better != HigherIsBetter || m.Unit != "GB/s" {
		t.Fatalf("metric %+v", m)
	}
	w := warn.String()
	for _, want := range []string{"history.jsonl:2: skipped", "history.jsonl:3: skipped: version 99", "history.jsonl:4: skipped"} {
		if !strings.Contains(w, want) {
			t.Errorf("warnings lack %q:\n%s", want, w)
		}
	}
	if strings.Count(w, "\n") != 3 {
		t.Errorf("want 3 warnings:\n%s", w)
	}
}

func TestBetterFor(t *testing.T) {
	for _, c := range []struct{ name, unit, want string }{
		{"nprobe=16/p99_us", "us", LowerIsBetter},
		{"qps=100/p999_us", "", LowerIsBetter},
		{"nprobe=16/qps_1thread", "qps", HigherIsBetter},
		{"nprobe=16/recall@k", "recall", HigherIsBetter},
		{"FastScan4/M=64/n=32768", "Gcodes/s", HigherIsBetter},
		{"build_s", "s", LowerIsBetter},
		{"qps=100/errors", "errors", LowerIsBetter},
	} {
		if got := BetterFor(c.name, c.unit); got != c.want {
			t.Errorf("BetterFor(%q, %q) = %s, want %s", c.name, c.unit, got, c.want)
		}
	}
}

func TestSelectRuns(t *testing.T) {
	runs := []Run{
		testRun("kernels", "abcdef0123"), testRun("load", "abcdef0123"), testRun("kernels", "1234567890"),
		testRun("kernels", "abcdef0123"), testRun("ann", "fedcba9876"),
	}
	for i := range runs {
		runs[i].Index = i
	}
	idx := func(rs []Run) []int {
		var out []int
		for _, r := range rs {
			out = append(out, r.Index)
		}
		return out
	}
	for _, c := range []struct {
		command, sel string
		want         []int
	}{
		{"kernels", "last", []int{3}},
		{"kernels", "prev", []int{2}},
		{"kernels", "last~2", []int{0}},
		{"", "last", []int{4}},
		{"", "1", []int{1}},
		{"", "-1", []int{4}},
		{"kernels", "abcd", []int{0, 3}},
		{"", "ABCDEF", []int{0, 1, 3}},
		{"kernels", "1234567", []int{2}},
	} {
		got, err := SelectRuns(runs, c.command, c.sel)
		if err != nil || !slices.Equal(idx(got), c.want) {
			t.Errorf("SelectRuns(%q, %q) = %v, %v; want %v", c.command, c.sel, idx(got), err, c.want)
		}
	}
	for _, c := range []struct{ command, sel string }{
		{"kernels", "last~3"}, {"kernels", "1"}, {"kernels", "9999"}, {"gpu", "last"}, {"", "zzzz"}, {"", "abc"},
		{"kernels", "last~x"}, {"", "fffff"},
	} {
		if got, err := SelectRuns(runs, c.command, c.sel); err == nil {
			t.Errorf("SelectRuns(%q, %q) = %v, want an error", c.command, c.sel, idx(got))
		}
	}
	if _, err := SelectRuns(nil, "", "last"); err == nil {
		t.Error("no runs: no error")
	}
}

func TestCompareFlagsRegressions(t *testing.T) {
	samples := func(base float64) []float64 { return []float64{base, base + 1, base + 2, base + 3, base + 4, base + 5} }
	a := testRun("load", "aaaa")
	a.Add("qps=100/p99_us", "us", 0, samples(1000)...) // latency: up is worse
	a.Add("qps=100/achieved_qps", "qps", 0, samples(100)...)
	a.Add("qps=100/p50_us", "us", 0, samples(500)...)
	a.Add("tput", "GB/s", 0, samples(10)...)
	a.Add("noisy", "us", 0, 10, 30, 20, 40, 15, 35)
	a.Add("gone", "us", 1)
	b := testRun("load", "bbbb")
	b.Add("qps=100/p99_us", "us", 0, samples(1200)...)      // +20%: a regression
	b.Add("qps=100/achieved_qps", "qps", 0, samples(80)...) // -20%: a regression
	b.Add("qps=100/p50_us", "us", 0, samples(400)...)       // faster: no regression
	b.Add("tput", "GB/s", 0, samples(10.3)...)              // +3% of noise, not significant
	b.Add("noisy", "us", 0, 12, 32, 22, 42, 17, 37)
	b.Add("new", "us", 1)
	cs, err := Compare([]Run{a}, []Run{b}, CompareOptions{Threshold: 0.05, Alpha: 0.05})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Change{}
	for _, c := range cs {
		got[c.Name] = c
		t.Log(FormatChange(c))
	}
	if len(cs) != 7 {
		t.Fatalf("%d changes", len(cs))
	}
	for name, want := range map[string]bool{"qps=100/p99_us": true, "qps=100/achieved_qps": true, "qps=100/p50_us": false,
		"tput": false, "noisy": false, "gone": false, "new": false} {
		if got[name].Regression != want {
			t.Errorf("%s: regression %v, want %v (%+v)", name, got[name].Regression, want, got[name])
		}
	}
	if c := got["qps=100/p99_us"]; !within(c.P, 2.0/924, 1e-12) || !within(c.Delta, 200/1002.5, 1e-12) || c.NA != 6 {
		t.Errorf("p99: %+v", c)
	}
	if c := got["qps=100/p50_us"]; !c.Significant || c.Worse() {
		t.Errorf("p50: %+v", c)
	}
	if got["noisy"].Significant || got["gone"].Note != "only in A" || got["new"].Note != "only in B" {
		t.Errorf("noisy %+v gone %+v new %+v", got["noisy"], got["gone"], got["new"])
	}
	if Regressions(cs) != 2 {
		t.Errorf("%d regressions", Regressions(cs))
	}
	// A threshold above the change: significant but not flagged.
	cs, _ = Compare([]Run{a}, []Run{b}, CompareOptions{Threshold: 0.25, Alpha: 0.05})
	if Regressions(cs) != 0 {
		t.Errorf("threshold 25%%: %d regressions", Regressions(cs))
	}
	// One run a side without samples: never significant, and said why.
	one := testRun("load", "cccc")
	one.Add("x", "us", 1)
	two := testRun("load", "dddd")
	two.Add("x", "us", 100)
	cs, _ = Compare([]Run{one}, []Run{two}, CompareOptions{Threshold: 0.05, Alpha: 0.05})
	if cs[0].Regression || !strings.Contains(cs[0].Note, "too few samples") || !strings.Contains(FormatChange(cs[0]), "~") {
		t.Errorf("1+1: %+v %s", cs[0], FormatChange(cs[0]))
	}
	// Runs pooled: four runs of one value a side are samples.
	var as, bs []Run
	for i := range 4 {
		r := testRun("load", "eeee")
		r.Add("x", "us", float64(10+i))
		as = append(as, r)
		r = testRun("load", "ffff")
		r.Add("x", "us", float64(20+i))
		bs = append(bs, r)
	}
	cs, _ = Compare(as, bs, CompareOptions{Threshold: 0.05, Alpha: 0.05})
	if !cs[0].Regression || cs[0].NA != 4 || !within(cs[0].P, 2.0/70, 1e-12) {
		t.Errorf("pooled: %+v", cs[0])
	}
	// The metric filter.
	cs, err = Compare([]Run{a}, []Run{b}, CompareOptions{Metric: "qps=100/*_us", Threshold: 0.05, Alpha: 0.05})
	if err != nil || len(cs) != 2 {
		t.Errorf("glob: %d changes, %v", len(cs), err)
	}
	if _, err := Compare([]Run{a}, []Run{b}, CompareOptions{Metric: "nothing", Threshold: 0.05, Alpha: 0.05}); err == nil {
		t.Error("no matching metric: no error")
	}
	for _, o := range []CompareOptions{{Alpha: 0}, {Alpha: 1}, {Alpha: 0.05, Threshold: -1}, {Alpha: 0.05, Metric: "["}} {
		if _, err := Compare([]Run{a}, []Run{b}, o); err == nil {
			t.Errorf("%+v: no error", o)
		}
	}
}

func TestMinP(t *testing.T) {
	if p := MinP(6, 6); !within(p, 2.0/924, 1e-15) {
		t.Errorf("MinP(6, 6) = %g", p)
	}
	if p := MinP(3, 3); p < 0.05 {
		t.Errorf("MinP(3, 3) = %g", p)
	}
	if MinP(0, 3) != 1 {
		t.Error("MinP(0, 3)")
	}
}

// plotRuns is a history with every kind of chart's data: kernels (no
// p99), ann runs of ours and a peer's, load runs at two commits.
func plotRuns() []Run {
	var runs []Run
	k := testRun("kernels", "1111111111")
	k.AddKernelFigures([][]Figure{{{Kernel: "Dot", Shape: "d=128", Value: 10, Unit: "GB/s"}}})
	runs = append(runs, k)
	for i, commit := range []string{"2222222222", "3333333333"} {
		a := testRun("ann", commit)
		a.AddANNRows([][]ANNRow{{
			{NProbe: 4, RecallAtK: 0.8, QPS1Thread: 20000, P99us: 80 + float64(i)},
			{NProbe: 16, RecallAtK: 0.95, QPS1Thread: 8000, P99us: 200},
		}}, nil)
		runs = append(runs, a)
		l := testRun("load", commit)
		l.AddLoadSteps([]LoadStep{{Offered: 100, P50us: 900, P99us: 2000, P999us: 4000}, {Offered: 400, P50us: 1000, P99us: 3000 + 100*float64(i), P999us: 9000}})
		runs = append(runs, l)
	}
	peer := testRun("ann", "unknown")
	peer.Engine = "faiss"
	peer.AddANNRows([][]ANNRow{{{NProbe: 8, RecallAtK: 0.85, QPS1Thread: 15000}, {NProbe: 32, RecallAtK: 0.97, QPS1Thread: 5000}}}, nil)
	return append(runs, peer)
}

func TestPlotHistory(t *testing.T) {
	dir := t.TempDir()
	files, err := PlotHistory(plotRuns(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 3 {
		t.Fatalf("files %q", files)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		texts := svgTexts(t, b)
		var want []string
		switch filepath.Base(f) {
		case "p99-over-commits.svg":
			want = []string{"p99 over commits", "2222222", "ann nprobe=4/p99_us", "load qps=400/p99_us"}
		case "recall-qps.svg":
			want = []string{"recall@k", "faiss", "reelrank 3333333"}
		case "load-latency.svg":
			want = []string{"offered requests/s", "p99 3333333", "p99 2222222", "p999 3333333"}
		default:
			t.Errorf("unexpected file %s", f)
		}
		for _, w := range want {
			if !strings.Contains(texts, w) {
				t.Errorf("%s: no text %q in %q", filepath.Base(f), w, texts)
			}
		}
	}
	// Nothing to draw: no files, no error.
	files, err = PlotHistory(plotRuns()[:1], t.TempDir())
	if err != nil || len(files) != 0 {
		t.Fatalf("kernels only: %q %v", files, err)
	}
}

// svgTexts parses an SVG as XML and returns the text of its text elements.
func svgTexts(t *testing.T, b []byte) string {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(b))
	var texts []string
	root := ""
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("not XML: %v", err)
		}
		switch e := tok.(type) {
		case xml.StartElement:
			if root == "" {
				root = e.Name.Local
			}
		case xml.CharData:
			if s := strings.TrimSpace(string(e)); s != "" {
				texts = append(texts, s)
			}
		}
	}
	if root != "svg" {
		t.Fatalf("root element %q", root)
	}
	return strings.Join(texts, "|")
}

func TestSanitizeName(t *testing.T) {
	for in, want := range map[string]string{
		"AMD EPYC 7B13 64-Core Processor": "AMD_EPYC_7B13_64-Core_Processor",
		"Intel(R) Xeon(R) CPU @ 2.20GHz":  "Intel_R_Xeon_R_CPU_2.20GHz",
		"  ":                              "unknown",
		"../../etc/passwd":                ".._.._etc_passwd",
	} {
		if got := SanitizeName(in); got != want {
			t.Errorf("SanitizeName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCommitKnown(t *testing.T) {
	c, _ := Commit()
	if c == "" {
		t.Fatal("empty commit")
	}
	if math.IsNaN(median(nil)) {
		t.Fatal("median of nothing")
	}
}

// TestHistoryConcurrentAppends appends from several goroutines at once:
// O_APPEND and one write a line keep every line whole.
func TestHistoryConcurrentAppends(t *testing.T) {
	path := filepath.Join(t.TempDir(), "h.jsonl")
	const writers, each = 4, 10
	errs := make(chan error, writers)
	for w := range writers {
		go func() {
			for i := range each {
				r := testRun("kernels", fmt.Sprintf("%04d%04d", w, i))
				r.Add("x", "us", float64(i), make([]float64, 200)...) // a long line
				if err := AppendRun(path, r); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range writers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	var warn bytes.Buffer
	runs, err := ReadHistory(path, &warn)
	if err != nil || len(runs) != writers*each || warn.Len() > 0 {
		t.Fatalf("%d runs, %v, warnings %q", len(runs), err, warn.String())
	}
}
