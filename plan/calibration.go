package plan

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"time"

	"github.com/reelrank/reelrank/internal/fsutil"
)

// CalibrationVersion is the version of the calibration file this build
// writes and reads.
const CalibrationVersion = 1

// Calibration is what `reelrank calibrate` measured on one machine: the
// rates the plan's arithmetic is made of. Rates "per core" were measured on
// one goroutine.
type Calibration struct {
	Version int       `json:"version"`
	Taken   time.Time `json:"taken"`
	Seconds float64   `json:"seconds"` // how long calibrating took
	Machine Machine   `json:"machine"`
	Kernels Kernels   `json:"kernels"`
	// ANN holds the index's sweep over nprobe on generated catalogues of
	// (at least) two sizes.
	ANN []ANNPoint `json:"ann"`
	// Build holds the index's build and add rates, one per catalogue.
	Build  []BuildPoint `json:"build"`
	Ranker Ranker       `json:"ranker"`
	// Request is the engine's Recommend on a served model, stage by stage.
	Request Request `json:"request"`
	Server  Server  `json:"server"`
	Memory  Memory  `json:"memory"`
	// GPU is set by the GPU build only.
	GPU *GPU `json:"gpu,omitempty"`
}

// Machine names the machine a calibration was taken on.
type Machine struct {
	CPU         string `json:"cpu"`
	Cores       int    `json:"cores"` // logical CPUs the process may use
	MemoryBytes int64  `json:"memory_bytes"`
	SIMD        string `json:"simd"` // the kernels' dispatch level
	Go          string `json:"go"`
	OS          string `json:"os"`
	Arch        string `json:"arch"`
	Host        string `json:"host,omitempty"`
}

// Kernels are the raw rates of the kernels, one core.
type Kernels struct {
	ScanCodesPerSec  float64 `json:"scan_codes_per_s"`   // 4-bit fast-scan, PQ codes scored a second
	GemmGFLOPS       float64 `json:"gemm_gflops"`        // f32 GEMM at the ranker's shapes
	MemBandwidthGBps float64 `json:"mem_bandwidth_gbps"` // streaming read of a buffer far larger than the caches
}

// ANNPoint is one nprobe of the index sweep.
type ANNPoint struct {
	Reels        int     `json:"reels"`
	Dim          int     `json:"dim"`
	Lists        int     `json:"lists"`
	Nprobe       int     `json:"nprobe"`
	K            int     `json:"k"`
	Recall       float64 `json:"recall"` // recall@K against exact search
	QPS          float64 `json:"qps"`    // one core
	MeanUs       float64 `json:"mean_us"`
	P99Us        float64 `json:"p99_us"`
	ScannedCodes float64 `json:"scanned_codes"` // codes scored a query
	BytesPerReel float64 `json:"bytes_per_reel"`
}

// BuildPoint is the index's build on one catalogue.
type BuildPoint struct {
	Reels     int     `json:"reels"`
	Threads   int     `json:"threads"`
	Seconds   float64 `json:"seconds"`   // train and add, on Threads cores
	AddPerSec float64 `json:"add_per_s"` // adds to the trained index, one core
}

// Ranker is the multitask ranker's rate over batches of candidates.
type Ranker struct {
	Hidden           []int   `json:"hidden"`
	Batch            int     `json:"batch"`
	CandidatesPerSec float64 `json:"candidates_per_s"` // f32, one core
	BF16PerSec       float64 `json:"bf16_candidates_per_s"`
}

