package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/reelrank/reelrank/bench"
	"github.com/reelrank/reelrank/engine"
	"github.com/reelrank/reelrank/features"
	"github.com/reelrank/reelrank/modeldir"
	"github.com/reelrank/reelrank/plan"
	"github.com/reelrank/reelrank/server"
)

// cmdCalibrate runs `reelrank calibrate`: it measures this machine's rates
// and writes the calibration file `reelrank plan` reads.
func cmdCalibrate(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("calibrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "calibration.json", "calibration file to write")
	dir := fs.String("bundle", "", "served model folder whose Recommend is measured (default: the embedded default world, built into the cache once)")
	cache := fs.String("cache", "", "cache folder of the embedded default (default $REELRANK_CACHE or the user cache folder)")
	requests := fs.Int("requests", 2000, "Recommend requests timed on the served model")
	k := fs.Int("k", 1000, "candidates the index recalls a request, as serve's --k")
	nprobe := fs.Int("nprobe", 0, "lists a request probes, as serve's --nprobe (0: the engine's default)")
	quick := fs.Bool("quick", false, "smaller generated catalogues (20,000 and 60,000 reels) and shorter timings, for a smoke test")
	seed := fs.Uint64("seed", 1, "seed of the generated catalogues and the requests")
	isolate := fs.Bool("isolate", true, "measure the served latency on a `reelrank serve` process of its own (false: in this process)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("calibrate: unexpected argument %q", fs.Arg(0))
	}
	if *requests < 50 {
		return fmt.Errorf("calibrate: --requests %d, want at least 50", *requests)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	logf := func(format string, args ...any) { fmt.Fprintf(stderr, "reelrank: "+format+"\n", args...) }
	cfg := bench.CalibrateConfig{Seed: *seed}
	if *quick {
		cfg.Sizes = []int{20_000, 60_000}
		cfg.Budget = 150 * time.Millisecond
		cfg.Queries = 40
	}
	if *dir == "" {
		d, err := ensureDefault(ctx, *cache, logf)
		if err != nil {
			return err
		}
		*dir = d
	}
	start := time.Now()
	cal, err := bench.Calibrate(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "calibrate: Recommend on %s\n", *dir)
	// 3,000 at about 90/s: the p99 is the 30th slowest, steadier than the
	// 15th of 1,500 (one collection's stall moved it by half).
	served, loaded := 3000, 10*time.Second
	if *quick {
		served, loaded = 300, time.Second
	}
	if err := calibrateEngine(ctx, cal, *dir, *k, *nprobe, *requests, served, loaded, *isolate, *seed, logf); err != nil {
		return err
	}
	if err := calibrateGPU(cal, stderr); err != nil {
		return err
	}
	cal.Seconds = time.Since(start).Seconds()
	if err := cal.Validate(); err != nil {
		return fmt.Errorf("calibrate: %w", err)
	}
	if err := cal.Save(*out); err != nil {
		return err
	}
	r := &cal.Request
	fmt.Fprintf(stdout, "calibrated %s (%d cores, %s) in %.0f s: wrote %s\n", cal.Machine.CPU, cal.Machine.Cores, cal.Machine.SIMD, cal.Seconds, *out)
	fmt.Fprintf(stdout, "  kernels: fast-scan %.2f G codes/s, GEMM %.1f GFLOP/s, memory %.1f GB/s (one core)\n",
		cal.Kernels.ScanCodesPerSec/1e9, cal.Kernels.GemmGFLOPS, cal.Kernels.MemBandwidthGBps)
	for _, p := range cal.ANN {
		fmt.Fprintf(stdout, "  index %7d reels, nprobe %4d/%d: recall@%d %.3f, %6.0f queries/s a core, p99 %.2f ms\n",
			p.Reels, p.Nprobe, p.Lists, p.K, p.Recall, p.QPS, p.P99Us/1e3)
	}
	for _, b := range cal.Build {
		fmt.Fprintf(stdout, "  build %d reels in %.1f s on %d cores; adds %.0f reels/s a core\n", b.Reels, b.Seconds, b.Threads, b.AddPerSec)
	}
	fmt.Fprintf(stdout, "  ranker: %.2f M candidates/s a core (f32), %.2f M (bf16)\n", cal.Ranker.CandidatesPerSec/1e6, cal.Ranker.BF16PerSec/1e6)
	fmt.Fprintf(stdout, "  Recommend on %d reels (k %d, nprobe %d of %d): %.0f µs mean (features %.0f, tower %.0f, ann %.0f, rank %.0f over %.0f, postrank %.0f); feature lookups %.2f M/s\n",
		r.Reels, r.K, r.Nprobe, r.Lists, r.TotalUs, r.FeaturesUs, r.TowerUs, r.ANNUs, r.RankUs, r.Ranked, r.PostrankUs, r.FeatureLookupsPerSec/1e6)
	fmt.Fprintf(stdout, "  at saturation: %.0f µs of a core a request (%.2fx one at a time)\n", r.SaturatedUs, r.SaturatedUs/r.TotalUs)
	if r.ServedSaturationQPS > 0 {
		fmt.Fprintf(stdout, "  the server carries at most %.0f requests/s (%d cores: %.0f µs of a core a request, the wire and the client's share included)\n",
			r.ServedSaturationQPS, cal.Machine.Cores, float64(cal.Machine.Cores)/r.ServedSaturationQPS*1e6)
	}
	if n := len(r.ServedUs); n > 0 {
		fmt.Fprintf(stdout, "  through the server at %.0f/s: p50 %.2f ms, p99 %.2f ms over %d requests\n", r.ServedRate,
			r.ServedUs[n/2]/1e3, r.ServedUs[min(n-1, n*99/100)]/1e3, n)
	}
	if r.LoadedRate > 0 {
		fmt.Fprintf(stdout, "  through the server at %.0f/s (half the most it carries): p99 %.2f ms\n", r.LoadedRate, r.LoadedP99Us/1e3)
	}
	fmt.Fprintf(stdout, "  wire: %.0f µs of CPU a request, %.0f µs a round trip; merge of 4 shards %.1f µs\n", cal.Server.OverheadUs, cal.Server.RoundTripUs, cal.Server.MergeUs)
	if g := cal.GPU; g != nil {
		fmt.Fprintf(stdout, "  GPU %s: ranker %.0f M candidates/s (f32), %.0f M (bf16), 256 requests a pass\n", g.Name, g.CandidatesPerSec/1e6, g.BF16PerSec/1e6)
	}
	fmt.Fprintf(stdout, "  memory: %.0f B a user, %.0f B a reel (feature store), model %.1f MiB\n", cal.Memory.BytesPerUser, cal.Memory.BytesPerReel, float64(cal.Memory.ModelBytes)/(1<<20))
	return nil
}

// heapNow is the live heap after a collection.
func heapNow() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// calibrateEngine times the engine's Recommend on a copy of the served
// model folder dir, one request at a time, and the memory of its state.
func calibrateEngine(ctx context.Context, cal *plan.Calibration, dir string, k, nprobe, requests, served int, loaded time.Duration, isolate bool, seed uint64, logf func(string, ...any)) error {
	tmp, err := os.MkdirTemp("", "reelrank-calibrate-")
	if err != nil {
		return fmt.Errorf("calibrate: %w", err)
	}
	defer os.RemoveAll(tmp)
	work := filepath.Join(tmp, "model")
	if err := copyModelDir(dir, work); err != nil {
		return err
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	cal.Memory.BaseBytes = int64(ms.Sys)
	h0 := heapNow()
	v, err := modeldir.Open(ctx, work, modeldir.Options{})
	if err != nil {
		return fmt.Errorf("calibrate: %w", err)
	}
	cal.Memory.ModelBytes = max(0, heapNow()-h0)
	h1 := heapNow()
	store, err := v.LoadSnapshot()
	if err != nil {
		v.Close()
		return fmt.Errorf("calibrate: %w", err)
	}
	storeBytes := heapNow() - h1
	st := store.Stats()
	perReel, err := reelBytes(store.Config(), 20_000, seed)
	if err != nil {
		v.Close()
		return err
	}
	cal.Memory.BytesPerReel = perReel
	cal.Memory.BytesPerUser = max(1, (float64(storeBytes)-perReel*float64(st.Reels))/float64(max(st.Users, 1)))
	store = nil
	v.Close()

	quiet := func(string, ...any) {}
	e, keeper, err := openServing(ctx, work, engine.Config{K: k, Nprobe: nprobe, CheckpointInterval: -1}, "auto", quiet)
	if err != nil {
		return fmt.Errorf("calibrate: %w", err)
	}
	closed := false
	defer func() {
		if !closed {
			keeper.close()
			e.Close()
		}
	}()
	m := e.Model()
	est := e.Stats()
	users := max(est.Users, 1)
	rng := rand.New(rand.NewPCG(seed, 99))
	var sum engine.Timings
	var ranked float64
	totals := make([]float64, 0, requests)
	var out engine.Response
	for i := range requests + requests/10 {
		req := engine.RecommendRequest{User: 1 + rng.Int64N(int64(users)), N: 20}
		if err := e.RecommendInto(ctx, &req, &out); err != nil {
			return fmt.Errorf("calibrate: recommend: %w", err)
		}
		if i < requests/10 {
			continue // warm-up
		}
		t := out.Timings
		sum.Features += t.Features
		sum.Tower += t.Tower
		sum.ANN += t.ANN
		sum.Rank += t.Rank
		sum.Postrank += t.Postrank
		sum.Total += t.Total
		ranked += float64(t.Ranked)
		totals = append(totals, float64(t.Total.Nanoseconds())/1e3)
	}
	n := float64(len(totals))
	us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 / n }
	// Every sample, sorted: the p99 of a queue is decided by the top
	// percent of the service times, which a hundred quantiles would
	// reduce to one.
	slices.Sort(totals)
	qs := totals
	ix := m.Index()
	lists := ix.Options().Lists
	np := nprobe
	if np == 0 {
		np = max(1, lists/8)
	}
	cal.Request = plan.Request{Model: m.Version(), Reels: ix.Len(), Users: users, Dim: ix.Options().Dim, Lists: lists, Nprobe: min(np, lists), K: k, N: 20,
		Samples: len(totals), Ranked: ranked / n, FeaturesUs: us(sum.Features), TowerUs: us(sum.Tower), ANNUs: us(sum.ANN),
		RankUs: us(sum.Rank), PostrankUs: us(sum.Postrank), TotalUs: us(sum.Total), Quantiles: qs}
	if sum.Features > 0 {
		cal.Request.FeatureLookupsPerSec = ranked / sum.Features.Seconds()
	}
	// At saturation: every core busy, with the collector and the cores'
	// contention for memory that one request at a time does not see.
	sat, err := saturate(ctx, e, users, seed, 3*time.Second)
	if err != nil {
		return err
	}
	cal.Request.SaturatedUs = sat
	// Through the server, as a client sees it, at an eighth of what the
	// cores can carry: the base latency the plan's queue adds waits to. A
	// `reelrank serve` of its own, as in production (and as `bench load`
	// meets it), unless isolate is off (the tests).
	closed = true
	keeper.close()
	e.Close()
	var addr string
	if isolate {
		a, stop, err := serveChild(ctx, work, k, nprobe)
		if err != nil {
			return err
		}
		defer stop()
		addr = a
	} else {
		e2, keeper2, err := openServing(ctx, work, engine.Config{K: k, Nprobe: nprobe, CheckpointInterval: -1}, "auto", quiet)
		if err != nil {
			return fmt.Errorf("calibrate: %w", err)
		}
		defer keeper2.close()
		defer e2.Close()
		srv, err := server.New(server.Config{Addr: "127.0.0.1:0"}, server.EngineHandlerWith(e2, server.EngineOptions{}))
		if err != nil {
			return fmt.Errorf("calibrate: %w", err)
		}
		errc := make(chan error, 1)
		go func() { errc <- srv.ListenAndServe() }()
		defer srv.Close()
		if err := waitListening(ctx, srv, errc); err != nil {
			return fmt.Errorf("calibrate: %w", err)
		}
		addr = srv.Addr().String()
	}
	runtime.GC()
	rate := float64(runtime.GOMAXPROCS(0)) / (sat + cal.Server.OverheadUs) * 1e6 / 8
	lc := bench.LoadConfig{Addr: addr, Users: int64(users), Reels: int64(max(ix.Len(), 1)), N: 20, Seed: seed,
		Clock: func() time.Time { return time.Time{} }}
	lat, err := bench.ServedLatency(ctx, lc, rate, served/8, served)
	if err != nil {
		return fmt.Errorf("calibrate: %w", err)
	}
	cal.Request.ServedUs, cal.Request.ServedRate = lat, rate
	// The most it carries: eight requests in flight a core, closed loop.
	thr, err := bench.ServedSaturation(ctx, lc, 8*runtime.GOMAXPROCS(0), 4*time.Second)
	if err != nil {
		return fmt.Errorf("calibrate: %w", err)
	}
	cal.Request.ServedSaturationQPS = thr
	// A loaded point, open loop at half of that for loaded seconds (a
	// second's warm-up first): the p99 the plan fits the queue's
	// variability to.
	mid := thr / 2
	lat, err = bench.ServedLatency(ctx, lc, mid, int(mid), max(100, int(mid*loaded.Seconds())))
	if err != nil {
		return fmt.Errorf("calibrate: %w", err)
	}
	cal.Request.LoadedRate, cal.Request.LoadedP99Us = mid, lat[len(lat)*99/100]
	return nil
}

// saturate runs Recommends from two goroutines a core for d and returns
// the cores' time a request took: cores × d over the requests served.
func saturate(ctx context.Context, e *engine.Engine, users int, seed uint64, d time.Duration) (float64, error) {
	workers := 2 * runtime.GOMAXPROCS(0)
	counts := make([]int, workers)
	errs := make([]error, workers)
	stop := time.Now().Add(d)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(seed, uint64(1000+w)))
			var out engine.Response
			for time.Now().Before(stop) {
				req := engine.RecommendRequest{User: 1 + rng.Int64N(int64(users)), N: 20}
				if err := e.RecommendInto(ctx, &req, &out); err != nil {
					errs[w] = err
					return
				}
				counts[w]++
			}
		})
	}
	wg.Wait()
	el := time.Since(start)
	total := 0
	for w := range workers {
		if errs[w] != nil {
			return 0, fmt.Errorf("calibrate: recommend at saturation: %w", errs[w])
		}
		total += counts[w]
	}
	if total == 0 {
		return 0, errors.New("calibrate: no request served at saturation")
	}
	return float64(runtime.GOMAXPROCS(0)) * el.Seconds() * 1e6 / float64(total), nil
}

