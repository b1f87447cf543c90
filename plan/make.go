package plan

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// ErrInfeasible is wrapped when no fleet meets the target.
var ErrInfeasible = errors.New("plan: no fleet meets the target")

// heapFactor is the Go heap's peak over its live bytes: the feature store
// and the model live on the heap, the index is mapped from its file and
// counted once. With GOMEMLIMIT set near the replica's memory (as the
// manifests of EmitK8s set it) the collector runs harder instead of
// letting the heap double as GOGC=100 alone would; a quarter is kept for
// the garbage between collections.
const heapFactor = 1.25

// Make sizes a fleet for t from the calibration c.
func Make(c *Calibration, t Target) (*Plan, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if err := t.fill(c); err != nil {
		return nil, err
	}
	m, err := newModel(c, &t)
	if err != nil {
		return nil, err
	}
	p := &Plan{Target: t, Machine: c.Machine.CPU, Cores: c.Machine.Cores, CoresPerReplica: t.CoresPerReplica,
		ANNFitRMS: m.fit.RMS, ProbeBeta: m.curve.Beta}
	if t.GPU {
		g := gpuReference
		if c.GPU != nil {
			g = *c.GPU
		}
		p.GPU = &g
	}
	var best *Option
	var bestShard shard
	var bestQ queue
	for _, s := range shardCandidates(t) {
		o, sh, q := m.evaluate(&t, s, p.GPU)
		p.Considered = append(p.Considered, o)
		if o.Why != "" {
			continue
		}
		if best == nil || cost(o) < cost(*best) {
			oc := o
			best, bestShard, bestQ = &oc, sh, q
		}
	}
	if best == nil {
		why := "every shard count failed"
		if n := len(p.Considered); n > 0 {
			why = p.Considered[n-1].Why
		}
		return p, fmt.Errorf("%w: %s", ErrInfeasible, why)
	}
	p.fill(m, best, bestShard, bestQ)
	return p, nil
}

// cost weighs a GPU as 16 cores (its price is near a 16-core machine's).
func cost(o Option) float64 { return float64(o.Cores) + 16*float64(o.GPUs) }

// shardCandidates are the shard counts weighed: Target.Shards alone when
// set, else 1..64 and a geometric series beyond, up to 65,536 or a shard
// a reel.
func shardCandidates(t Target) []int {
	if t.Shards > 0 {
		return []int{t.Shards}
	}
	var out []int
	for s := 1; s <= 65536 && int64(s) <= t.Reels; {
		out = append(out, s)
		if s < 64 {
			s++
		} else {
			s = int(math.Ceil(float64(s) * 1.125))
		}
	}
	return out
}

// memory is a replica's memory for a shard of reels reels.
func (m *model) memory(t *Target, sh shard) (index, store, total float64) {
	index = sh.reels*m.bytesIndex + sh.lists*float64(m.dim)*4
	// Every shard's feature store holds every reel: a user's features
	// (the history embedding, the categories watched) are made of the
	// reels they watched, wherever those are indexed, and are replicated.
	store = float64(t.Users)*m.cal.Memory.BytesPerUser + float64(t.Reels)*m.cal.Memory.BytesPerReel
	total = float64(m.cal.Memory.BaseBytes) + index + heapFactor*(store+float64(m.cal.Memory.ModelBytes))
	return index, store, total
}

