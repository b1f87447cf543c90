package bench

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reelrank/reelrank/ann"
	"github.com/reelrank/reelrank/client"
	"github.com/reelrank/reelrank/features"
	"github.com/reelrank/reelrank/kernels"
	"github.com/reelrank/reelrank/plan"
	"github.com/reelrank/reelrank/ranker"
	"github.com/reelrank/reelrank/server"
	"github.com/reelrank/reelrank/wire"
)

// CalibrateConfig sizes `reelrank calibrate`'s measurements.
type CalibrateConfig struct {
	// Sizes are the generated catalogues the index is measured on (default
	// 100,000 and 1,000,000 reels); at least two.
	Sizes []int
	Dim   int // vector dimension (default 64, the towers')
	K     int // recall@K (default 1000)
	// Queries a sweep point (default 200).
	Queries int
	// Budget is the time each kernel and rate is timed for (default 400 ms).
	Budget time.Duration
	Seed   uint64
}

func (c *CalibrateConfig) fill() error {
	if len(c.Sizes) == 0 {
		c.Sizes = []int{100_000, 1_000_000}
	}
	if len(c.Sizes) < 2 {
		return errors.New("bench: calibrate: want at least two catalogue sizes")
	}
	for _, n := range c.Sizes {
		if n < 4096 || n > 50_000_000 {
			return fmt.Errorf("bench: calibrate: catalogue of %d reels, want 4096..50M", n)
		}
	}
	if c.Dim == 0 {
		c.Dim = 64
	}
	if c.K == 0 {
		c.K = 1000
	}
	if c.Queries == 0 {
		c.Queries = 200
	}
	if c.Budget == 0 {
		c.Budget = 400 * time.Millisecond
	}
	if c.Dim < 8 || c.Dim%2 != 0 || c.K < 1 || c.K > 4096 || c.Queries < 10 || c.Budget <= 0 {
		return fmt.Errorf("bench: calibrate: dim %d (even, >= 8), k %d, queries %d, budget %v", c.Dim, c.K, c.Queries, c.Budget)
	}
	return nil
}

// Calibrate measures the machine-level rates of a Calibration: the
// kernels, the index over nprobe on generated catalogues, its build and add
// rates, the ranker, and the wire's cost a request. The engine's Recommend
// and the memory of the served state are measured by the caller, which has
// a served model (cmd/reelrank's calibrate). progress, when not nil,
// receives a line a step.
func Calibrate(ctx context.Context, cfg CalibrateConfig, progress io.Writer) (*plan.Calibration, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	say := func(f string, a ...any) {
		if progress != nil {
			fmt.Fprintf(progress, "calibrate: "+f+"\n", a...)
		}
	}
	start := time.Now()
	c := &plan.Calibration{Version: plan.CalibrationVersion, Taken: start.UTC(), Machine: ThisMachine()}
	say("kernels")
	if err := calibrateKernels(c, cfg); err != nil {
		return nil, err
	}
	for _, n := range cfg.Sizes {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		say("index over %d generated reels", n)
		pts, b, err := calibrateANN(n, cfg)
		if err != nil {
			return nil, err
		}
		c.ANN = append(c.ANN, pts...)
		c.Build = append(c.Build, b)
	}
	say("ranker")
	if err := calibrateRanker(c, cfg); err != nil {
		return nil, err
	}
	say("the wire's cost a request")
	if err := calibrateServer(ctx, c, cfg); err != nil {
		return nil, err
	}
	c.Seconds = time.Since(start).Seconds()
	return c, nil
}

// ThisMachine names the machine the process runs on.
func ThisMachine() plan.Machine {
	m := plan.Machine{CPU: kernels.CPUName(), Cores: runtime.GOMAXPROCS(0), SIMD: kernels.SIMD().String(),
		Go: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH}
	m.Host, _ = os.Hostname()
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) >= 2 && f[0] == "MemTotal:" {
				if kb, err := strconv.ParseInt(f[1], 10, 64); err == nil {
					m.MemoryBytes = kb << 10
				}
			}
		}
	}
	return m
}

