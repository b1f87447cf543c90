package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/reelrank/reelrank/ann"
	"github.com/reelrank/reelrank/bench"
	"github.com/reelrank/reelrank/kernels"
	"github.com/reelrank/reelrank/modeldir"
)

// indexFlags are the index options both `index` and `bench ann` take.
type indexFlags struct {
	lists, m, bits int
	metric, refine string
	seed           uint64
	threads        int
	opq, residual  bool
}

func (f *indexFlags) register(fs *flag.FlagSet) {
	fs.IntVar(&f.lists, "lists", 0, "inverted lists (coarse centroids; 0: about 2·√n, ann.DefaultLists)")
	fs.IntVar(&f.m, "pq", 0, "PQ sub-quantizers, a divisor of the dimension (default dim/2)")
	fs.IntVar(&f.bits, "bits", 4, "bits per PQ code: 4 (fast-scan) or 8")
	fs.StringVar(&f.metric, "metric", "ip", "ip (inner product) or l2")
	fs.StringVar(&f.refine, "refine-store", "f16", "copy kept for exact re-ranking: none, f16 or f32")
	fs.Uint64Var(&f.seed, "seed", 1, "training seed")
	fs.IntVar(&f.threads, "threads", 0, "threads for training and adds (0: all cores)")
	fs.BoolVar(&f.opq, "opq", false, "learn an OPQ rotation before quantizing")
	fs.BoolVar(&f.residual, "residual", false, "l2: quantize residuals from the list centroid (ip always does)")
}

func (f *indexFlags) options() (ann.Options, error) {
	metric, err := kernels.ParseMetric(f.metric)
	if err != nil {
		return ann.Options{}, err
	}
	refine, err := ann.ParseRefine(f.refine)
	if err != nil {
		return ann.Options{}, err
	}
	return ann.Options{Metric: metric, Lists: f.lists, M: f.m, Bits: f.bits, Refine: refine, Seed: f.seed, Threads: f.threads,
		OPQ: f.opq, Residual: f.residual}, nil
}

func cmdIndex(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("index", flag.ContinueOnError)
	fs.SetOutput(stderr)
	vectors := fs.String("vectors", "", "vectors to index (.fvecs, .bvecs or IDX)")
	out := fs.String("out", "", "index file to write")
	limit := fs.Int("limit", 0, "index only the first N vectors (0: all)")
	idsFile := fs.String("ids", "", "file of one id per line naming the vectors (default: row numbers)")
	asJSON := fs.Bool("json", false, "print one JSON object")
	var f indexFlags
	f.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *vectors == "" || *out == "" {
		return errors.New("index: --vectors and --out are required")
	}
	opt, err := f.options()
	if err != nil {
		return fmt.Errorf("index: %w", err)
	}
	base, err := ann.ReadVectors(*vectors, *limit)
	if err != nil {
		return err
	}
	var ids []int64
	if *idsFile != "" {
		if ids, err = modeldir.ReadIDs(*idsFile, base.Len()); err != nil {
			return fmt.Errorf("index: %w", err)
		}
	}
	fmt.Fprintf(stderr, "building an index of %d vectors of dimension %d...\n", base.Len(), base.Dim)
	ix, build, err := bench.BuildIndexIDs(base, ids, opt)
	if err != nil {
		return fmt.Errorf("index: %w", err)
	}
	if err := ix.Save(*out); err != nil {
		return err
	}
	st := ix.Stats()
	summary := struct {
		Out            string  `json:"out"`
		Vectors        int     `json:"vectors"`
		Dim            int     `json:"dim"`
		Lists          int     `json:"lists"`
		EmptyLists     int     `json:"empty_lists"`
		MaxList        int     `json:"max_list"`
		BytesPerVector float64 `json:"bytes_per_vector"`
		BuildS         float64 `json:"build_s"`
	}{*out, st.Vectors, base.Dim, st.Lists, st.Empty, st.MaxList, st.BytesPerVector(), build.Seconds()}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(summary)
	}
	fmt.Fprintf(stdout, "%s: %d vectors of dimension %d in %d lists (%d empty, longest %d), %.1f bytes a vector, built in %.1f s\n",
		summary.Out, summary.Vectors, summary.Dim, summary.Lists, summary.EmptyLists, summary.MaxList, summary.BytesPerVector, summary.BuildS)
	return nil
}