// evaluate sizes the replicas of s shards.
func (m *model) evaluate(t *Target, s int, g *GPU) (Option, shard, queue) {
	o := Option{Shards: s}
	sh := m.shard(t, s)
	_, _, mem := m.memory(t, sh)
	o.MemoryPerReplica = int64(math.Ceil(mem))
	if mem > float64(t.MemoryPerReplica) {
		o.Why = fmt.Sprintf("a replica needs %s, more than %s", gib(mem), gib(float64(t.MemoryPerReplica)))
		return o, sh, queue{}
	}
	qs := math.Pow(0.99, 1/float64(s))
	merge := m.mergeUs(t, s)
	budget := float64(t.P99.Microseconds()) - merge
	if g != nil {
		budget -= float64(GPUBatchWait.Microseconds()) + m.gpuTimeUs(sh, g)
	}
	c := t.CoresPerReplica
	minR := 1
	if t.Replicas > 0 {
		minR = t.Replicas
	} else {
		minR = max(1, int(math.Ceil(t.QPS*sh.serviceUs/1e6/(float64(c)*t.MaxUtilisation))))
	}
	maxR := minR
	if t.Replicas == 0 {
		maxR = minR * 4
	}
	// try sizes the fleet at r replicas a shard and says whether it keeps
	// the target. The p99 falls and the utilisation with it as replicas
	// are added, so the fewest that keep it are found by bisection: tens
	// of quantiles, not thousands, at a billion reels.
	try := func(r int) (Option, queue, bool) {
		o := o
		q := m.queue(c, t.QPS/float64(r), sh)
		p := q.Quantile(qs)
		o.Replicas, o.P99Us = r, p+merge
		if math.IsInf(p, 1) {
			o.P99Us = -1 // saturated; JSON has no infinity
		}
		if g != nil {
			o.P99Us += float64(GPUBatchWait.Microseconds()) + m.gpuTimeUs(sh, g)
		}
		if t.Replicas == 0 && (p > budget || q.Utilisation() > t.MaxUtilisation) {
			return o, q, false
		}
		o.Cores = s * r * c
		if g != nil {
			o.GPUs = s * r * m.gpus(t, sh, g, r)
		}
		return o, q, t.Replicas > 0 || p <= budget
	}
	best, q, ok := try(maxR)
	if ok {
		lo, hi := minR-1, maxR // try(lo) fails or lo is below the range; try(hi) keeps it
		for hi-lo > 1 {
			mid := lo + (hi-lo)/2
			if oo, qq, ok := try(mid); ok {
				hi, best, q = mid, oo, qq
			} else {
				lo = mid
			}
		}
		return best, sh, q
	}
	o = best
	o.Why = fmt.Sprintf("p99 %.2f ms over the target even with %d replicas (a shard's request alone takes %.2f ms at its %.4f quantile)",
		o.P99Us/1e3, maxR, m.queue(c, 1e-9, sh).Quantile(qs)/1e3, qs)
	return o, sh, queue{}
}

// gpuTimeUs is the compute time of a GPU batch holding this request:
// the candidates of the requests that arrive within the batch wait.
func (m *model) gpuTimeUs(sh shard, g *GPU) float64 {
	return sh.ranked / g.BF16PerSec * 1e6
}

// gpus is the GPUs a replica needs for its share of the ranking.
func (m *model) gpus(t *Target, sh shard, g *GPU, r int) int {
	cand := t.QPS / float64(r) * sh.ranked
	return max(1, int(math.Ceil(cand/(g.BF16PerSec*t.MaxUtilisation))))
}

// mergeUs is the front's share: the merge of s shards' answers (measured
// for 4, scaled by the shards) and a network round trip.
func (m *model) mergeUs(t *Target, s int) float64 {
	rtt := 0.0
	if t.NetworkRTT > 0 {
		rtt = float64(t.NetworkRTT.Microseconds())
	}
	if s == 1 {
		return rtt
	}
	return rtt + m.cal.Server.MergeUs*float64(s)/4
}

func gib(b float64) string { return fmt.Sprintf("%.1f GiB", b/(1<<30)) }

func ms(us float64) string {
	if math.IsInf(us, 1) || us < 0 {
		return "saturated"
	}
	return fmt.Sprintf("%.2f ms", us/1e3)
}

