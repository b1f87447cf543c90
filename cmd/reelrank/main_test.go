package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestCPUJSON(t *testing.T) {
	var out, errb bytes.Buffer
	if err := run([]string{"cpu", "--json"}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	var info cpuInfo
	if err := json.Unmarshal(out.Bytes(), &info); err != nil {
		t.Fatalf("cpu --json: %v in %q", err, out.String())
	}
	if info.SIMD == "" || info.Cores < 1 {
		t.Fatalf("cpu --json: %+v", info)
	}
}

func TestBenchKernelsJSON(t *testing.T) {
	var out, errb bytes.Buffer
	if err := run([]string{"bench", "kernels", "--json", "--time", "1ms"}, &out, &errb); err != nil {
		t.Fatal(err, errb.String())
	}
	sc := bufio.NewScanner(&out)
	lines := 0
	for sc.Scan() {
		var f map[string]any
		if err := json.Unmarshal(sc.Bytes(), &f); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		if f["checked"] != true || f["kernel"] == "" {
			t.Fatalf("line %q", sc.Text())
		}
		lines++
	}
	if lines < 5 {
		t.Fatalf("%d lines of figures", lines)
	}
}

func TestRunHuman(t *testing.T) {
	var out, errb bytes.Buffer
	if err := run([]string{"run", "--time", "1ms"}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Dot", "TopK", "GB/s"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("run output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestBadArgs(t *testing.T) {
	for _, args := range [][]string{
		nil,
		{"serve-nothing"},
		{"bench"},
		{"bench", "gpus"},
		{"bench", "kernels", "--time", "0s"},
		{"bench", "kernels", "--time", "soon"},
		{"cpu", "--bogus"},
	} {
		var out, errb bytes.Buffer
		if err := run(args, &out, &errb); err == nil {
			t.Errorf("run(%q) gave no error", args)
		}
	}
}
