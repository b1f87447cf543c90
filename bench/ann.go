package bench

import (
	"fmt"
	"io"
	"runtime"
	"slices"
	"time"

	"github.com/reelrank/reelrank/ann"
	"github.com/reelrank/reelrank/kernels"
)

// ANNConfig is one `reelrank bench ann` run: a data set, an index built from
// it (or loaded from IndexPath), and the nprobe values to sweep.
type ANNConfig struct {
	Base, Query, GT string // .fvecs base and queries, .ivecs ground truth (best first)
	IndexPath       string // load this index instead of building one
	Index           ann.Options
	K               int     // results per query
	NProbes         []int   // one result row each
	RefineFactor    int     // candidates re-ranked: K*RefineFactor (0: the index's default)
	RadiusWeight    float32 // ann.SearchOptions.RadiusWeight (0: the default)
	Queries         int     // use the first Queries queries (0: all)
	Threads         int     // for the batch pass (0: GOMAXPROCS)
	// AddVectors, when positive, ends the run with the online-update test:
	// one goroutine searches at the first nprobe, alone for a few seconds
	// (its idle p99), then while another adds that many base vectors again
	// under new ids, in batches of AddBatch, on one core.
	AddVectors int
	AddBatch   int
	// Warmup queries run once, untimed, before each single-thread pass
	// (0: none), as the FAISS harness does.
	Warmup int
	// SavePath, when set, is where a built index is written (see IndexPath).
	SavePath string
	// Stages adds a pass, after the timed ones, that times each stage of
	// every query (ann.SearchOptions.Stages) and reports the means.
	Stages bool
}

// StageRow is the mean time of one query's stages in microseconds, from
// the stage-timed pass.
type StageRow struct {
	ProbeUs     float64 `json:"probe_us"`
	TableUs     float64 `json:"table_us"`
	ScanUs      float64 `json:"scan_us"`
	ReservoirUs float64 `json:"reservoir_us"`
	GatherUs    float64 `json:"gather_us"`
	RefineUs    float64 `json:"refine_us"`
	SelectUs    float64 `json:"select_us"`
	TotalUs     float64 `json:"total_us"`
	Scanned     float64 `json:"scanned"` // vectors scored a query
	Offered     float64 `json:"offered"` // of them, offered to the candidate selector
}

// stageRow turns summed stage times into means a query.
func stageRow(st ann.Stages) *StageRow {
	n := float64(max(st.Searches, 1))
	us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 / n }
	return &StageRow{ProbeUs: us(st.Probe), TableUs: us(st.Table), ScanUs: us(st.Scan), ReservoirUs: us(st.Reservoir),
		GatherUs: us(st.Gather), RefineUs: us(st.Refine), SelectUs: us(st.Select), TotalUs: us(st.Total()),
		Scanned: float64(st.Scanned) / n, Offered: float64(st.Offered) / n}
}

// AddRow is the result of the online-update test.
type AddRow struct {
	Added           int     `json:"added"`
	Batch           int     `json:"batch"`
	AddPerS         float64 `json:"add_per_s"`
	NProbe          int     `json:"nprobe"`
	SearchP99IdleUs float64 `json:"search_p99_idle_us"`
	SearchP99AddUs  float64 `json:"search_p99_during_add_us"`
	SearchesDuring  int     `json:"searches_during_add"`
	CPU             string  `json:"cpu"`
}

// ANNRow is one line of the sweep; the JSON names are the ones the command
// line documents.
type ANNRow struct {
	NProbe         int       `json:"nprobe"`
	Lists          int       `json:"lists"`
	K              int       `json:"k"`
	RefineFactor   int       `json:"refine"`
	RecallAt10     float64   `json:"recall@10"`
	RecallAt100    float64   `json:"recall@100"`
	RecallAtK      float64   `json:"recall@k"`
	QPS1Thread     float64   `json:"qps_1thread"`
	QPSBatch       float64   `json:"qps_batch"`
	P50us          float64   `json:"p50_us"`
	P99us          float64   `json:"p99_us"`
	BytesPerVector float64   `json:"bytes_per_vector"`
	BuildS         float64   `json:"build_s"`
	Vectors        int       `json:"vectors"`
	Queries        int       `json:"queries"`
	CPU            string    `json:"cpu"`
	Stages         *StageRow `json:"stages,omitempty"`
}

// BuildIndex trains an index on base and adds every vector under its row
// number, returning the time both took.
func BuildIndex(base ann.Vectors, opt ann.Options) (*ann.Index, time.Duration, error) {
	return BuildIndexIDs(base, nil, opt)
}

// BuildIndexIDs is BuildIndex with the vectors' ids given: ids[i] names
// row i (nil: the row numbers). It is ann.Build, timed.
func BuildIndexIDs(base ann.Vectors, ids []int64, opt ann.Options) (*ann.Index, time.Duration, error) {
	start := time.Now()
	ix, err := ann.Build(base, ids, opt)
	if err != nil {
		return nil, 0, err
	}
	return ix, time.Since(start), nil
}

