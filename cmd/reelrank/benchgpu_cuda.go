//go:build cuda

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/reelrank/reelrank/ann"
	"github.com/reelrank/reelrank/features"
	"github.com/reelrank/reelrank/kernels"
	"github.com/reelrank/reelrank/ranker"
)

// gpuFigure is one line of bench gpu.
type gpuFigure struct {
	Name       string  `json:"name"`
	Device     string  `json:"device"`
	Precision  string  `json:"precision,omitempty"`
	Requests   int     `json:"requests,omitempty"`
	Candidates int     `json:"candidates,omitempty"`
	Queries    int     `json:"queries,omitempty"`
	Reels      int     `json:"reels,omitempty"`
	K          int     `json:"k,omitempty"`
	P50us      float64 `json:"p50_us"`
	P99us      float64 `json:"p99_us"`
	MCandPerS  float64 `json:"mcand_per_s,omitempty"`
	MaxAbsDiff float64 `json:"max_abs_diff_vs_cpu"`
}

func benchGPU(cfg benchGPUConfig, stdout, stderr io.Writer) error {
	st, err := features.NewStore(features.Config{})
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(cfg.seed, 1))
	var figs []gpuFigure
	emit := func(f gpuFigure) {
		figs = append(figs, f)
		if cfg.record != nil {
			name := f.Name + "/" + f.Device
			if f.Precision != "" {
				name += "/" + f.Precision
			}
			if f.Requests > 0 {
				name += fmt.Sprintf("/requests=%d", f.Requests)
			}
			if f.Queries > 0 {
				name += fmt.Sprintf("/queries=%d", f.Queries)
			}
			cfg.record(name, f.P50us, f.P99us, f.MCandPerS)
		}
		if cfg.asJSON {
			b, _ := json.Marshal(f)
			fmt.Fprintln(stdout, string(b))
			return
		}
		if f.MCandPerS > 0 {
			fmt.Fprintf(stdout, "%-8s %-5s %4d req × %d cand  p50 %9.1f µs  p99 %9.1f µs  %8.1f M cand/s  max |Δ| vs CPU %.2g  (%s)\n",
				f.Name, f.Precision, f.Requests, f.Candidates, f.P50us, f.P99us, f.MCandPerS, f.MaxAbsDiff, f.Device)
			return
		}
		fmt.Fprintf(stdout, "%-8s top-%d of %d × %d: %3d queries  p50 %9.1f µs  p99 %9.1f µs  max |Δ| vs CPU %.2g  (%s)\n",
			f.Name, f.K, f.Reels, cfg.dim, f.Queries, f.P50us, f.P99us, f.MaxAbsDiff, f.Device)
	}
	for _, prec := range []ranker.Precision{ranker.F32, ranker.BF16} {
		m, err := ranker.NewMultitask(st.Spec(), ranker.Config{Hidden: []int{256, 256, 128}, Precision: prec}, rng)
		if err != nil {
			return err
		}
		g, err := ranker.NewCUDAScorer(m, 0)
		if err != nil {
			return fmt.Errorf("bench gpu: %w", err)
		}
		maxR := slices.Max(cfg.requests)
		ins := make([]ranker.Inputs, maxR)
		for i := range ins {
			ins[i] = randomInputs(m.Spec, cfg.candidates, rng)
		}
		outs := make([]*ranker.Scores, maxR)
		for i := range outs {
			outs[i] = new(ranker.Scores)
		}
		for _, R := range cfg.requests {
			if err := g.ScoreBatch(ins[:R], outs[:R]); err != nil { // warm-up
				g.Close()
				return fmt.Errorf("bench gpu: %w", err)
			}
			var diff float64
			var want ranker.Scores
			for r := range min(R, 4) {
				if err := m.ScoreInputs(ins[r], &want); err != nil {
					g.Close()
					return err
				}
				for i, v := range want.Probs {
					diff = max(diff, math.Abs(float64(v-outs[r].Probs[i])))
				}
			}
			lat := make([]time.Duration, cfg.rounds)
			for i := range lat {
				t0 := time.Now()
				if err := g.ScoreBatch(ins[:R], outs[:R]); err != nil {
					g.Close()
					return fmt.Errorf("bench gpu: %w", err)
				}
				lat[i] = time.Since(t0)
			}
			p50, p99 := percentiles(lat)
			emit(gpuFigure{Name: "ranker", Device: g.Backend(), Precision: prec.String(), Requests: R, Candidates: cfg.candidates,
				P50us: us(p50), P99us: us(p99), MCandPerS: float64(R*cfg.candidates) / p50.Seconds() / 1e6, MaxAbsDiff: diff})
		}
		if err := g.Close(); err != nil {
			return err
		}
	}

	vecs := make([]float32, cfg.reels*cfg.dim)
	for i := range vecs {
		vecs[i] = float32(rng.NormFloat64())
	}
	ex, err := ann.NewExactCUDA(vecs, cfg.dim, kernels.InnerProduct, 0)
	if err != nil {
		return fmt.Errorf("bench gpu: %w", err)
	}
	defer ex.Close()
	cpu, err := ann.NewExactCPU(vecs[:min(len(vecs), 20_000*cfg.dim)], cfg.dim, kernels.InnerProduct)
	if err != nil {
		return err
	}
	for _, nq := range cfg.queries {
		q := make([]float32, nq*cfg.dim)
		for i := range q {
			q[i] = float32(rng.NormFloat64())
		}
		rows := make([]int32, nq*cfg.k)
		scores := make([]float32, nq*cfg.k)
		if err := ex.TopK(q, cfg.k, rows, scores); err != nil {
			return fmt.Errorf("bench gpu: %w", err)
		}
		// The GPU's scores of its rows against the CPU's exact ones.
		var diff float64
		cand := rows[:cfg.k]
		if cfg.reels > 20_000 {
			cand = slices.DeleteFunc(slices.Clone(cand), func(r int32) bool { return r < 0 || r >= 20_000 })
		}
		ref := make([]float32, len(cand))
		if err := cpu.Rescore(q[:cfg.dim], cand, ref); err != nil {
			return err
		}
		for i, r := range cand {
			j := slices.Index(rows[:cfg.k], r)
			diff = max(diff, math.Abs(float64(ref[i]-scores[j])))
		}
		lat := make([]time.Duration, cfg.rounds)
		for i := range lat {
			t0 := time.Now()
			if err := ex.TopK(q, cfg.k, rows, scores); err != nil {
				return fmt.Errorf("bench gpu: %w", err)
			}
			lat[i] = time.Since(t0)
		}
		p50, p99 := percentiles(lat)
		emit(gpuFigure{Name: "exact", Device: ex.Backend(), Queries: nq, Reels: cfg.reels, K: cfg.k, P50us: us(p50), P99us: us(p99), MaxAbsDiff: diff})
	}
	_ = stderr
	return nil
}

func randomInputs(sp features.Spec, n int, rng *rand.Rand) ranker.Inputs {
	v := func(k int) []float32 {
		x := make([]float32, k)
		for i := range x {
			x[i] = float32(rng.NormFloat64())
		}
		return x
	}
	return ranker.Inputs{User: v(len(sp.User)), Reel: v(n * len(sp.Reel)), Cross: v(n * len(sp.Cross)), Emb: v(n * sp.EmbedDim), N: n}
}

func percentiles(d []time.Duration) (p50, p99 time.Duration) {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2], s[min(len(s)-1, len(s)*99/100)]
}

func us(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
