package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reelrank/reelrank/ann"
	"github.com/reelrank/reelrank/kernels"
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
		{"index"},
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

func TestIndexAndBenchANN(t *testing.T) {
	dir := t.TempDir()
	r := rand.New(rand.NewPCG(1, 2))
	const n, nq, d, k = 2000, 10, 8, 20
	mk := func(n int) ann.Vectors {
		v := ann.Vectors{Data: make([]float32, n*d), Dim: d}
		for i := range v.Data {
			v.Data[i] = float32(r.NormFloat64())
		}
		return v
	}
	base, q := mk(n), mk(nq)
	truth := make([]int32, nq*k)
	scores := make([]float32, n)
	for i := range nq {
		kernels.L2SqBatch(scores, q.Row(i), base.Data)
		for j, res := range kernels.TopK(nil, scores, nil, k, false) {
			truth[i*k+j] = int32(res.ID)
		}
	}
	bp, qp, gp, ip := filepath.Join(dir, "b.fvecs"), filepath.Join(dir, "q.fvecs"), filepath.Join(dir, "gt.ivecs"), filepath.Join(dir, "x.idx")
	if err := ann.WriteFvecs(bp, base); err != nil {
		t.Fatal(err)
	}
	if err := ann.WriteFvecs(qp, q); err != nil {
		t.Fatal(err)
	}
	if err := ann.WriteIvecs(gp, truth, k); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if err := run([]string{"index", "--vectors", bp, "--out", ip, "--lists", "8", "--pq", "4", "--metric", "l2", "--json"}, &out, &errb); err != nil {
		t.Fatal(err, errb.String())
	}
	var summary map[string]any
	if err := json.Unmarshal(out.Bytes(), &summary); err != nil || summary["vectors"] != float64(n) {
		t.Fatalf("index --json: %v %q", err, out.String())
	}
	out.Reset()
	if err := run([]string{"bench", "ann", "--index", ip, "--query", qp, "--gt", gp, "--k", "10", "--nprobe", "2,8", "--refine", "50", "--json"}, &out, &errb); err != nil {
		t.Fatal(err, errb.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("bench ann --json: %d lines: %q", len(lines), out.String())
	}
	var row map[string]any
	if err := json.Unmarshal([]byte(lines[1]), &row); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"nprobe", "k", "recall@10", "recall@100", "recall@k", "qps_1thread", "qps_batch", "p50_us", "p99_us", "bytes_per_vector", "build_s"} {
		if _, ok := row[key]; !ok {
			t.Errorf("bench ann --json lacks %q: %s", key, lines[1])
		}
	}
	if row["recall@k"].(float64) < 0.99 {
		t.Errorf("exhaustive search recall %v", row["recall@k"])
	}
	for _, args := range [][]string{
		{"index", "--vectors", bp},
		{"index", "--vectors", bp, "--out", ip, "--metric", "cosine?"},
		{"index", "--vectors", filepath.Join(dir, "nope.fvecs"), "--out", ip},
		{"bench", "ann", "--query", qp, "--gt", gp},
		{"bench", "ann", "--index", ip, "--query", qp, "--gt", gp, "--nprobe", "0"},
		{"bench", "ann", "--index", ip, "--query", qp, "--gt", gp, "--refine-store", "f8"},
	} {
		if err := run(args, &out, &errb); err == nil {
			t.Errorf("run(%q) gave no error", args)
		}
	}
}

func TestLoopFlags(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"--out", t.TempDir(), "--arms", "none,holdout"},
		{"--out", t.TempDir(), "--arms", "epsilon,greedy"},
		{"--out", t.TempDir(), "--preset", "nope"},
		{"--out", t.TempDir(), "--warmup", "1"},
		{"--out", t.TempDir(), "extra"},
	} {
		var stdout, stderr bytes.Buffer
		if err := run(append([]string{"loop"}, args...), &stdout, &stderr); err == nil {
			t.Errorf("loop %q: accepted", args)
		}
	}
}