// RunANN builds (or loads) the index, then for each nprobe measures recall
// against the ground truth, single-thread QPS one query at a time on one
// core with p50/p99 latency, and batch QPS on all cores.
func RunANN(cfg ANNConfig, progress io.Writer) ([]ANNRow, error) {
	rows, _, err := runANN(cfg, progress)
	return rows, err
}

// RunANNWithAdds is RunANN followed by the online-update test of
// cfg.AddVectors (which must be positive and at most the base size).
func RunANNWithAdds(cfg ANNConfig, progress io.Writer) ([]ANNRow, *AddRow, error) {
	if cfg.AddVectors <= 0 {
		return nil, nil, fmt.Errorf("bench ann: add test of %d vectors", cfg.AddVectors)
	}
	return runANN(cfg, progress)
}

func runANN(cfg ANNConfig, progress io.Writer) ([]ANNRow, *AddRow, error) {
	if cfg.K < 1 {
		return nil, nil, fmt.Errorf("bench ann: k = %d, want >= 1", cfg.K)
	}
	if len(cfg.NProbes) == 0 {
		return nil, nil, fmt.Errorf("bench ann: no nprobe values")
	}
	queries, err := ann.ReadFvecs(cfg.Query, cfg.Queries)
	if err != nil {
		return nil, nil, err
	}
	gt, gtDim, err := ann.ReadIvecs(cfg.GT, cfg.Queries)
	if err != nil {
		return nil, nil, err
	}
	nq := queries.Len()
	if len(gt)/gtDim != nq {
		return nil, nil, fmt.Errorf("bench ann: %d queries but %d ground-truth rows", nq, len(gt)/gtDim)
	}
	if gtDim < cfg.K {
		return nil, nil, fmt.Errorf("bench ann: ground truth has %d neighbours a query, k = %d", gtDim, cfg.K)
	}
	var ix *ann.Index
	var build time.Duration
	var base ann.Vectors
	if cfg.IndexPath != "" {
		t0 := time.Now()
		if ix, err = ann.Open(cfg.IndexPath); err != nil {
			return nil, nil, err
		}
		defer ix.Close()
		fmt.Fprintf(progress, "opened %s (%d vectors) in %.0f ms\n", cfg.IndexPath, ix.Len(), float64(time.Since(t0).Microseconds())/1e3)
	}
	if cfg.IndexPath == "" || cfg.AddVectors > 0 {
		fmt.Fprintf(progress, "reading %s...\n", cfg.Base)
		if base, err = ann.ReadFvecs(cfg.Base, 0); err != nil {
			return nil, nil, err
		}
	}
	if ix == nil {
		fmt.Fprintf(progress, "building an index of %d vectors...\n", base.Len())
		if ix, build, err = BuildIndex(base, cfg.Index); err != nil {
			return nil, nil, err
		}
		o := ix.Options()
		fmt.Fprintf(progress, "built in %.1f s: %d lists, M %d, %d-bit, refine copy %v\n", build.Seconds(), o.Lists, o.M, o.Bits, o.Refine)
		if cfg.SavePath != "" {
			if err := ix.Save(cfg.SavePath); err != nil {
				return nil, nil, fmt.Errorf("bench ann: %w", err)
			}
		}
	}
	if queries.Dim != ix.Options().Dim {
		return nil, nil, fmt.Errorf("bench ann: queries of dimension %d, index of %d", queries.Dim, ix.Options().Dim)
	}
	st := ix.Stats()
	var rows []ANNRow
	for _, nprobe := range cfg.NProbes {
		opt := ann.SearchOptions{K: cfg.K, NProbe: nprobe, RefineFactor: cfg.RefineFactor, RadiusWeight: cfg.RadiusWeight}
		rf := cfg.RefineFactor
		if rf == 0 {
			rf = ann.DefaultRefineFactor
		}
		row := ANNRow{NProbe: nprobe, Lists: st.Lists, K: cfg.K, RefineFactor: rf, BytesPerVector: st.BytesPerVector(),
			BuildS: build.Seconds(), Vectors: st.Vectors, Queries: nq, CPU: kernels.CPUName()}

		// One query at a time on one core.
		prev := runtime.GOMAXPROCS(1)
		for i := range min(cfg.Warmup, nq) {
			if _, err := ix.Search(queries.Row(i), opt); err != nil {
				runtime.GOMAXPROCS(prev)
				return rows, nil, fmt.Errorf("bench ann: query %d: %w", i, err)
			}
		}
		lat := make([]time.Duration, nq)
		results := make([][]kernels.Result, nq)
		start := time.Now()
		for i := range nq {
			t0 := time.Now()
			res, err := ix.Search(queries.Row(i), opt)
			lat[i] = time.Since(t0)
			if err != nil {
				runtime.GOMAXPROCS(prev)
				return rows, nil, fmt.Errorf("bench ann: query %d: %w", i, err)
			}
			results[i] = res
		}
		el := time.Since(start)
		runtime.GOMAXPROCS(prev)
		row.QPS1Thread = float64(nq) / el.Seconds()
		slices.Sort(lat)
		row.P50us = float64(lat[nq/2].Nanoseconds()) / 1e3
		row.P99us = float64(lat[min(nq-1, nq*99/100)].Nanoseconds()) / 1e3

		for i := range nq {
			truth := gt[i*gtDim : (i+1)*gtDim]
			row.RecallAt10 += recallAt(results[i], truth, min(10, cfg.K))
			row.RecallAt100 += recallAt(results[i], truth, min(100, cfg.K))
			row.RecallAtK += recallAt(results[i], truth, cfg.K)
		}
		row.RecallAt10 /= float64(nq)
		row.RecallAt100 /= float64(nq)
		row.RecallAtK /= float64(nq)

		// All queries in one call on all cores.
		start = time.Now()
		if _, err := ix.SearchBatch(queries.Data, opt, cfg.Threads); err != nil {
			return rows, nil, fmt.Errorf("bench ann: batch: %w", err)
		}
		row.QPSBatch = float64(nq) / time.Since(start).Seconds()

		if cfg.Stages {
			var st ann.Stages
			so := opt
			so.Stages = &st
			prev := runtime.GOMAXPROCS(1)
			for i := range nq {
				if _, err := ix.Search(queries.Row(i), so); err != nil {
					runtime.GOMAXPROCS(prev)
					return rows, nil, fmt.Errorf("bench ann: query %d: %w", i, err)
				}
			}
			runtime.GOMAXPROCS(prev)
			row.Stages = stageRow(st)
		}
		rows = append(rows, row)
		fmt.Fprintf(progress, "nprobe %d: recall@%d %.4f, %.0f QPS\n", nprobe, cfg.K, row.RecallAtK, row.QPS1Thread)
	}
	if cfg.AddVectors <= 0 {
		return rows, nil, nil
	}
	add, err := addWhileSearching(ix, base, queries, cfg)
	return rows, add, err
}

