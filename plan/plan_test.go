package plan

import (
	"encoding/xml"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// fixture is a calibration with round figures, its index costs made by a
// known annFit and its recall a known function of the probed share.
func fixture() *Calibration {
	truth := annFit{A: 40, B: 0.05, C: 0.8, D: 0.002}
	c := &Calibration{Version: CalibrationVersion, Taken: time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC), Seconds: 90,
		Machine: Machine{CPU: "test CPU", Cores: 2, SIMD: "avx512"},
		Kernels: Kernels{ScanCodesPerSec: 2e9, GemmGFLOPS: 80, MemBandwidthGBps: 20},
		Build:   []BuildPoint{{Reels: 50_000, Threads: 2, Seconds: 3, AddPerSec: 40_000}, {Reels: 200_000, Threads: 2, Seconds: 12, AddPerSec: 30_000}},
		Ranker:  Ranker{Hidden: []int{256, 256, 128}, Batch: 1000, CandidatesPerSec: 1e6, BF16PerSec: 2e6},
		Server:  Server{OverheadUs: 60, RoundTripUs: 50, MergeUs: 8},
		Memory:  Memory{BytesPerUser: 900, BytesPerReel: 300, ModelBytes: 8 << 20, BaseBytes: 16 << 20},
	}
	for _, n := range []int{50_000, 200_000} {
		l := ann4(n)
		for _, div := range []int{64, 32, 16, 8, 4, 2} {
			p := max(1, l/div)
			f := float64(p) / float64(l)
			c.ANN = append(c.ANN, ANNPoint{Reels: n, Dim: 64, Lists: l, Nprobe: p, K: 1000, Recall: 1 - 0.5*math.Exp(-12*f),
				MeanUs: truth.at(float64(n), float64(l), float64(p)), BytesPerReel: 152})
			c.ANN[len(c.ANN)-1].QPS = 1e6 / c.ANN[len(c.ANN)-1].MeanUs
		}
	}
	qs := make([]float64, 100)
	for i := range qs {
		// An exponential-ish spread around 2,000 µs.
		qs[i] = 1500 + 500*-math.Log(1-(float64(i)+0.5)/100)
	}
	var mean float64
	for _, q := range qs {
		mean += q / 100
	}
	c.Request = Request{Model: "m", Reels: 50_000, Users: 20_000, Dim: 64, Lists: ann4(50_000), Nprobe: ann4(50_000) / 8, K: 1000, N: 20,
		Samples: 100, Ranked: 1200, FeaturesUs: 400, TowerUs: 50, ANNUs: 600, RankUs: mean - 1150, PostrankUs: 100, TotalUs: mean,
		Quantiles: qs, FeatureLookupsPerSec: 3e6}
	return c
}

func ann4(n int) int { return int(listsFor(float64(n))) }

func TestErlangC(t *testing.T) {
	for _, tc := range []struct {
		c    int
		a    float64
		want float64
	}{{1, 0.5, 0.5}, {1, 0.9, 0.9}, {2, 1, 1.0 / 3}, {3, 0, 0}, {2, 2, 1}} {
		if got := erlangC(tc.c, tc.a); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("erlangC(%d, %v) = %v, want %v", tc.c, tc.a, got, tc.want)
		}
	}
}

// TestQueueMM1 checks the model against M/M/1's exact response time,
// exponential with rate μ − λ: its p99 is ln(100)/(μ − λ).
func TestQueueMM1(t *testing.T) {
	const meanUs = 1000.0
	s := make([]float64, 20000)
	for i := range s {
		s[i] = -meanUs * math.Log(1-(float64(i)+0.5)/float64(len(s)))
	}
	for _, rho := range []float64{0.3, 0.6, 0.9} {
		q := newQueue(1, rho/meanUs*1e6, s)
		want := math.Log(100) / ((1 - rho) / meanUs)
		if got := q.Quantile(0.99); math.Abs(got-want)/want > 0.02 {
			t.Errorf("ρ %.1f: p99 %.0f µs, want %.0f", rho, got, want)
		}
	}
	if q := newQueue(2, 2.5e3, s); !math.IsInf(q.Quantile(0.99), 1) {
		t.Error("past saturation the p99 is finite")
	}
	// More cores at the same utilisation wait less.
	a, b := newQueue(1, 700, s), newQueue(8, 5600, s)
	if a.Quantile(0.99) <= b.Quantile(0.99) {
		t.Errorf("8 cores at 70%% have p99 %.0f, one core %.0f", b.Quantile(0.99), a.Quantile(0.99))
	}
}

