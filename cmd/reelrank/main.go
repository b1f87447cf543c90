// Command reelrank is the reelrank engine's one binary. Subcommands:
//
//	reelrank run                    the main job: check and time the kernels on this machine
//	reelrank cpu                    the CPU and the SIMD path the kernels use
//	reelrank bench kernels          time every kernel (--json for one object a line)
//	reelrank index                  build an IVF-PQ index from a vector file
//	reelrank bench ann              recall and speed of the index over nprobe
//	reelrank simulate               write a synthetic Reels world and its event log
//	reelrank train                  train a model folder on an event log
//	reelrank loop                   serve simulated users with the engine, retrain nightly, report
//	reelrank serve                  serve a model folder over TCP
//	reelrank bench load             open-loop load on a running server
//	reelrank bench compare          two runs of the bench history, with significance
//	reelrank bench plot             SVG charts of the bench history
//	reelrank bench check            a short fixed set against this CPU's baseline
//	reelrank model                  load, promote, roll back a running server's models; status
//	reelrank drift                  the served model's drift from its training
//
// Every subcommand prints a human summary by default and one JSON object per
// result line with --json.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"text/tabwriter"
	"time"

	"github.com/reelrank/reelrank/bench"
	"github.com/reelrank/reelrank/kernels"
)

const usage = `reelrank: the engine that picks the next short video.

usage:
  reelrank run                     check and time every kernel on this machine
  reelrank cpu [--json]            the CPU and the SIMD path in use
  reelrank bench kernels [--json] [--time D] [--seed S]
                                   time every kernel at the SIMD path in use
                                   (cap it with REELRANK_SIMD=generic|avx2|avx512)
  reelrank index --vectors F --out F [--lists N --pq M --bits 4|8 --metric ip|l2
                 --refine-store none|f16|f32 --opq --residual --limit N --json]
                                   build an IVF-PQ index from .fvecs/.bvecs/IDX
  reelrank bench ann --base F --query F --gt F --metric ip|l2 --k K --nprobe LIST
                 [--refine R --index FILE --queries N --lists N --pq M --bits B --json]
                                   recall, QPS (1 thread and batch), p50/p99, bytes/vector
  reelrank simulate --out DIR [--users N --reels N --days N --seed S --threads N --json]
                                   write a synthetic Reels world (users, authors, reels,
                                   embeddings, the oracle) and its event log DIR/events.jsonl
  reelrank train --events LOG --out DIR [--catalogue CAT | --world W] [--json ...]
                                   train the towers and the ranker on any event log (a file,
                                   a served folder's segments); write a model folder
  reelrank loop --out DIR [--days N --users N --reels N --arms LIST --threads N --json]
                                   the learning loop: the simulator's users served by the
                                   engine, retrained every night, arms side by side; report
                                   DIR/report.md with SVG charts and DIR/report.json
  reelrank serve [--bundle DIR] [--addr A] [--metrics A] [--token T --admin-token T]
                 [--holdout P --canary-share P --promote-after N ...]
                 [--device cpu|cuda|auto --batch-wait D]
                                   serve a model folder (default: the embedded world)
  reelrank bench load --addr A --qps LIST --duration D
                                   open-loop load on a running server
  reelrank bench gpu [--json --requests LIST --reels N --k K]
                                   the GPU backend (the cuda build, make build-cuda):
                                   ranker batches f32/bf16, exact top-k, against the CPU
  reelrank bench ops --addr A --candidate DIR [--qps 200 --broken-share P --drift-requests N]
                                   the operations figures on a running server: a load and
                                   promotion under load, a broken canary's rollback, drift
  reelrank bench compare [--history F --metric M --threshold 5% --alpha 0.05] A B
                                   the change of each metric between two runs of the bench
                                   history (last, prev, last~N, a run index or a commit
                                   prefix), Mann–Whitney U significance; exits 2 on a regression
                                   every bench command appends its run to the bench history,
                                   --history F (default bench/history.jsonl in the checkout,
                                   "" for none); kernels, ann and load take --count N for samples
  reelrank bench plot --out DIR [--history F]
                                   SVG charts of the history: p99 over commits, recall against
                                   QPS, latency percentiles against offered load
  reelrank bench import --engine NAME [--base SET --history F] FILE
                                   a peer's recall and QPS (JSON lines with bench ann --json's
                                   keys, nprobe its search knob) as an ann run of that engine,
                                   drawn by bench plot beside ours
  reelrank bench check [--count 6 --time 100ms --threshold 10% --update]
                                   a short fixed set against bench/baseline/<cpu>.jsonl
                                   (make bench-check); records the baseline when there is none
  reelrank model load|promote|rollback|shares|status --addr A [--bundle DIR --share P --json]
                                   change a running server's models: canary, promotion,
                                   rollback, A/B shares with a popularity holdout, status
  reelrank calibrate [--out calibration.json --bundle DIR --quick]
                                   measure this machine (kernels, the index over nprobe on
                                   two generated catalogues, the ranker, Recommend on a served
                                   model, the wire's cost a request) in under 2 minutes
  reelrank plan --reels N --qps Q --p99 MS --recall R [--new-reels-per-day N --gpu
                --calibration F --json --report DIR --emit k8s DIR]
                                   shards, replicas, cores, memory and GPUs for a catalogue
                                   and a load, with the arithmetic; Kubernetes manifests
  reelrank drift --addr A [--top N --json]
                                   the served model's drift from its training, worst first
`

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "reelrank:", err)
		}
		os.Exit(2)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	switch args[0] {
	case "run":
		return cmdRun(args[1:], stdout, stderr)
	case "cpu":
		return cmdCPU(args[1:], stdout, stderr)
	case "index":
		return cmdIndex(args[1:], stdout, stderr)
	case "serve":
		return cmdServe(args[1:], stdout, stderr)
	case "train":
		return cmdTrain(args[1:], stdout, stderr)
	case "simulate":
		return cmdSimulate(args[1:], stdout, stderr)
	case "loop":
		return cmdLoop(args[1:], stdout, stderr)
	case "model":
		return cmdModel(args[1:], stdout, stderr)
	case "drift":
		return cmdDrift(args[1:], stdout, stderr)
	case "calibrate":
		return cmdCalibrate(args[1:], stdout, stderr)
	case "plan":
		return cmdPlan(args[1:], stdout, stderr)
	case "bench":
		if len(args) >= 2 {
			switch args[1] {
			case "kernels":
				return cmdBenchKernels(args[2:], stdout, stderr)
			case "ann":
				return cmdBenchANN(args[2:], stdout, stderr)
			case "load":
				return cmdBenchLoad(args[2:], stdout, stderr)
			case "ops":
				return cmdBenchOps(args[2:], stdout, stderr)
			case "gpu":
				return cmdBenchGPU(args[2:], stdout, stderr)
			case "compare":
				return cmdBenchCompare(args[2:], stdout, stderr)
			case "plot":
				return cmdBenchPlot(args[2:], stdout, stderr)
			case "check":
				return cmdBenchCheck(args[2:], stdout, stderr)
			case "import":
				return cmdBenchImport(args[2:], stdout, stderr)
			}
		}
		fmt.Fprint(stderr, usage)
		return errors.New("bench: want a target: kernels, ann, load, ops, gpu, compare, plot, check or import")
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

type cpuInfo struct {
	CPU    string `json:"cpu"`
	SIMD   string `json:"simd"`
	Detail string `json:"detail"`
	Cores  int    `json:"cores"`
	Go     string `json:"go"`
}

func currentCPU() cpuInfo {
	return cpuInfo{
		CPU: kernels.CPUName(), SIMD: kernels.SIMD().String(), Detail: kernels.Describe(),
		Cores: runtime.NumCPU(), Go: runtime.Version(),
	}
}

func cmdCPU(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("cpu", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print one JSON object")
	if err := fs.Parse(args); err != nil {
		return err
	}
	info := currentCPU()
	if *asJSON {
		return json.NewEncoder(stdout).Encode(info)
	}
	fmt.Fprintf(stdout, "cpu:   %s, %d cores\nsimd:  %s\ngo:    %s\n", info.CPU, info.Cores, info.Detail, info.Go)
	return nil
}

func cmdBenchKernels(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench kernels", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "one JSON object per figure")
	budget := fs.Duration("time", 300*time.Millisecond, "time spent on each kernel")
	seed := fs.Uint64("seed", 1, "seed of the random inputs")
	count := fs.Int("count", 1, "repetitions (each kernel's figures of all of them are the history's samples; the table shows the last)")
	hist := addHistoryFlag(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *budget <= 0 {
		return fmt.Errorf("bench kernels: --time must be positive, got %v", *budget)
	}
	if *count < 1 {
		return fmt.Errorf("bench kernels: --count must be at least 1, got %d", *count)
	}
	rec := bench.NewRun("kernels")
	settingsOf(fs, &rec)
	err := benchKernels(stdout, stderr, *asJSON, *budget, *seed, *count, &rec)
	if err == nil {
		recordRun(hist, rec, stderr)
	}
	return err
}

func benchKernels(stdout, stderr io.Writer, asJSON bool, budget time.Duration, seed uint64, count int, rec *bench.Run) error {
	cases := bench.KernelCases()
	if !asJSON {
		info := currentCPU()
		fmt.Fprintf(stdout, "%s, simd %s\n", info.CPU, info.Detail)
	}
	fmt.Fprintf(stderr, "timing %d kernels, %v each...\n", len(cases), budget)
	var figs []bench.Figure
	var reps [][]bench.Figure
	var err error
	for i := range count {
		if figs, err = bench.RunKernels(cases, budget, seed+uint64(i)); err != nil {
			break
		}
		reps = append(reps, figs)
	}
	if rec != nil {
		rec.AddKernelFigures(reps)
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		for _, f := range figs {
			if e := enc.Encode(f); e != nil {
				return e
			}
		}
		return err
	}
	tw := tabwriter.NewWriter(stdout, 2, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "kernel\tshape\tsimd\tns/op\tthroughput\t\t")
	for _, f := range figs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.1f\t%.2f\t%s\t\n", f.Kernel, f.Shape, f.SIMD, f.NsPerOp, f.Value, f.Unit)
	}
	if e := tw.Flush(); e != nil {
		return e
	}
	return err
}

func cmdRun(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	budget := fs.Duration("time", 300*time.Millisecond, "time spent on each kernel")
	if err := fs.Parse(args); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "reelrank: every kernel is checked against its oracle, then timed on this machine.")
	if err := benchKernels(stdout, stderr, false, *budget, 1, 1, nil); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nCompare paths: REELRANK_SIMD=generic %s bench kernels (or avx2).\n", os.Args[0])
	return nil
}

// startCPUProfile writes a CPU profile of the rest of the command to path
// (nothing when path is empty); stop ends it and closes the file.
func startCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