func calibrateKernels(c *plan.Calibration, cfg CalibrateConfig) error {
	want := map[string]func(f Figure){
		// The kernel's figure counts 4-bit sub-codes (M = 64 a vector).
		"FastScan4":  func(f Figure) { c.Kernels.ScanCodesPerSec = f.Value * 1e9 / 64 },
		"GemmPacked": func(f Figure) { c.Kernels.GemmGFLOPS = f.Value },
	}
	var cases []KernelCase
	for _, k := range KernelCases() {
		if want[k.Kernel] != nil {
			cases = append(cases, k)
		}
	}
	figs, err := RunKernels(cases, cfg.Budget, cfg.Seed)
	if err != nil {
		return err
	}
	for _, f := range figs {
		want[f.Kernel](f)
	}
	// Memory bandwidth: a dot product of two 64 MiB vectors streams
	// 128 MiB from memory a call.
	const n = 16 << 20
	a, b := make([]float32, n), make([]float32, n)
	for i := range a {
		a[i], b[i] = 1, 0.5
	}
	var sink float32
	ns := timeOp(func() { sink += kernels.Dot(a, b) }, cfg.Budget)
	if sink != sink { // keeps the calls
		return errors.New("bench: calibrate: NaN")
	}
	c.Kernels.MemBandwidthGBps = 8 * n / ns
	return nil
}

// genCatalogue draws n reel vectors and nq queries of the shape of the
// reels1m benchmark set (../shared/datasets describes it): 2,000 topics of
// Zipf-like popularity (P(t) ∝ 1/(t+10)), a reel its topic's centre plus
// noise of norm 1.4, normalised and scaled by a log-normal popularity
// (σ 0.25), which makes inner-product search harder than cosine; a query a
// Dirichlet mix of 1 to 3 topics plus noise of norm 1, normalised.
func genCatalogue(n, nq, d int, seed uint64) (base, queries []float32) {
	rng := rand.New(rand.NewPCG(seed, uint64(n)))
	const topics = 2000
	cent := make([]float32, topics*d)
	for i := range cent {
		cent[i] = float32(rng.NormFloat64())
	}
	for t := range topics {
		normalise(cent[t*d : (t+1)*d])
	}
	cum := make([]float64, topics)
	var sum float64
	for t := range topics {
		sum += 1 / (float64(t) + 10)
		cum[t] = sum
	}
	topic := func() int {
		i, _ := slices.BinarySearch(cum, rng.Float64()*sum)
		return min(i, topics-1)
	}
	sd := 1 / math.Sqrt(float64(d))
	base = make([]float32, n*d)
	for i := range n {
		v, t := base[i*d:(i+1)*d], topic()
		for j := range v {
			v[j] = cent[t*d+j] + float32(1.4*sd*rng.NormFloat64())
		}
		normalise(v)
		s := float32(math.Exp(0.25 * rng.NormFloat64()))
		for j := range v {
			v[j] *= s
		}
	}
	queries = make([]float32, nq*d)
	for i := range nq {
		q := queries[i*d : (i+1)*d]
		m := 1 + rng.IntN(3)
		var ws float64
		w := make([]float64, m)
		for k := range w {
			w[k] = rng.ExpFloat64() // Dirichlet(1, ..., 1), normalised below
			ws += w[k]
		}
		for k := range w {
			t := topic()
			for j := range q {
				q[j] += float32(w[k] / ws * float64(cent[t*d+j]))
			}
		}
		for j := range q {
			q[j] += float32(sd * rng.NormFloat64())
		}
		normalise(q)
	}
	return base, queries
}

func normalise(v []float32) {
	var s float64
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	f := float32(1 / math.Sqrt(s))
	for i := range v {
		v[i] *= f
	}
}

// minHeap keeps the k best (largest) scores.
type minHeap []kernels.Result

func (h minHeap) Len() int           { return len(h) }
func (h minHeap) Less(i, j int) bool { return h[i].Score < h[j].Score }
func (h minHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *minHeap) Push(x any)        { *h = append(*h, x.(kernels.Result)) }
func (h *minHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// exactTopK is the exact inner-product top k of each query, on every core.
func exactTopK(base, queries []float32, d, k int) [][]int64 {
	nq := len(queries) / d
	n := len(base) / d
	out := make([][]int64, nq)
	var wg sync.WaitGroup
	var next atomic.Int64
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			scores := make([]float32, n)
			for {
				q := int(next.Add(1) - 1)
				if q >= nq {
					return
				}
				kernels.DotBatch(scores, queries[q*d:(q+1)*d], base)
				h := make(minHeap, 0, k)
				for i, s := range scores {
					if len(h) < k {
						heap.Push(&h, kernels.Result{ID: int64(i), Score: s})
					} else if s > h[0].Score {
						h[0] = kernels.Result{ID: int64(i), Score: s}
						heap.Fix(&h, 0)
					}
				}
				ids := make([]int64, len(h))
				for i, r := range h {
					ids[i] = r.ID
				}
				out[q] = ids
			}
		})
	}
	wg.Wait()
	return out
}