func TestFitANN(t *testing.T) {
	c := fixture()
	f, err := fitANN(c.ANN, 0)
	if err != nil {
		t.Fatal(err)
	}
	if f.RMS > 1e-6 || math.Abs(f.D-0.002) > 1e-6 || math.Abs(f.A-40) > 1e-3 {
		t.Errorf("fit %+v, want A 40, B 0.05, C 0.8, D 0.002", f)
	}
	// A least D is kept, and the rest still fitted.
	g, err := fitANN(c.ANN, 0.001)
	if err != nil || g.D < 0.001 || g.RMS > 0.05 {
		t.Errorf("with a least D of 0.001: %+v, %v", g, err)
	}
	if _, err := fitANN(c.ANN[:3], 0); err == nil {
		t.Error("three points fitted four terms")
	}
}

func TestProbeCurve(t *testing.T) {
	c := fixture()
	pc, err := newProbeCurve(c.ANN, 0.9)
	if err != nil {
		t.Fatal(err)
	}
	// The fixture's recall is a function of the probed share alone: the
	// nprobe a recall needs grows with the lists, as n^0.5.
	if math.Abs(pc.Beta-0.5) > 0.05 {
		t.Errorf("beta %.3f, want about 0.5", pc.Beta)
	}
	if _, err := newProbeCurve(c.ANN, 0.9999); !errors.Is(err, errRecall) {
		t.Errorf("an unreachable recall: %v", err)
	}
}

func TestShardK(t *testing.T) {
	for _, tc := range []struct{ k, s, want int }{{1000, 1, 1000}, {1000, 4, 292}, {1000, 1000, 4}, {10, 2, 10}} {
		if got := shardK(tc.k, tc.s); got != tc.want {
			t.Errorf("shardK(%d, %d) = %d, want %d", tc.k, tc.s, got, tc.want)
		}
	}
}

func TestMake(t *testing.T) {
	c := fixture()
	base := Target{Reels: 10_000_000, QPS: 100_000, P99: 15 * time.Millisecond, Recall: 0.9}
	p, err := Make(c, base)
	if err != nil {
		t.Fatal(err)
	}
	tg := p.Target
	if p.P99Us > float64(tg.P99.Microseconds()) || p.Utilisation > tg.MaxUtilisation {
		t.Errorf("plan misses its own bounds: p99 %.0f µs, utilisation %.2f", p.P99Us, p.Utilisation)
	}
	if p.MemoryPerReplica > tg.MemoryPerReplica {
		t.Errorf("a replica needs %d bytes of %d", p.MemoryPerReplica, tg.MemoryPerReplica)
	}
	if p.TotalCores != p.Shards*p.ReplicasPerShard*p.CoresPerReplica || p.Replicas != p.Shards*p.ReplicasPerShard {
		t.Errorf("counts do not add up: %+v", p)
	}
	// One replica fewer a shard breaks a bound.
	fewer := base
	fewer.Shards, fewer.Replicas = p.Shards, p.ReplicasPerShard-1
	if q, err := Make(c, fewer); err == nil && q.P99Us <= float64(tg.P99.Microseconds()) && q.Utilisation <= tg.MaxUtilisation {
		t.Errorf("%d replicas a shard would do: p99 %.0f µs at %.2f", fewer.Replicas, q.P99Us, q.Utilisation)
	}
	// Twice the load needs at least as many cores; a bigger catalogue at
	// least as many shards.
	more := base
	more.QPS *= 2
	if q, err := Make(c, more); err != nil || q.TotalCores < p.TotalCores {
		t.Errorf("twice the load: %v cores (was %d), %v", coresOf(q), p.TotalCores, err)
	}
	bigger := base
	bigger.Reels *= 10
	if q, err := Make(c, bigger); err != nil || q.Shards < p.Shards {
		t.Errorf("ten times the reels: %v shards (was %d), %v", shardsOf(q), p.Shards, err)
	}
	// GPUs take the ranker off the cores.
	g := base
	g.GPU = true
	if q, err := Make(c, g); err != nil || q.TotalGPUs == 0 || q.TotalCores >= p.TotalCores {
		t.Errorf("with GPUs: %v cores, %v GPUs (CPU only: %d cores), %v", coresOf(q), gpusOf(q), p.TotalCores, err)
	}
	// Steps show the arithmetic.
	var md strings.Builder
	if err := p.Markdown(&md); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"M/G/c", "Erlang C", "bytes a reel", "lists"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("the plan's text lacks %q", want)
		}
	}
	// A target nothing meets.
	tight := base
	tight.P99 = time.Millisecond
	if _, err := Make(c, tight); !errors.Is(err, ErrInfeasible) {
		t.Errorf("a 1 ms p99: %v, want ErrInfeasible", err)
	}
}