// Request is the engine's Recommend on a served model, one request at a
// time: what each stage costs, and the spread of the whole.
type Request struct {
	Model   string  `json:"model"`
	Reels   int     `json:"reels"`
	Users   int     `json:"users"`
	Dim     int     `json:"dim"`
	Lists   int     `json:"lists"`
	Nprobe  int     `json:"nprobe"`
	K       int     `json:"k"`
	N       int     `json:"n"`
	Samples int     `json:"samples"`
	Ranked  float64 `json:"ranked"` // candidates ranked a request, mean
	// Stage means, microseconds.
	FeaturesUs float64 `json:"features_us"`
	TowerUs    float64 `json:"tower_us"`
	ANNUs      float64 `json:"ann_us"`
	RankUs     float64 `json:"rank_us"`
	PostrankUs float64 `json:"postrank_us"`
	TotalUs    float64 `json:"total_us"`
	// Quantiles of the total, microseconds, rising: Quantiles[i] is the
	// (i+0.5)/len quantile (calibrate keeps every sample). The plan
	// scales this shape to other costs.
	Quantiles []float64 `json:"quantiles"`
	// SaturatedUs is a core's time a request with every core serving
	// (cores × wall time over the requests served): the collector and the
	// cores' contention for memory, which one request at a time does not
	// see, are in it. 0 in a calibration that did not measure it.
	SaturatedUs float64 `json:"saturated_us"`
	// ServedUs are Recommends through the server on loopback as a client
	// sees them (from the intended send time), sorted, microseconds, at
	// ServedRate a second, open loop: a load light enough that few wait,
	// the base latency the queue's waits are added to. Empty: the plan
	// uses the engine's samples plus the wire's round trip.
	ServedUs   []float64 `json:"served_us,omitempty"`
	ServedRate float64   `json:"served_rate,omitempty"`
	// ServedSaturationQPS is the most the server answered a second with
	// eight requests a core in flight, closed loop, its client on the same
	// machine: cores over it is a request's cost of a core as served, the
	// wire, the collector and the cold caches of a served stream included.
	// 0: not measured (the plan uses SaturatedUs and the wire's cost).
	ServedSaturationQPS float64 `json:"served_saturation_qps,omitempty"`
	// LoadedP99Us is the p99 through the server at LoadedRate a second,
	// open loop, about half of ServedSaturationQPS: a point where requests
	// queue, to which the plan fits the queue's variability (the
	// collector's pauses, which stop every core at once, and the client's
	// share of the cores make a served stream burstier than the engine's
	// samples say). 0: not measured (the engine's spread is used).
	LoadedRate  float64 `json:"loaded_rate,omitempty"`
	LoadedP99Us float64 `json:"loaded_p99_us,omitempty"`
	// FeatureLookupsPerSec is candidates gathered a second of the features
	// stage.
	FeatureLookupsPerSec float64 `json:"feature_lookups_per_s"`
}

// Server is the cost of a request's trip through the wire protocol.
type Server struct {
	// OverheadUs is CPU time a request costs client and server together on
	// loopback beyond the engine's work: the machine's cores times the
	// wall time over the requests served at saturation, with a handler
	// that does nothing.
	OverheadUs float64 `json:"overhead_us"`
	// RoundTripUs is one request alone, there and back, median.
	RoundTripUs float64 `json:"round_trip_us"`
	// MergeUs is client.MergeRecommend over 4 shards' answers of 20 items.
	MergeUs float64 `json:"merge_us"`
}

// Memory is what the served state takes in memory.
type Memory struct {
	BytesPerUser float64 `json:"bytes_per_user"` // feature store
	BytesPerReel float64 `json:"bytes_per_reel"` // feature store, index apart
	ModelBytes   int64   `json:"model_bytes"`    // the bundle's weights and tower tables
	BaseBytes    int64   `json:"base_bytes"`     // the process before any model
}

// GPU is the GPU build's batch scoring rate.
type GPU struct {
	Name             string  `json:"name"`
	CandidatesPerSec float64 `json:"candidates_per_s"` // ranker, batched
	BF16PerSec       float64 `json:"bf16_candidates_per_s"`
	MemoryBytes      int64   `json:"memory_bytes"`
}