// calibrateANN builds the served index layout over n generated reels and
// sweeps nprobe on one core.
func calibrateANN(n int, cfg CalibrateConfig) ([]plan.ANNPoint, plan.BuildPoint, error) {
	d := cfg.Dim
	addN := min(20_000, n/5)
	base, queries := genCatalogue(n+addN, cfg.Queries, d, cfg.Seed)
	truth := exactTopK(base[:n*d], queries, d, cfg.K)
	opt := ann.Options{Metric: kernels.InnerProduct, Bits: 4, Refine: ann.RefineF16, Seed: 1, Lists: ann.DefaultLists(n)}
	t0 := time.Now()
	ix, err := ann.Build(ann.Vectors{Data: base[:n*d], Dim: d}, nil, opt)
	if err != nil {
		return nil, plan.BuildPoint{}, fmt.Errorf("bench: calibrate: build %d: %w", n, err)
	}
	bp := plan.BuildPoint{Reels: n, Threads: runtime.GOMAXPROCS(0), Seconds: time.Since(t0).Seconds()}
	bpr := ix.Stats().BytesPerVector()
	lists := ix.Options().Lists
	var pts []plan.ANNPoint
	for _, div := range []int{128, 64, 32, 16, 8, 4, 2} {
		np := max(1, lists/div)
		if len(pts) > 0 && pts[len(pts)-1].Nprobe == np {
			continue
		}
		so := ann.SearchOptions{K: cfg.K, NProbe: np}
		lat := make([]float64, 0, cfg.Queries)
		var hit, total int
		for q := range cfg.Queries {
			t := time.Now()
			res, err := ix.Search(queries[q*d:(q+1)*d], so)
			if err != nil {
				return nil, bp, fmt.Errorf("bench: calibrate: search: %w", err)
			}
			lat = append(lat, float64(time.Since(t).Nanoseconds())/1e3)
			want := make(map[int64]bool, len(truth[q]))
			for _, id := range truth[q] {
				want[id] = true
			}
			for _, r := range res {
				if want[r.ID] {
					hit++
				}
			}
			total += len(truth[q])
		}
		slices.Sort(lat)
		var sum float64
		for _, v := range lat {
			sum += v
		}
		mean := sum / float64(len(lat))
		pts = append(pts, plan.ANNPoint{Reels: n, Dim: d, Lists: lists, Nprobe: np, K: cfg.K, Recall: float64(hit) / float64(total),
			QPS: 1e6 / mean, MeanUs: mean, P99Us: lat[min(len(lat)-1, len(lat)*99/100)], ScannedCodes: float64(n) * float64(np) / float64(lists),
			BytesPerReel: bpr})
	}
	// Adds to the trained index on one core.
	ids := make([]int64, addN)
	for i := range ids {
		ids[i] = int64(n + i)
	}
	t0 = time.Now()
	if err := ix.AddThreads(ids, base[n*d:], 1); err != nil {
		return nil, bp, fmt.Errorf("bench: calibrate: add: %w", err)
	}
	bp.AddPerSec = float64(addN) / time.Since(t0).Seconds()
	return pts, bp, nil
}

