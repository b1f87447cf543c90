package plan

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
)

// Target is what a fleet must carry.
type Target struct {
	Reels  int64         // catalogue size
	QPS    float64       // Recommend requests a second, at the fleet's front
	P99    time.Duration // end-to-end latency that 99% of requests stay under
	Recall float64       // the index's recall@K against exact search
	// NewReelsPerDay are indexed as they arrive (0: none).
	NewReelsPerDay int64
	// Users whose features every replica keeps (0: 10 million).
	Users int64
	// GPU moves the ranker to GPUs, batched.
	GPU bool
	// K is the candidates the recall is counted over (0: 1000) and N the
	// reels a request answers (0: 20).
	K, N int
	// CoresPerReplica and MemoryPerReplica are a replica's machine
	// (0: 16 cores, 128 GiB).
	CoresPerReplica  int
	MemoryPerReplica int64
	// MaxUtilisation is the busy share of a replica's cores the plan keeps
	// under, whatever the queueing model says (0: 0.7).
	MaxUtilisation float64
	// NetworkRTT is a round trip between the front and a shard (negative:
	// none, as on one machine; 0: 200 µs).
	NetworkRTT time.Duration
	// Shards, Replicas and Nprobe fix the plan's choice when positive.
	Shards, Replicas, Nprobe int
}

func (t *Target) fill(c *Calibration) error {
	switch {
	case t.Reels < 1:
		return fmt.Errorf("plan: %d reels, want at least 1", t.Reels)
	case !(t.QPS > 0) || math.IsInf(t.QPS, 0):
		return fmt.Errorf("plan: %v requests a second, want a positive rate", t.QPS)
	case t.P99 <= 0:
		return fmt.Errorf("plan: p99 target %v, want positive", t.P99)
	case !(t.Recall > 0 && t.Recall < 1) && t.Nprobe <= 0:
		return fmt.Errorf("plan: recall %v, want one in (0, 1)", t.Recall)
	case t.NewReelsPerDay < 0 || t.Users < 0 || t.K < 0 || t.N < 0 || t.CoresPerReplica < 0 || t.MemoryPerReplica < 0 ||
		t.Shards < 0 || t.Replicas < 0 || t.Nprobe < 0:
		return errors.New("plan: a negative count")
	case t.MaxUtilisation < 0 || t.MaxUtilisation >= 1:
		return fmt.Errorf("plan: utilisation bound %v, want in (0, 1)", t.MaxUtilisation)
	}
	if t.Users == 0 {
		t.Users = 10_000_000
	}
	if t.K == 0 {
		t.K = 1000
	}
	if t.N == 0 {
		t.N = 20
	}
	if t.K > 4096 || t.N > t.K {
		return fmt.Errorf("plan: k %d and n %d: want n <= k <= 4096", t.K, t.N)
	}
	if t.CoresPerReplica == 0 {
		t.CoresPerReplica = 16
	}
	if t.MemoryPerReplica == 0 {
		t.MemoryPerReplica = 128 << 30
	}
	if t.MaxUtilisation == 0 {
		t.MaxUtilisation = 0.7
	}
	if t.NetworkRTT == 0 {
		t.NetworkRTT = 200 * time.Microsecond
	}
	if t.Shards > 0 && int64(t.Shards) > t.Reels {
		return fmt.Errorf("plan: %d shards for %d reels", t.Shards, t.Reels)
	}
	return nil
}

// gpuReference is the ranker's batched rate on an H100 when the
// calibration has no GPU: PyTorch 2.11's for the same MLP, 1,000
// candidates a request and 256 requests a batch (a reference, not a
// measurement of this project's GPU build).
var gpuReference = GPU{Name: "H100 (reference: PyTorch 2.11, not measured here)", CandidatesPerSec: 170e6, BF16PerSec: 666e6, MemoryBytes: 80 << 30}

// GPUBatchWait is the longest a candidate set waits for its GPU batch.
const GPUBatchWait = time.Millisecond

// Layout is one way to keep a shard's reels in the index.
type Layout struct {
	Name         string
	BytesPerReel float64
	ShardBytes   float64
	Used         bool
}

// Step is one line of the plan's arithmetic.
type Step struct {
	Section string
	Text    string
}

// LoadPoint is the model's p99 at one offered load on one replica.
type LoadPoint struct {
	QPS   float64 // offered to the replica
	P99Us float64 // end to end
	Util  float64
}