// Validate checks that c holds what Make needs, with finite, positive rates.
func (c *Calibration) Validate() error {
	if c.Version != CalibrationVersion {
		return fmt.Errorf("plan: calibration version %d, this build reads %d", c.Version, CalibrationVersion)
	}
	if c.Machine.Cores < 1 {
		return fmt.Errorf("plan: calibration: %d cores", c.Machine.Cores)
	}
	pos := func(name string, v float64) error {
		if !(v > 0) || math.IsInf(v, 0) {
			return fmt.Errorf("plan: calibration: %s = %v, want a positive finite number", name, v)
		}
		return nil
	}
	sizes := map[int]bool{}
	for i, p := range c.ANN {
		if p.Reels < 1 || p.Lists < 1 || p.Nprobe < 1 || p.Nprobe > p.Lists || p.K < 1 || p.Dim < 1 {
			return fmt.Errorf("plan: calibration: ann point %d: reels %d, lists %d, nprobe %d, k %d, dim %d", i, p.Reels, p.Lists, p.Nprobe, p.K, p.Dim)
		}
		if !(p.Recall >= 0 && p.Recall <= 1) {
			return fmt.Errorf("plan: calibration: ann point %d: recall %v", i, p.Recall)
		}
		if err := pos(fmt.Sprintf("ann point %d: mean_us", i), p.MeanUs); err != nil {
			return err
		}
		sizes[p.Reels] = true
	}
	if len(sizes) < 2 {
		return errors.New("plan: calibration: the index was measured on fewer than two catalogue sizes")
	}
	if len(c.Build) == 0 {
		return errors.New("plan: calibration: no index build rate")
	}
	for _, b := range c.Build {
		if err := pos("build add_per_s", b.AddPerSec); err != nil {
			return err
		}
	}
	r := &c.Request
	for _, f := range []struct {
		name string
		v    float64
	}{{"ranker candidates_per_s", c.Ranker.CandidatesPerSec}, {"request total_us", r.TotalUs}, {"request ranked", r.Ranked},
		{"request rank_us", r.RankUs}, {"request ann_us", r.ANNUs}, {"server overhead_us", c.Server.OverheadUs},
		{"memory bytes_per_user", c.Memory.BytesPerUser}, {"memory bytes_per_reel", c.Memory.BytesPerReel}} {
		if err := pos(f.name, f.v); err != nil {
			return err
		}
	}
	for _, v := range []float64{r.FeaturesUs, r.TowerUs, r.PostrankUs, c.Server.MergeUs} {
		if !(v >= 0) || math.IsInf(v, 0) {
			return fmt.Errorf("plan: calibration: a stage time is %v", v)
		}
	}
	if r.Reels < 1 || r.K < 1 || r.Lists < 1 || r.Nprobe < 1 {
		return fmt.Errorf("plan: calibration: request on %d reels, k %d, %d lists, nprobe %d", r.Reels, r.K, r.Lists, r.Nprobe)
	}
	if len(r.Quantiles) < 10 {
		return fmt.Errorf("plan: calibration: %d quantiles of the request's time, want at least 10", len(r.Quantiles))
	}
	for i, q := range r.Quantiles {
		if !(q > 0) || (i > 0 && q < r.Quantiles[i-1]) {
			return fmt.Errorf("plan: calibration: request quantile %d is %v (want positive and rising)", i, q)
		}
	}
	for i, q := range r.ServedUs {
		if !(q > 0) || (i > 0 && q < r.ServedUs[i-1]) {
			return fmt.Errorf("plan: calibration: served latency %d is %v (want positive and rising)", i, q)
		}
	}
	if r.LoadedRate != 0 || r.LoadedP99Us != 0 {
		if !(r.LoadedRate > 0) || !(r.LoadedP99Us > 0) || math.IsInf(r.LoadedRate, 0) || math.IsInf(r.LoadedP99Us, 0) || len(r.ServedUs) == 0 || !(r.ServedSaturationQPS > r.LoadedRate) {
			return fmt.Errorf("plan: calibration: loaded p99 %v µs at %v/s (want both positive, under the served saturation %v/s, with served samples)", r.LoadedP99Us, r.LoadedRate, r.ServedSaturationQPS)
		}
	}
	if g := c.GPU; g != nil {
		if err := pos("gpu candidates_per_s", g.CandidatesPerSec); err != nil {
			return err
		}
	}
	return nil
}

// LoadCalibration reads and validates a calibration file.
func LoadCalibration(path string) (*Calibration, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("plan: %w", err)
	}
	var c Calibration
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("plan: calibration %s: %w", path, err)
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, path)
	}
	return &c, nil
}

// Save writes c to path atomically.
func (c *Calibration) Save(path string) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return fmt.Errorf("plan: calibration: %w", err)
	}
	err = fsutil.WriteFile(path, 0o644, func(w io.Writer) error {
		_, err := w.Write(append(b, '\n'))
		return err
	})
	if err != nil {
		return fmt.Errorf("plan: save calibration: %w", err)
	}
	return nil
}