func cmdBenchANN(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench ann", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg bench.ANNConfig
	fs.StringVar(&cfg.Base, "base", "", "base vectors (.fvecs)")
	fs.StringVar(&cfg.Query, "query", "", "query vectors (.fvecs)")
	fs.StringVar(&cfg.GT, "gt", "", "ground truth (.ivecs, best first)")
	fs.StringVar(&cfg.IndexPath, "index", "", "use this index file instead of building one from --base")
	fs.IntVar(&cfg.K, "k", 10, "results per query")
	nprobes := fs.String("nprobe", "1,4,16,64", "comma-separated nprobe values, one result line each")
	fs.IntVar(&cfg.RefineFactor, "refine", 0, "re-rank the best k*refine candidates exactly (0: the index's default, ann.DefaultRefineFactor)")
	fs.IntVar(&cfg.Queries, "queries", 0, "use the first N queries (0: all)")
	fs.IntVar(&cfg.AddVectors, "add", 0, "then add N base vectors again under new ids on one core while searching at the first nprobe")
	fs.IntVar(&cfg.AddBatch, "add-batch", 1000, "vectors per Add call in the --add test")
	radius := fs.Float64("radius", 0, "probe-ranking radius weight (0: the default, negative: centroid score alone)")
	fs.IntVar(&cfg.Warmup, "warmup", 200, "queries run untimed before each single-thread pass")
	fs.BoolVar(&cfg.Stages, "stages", false, "add a pass that times each stage of a query and print the means")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the run to this file")
	saveIndex := fs.String("save", "", "after building, write the index to this file (reuse it with --index)")
	asJSON := fs.Bool("json", false, "one JSON object per nprobe")
	count := fs.Int("count", 1, "repetitions, the history's samples (the table shows the last; with --base each builds the index again: use --index)")
	hist := addHistoryFlag(fs)
	var f indexFlags
	f.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if cfg.Query == "" || cfg.GT == "" || (cfg.Base == "" && cfg.IndexPath == "") {
		return errors.New("bench ann: --query, --gt and one of --base or --index are required")
	}
	if *count < 1 || (*count > 1 && cfg.AddVectors > 0) {
		return fmt.Errorf("bench ann: --count %d: want at least 1, and 1 with --add", *count)
	}
	var err error
	if cfg.NProbes, err = parseInts(*nprobes); err != nil {
		return fmt.Errorf("bench ann: --nprobe: %w", err)
	}
	if cfg.Index, err = f.options(); err != nil {
		return fmt.Errorf("bench ann: %w", err)
	}
	cfg.Threads = f.threads
	cfg.SavePath = *saveIndex
	cfg.RadiusWeight = float32(*radius)
	stop, err := startCPUProfile(*cpuProfile)
	if err != nil {
		return fmt.Errorf("bench ann: %w", err)
	}
	defer stop()
	start := time.Now()
	var rows []bench.ANNRow
	var add *bench.AddRow
	var reps [][]bench.ANNRow
	for range *count {
		if cfg.AddVectors > 0 {
			rows, add, err = bench.RunANNWithAdds(cfg, stderr)
		} else {
			rows, err = bench.RunANN(cfg, stderr)
		}
		if err != nil {
			break
		}
		reps = append(reps, rows)
	}
	if err == nil {
		rec := bench.NewRun("ann")
		settingsOf(fs, &rec)
		rec.AddANNRows(reps, add)
		recordRun(hist, rec, stderr)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		for _, r := range rows {
			if e := enc.Encode(r); e != nil {
				return e
			}
		}
		if add != nil {
			if e := enc.Encode(add); e != nil {
				return e
			}
		}
		return err
	}
	tw := tabwriter.NewWriter(stdout, 2, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "nprobe\tk\trefine\trecall@10\trecall@100\trecall@k\tqps_1thread\tqps_batch\tp50_us\tp99_us\tbytes/vec\tbuild_s\t")
	for _, r := range rows {
		fmt.Fprintf(tw, "%d\t%d\t%d\t%.4f\t%.4f\t%.4f\t%.0f\t%.0f\t%.0f\t%.0f\t%.1f\t%.1f\t\n", r.NProbe, r.K, r.RefineFactor,
			r.RecallAt10, r.RecallAt100, r.RecallAtK, r.QPS1Thread, r.QPSBatch, r.P50us, r.P99us, r.BytesPerVector, r.BuildS)
	}
	if e := tw.Flush(); e != nil {
		return e
	}
	if cfg.Stages {
		fmt.Fprintln(stdout, "where the time of one query goes (us, a pass timed stage by stage):")
		tw = tabwriter.NewWriter(stdout, 2, 8, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "nprobe\tprobe\ttable\tscan\treservoir\tgather\trefine\tselect\ttotal\tscanned\toffered\t")
		for _, r := range rows {
			if st := r.Stages; st != nil {
				fmt.Fprintf(tw, "%d\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t\n", r.NProbe, st.ProbeUs, st.TableUs,
					st.ScanUs, st.ReservoirUs, st.GatherUs, st.RefineUs, st.SelectUs, st.TotalUs, st.Scanned, st.Offered)
			}
		}
		if e := tw.Flush(); e != nil {
			return e
		}
	}
	if add != nil {
		fmt.Fprintf(stdout, "add: %d vectors in batches of %d on one core: %.0f a second; search p99 at nprobe %d: %.0f us idle, %.0f us during the adds (%d searches)\n",
			add.Added, add.Batch, add.AddPerS, add.NProbe, add.SearchP99IdleUs, add.SearchP99AddUs, add.SearchesDuring)
	}
	fmt.Fprintf(stdout, "%s, simd %s, %.0f s in all\n", kernels.CPUName(), kernels.Describe(), time.Since(start).Seconds())
	return err
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, p := range strings.Split(s, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || v < 1 {
			return nil, fmt.Errorf("%q is not a positive integer", p)
		}
		out = append(out, v)
	}
	return out, nil
}