// calibrateRanker times the serving ranker (256-256-128, five heads) over
// batches of 1,000 candidates on one goroutine, in f32 and bf16.
func calibrateRanker(c *plan.Calibration, cfg CalibrateConfig) error {
	st, err := features.NewStore(features.Config{})
	if err != nil {
		return fmt.Errorf("bench: calibrate: %w", err)
	}
	sp := st.Spec()
	const n = 1000
	rng := rand.New(rand.NewPCG(cfg.Seed, 7))
	vec := func(k int) []float32 {
		v := make([]float32, k)
		for i := range v {
			v[i] = float32(rng.NormFloat64())
		}
		return v
	}
	in := ranker.Inputs{User: vec(len(sp.User)), Reel: vec(n * len(sp.Reel)), Cross: vec(n * len(sp.Cross)), Emb: vec(n * sp.EmbedDim), N: n}
	hidden := []int{256, 256, 128}
	c.Ranker = plan.Ranker{Hidden: hidden, Batch: n}
	for _, prec := range []ranker.Precision{ranker.F32, ranker.BF16} {
		m, err := ranker.NewMultitask(sp, ranker.Config{Hidden: hidden, Precision: prec}, rng)
		if err != nil {
			return fmt.Errorf("bench: calibrate: ranker: %w", err)
		}
		s, err := m.NewScorer()
		if err != nil {
			return fmt.Errorf("bench: calibrate: ranker: %w", err)
		}
		var out ranker.Scores
		var serr error
		ns := timeOp(func() {
			if err := s.ScoreInputs(in, &out); err != nil {
				serr = err
			}
		}, cfg.Budget)
		if serr != nil {
			return fmt.Errorf("bench: calibrate: ranker: %w", serr)
		}
		rate := n / ns * 1e9
		if prec == ranker.F32 {
			c.Ranker.CandidatesPerSec = rate
		} else {
			c.Ranker.BF16PerSec = rate
		}
	}
	return nil
}

// cannedHandler answers every Recommend with the same 20 items: the wire's
// and the server's cost alone.
type cannedHandler struct {
	server.Handler
	resp *wire.RecommendResponse
}

func (h cannedHandler) Recommend(context.Context, *wire.RecommendRequest) (*wire.RecommendResponse, error) {
	return h.resp, nil
}

func (h cannedHandler) Info(context.Context) server.Info { return server.Info{} }

func cannedResponse(n int, seed uint64) *wire.RecommendResponse {
	rng := rand.New(rand.NewPCG(seed, 11))
	r := &wire.RecommendResponse{Heads: ranker.DefaultTasks(), ModelVersion: "calibrate", Arm: "control"}
	for i := range n {
		probs := make([]float32, 5)
		for j := range probs {
			probs[j] = rng.Float32()
		}
		r.Items = append(r.Items, wire.Item{Reel: int64(1000 + rng.IntN(1_000_000)), Score: float32(n - i), Probs: probs, Propensity: 1})
	}
	return r
}

// calibrateServer measures a Recommend's round trip through the client and
// the server on loopback with a handler that does nothing: alone, and at
// saturation, where the machine's cores over the rate are its CPU cost.
func calibrateServer(ctx context.Context, c *plan.Calibration, cfg CalibrateConfig) error {
	h := cannedHandler{resp: cannedResponse(20, cfg.Seed)}
	srv, err := server.New(server.Config{Addr: "127.0.0.1:0", MaxInFlight: 256, MaxQueue: -1}, h)
	if err != nil {
		return fmt.Errorf("bench: calibrate: %w", err)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	defer srv.Close()
	for srv.Addr() == nil {
		select {
		case err := <-errc:
			return fmt.Errorf("bench: calibrate: server: %w", err)
		case <-time.After(2 * time.Millisecond):
		}
	}
	cl, err := client.Dial(ctx, srv.Addr().String(), client.Options{})
	if err != nil {
		return fmt.Errorf("bench: calibrate: %w", err)
	}
	defer cl.Close()
	req := &wire.RecommendRequest{User: 1, N: 20}
	var lat []float64
	deadline := time.Now().Add(cfg.Budget)
	for len(lat) < 200 || time.Now().Before(deadline) {
		t := time.Now()
		if _, err := cl.Recommend(ctx, req); err != nil {
			return fmt.Errorf("bench: calibrate: round trip: %w", err)
		}
		lat = append(lat, float64(time.Since(t).Nanoseconds())/1e3)
	}
	slices.Sort(lat)
	c.Server.RoundTripUs = lat[len(lat)/2]
	// Saturation: 8 requests in flight a core.
	var done atomic.Int64
	var wg sync.WaitGroup
	stop := time.Now().Add(3 * cfg.Budget)
	var firstErr atomic.Value
	t0 := time.Now()
	for range 8 * runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for time.Now().Before(stop) {
				if _, err := cl.Recommend(ctx, req); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				done.Add(1)
			}
		})
	}
	wg.Wait()
	if err, ok := firstErr.Load().(error); ok {
		return fmt.Errorf("bench: calibrate: saturation: %w", err)
	}
	rate := float64(done.Load()) / time.Since(t0).Seconds()
	c.Server.OverheadUs = float64(runtime.GOMAXPROCS(0)) / rate * 1e6
	// The merge of 4 shards' answers.
	resps := make([]*wire.RecommendResponse, 4)
	for i := range resps {
		resps[i] = cannedResponse(20, cfg.Seed+uint64(i))
	}
	var merr error
	ns := timeOp(func() {
		if _, err := client.MergeRecommend(resps, 20); err != nil {
			merr = err
		}
	}, cfg.Budget)
	if merr != nil {
		return fmt.Errorf("bench: calibrate: merge: %w", merr)
	}
	c.Server.MergeUs = ns / 1e3
	return nil
}