// fill writes the chosen option and its arithmetic into p.
func (p *Plan) fill(m *model, o *Option, sh shard, q queue) {
	t := &p.Target
	c := m.cal
	p.Shards, p.ReplicasPerShard = o.Shards, o.Replicas
	p.Replicas = o.Shards * o.Replicas
	p.TotalCores = o.Cores
	p.TotalGPUs = o.GPUs
	if o.Replicas > 0 {
		p.GPUsPerReplica = o.GPUs / p.Replicas
	}
	p.ReelsPerShard = int64(sh.reels)
	p.Lists, p.Nprobe, p.KPerShard, p.RankedShard = int(sh.lists), int(sh.nprobe), sh.k, sh.ranked
	p.ServiceUs = sh.serviceUs
	alone := m.queue(t.CoresPerReplica, 1e-9, sh)
	p.ServiceP99Us = alone.Quantile(0.99)
	p.ShardQuantile = math.Pow(0.99, 1/float64(p.Shards))
	p.ShardP99Us = q.Quantile(p.ShardQuantile)
	if math.IsInf(p.ShardP99Us, 1) {
		p.ShardP99Us = -1 // saturated (Replicas fixed too few)
	}
	p.MergeUs = m.mergeUs(t, p.Shards)
	p.P99Us = o.P99Us
	p.Utilisation = q.Utilisation()
	p.SaturationQPS = float64(t.CoresPerReplica) / sh.serviceUs * 1e6
	p.replicaQueue = m.queue(t.CoresPerReplica, 0, sh)
	idx, store, mem := m.memory(t, sh)
	p.MemoryPerReplica = int64(math.Ceil(mem))
	perShardDay := float64(t.NewReelsPerDay) / float64(p.Shards)
	towerUs := m.rankPerC // a reel's tower pass costs about one ranked candidate
	p.IndexDayCoreS = perShardDay * (m.addUs + towerUs) / 1e6
	p.IndexDayWallS = p.IndexDayCoreS / float64(t.CoresPerReplica)
	d := float64(m.dim)
	mq := d / 2
	for _, l := range []struct {
		name string
		b    float64
	}{
		{"flat float32 (exact)", 4*d + 8},
		{"flat float16 (exact)", 2*d + 8},
		{fmt.Sprintf("IVF-PQ %gx4 fast-scan, no refine", mq), mq/2 + 8},
		{fmt.Sprintf("IVF-PQ %gx4 fast-scan + float16 refine (served)", mq), m.bytesIndex},
		{fmt.Sprintf("IVF-PQ %gx8 + float16 refine", mq), mq + 2*d + 8},
	} {
		p.Layouts = append(p.Layouts, Layout{Name: l.name, BytesPerReel: l.b, ShardBytes: l.b * sh.reels, Used: l.b == m.bytesIndex})
	}
	// The arithmetic.
	add := func(sec, f string, a ...any) { p.Steps = append(p.Steps, Step{sec, fmt.Sprintf(f, a...)}) }
	r := &c.Request
	add("calibration", "machine: %s, %d cores, SIMD %s; calibrated %s in %.0f s", c.Machine.CPU, c.Machine.Cores, c.Machine.SIMD, c.Taken.Format(time.DateOnly), c.Seconds)
	add("calibration", "a request on the served model (%d reels, k %d, nprobe %d of %d lists), one core: features %.0f µs + tower %.0f + ann %.0f + rank %.0f + postrank %.0f = %.0f µs over %.0f ranked candidates",
		r.Reels, r.K, r.Nprobe, r.Lists, r.FeaturesUs, r.TowerUs, r.ANNUs, r.RankUs, r.PostrankUs, r.TotalUs, r.Ranked)
	add("calibration", "per ranked candidate: features %.3f µs (%.2f M lookups/s), rank %.3f µs (the ranker alone: %.2f M candidates/s a core)",
		m.featPerC, r.FeatureLookupsPerSec/1e6, m.rankPerC, c.Ranker.CandidatesPerSec/1e6)
	add("calibration", "the wire and the server: %.0f µs of CPU a request (client and server), %.0f µs a round trip alone; merging 4 shards' answers %.1f µs",
		c.Server.OverheadUs, c.Server.RoundTripUs, c.Server.MergeUs)
	add("index", "scan cost a query t(n, p) = %.1f + %.4f·L + %.3f·p + %.5f·(n·p/L) µs (fitted to %d points, rms error %.1f%%); one code scanned: %.2f ns (the kernel alone, its floor: %.2f ns)",
		m.fit.A, m.fit.B, m.fit.C, m.fit.D, len(c.ANN), 100*m.fit.RMS, m.fit.D*1e3, m.minD*1e3)
	if t.Nprobe > 0 {
		add("index", "nprobe fixed at %d", t.Nprobe)
	} else {
		add("index", "recall@%d %.2f needs nprobe %.0f on %.0f reels; across calibrated sizes nprobe grows as n^%.2f (0: a fixed nprobe holds the recall as lists grow with √n)",
			t.K, t.Recall, m.curve.P1, m.curve.N1, m.curve.Beta)
	}
	add("shards", "%d shards of %d reels: L = 4·√n = %d lists, nprobe %d, scanning %.0f codes a query: t = %.0f µs (+%.0f µs of pools and filters)",
		p.Shards, p.ReelsPerShard, p.Lists, p.Nprobe, sh.reels*sh.nprobe/sh.lists, sh.annUs-m.annExtraUs, m.annExtraUs)
	if p.Shards > 1 {
		add("shards", "each shard recalls k_s = k/s + 3·σ = %d candidates (the binomial share of the merged top %d that lands on it, plus three standard deviations), ranking %.0f with the pools' share",
			p.KPerShard, t.K, p.RankedShard)
	}
	gpuNote := ""
	if t.GPU {
		gpuNote = fmt.Sprintf(" (the ranker's %.0f µs on the GPU)", sh.gpuUs)
	}
	add("shards", "a shard's request: (%.0f µs tower and postrank + %.0f ann + %.0f features + %.0f rank) × %.2f at saturation + %.0f wire = %.0f µs of one core%s",
		m.fixedUs, sh.annUs, m.featPerC*sh.ranked, m.rankPerC*sh.ranked*boolF(!t.GPU), m.contention, c.Server.OverheadUs, sh.serviceUs, gpuNote)
	switch {
	case r.ServedSaturationQPS > 0:
		add("shards", "× %.2f: the server carried at most %.0f requests/s on %d cores (%.0f µs of a core a request, %.0f of it the wire's) against %.0f µs of engine one request at a time in process: the collector, the caches a served stream finds cold, the client's share on the same machine",
			m.contention, r.ServedSaturationQPS, c.Machine.Cores, float64(c.Machine.Cores)/r.ServedSaturationQPS*1e6, c.Server.OverheadUs, r.TotalUs)
	case r.SaturatedUs > 0:
		add("shards", "× %.2f: a request took %.0f µs of a core with every core serving against %.0f µs one at a time (the collector, the cores' contention for memory)",
			m.contention, r.SaturatedUs, r.TotalUs)
	}
	base := "the engine's samples plus the wire's round trip"
	if len(m.served) > 0 {
		base = fmt.Sprintf("the calibration's %d requests through the server at %.0f/s, open loop (the slowest 5%% replaced by an exponential fitted to their excess over the 95th percentile), scaled by this shard's cost (×%.2f)", len(m.served), r.ServedRate, sh.serviceUs/m.calService)
	}
	spread := fmt.Sprintf("cs² = %.2f, from the engine's samples", q.CV2)
	if m.cv2Fitted {
		spread = fmt.Sprintf("cs² = %.2f, fitted so that the model's p99 at %.0f/s on the calibrating machine's %d cores is the %s measured there; the engine's samples alone give %.2f",
			q.CV2, r.LoadedRate, c.Machine.Cores, ms(r.LoadedP99Us), m.cv2Engine)
	}
	add("queue", "model: M/G/c (Poisson arrivals; c = %d cores a replica, each request on one core for S = %.0f µs); Erlang C for the chance of waiting, Allen–Cunneen's (1+cs²)/2 for the service time's spread (%s), the wait's tail exponential; a request's latency is its wait plus a base latency drawn from %s (p50 %s, p99 %s)",
		t.CoresPerReplica, sh.serviceUs, spread, base, ms(quantileSorted(sh.samples, 0.5)), ms(quantileSorted(sh.samples, 0.99)))
	add("queue", "utilisation bound %.0f%%: replicas ≥ QPS·S/(c·ρ) = %.0f·%.0f µs/(%d·%.2f) = %.2f → %d a shard; ρ = %.1f%%, P(wait) = %.3f, mean wait %.0f µs",
		100*t.MaxUtilisation, t.QPS, sh.serviceUs, t.CoresPerReplica, t.MaxUtilisation, t.QPS*sh.serviceUs/1e6/(float64(t.CoresPerReplica)*t.MaxUtilisation),
		p.ReplicasPerShard, 100*p.Utilisation, q.WaitProb(), q.MeanWaitUs())
	add("queue", "a replica saturates at c/S = %d/%.0f µs = %.0f requests/s", t.CoresPerReplica, sh.serviceUs, p.SaturationQPS)
	if p.Shards > 1 {
		add("fan-out", "the answer waits for the slowest of %d shards: each must keep its %.5f quantile (0.99^(1/%d)) for the whole to keep p99: %s; merge %.0f µs (%.1f µs for 4 shards, scaled) and a %v round trip",
			p.Shards, p.ShardQuantile, p.Shards, ms(p.ShardP99Us), p.MergeUs-math.Max(0, float64(t.NetworkRTT.Microseconds())), c.Server.MergeUs, t.NetworkRTT)
	} else {
		add("fan-out", "one shard: no merge; p99 of a replica %s, plus a %v round trip", ms(p.ShardP99Us), max(t.NetworkRTT, 0))
	}
	if t.GPU {
		add("gpu", "GPU %s: %.0f M candidates/s (bf16); a request waits up to %v for its batch, then %.0f µs of compute; %d GPU(s) a replica keep them under %.0f%% busy",
			p.GPU.Name, p.GPU.BF16PerSec/1e6, GPUBatchWait, m.gpuTimeUs(sh, p.GPU), p.GPUsPerReplica, 100*t.MaxUtilisation)
	}
	add("result", "predicted p99 %s against the target %v", ms(p.P99Us), t.P99)
	add("memory", "index: %d reels × %.0f B + centroids %d × %d × 4 B = %s (mapped from its file)", p.ReelsPerShard, m.bytesIndex, p.Lists, m.dim, gib(idx))
	add("memory", "feature store: %d users × %.0f B + %d reels × %.0f B = %s (users replicated on every shard, so every reel's content and counters too), model %s; heap ×%.2f under GOMEMLIMIT; process %s: %s a replica",
		t.Users, c.Memory.BytesPerUser, t.Reels, c.Memory.BytesPerReel, gib(store), gib(float64(c.Memory.ModelBytes)), heapFactor, gib(float64(c.Memory.BaseBytes)), gib(mem))
	if t.NewReelsPerDay > 0 {
		add("indexing", "%d new reels a day: %.0f a shard, each %.1f µs to add and ~%.0f µs of reel tower: %.3g core-seconds a replica a day (%.3g%% of its cores); a whole day's on %d cores in %.3g s",
			t.NewReelsPerDay, perShardDay, m.addUs, towerUs, p.IndexDayCoreS, 100*p.IndexDayCoreS/86400/float64(t.CoresPerReplica), t.CoresPerReplica, p.IndexDayWallS)
	}
	add("result", "%d shards × %d replicas = %d replicas of %d cores and %s: %d cores%s",
		p.Shards, p.ReplicasPerShard, p.Replicas, t.CoresPerReplica, gib(float64(p.MemoryPerReplica)), p.TotalCores, gpuSuffix(p.TotalGPUs))
	// The p99 against offered load on one replica.
	for i := 1; i < 40; i++ {
		lam := p.SaturationQPS * float64(i) / 40
		qq := m.queue(t.CoresPerReplica, lam, sh)
		p.Curve = append(p.Curve, LoadPoint{QPS: lam, P99Us: qq.Quantile(0.99), Util: qq.Utilisation()})
	}
}

// quantileSorted is the p-quantile of sorted samples.
func quantileSorted(s []float64, p float64) float64 {
	if len(s) == 0 {
		return math.NaN()
	}
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

func boolF(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func gpuSuffix(n int) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(" and %d GPUs", n)
}

// PredictP99 is the model's p99 (µs) of one replica of the plan's shard at
// an offered rate.
func (p *Plan) PredictP99(qps float64) float64 {
	q := p.replicaQueue
	q.Lambda = qps
	return q.Quantile(0.99)
}