// Plan is a fleet for a Target and the arithmetic that sized it.
type Plan struct {
	Target  Target
	Machine string // the calibration's CPU
	Cores   int    // the calibration machine's cores

	Shards           int
	ReplicasPerShard int
	CoresPerReplica  int
	MemoryPerReplica int64 // what a replica needs
	GPUsPerReplica   int
	GPU              *GPU // the GPU figures used, when Target.GPU
	TotalCores       int
	TotalGPUs        int
	Replicas         int

	ReelsPerShard int64
	Lists, Nprobe int
	KPerShard     int
	RankedShard   float64 // candidates a shard ranks a request

	ServiceUs     float64 // one core's time a shard's request, mean
	ServiceP99Us  float64 // alone, no queue
	ShardQuantile float64 // the quantile each shard must keep (0.99^(1/shards))
	ShardP99Us    float64 // the model's shard latency at that quantile
	MergeUs       float64
	P99Us         float64 // predicted end to end
	Utilisation   float64
	SaturationQPS float64 // a replica's
	IndexDayCoreS float64 // core-seconds a replica spends a day indexing new reels
	IndexDayWallS float64 // wall time of a day's new reels on one replica's cores
	Layouts       []Layout
	Steps         []Step
	Curve         []LoadPoint
	Considered    []Option
	ANNFitRMS     float64
	ProbeBeta     float64
	replicaQueue  queue // a replica's queue, for PredictP99
}

// Option is a shard count the plan weighed.
type Option struct {
	Shards, Replicas, Cores, GPUs int
	P99Us                         float64 // negative: saturated
	MemoryPerReplica              int64
	Why                           string // why it was not taken, or ""
}

// model is the calibration turned into costs.
type model struct {
	cal        *Calibration
	fit        annFit
	curve      probeCurve
	annExtraUs float64   // the engine's ANN stage beyond the index search
	featPerC   float64   // µs a ranked candidate, features stage
	rankPerC   float64   // µs a ranked candidate, rank stage
	fixedUs    float64   // tower, postrank
	extraShare float64   // candidates beyond K (pools, sources) per K
	shape      []float64 // the engine's samples over their mean
	cv2        float64   // the queue's squared coefficient of variation of service
	cv2Engine  float64   // the engine's samples' (cv2 unless fitted)
	cv2Fitted  bool      // cv2 fitted to the calibration's loaded p99
	served     []float64 // the served latency's samples, µs (may be empty)
	calService float64   // a core's time a request of the calibration's own model
	contention float64   // a request's cost at saturation over its cost alone
	minD       float64   // µs a code, the scan kernel's own cost
	dim        int
	bytesIndex float64 // per reel, the default layout
	addUs      float64 // one reel added to the index, one core
}

func newModel(c *Calibration, t *Target) (*model, error) {
	m := &model{cal: c}
	var err error
	minD := 0.0
	if c.Kernels.ScanCodesPerSec > 0 {
		// The kernel's rate is of 64-sub-code codes; an index of
		// dimension d has d/2.
		minD = 1e6 / c.Kernels.ScanCodesPerSec * float64(c.ANN[0].Dim/2) / 64
	}
	m.minD = minD
	if m.fit, err = fitANN(c.ANN, minD); err != nil {
		return nil, err
	}
	if t.Nprobe <= 0 {
		if m.curve, err = newProbeCurve(c.ANN, t.Recall); err != nil {
			return nil, err
		}
	}
	r := &c.Request
	m.annExtraUs = max(0, r.ANNUs-m.fit.at(float64(r.Reels), float64(r.Lists), float64(r.Nprobe)))
	m.featPerC = r.FeaturesUs / r.Ranked
	m.rankPerC = r.RankUs / r.Ranked
	m.fixedUs = r.TowerUs + r.PostrankUs
	m.extraShare = max(0, r.Ranked-float64(r.K)) / float64(r.K)
	m.contention = 1
	switch {
	case r.ServedSaturationQPS > 0:
		// As served: a core's time a request at saturation, less the
		// wire's, over the engine's time one at a time.
		m.contention = max(1, (float64(c.Machine.Cores)/r.ServedSaturationQPS*1e6-c.Server.OverheadUs)/r.TotalUs)
	case r.SaturatedUs > r.TotalUs:
		m.contention = r.SaturatedUs / r.TotalUs
	}
	m.shape = make([]float64, len(r.Quantiles))
	var qm float64
	for _, q := range r.Quantiles {
		qm += q / float64(len(r.Quantiles))
	}
	for i, q := range r.Quantiles {
		m.shape[i] = q / qm
	}
	m.cv2 = newQueue(1, 0, r.Quantiles).CV2
	m.cv2Engine = m.cv2
	m.served = smoothTail(r.ServedUs)
	m.calService = r.TotalUs*m.contention + c.Server.OverheadUs
	if r.LoadedRate > 0 && len(m.served) > 0 {
		m.cv2, m.cv2Fitted = fitCV2(queue{Cores: c.Machine.Cores, Lambda: r.LoadedRate, MeanUs: m.calService, CV2: m.cv2, Base: m.served}, r.LoadedP99Us), true
	}
	m.dim = r.Dim
	if m.dim == 0 {
		m.dim = c.ANN[0].Dim
	}
	var big ANNPoint
	for _, p := range c.ANN {
		if p.Reels > big.Reels {
			big = p
		}
	}
	m.bytesIndex = big.BytesPerReel
	if m.bytesIndex == 0 {
		m.bytesIndex = float64(m.dim/4 + 2*m.dim + 8)
	}
	best := c.Build[0]
	for _, b := range c.Build {
		if b.Reels > best.Reels {
			best = b
		}
	}
	m.addUs = 1e6 / best.AddPerSec
	return m, nil
}