// ServedLatency offers a running server Recommends of cfg's mix (cfg.Addr,
// cfg.Options, cfg.Users, cfg.Reels, cfg.N, cfg.Recent, cfg.Clock) at rate
// a second, open loop with Poisson gaps, warm requests first whose times
// are dropped (a fresh process's first seconds: heap growth, cold caches, as
// `bench load --warmup` drops them), then n more, and returns those n
// latencies from the intended send time in microseconds, sorted: a
// request's time as a client sees it at a load too light to queue, the base
// a queueing model adds its waits to.
func ServedLatency(ctx context.Context, cfg LoadConfig, rate float64, warm, n int) ([]float64, error) {
	cfg.ScoreFrac, cfg.EventFrac, cfg.Rates = 0, 0, []float64{rate}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if !(rate > 0) || n < 1 || warm < 0 {
		return nil, fmt.Errorf("bench: served latency: rate %v, %d requests after %d warm", rate, n, warm)
	}
	cl, err := client.Dial(ctx, cfg.Addr, cfg.Options)
	if err != nil {
		return nil, fmt.Errorf("bench: served latency: %w", err)
	}
	defer cl.Close()
	g := &mix{cfg: &cfg, rng: rand.New(rand.NewPCG(cfg.Seed, 0x5e7))}
	lat := make([]float64, warm+n)
	errs := make([]error, warm+n)
	var wg sync.WaitGroup
	next := time.Now()
	for i := range warm + n {
		next = next.Add(time.Duration(g.rng.ExpFloat64() / rate * 1e9))
		if d := time.Until(next); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
				wg.Wait()
				return nil, ctx.Err()
			}
		}
		req, intended := g.next(), next
		wg.Go(func() {
			rctx, cancel := context.WithDeadline(ctx, intended.Add(cfg.Timeout))
			defer cancel()
			_, errs[i] = cl.Do(rctx, req)
			lat[i] = float64(time.Since(intended).Nanoseconds()) / 1e3
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("bench: served latency: request %d: %w", i, err)
		}
	}
	lat = lat[warm:]
	slices.Sort(lat)
	return lat, nil
}

// ServedSaturation keeps inFlight Recommends of cfg's mix outstanding on
// a running server for d, closed loop, and returns the answers a second:
// the most the server carries, the client's own work on the same machine
// included, as `bench load` on the same machine meets it.
func ServedSaturation(ctx context.Context, cfg LoadConfig, inFlight int, d time.Duration) (float64, error) {
	cfg.ScoreFrac, cfg.EventFrac, cfg.Rates = 0, 0, []float64{1}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return 0, err
	}
	if inFlight < 1 || d <= 0 {
		return 0, fmt.Errorf("bench: saturation: %d in flight for %v", inFlight, d)
	}
	cl, err := client.Dial(ctx, cfg.Addr, cfg.Options)
	if err != nil {
		return 0, fmt.Errorf("bench: saturation: %w", err)
	}
	defer cl.Close()
	var done atomic.Int64
	errs := make([]error, inFlight)
	var wg sync.WaitGroup
	start := time.Now()
	stop := start.Add(d)
	for w := range inFlight {
		wg.Go(func() {
			g := &mix{cfg: &cfg, rng: rand.New(rand.NewPCG(cfg.Seed, uint64(w)))}
			for time.Now().Before(stop) {
				rctx, cancel := context.WithTimeout(ctx, 10*cfg.Timeout)
				_, err := cl.Do(rctx, g.next())
				cancel()
				if err != nil {
					errs[w] = err
					return
				}
				done.Add(1)
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return 0, fmt.Errorf("bench: saturation: %w", err)
		}
	}
	return float64(done.Load()) / time.Since(start).Seconds(), nil
}
