package main

import (
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/reelrank/reelrank/bench"
)

// benchGPUConfig is what `reelrank bench gpu` measures.
type benchGPUConfig struct {
	requests   []int // batch sizes in requests
	candidates int   // a request's candidates
	reels      int   // catalogue rows of the exact top-k
	dim        int
	k          int
	queries    []int
	rounds     int
	asJSON     bool
	seed       uint64
	// record, when not nil, receives each figure for the bench history:
	// its name (figure/device/precision/requests=N or queries=N) and values.
	record func(name string, p50us, p99us, mcandPerS float64)
}

// cmdBenchGPU runs `reelrank bench gpu`: the GPU backend's figures. The
// measuring is in benchgpu_cuda.go; a build without the cuda tag says so
// and fails.
func cmdBenchGPU(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench gpu", flag.ContinueOnError)
	fs.SetOutput(stderr)
	reqs := fs.String("requests", "1,16,256", "batch sizes, in requests, of the ranker passes")
	cands := fs.Int("candidates", 1000, "candidates a request")
	reels := fs.Int("reels", 1_000_000, "catalogue rows of the exact top-k")
	dim := fs.Int("dim", 128, "dimension of the catalogue's vectors")
	k := fs.Int("k", 1000, "k of the exact top-k")
	queries := fs.String("queries", "1,64", "queries a top-k call")
	rounds := fs.Int("rounds", 50, "timed passes per figure (after a warm-up)")
	asJSON := fs.Bool("json", false, "one JSON object a figure")
	seed := fs.Uint64("seed", 1, "seed of the random model, inputs and catalogue")
	hist := addHistoryFlag(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("bench gpu: unexpected argument %q", fs.Arg(0))
	}
	cfg := benchGPUConfig{candidates: *cands, reels: *reels, dim: *dim, k: *k, rounds: *rounds, asJSON: *asJSON, seed: *seed}
	var err error
	if cfg.requests, err = intList(*reqs); err != nil {
		return fmt.Errorf("bench gpu: --requests: %w", err)
	}
	if cfg.queries, err = intList(*queries); err != nil {
		return fmt.Errorf("bench gpu: --queries: %w", err)
	}
	switch {
	case cfg.candidates < 1 || cfg.candidates > 1<<16:
		return fmt.Errorf("bench gpu: --candidates %d outside 1..65536", cfg.candidates)
	case cfg.reels < 1 || cfg.dim < 1 || cfg.k < 1:
		return fmt.Errorf("bench gpu: --reels, --dim and --k must be positive")
	case cfg.rounds < 1:
		return fmt.Errorf("bench gpu: --rounds must be positive")
	}
	rec := bench.NewRun("gpu")
	settingsOf(fs, &rec)
	cfg.record = func(name string, p50us, p99us, mcandPerS float64) {
		rec.Add(name+"/p50_us", "us", p50us)
		rec.Add(name+"/p99_us", "us", p99us)
		if mcandPerS > 0 {
			rec.Add(name+"/mcand_per_s", "Mcand/s", mcandPerS)
		}
	}
	if err := benchGPU(cfg, stdout, stderr); err != nil {
		return err
	}
	recordRun(hist, rec, stderr)
	return nil
}

// intList reads "1,16,256": positive ints.
func intList(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 1<<20 {
			return nil, fmt.Errorf("%q is not a count from 1 to %d", f, 1<<20)
		}
		out = append(out, n)
	}
	return out, nil
}