// addWhileSearching measures the search latency at the first nprobe with
// one goroutine searching in a loop, first alone for a few seconds (the idle
// p99), then while another goroutine re-adds the first cfg.AddVectors base
// vectors under new ids in batches on one core; it reports the add rate and
// both p99s, taken the same way.
func addWhileSearching(ix *ann.Index, base, queries ann.Vectors, cfg ANNConfig) (*AddRow, error) {
	n := min(cfg.AddVectors, base.Len())
	batch := cfg.AddBatch
	if batch <= 0 {
		batch = 1000
	}
	opt := ann.SearchOptions{K: cfg.K, NProbe: cfg.NProbes[0], RefineFactor: cfg.RefineFactor}
	type searchRun struct {
		lat []time.Duration
		err error
	}
	search := func(stop <-chan struct{}, out chan<- searchRun) {
		var r searchRun
		for i := 0; ; i++ {
			select {
			case <-stop:
				out <- r
				return
			default:
			}
			t0 := time.Now()
			if _, r.err = ix.Search(queries.Row(i%queries.Len()), opt); r.err != nil {
				out <- r
				return
			}
			r.lat = append(r.lat, time.Since(t0))
		}
	}
	p99 := func(lat []time.Duration) float64 {
		if len(lat) == 0 {
			return 0
		}
		slices.Sort(lat)
		return float64(lat[min(len(lat)-1, len(lat)*99/100)].Nanoseconds()) / 1e3
	}
	out := make(chan searchRun)

	stop := make(chan struct{})
	go search(stop, out)
	time.Sleep(addIdleWindow)
	close(stop)
	idle := <-out
	if idle.err != nil {
		return nil, fmt.Errorf("bench ann: idle search: %w", idle.err)
	}

	stop = make(chan struct{})
	go search(stop, out)
	offset := int64(1) << 40 // ids no base vector has
	ids := make([]int64, batch)
	start := time.Now()
	var addErr error
	for lo := 0; lo < n && addErr == nil; lo += batch {
		hi := min(n, lo+batch)
		for i := lo; i < hi; i++ {
			ids[i-lo] = offset + int64(i)
		}
		addErr = ix.AddThreads(ids[:hi-lo], base.Data[lo*base.Dim:hi*base.Dim], 1)
	}
	el := time.Since(start)
	close(stop)
	during := <-out
	if addErr != nil {
		return nil, fmt.Errorf("bench ann: add: %w", addErr)
	}
	if during.err != nil {
		return nil, fmt.Errorf("bench ann: search during adds: %w", during.err)
	}
	return &AddRow{Added: n, Batch: batch, AddPerS: float64(n) / el.Seconds(), NProbe: opt.NProbe,
		SearchP99IdleUs: p99(idle.lat), SearchP99AddUs: p99(during.lat), SearchesDuring: len(during.lat),
		CPU: kernels.CPUName()}, nil
}

// addIdleWindow is how long the add test searches alone for its idle p99.
const addIdleWindow = 3 * time.Second

// recallAt is |returned top-k ∩ true top-k| / k.
func recallAt(got []kernels.Result, truth []int32, k int) float64 {
	want := make(map[int64]struct{}, k)
	for _, id := range truth[:k] {
		want[int64(id)] = struct{}{}
	}
	hit := 0
	for _, r := range got[:min(k, len(got))] {
		if _, ok := want[r.ID]; ok {
			hit++
		}
	}
	return float64(hit) / float64(k)
}