// reelBytes is the feature store's heap a reel, measured over n generated
// reels in a store of the served one's configuration.
func reelBytes(cfg features.Config, n int, seed uint64) (float64, error) {
	s, err := features.NewStore(cfg)
	if err != nil {
		return 0, fmt.Errorf("calibrate: %w", err)
	}
	rng := rand.New(rand.NewPCG(seed, 5))
	dim := s.Spec().EmbedDim
	h0 := heapNow()
	for i := range n {
		emb := make([]float32, dim)
		for j := range emb {
			emb[j] = float32(rng.NormFloat64())
		}
		r := features.Reel{ID: int64(1 + i), Author: int64(1 + i%500), Upload: 1_700_000_000_000, Duration: 20, Embedding: emb, Category: 0}
		if err := s.PutReel(r); err != nil {
			return 0, fmt.Errorf("calibrate: reel memory: %w", err)
		}
	}
	b := float64(heapNow()-h0) / float64(n)
	runtime.KeepAlive(s)
	return max(b, 1), nil
}

// copyModelDir copies a served model folder's files, not its served state,
// so that measuring it changes nothing of the original.
func copyModelDir(src, dst string) error {
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		if rel == modeldir.StateFolder {
			return filepath.SkipDir
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil {
		return fmt.Errorf("calibrate: copy %s: %w", src, err)
	}
	return nil
}

// serveChild starts `reelrank serve` (this executable) over dir on a
// loopback port and returns its address and a stop that kills it.
func serveChild(ctx context.Context, dir string, k, nprobe int) (string, func(), error) {
	exe, err := os.Executable()
	if err != nil {
		return "", nil, fmt.Errorf("calibrate: %w", err)
	}
	cmd := exec.CommandContext(ctx, exe, "serve", "--bundle", dir, "--addr", "127.0.0.1:0", "--metrics", "", "--sample=false",
		"--checkpoint-every", "-1s", "--k", strconv.Itoa(k), "--nprobe", strconv.Itoa(nprobe))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, fmt.Errorf("calibrate: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("calibrate: start a server: %w", err)
	}
	stop := func() {
		cmd.Process.Kill()
		cmd.Wait()
	}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if _, rest, ok := strings.Cut(sc.Text(), " reels on "); ok {
			addr, _, _ := strings.Cut(rest, " ")
			go func() {
				for sc.Scan() {
				}
			}()
			return addr, stop, nil
		}
	}
	stop()
	return "", nil, fmt.Errorf("calibrate: the server did not start: %s", strings.TrimSpace(stderr.String()))
}
