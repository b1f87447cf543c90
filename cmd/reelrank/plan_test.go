package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reelrank/reelrank/plan"
)

// TestCalibrateAndPlan calibrates this machine on a small served model,
// plans from the file, writes the report and the manifests, and checks
// that the plan for one replica of this machine carries what it says.
func TestCalibrateAndPlan(t *testing.T) {
	if testing.Short() {
		t.Skip("calibrates for several seconds")
	}
	dir := t.TempDir()
	mdir, _ := trainSmall(t, dir)
	cal := filepath.Join(dir, "cal.json")
	out, err := runCmd(t, "calibrate", "--quick", "--isolate=false", "--bundle", mdir, "--out", cal, "--requests", "200")
	if err != nil {
		t.Fatalf("calibrate: %v\n%s", err, out)
	}
	c, err := plan.LoadCalibration(cal)
	if err != nil {
		t.Fatal(err)
	}
	if c.Request.Reels < 1000 || c.Request.Samples != 200 || len(c.ANN) < 8 || c.Server.OverheadUs <= 0 {
		t.Errorf("calibration: request on %d reels, %d samples, %d index points, overhead %.0f µs",
			c.Request.Reels, c.Request.Samples, len(c.ANN), c.Server.OverheadUs)
	}
	// The model folder measured is unchanged: no served state was made.
	if _, err := os.Stat(filepath.Join(mdir, "served", "arms.json")); err == nil {
		t.Error("calibrate wrote served state into the measured folder")
	}
	rep := filepath.Join(dir, "report")
	k8s := filepath.Join(dir, "k8s")
	out, err = runCmd(t, "plan", "--calibration", cal, "--reels", "10M", "--qps", "1000", "--p99", "50", "--recall", "0.5",
		"--new-reels-per-day", "1M", "--report", rep, "--emit", "k8s", k8s)
	if err != nil {
		t.Fatalf("plan: %v\n%s", err, out)
	}
	for _, want := range []string{"shards", "M/G/c", "bytes a reel", "predicted p99"} {
		if !strings.Contains(out, want) {
			t.Errorf("plan's output lacks %q:\n%s", want, out)
		}
	}
	for _, f := range []string{"plan.md", "qps-recall.svg", "p99-load.svg", "cost-size.svg"} {
		if st, err := os.Stat(filepath.Join(rep, f)); err != nil || st.Size() == 0 {
			t.Errorf("report %s: %v", f, err)
		}
	}
	if m, _ := filepath.Glob(filepath.Join(k8s, "*.yaml")); len(m) == 0 {
		t.Error("no manifests")
	}
	out, err = runCmd(t, "plan", "--calibration", cal, "--reels", "2000", "--qps", "50", "--p99", "100", "--nprobe", "8",
		"--shards", "1", "--replicas", "1", "--cores-per-replica", "2", "--network-rtt", "0", "--json")
	if err != nil {
		t.Fatalf("plan --json: %v\n%s", err, out)
	}
	var p plan.Plan
	if err := json.Unmarshal([]byte(out[:strings.LastIndex(out, "}")+1]), &p); err != nil {
		t.Fatalf("plan --json: %v\n%s", err, out)
	}
	if p.Shards != 1 || p.ReplicasPerShard != 1 || !(p.SaturationQPS > 50) || p.Utilisation <= 0 {
		t.Errorf("one replica at 50/s: %+v", p)
	}
}

func TestPlanBadArgs(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "none.json")
	for _, args := range [][]string{
		{"plan", "--reels", "1M", "--qps", "10", "--calibration", missing},
		{"plan", "--reels", "lots", "--qps", "10"},
		{"plan", "--reels", "1M", "--qps", "10", "--emit", "helm", dir},
		{"plan", "--reels", "1M", "--qps", "10", "--emit", "k8s"},
		{"plan", "--reels", "1M", "--qps", "10", "--memory-per-replica", "-1"},
		{"plan", "--reels", "1M", "--qps", "10", "extra"},
		{"calibrate", "--requests", "3"},
	} {
		if out, err := runCmd(t, args...); err == nil {
			t.Errorf("%v: no error\n%s", args, out)
		}
	}
	if _, err := runCmd(t, "plan", "--reels", "1M", "--qps", "10", "--calibration", missing); err == nil || !strings.Contains(err.Error(), "reelrank calibrate") {
		t.Errorf("a missing calibration does not say how to make one: %v", err)
	}
	for in, want := range map[string]int64{"10": 10, "2.5k": 2500, "100M": 100_000_000, "1B": 1_000_000_000} {
		if got, err := parseCount(in); err != nil || got != want {
			t.Errorf("parseCount(%q) = %d, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "-5", "x", "1e300", "NaNM"} {
		if _, err := parseCount(in); err == nil {
			t.Errorf("parseCount(%q) took it", in)
		}
	}
}
