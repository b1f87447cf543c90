package bench

import (
	"fmt"
	"strings"
)

// The metrics of each command's Run, named "key=value/.../figure" where a
// command measures at several points (benchstat's sub-benchmark names), so
// that PlotHistory can find the points again:
//
//	kernels  Kernel/shape.../unit-figure   e.g. FastScan4/M=64/n=32768 in Gcodes/s
//	ann      nprobe=N/recall@k, nprobe=N/qps_1thread, nprobe=N/p99_us, ...
//	load     qps=R/p99_us, qps=R/achieved_qps, qps=R/errors, ...

// KernelMetricName names a kernel figure's metric: the kernel and its
// shape, the shape's spaces made into '/'.
func KernelMetricName(f Figure) string {
	return f.Kernel + "/" + strings.Join(strings.Fields(f.Shape), "/")
}

// AddKernelFigures adds the figures of reps repetitions of RunKernels to r,
// each kernel's values across the repetitions as its samples.
func (r *Run) AddKernelFigures(reps [][]Figure) {
	var order []Figure
	samples := map[string][]float64{}
	for _, figs := range reps {
		for _, f := range figs {
			name := KernelMetricName(f)
			if _, ok := samples[name]; !ok {
				order = append(order, f)
			}
			samples[name] = append(samples[name], f.Value)
		}
	}
	for _, f := range order {
		r.Add(KernelMetricName(f), f.Unit, 0, samples[KernelMetricName(f)]...)
	}
}

// AddANNRows adds the rows of reps repetitions of RunANN to r: per nprobe
// the recalls, queries a second and latencies, each repetition a sample;
// the index's bytes a vector and build time once.
func (r *Run) AddANNRows(reps [][]ANNRow, add *AddRow) {
	type fig struct {
		name, unit string
		get        func(ANNRow) float64
	}
	figs := []fig{
		{"recall@10", "recall", func(a ANNRow) float64 { return a.RecallAt10 }},
		{"recall@100", "recall", func(a ANNRow) float64 { return a.RecallAt100 }},
		{"recall@k", "recall", func(a ANNRow) float64 { return a.RecallAtK }},
		{"qps_1thread", "qps", func(a ANNRow) float64 { return a.QPS1Thread }},
		{"qps_batch", "qps", func(a ANNRow) float64 { return a.QPSBatch }},
		{"p50_us", "us", func(a ANNRow) float64 { return a.P50us }},
		{"p99_us", "us", func(a ANNRow) float64 { return a.P99us }},
	}
	var nprobes []int
	samples := map[string][]float64{}
	for _, rows := range reps {
		for _, row := range rows {
			prefix := fmt.Sprintf("nprobe=%d/", row.NProbe)
			if _, ok := samples[prefix+figs[0].name]; !ok {
				nprobes = append(nprobes, row.NProbe)
			}
			for _, f := range figs {
				samples[prefix+f.name] = append(samples[prefix+f.name], f.get(row))
			}
		}
	}
	for _, np := range nprobes {
		prefix := fmt.Sprintf("nprobe=%d/", np)
		for _, f := range figs {
			r.Add(prefix+f.name, f.unit, 0, samples[prefix+f.name]...)
		}
	}
	if len(reps) > 0 && len(reps[0]) > 0 {
		first := reps[0][0]
		if first.BytesPerVector > 0 {
			r.Add("bytes_per_vector", "bytes", first.BytesPerVector)
		}
		if first.BuildS > 0 {
			r.Add("build_s", "s", first.BuildS)
		}
		r.Settings["vectors"] = fmt.Sprint(first.Vectors)
		r.Settings["queries"] = fmt.Sprint(first.Queries)
	}
	if add != nil {
		r.Add(fmt.Sprintf("add/nprobe=%d/add_per_s", add.NProbe), "1/s", add.AddPerS)
		r.Add(fmt.Sprintf("add/nprobe=%d/search_p99_idle_us", add.NProbe), "us", add.SearchP99IdleUs)
		r.Add(fmt.Sprintf("add/nprobe=%d/search_p99_during_add_us", add.NProbe), "us", add.SearchP99AddUs)
	}
}

// AddLoadSteps adds the steps of a Load to r, one point an offered rate:
// latency percentiles of the successes, the achieved rate and goodput,
// and the errors. A rate offered twice (bench ops' before, during and
// after) gets its step number too.
func (r *Run) AddLoadSteps(steps []LoadStep) { r.AddLoadReps([][]LoadStep{steps}) }

// AddLoadReps adds the steps of reps repetitions of one Load, each
// repetition's figure at a step a sample of its metric.
func (r *Run) AddLoadReps(reps [][]LoadStep) {
	type fig struct {
		name, unit string
		get        func(LoadStep) float64
	}
	figs := []fig{
		{"p50_us", "us", func(s LoadStep) float64 { return s.P50us }},
		{"p90_us", "us", func(s LoadStep) float64 { return s.P90us }},
		{"p99_us", "us", func(s LoadStep) float64 { return s.P99us }},
		{"p999_us", "us", func(s LoadStep) float64 { return s.P999us }},
		{"max_us", "us", func(s LoadStep) float64 { return s.MaxUs }},
		{"achieved_qps", "qps", func(s LoadStep) float64 { return s.Achieved }},
		{"goodput_qps", "qps", func(s LoadStep) float64 { return s.Goodput }},
		{"errors", "errors", func(s LoadStep) float64 { return float64(s.Errors) }},
	}
	var order []string
	samples := map[string][]float64{}
	for _, steps := range reps {
		seen := map[string]int{}
		for _, s := range steps {
			prefix := fmt.Sprintf("qps=%g", s.Offered)
			if n := seen[prefix]; n > 0 {
				seen[prefix] = n + 1
				prefix = fmt.Sprintf("%s/step=%d", prefix, n+1)
			} else {
				seen[prefix] = 1
			}
			prefix += "/"
			if _, ok := samples[prefix+figs[0].name]; !ok {
				order = append(order, prefix)
			}
			for _, f := range figs {
				samples[prefix+f.name] = append(samples[prefix+f.name], f.get(s))
			}
		}
	}
	for _, prefix := range order {
		for _, f := range figs {
			if xs := samples[prefix+f.name]; len(xs) > 1 {
				r.Add(prefix+f.name, f.unit, 0, xs...)
			} else {
				r.Add(prefix+f.name, f.unit, xs[0])
			}
		}
	}
}