// shard is the cost of one shard's request for s shards.
type shard struct {
	reels         float64
	lists, nprobe float64
	k             int
	ranked        float64
	annUs         float64
	cpuUs         float64 // engine stages on the CPU, mean
	gpuUs         float64 // the ranker's share when it runs on a GPU
	serviceUs     float64 // cpu + the server's overhead
	samples       []float64
}

func (m *model) shard(t *Target, s int) shard {
	var sh shard
	sh.reels = math.Ceil(float64(t.Reels) / float64(s))
	sh.lists = listsFor(sh.reels)
	if t.Nprobe > 0 {
		sh.nprobe = min(float64(t.Nprobe), sh.lists)
	} else {
		sh.nprobe = m.curve.nprobe(sh.reels, sh.lists)
	}
	sh.k = shardK(t.K, s)
	sh.ranked = float64(sh.k) * (1 + m.extraShare)
	sh.annUs = m.fit.at(sh.reels, sh.lists, sh.nprobe) + m.annExtraUs
	rank := m.rankPerC * sh.ranked * m.contention
	sh.cpuUs = (m.fixedUs+sh.annUs+m.featPerC*sh.ranked)*m.contention + rank
	if t.GPU {
		sh.cpuUs -= rank
		sh.gpuUs = rank
	}
	sh.serviceUs = sh.cpuUs + m.cal.Server.OverheadUs
	// The base latency: the served samples scaled by this shard's cost
	// against the calibration's own request; without them, the engine's
	// samples scaled likewise plus the wire's round trip.
	ratio := sh.serviceUs / m.calService
	if len(m.served) > 0 {
		sh.samples = make([]float64, len(m.served))
		for i, v := range m.served {
			sh.samples[i] = v * ratio
		}
	} else {
		sh.samples = make([]float64, len(m.shape))
		for i, f := range m.shape {
			sh.samples[i] = f*sh.cpuUs + m.cal.Server.OverheadUs + m.cal.Server.RoundTripUs
		}
	}
	return sh
}

// queue is a replica's queue at lambda requests a second.
func (m *model) queue(cores int, lambda float64, sh shard) queue {
	return queue{Cores: cores, Lambda: lambda, MeanUs: sh.serviceUs, CV2: m.cv2, Base: sh.samples}
}

// smoothTail returns sorted latency samples with their slowest 5% replaced
// by the quantiles, at the same plotting positions, of an exponential fitted
// to their excess over the 95th percentile (peaks over a threshold; the
// exponential's maximum-likelihood scale is the mean excess). A fan-out
// over s shards needs each shard's 0.99^(1/s) quantile, which at tens of
// shards is the calibration's slowest sample or two: one collector pause
// moved a plan by half. The fit keeps the tail's weight and drops that
// sample's luck. Fewer than 200 samples are returned as they are.
func smoothTail(v []float64) []float64 {
	n := len(v)
	k := n / 20
	if n < 200 || k < 10 {
		return v
	}
	out := slices.Clone(v)
	u := v[n-k-1]
	var beta float64
	for _, x := range v[n-k:] {
		beta += (x - u) / float64(k)
	}
	for j := range k {
		// The (j+0.5)/k quantile of the excess, for sample n-k+j.
		out[n-k+j] = u - beta*math.Log(1-(float64(j)+0.5)/float64(k))
	}
	return out
}

// fitCV2 is the service variability (cs², at least q.CV2, at most 10,000)
// at which q's p99 is p99 µs: Allen–Cunneen's factor (1+cs²)/2 stretched
// until the model's tail at a loaded point of the calibration matches the
// one measured there. The p99 rises with cs², so by bisection.
func fitCV2(q queue, p99 float64) float64 {
	if q.Utilisation() >= 1 || q.Quantile(0.99) >= p99 {
		return q.CV2
	}
	lo, hi := q.CV2, 1e4
	if q.CV2 = hi; q.Quantile(0.99) <= p99 {
		return hi
	}
	for range 60 {
		q.CV2 = (lo + hi) / 2
		if q.Quantile(0.99) < p99 {
			lo = q.CV2
		} else {
			hi = q.CV2
		}
	}
	return (lo + hi) / 2
}

// shardK is the candidates each of s shards recalls so that the merged
// top k holds what one index's would: its share k/s plus three standard
// deviations of the binomial count of the global top k that lands on it.
func shardK(k, s int) int {
	if s <= 1 {
		return k
	}
	m := float64(k) / float64(s)
	return min(k, int(math.Ceil(m+3*math.Sqrt(m*(1-1/float64(s))))))
}