func coresOf(p *Plan) any {
	if p == nil {
		return nil
	}
	return p.TotalCores
}
func shardsOf(p *Plan) any {
	if p == nil {
		return nil
	}
	return p.Shards
}
func gpusOf(p *Plan) any {
	if p == nil {
		return nil
	}
	return p.TotalGPUs
}

func TestMakeRefuses(t *testing.T) {
	c := fixture()
	ok := Target{Reels: 1_000_000, QPS: 1000, P99: 15 * time.Millisecond, Recall: 0.9}
	for name, mut := range map[string]func(*Target){
		"no reels":    func(t *Target) { t.Reels = 0 },
		"NaN qps":     func(t *Target) { t.QPS = math.NaN() },
		"no p99":      func(t *Target) { t.P99 = 0 },
		"recall 1":    func(t *Target) { t.Recall = 1 },
		"util 1":      func(t *Target) { t.MaxUtilisation = 1 },
		"k too large": func(t *Target) { t.K = 5000 },
		"n over k":    func(t *Target) { t.K, t.N = 10, 20 },
		"negative":    func(t *Target) { t.Users = -1 },
		"shards":      func(t *Target) { t.Reels, t.Shards = 10, 11 },
	} {
		tg := ok
		mut(&tg)
		if _, err := Make(c, tg); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	bad := fixture()
	bad.ANN = bad.ANN[:6] // one size
	if _, err := Make(bad, ok); err == nil {
		t.Error("a calibration of one catalogue size was taken")
	}
	bad = fixture()
	bad.Request.Quantiles[3] = -1
	if err := bad.Validate(); err == nil {
		t.Error("a negative quantile passed")
	}
}

func TestCalibrationFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "cal.json")
	c := fixture()
	if err := c.Save(path); err != nil {
		t.Fatal(err)
	}
	got, err := LoadCalibration(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Machine.CPU != c.Machine.CPU || len(got.ANN) != len(c.ANN) || got.Request.TotalUs != c.Request.TotalUs {
		t.Errorf("read back %+v", got.Machine)
	}
	b, _ := os.ReadFile(path)
	for name, data := range map[string][]byte{"truncated": b[:len(b)/2], "empty": nil, "wrong version": []byte(`{"version": 99}`)} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, data, 0o644)
		if _, err := LoadCalibration(p); err == nil || !strings.Contains(err.Error(), p) && name != "wrong version" {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := LoadCalibration(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestWriteReport(t *testing.T) {
	c := fixture()
	p, err := Make(c, Target{Reels: 50_000, QPS: 400, P99: 15 * time.Millisecond, Recall: 0.9, CoresPerReplica: 2, Shards: 1, Replicas: 1, NetworkRTT: -1})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ms := []Measured{{QPS: 100, Achieved: 100, P99Us: 4000}, {QPS: 300, Achieved: 300, P99Us: 6000}}
	if err := WriteReport(dir, Report{Calibration: c, Plan: p, Measured: ms, Sizes: []int64{1e6, 1e7}}); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(dir, "plan.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"qps-recall.svg", "p99-load.svg", "cost-size.svg"} {
		if !strings.Contains(string(md), "]("+f+")") {
			t.Errorf("plan.md does not link %s", f)
		}
		fh, err := os.Open(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		d := xml.NewDecoder(fh)
		n := 0
		for {
			_, err := d.Token()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			n++
		}
		fh.Close()
		if n < 20 {
			t.Errorf("%s: %d XML tokens", f, n)
		}
	}
	if !strings.Contains(string(md), "bench load") {
		t.Error("the measured points are not in the report")
	}
}

// TestReportInfeasible writes the report of a target no fleet meets (a
// memory wall at every size): the table of what was weighed and every
// chart (the cost chart empty, its title saying why).
func TestReportInfeasible(t *testing.T) {
	c := fixture()
	p, err := Make(c, Target{Reels: 1e7, Users: 1e9, QPS: 1000, P99: 15 * time.Millisecond, Recall: 0.9})
	if !errors.Is(err, ErrInfeasible) || p == nil {
		t.Fatalf("a billion users in 128 GiB: %v", err)
	}
	dir := t.TempDir()
	if err := WriteReport(dir, Report{Calibration: c, Plan: p, Sizes: []int64{1e6, 1e7}}); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(dir, "plan.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(md), "No fleet meets the target") || !strings.Contains(string(md), "more than 128.0 GiB") {
		t.Errorf("plan.md does not say why:\n%s", md)
	}
	for _, f := range []string{"qps-recall.svg", "p99-load.svg", "cost-size.svg"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := xml.Unmarshal(b, new(struct{})); err != nil || len(b) < 500 {
			t.Errorf("%s: %d bytes: %v", f, len(b), err)
		}
	}
}

// TestReplicasFewest checks the bisection over replicas against a walk
// from one replica up: the fewest replicas that keep the p99 and the
// utilisation bound.
func TestReplicasFewest(t *testing.T) {
	c := fixture()
	for _, qps := range []float64{50, 400, 3000, 20000} {
		tg := Target{Reels: 2e6, QPS: qps, P99: 20 * time.Millisecond, Recall: 0.9, Shards: 2}
		p, err := Make(c, tg)
		if err != nil {
			t.Fatalf("%v/s: %v", qps, err)
		}
		var fewest int
		for r := 1; r <= p.ReplicasPerShard; r++ {
			tg.Replicas = r
			q, err := Make(c, tg)
			if err != nil {
				t.Fatal(err)
			}
			if q.P99Us <= float64(tg.P99.Microseconds()) && q.Utilisation <= 0.7 {
				fewest = r
				break
			}
		}
		if fewest != p.ReplicasPerShard {
			t.Errorf("%v/s: the plan takes %d replicas a shard, the walk %d", qps, p.ReplicasPerShard, fewest)
		}
	}
}

// TestFitCV2 recovers the service variability a queue's p99 was made with,
// keeps the engine's where the measured tail is shorter than the model's,
// and a fitted calibration plans more replicas than the engine's spread.
func TestFitCV2(t *testing.T) {
	base := make([]float64, 1000)
	for i := range base {
		base[i] = 3000 + 2000*-math.Log(1-(float64(i)+0.5)/1000)
	}
	q := queue{Cores: 2, Lambda: 300, MeanUs: 2900, CV2: 6, Base: base}
	p99 := q.Quantile(0.99)
	q.CV2 = 0.03
	if got := fitCV2(q, p99); math.Abs(got-6) > 0.01 {
		t.Errorf("fitted cs² %v, made with 6", got)
	}
	if got := fitCV2(q, base[0]); got != 0.03 {
		t.Errorf("a p99 under the model's: cs² %v, want the engine's 0.03", got)
	}
	c := fixture()
	tg := Target{Reels: 1e6, QPS: 5000, P99: 40 * time.Millisecond, Recall: 0.9, CoresPerReplica: 4, Shards: 1}
	plain, err := Make(c, tg)
	if err != nil {
		t.Fatal(err)
	}
	c.Request.ServedUs = base
	c.Request.ServedRate = 50
	c.Request.ServedSaturationQPS = 600
	c.Request.LoadedRate, c.Request.LoadedP99Us = 300, 60000
	fitted, err := Make(c, tg)
	if err != nil {
		t.Fatal(err)
	}
	if fitted.ReplicasPerShard <= plain.ReplicasPerShard {
		t.Errorf("a burstier served stream: %d replicas, the engine's spread %d", fitted.ReplicasPerShard, plain.ReplicasPerShard)
	}
	c.Request.LoadedRate = 700 // past saturation
	if err := c.Validate(); err == nil {
		t.Error("a loaded point past saturation passed")
	}
}

// TestSmoothTail keeps the body and the p99 of a latency sample and tames
// one outlier at its top.
func TestSmoothTail(t *testing.T) {
	v := make([]float64, 3000)
	for i := range v {
		v[i] = 4000 + 1000*-math.Log(1-(float64(i)+0.5)/3000)
	}
	v[len(v)-1] = 40000 // one collector pause
	s := smoothTail(v)
	if !slices.IsSorted(s) || len(s) != len(v) {
		t.Fatal("not sorted samples")
	}
	for i := range 2800 {
		if s[i] != v[i] {
			t.Fatalf("sample %d changed", i)
		}
	}
	if p99, want := s[2970], v[2970]; math.Abs(p99-want)/want > 0.05 {
		t.Errorf("p99 %v, was %v", p99, want)
	}
	if s[len(s)-1] > 20000 {
		t.Errorf("the outlier is still the maximum: %v", s[len(s)-1])
	}
	if short := v[:100]; !slices.Equal(smoothTail(short), short) {
		t.Error("a short sample was changed")
	}
}
