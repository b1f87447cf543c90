package plan

import (
	"bytes"
	"fmt"
	"image/color"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/reelrank/reelrank/internal/svgplot"
)

// Measured is a p99 measured at an offered rate (by `reelrank bench
// load`), set beside the model's.
type Measured struct {
	QPS      float64 // offered
	Achieved float64 // answered a second
	P99Us    float64
}

// Markdown writes the plan's answer and its arithmetic.
func (p *Plan) Markdown(w io.Writer) error {
	var b bytes.Buffer
	t := &p.Target
	fmt.Fprintf(&b, "## Plan: %d reels at %.0f requests/s, p99 %v", t.Reels, t.QPS, t.P99)
	if t.Nprobe > 0 {
		fmt.Fprintf(&b, ", nprobe %d", t.Nprobe)
	} else {
		fmt.Fprintf(&b, ", recall@%d %.2f", t.K, t.Recall)
	}
	if t.GPU {
		b.WriteString(", with GPUs")
	}
	fmt.Fprintf(&b, "\n\nFrom the calibration of %s (%d cores).\n\n", p.Machine, p.Cores)
	if p.Shards == 0 {
		b.WriteString("No fleet meets the target: every shard count weighed fails (see why below).\n")
		considered(&b, p)
		_, err := w.Write(b.Bytes())
		return err
	}
	fmt.Fprintf(&b, "| | |\n|---|---|\n")
	fmt.Fprintf(&b, "| shards | %d of %d reels |\n", p.Shards, p.ReelsPerShard)
	fmt.Fprintf(&b, "| replicas a shard | %d (%d in all) |\n", p.ReplicasPerShard, p.Replicas)
	fmt.Fprintf(&b, "| a replica | %d cores, %s memory", p.CoresPerReplica, gib(float64(p.MemoryPerReplica)))
	if p.GPUsPerReplica > 0 {
		fmt.Fprintf(&b, ", %d GPU", p.GPUsPerReplica)
	}
	b.WriteString(" |\n")
	fmt.Fprintf(&b, "| fleet | %d cores%s |\n", p.TotalCores, gpuSuffix(p.TotalGPUs))
	fmt.Fprintf(&b, "| index a shard | %d lists, nprobe %d, k %d a shard |\n", p.Lists, p.Nprobe, p.KPerShard)
	fmt.Fprintf(&b, "| a shard's request | %.0f µs of one core; alone, p99 %s |\n", p.ServiceUs, ms(p.ServiceP99Us))
	fmt.Fprintf(&b, "| predicted p99 | %s (utilisation %.0f%%; a replica saturates at %.0f/s) |\n\n", ms(p.P99Us), 100*p.Utilisation, p.SaturationQPS)
	sec := ""
	for _, s := range p.Steps {
		if s.Section != sec {
			sec = s.Section
			fmt.Fprintf(&b, "\n**%s**\n\n", sec)
		}
		fmt.Fprintf(&b, "- %s\n", s.Text)
	}
	b.WriteString("\n**bytes a reel in each index layout** (a shard's index)\n\n| layout | bytes a reel | a shard |\n|---|---:|---:|\n")
	for _, l := range p.Layouts {
		mark := ""
		if l.Used {
			mark = " ←"
		}
		fmt.Fprintf(&b, "| %s%s | %.0f | %s |\n", l.Name, mark, l.BytesPerReel, gib(l.ShardBytes))
	}
	considered(&b, p)
	_, err := w.Write(b.Bytes())
	return err
}

// considered writes the shard counts weighed.
func considered(b *bytes.Buffer, p *Plan) {
	b.WriteString("\n**shard counts weighed**\n\n| shards | replicas a shard | cores | GPUs | p99 | memory a replica | not taken because |\n|---:|---:|---:|---:|---:|---:|---|\n")
	shown := p.Considered
	if len(shown) > 24 {
		shown = pickAround(shown, p.Shards, 24)
	}
	for _, o := range shown {
		fmt.Fprintf(b, "| %d | %d | %d | %d | %s | %s | %s |\n", o.Shards, o.Replicas, o.Cores, o.GPUs, ms(o.P99Us), gib(float64(o.MemoryPerReplica)), o.Why)
	}
}

// pickAround keeps n options: the first few, those around the chosen
// shard count and the last.
func pickAround(os []Option, chosen, n int) []Option {
	// Around the chosen count, or where no fleet was chosen, around the
	// one that came nearest the target (the least p99 that was sized).
	at, near := -1, -1
	for i, o := range os {
		if o.Shards == chosen {
			at = i
		}
		if o.P99Us > 0 && (near < 0 || o.P99Us < os[near].P99Us) {
			near = i
		}
	}
	if at < 0 {
		at = max(near, 0)
	}
	keep := map[int]bool{0: true, 1: true, 2: true, len(os) - 1: true}
	for k := 1; k < 6; k++ { // and a spread across the whole range
		keep[k*(len(os)-1)/6] = true
	}
	for i := at - (n-5)/2; len(keep) < n && i < len(os); i++ {
		if i >= 0 {
			keep[i] = true
		}
	}
	idx := make([]int, 0, len(keep))
	for i := range keep {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	out := make([]Option, 0, len(idx))
	for _, i := range idx {
		out = append(out, os[i])
	}
	return out
}

// Report is what WriteReport draws.
type Report struct {
	Calibration *Calibration
	Plan        *Plan
	// Measured, when set, are drawn beside the model's p99 curve.
	Measured []Measured
	// Sizes, when set, are the catalogue sizes of the cost chart (default
	// 1M to 1B).
	Sizes []int64
}

// WriteReport writes dir/plan.md and its charts: qps-recall.svg,
// p99-load.svg and cost-size.svg.
func WriteReport(dir string, r Report) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("plan: report: %w", err)
	}
	charts := []struct {
		file  string
		title string
		draw  func(Report) (*plot.Plot, error)
	}{
		{"qps-recall.svg", "Index: queries a second on one core against recall", chartQPSRecall},
		{"p99-load.svg", "One replica: p99 against offered load", chartLoad},
		{"cost-size.svg", "Fleet cost against catalogue size", chartCost},
	}
	var md bytes.Buffer
	fmt.Fprintf(&md, "# reelrank capacity plan\n\n")
	if err := r.Plan.Markdown(&md); err != nil {
		return err
	}
	if len(r.Measured) > 0 {
		fmt.Fprintf(&md, "\n**the model against `reelrank bench load`** (one replica)\n\n| offered /s | answered /s | measured p99 | predicted p99 | error |\n|---:|---:|---:|---:|---:|\n")
		for _, m := range r.Measured {
			pr := r.Plan.PredictP99(m.QPS)
			fmt.Fprintf(&md, "| %.0f | %.0f | %s | %s | %+.0f%% |\n", m.QPS, m.Achieved, ms(m.P99Us), ms(pr), 100*(pr-m.P99Us)/m.P99Us)
		}
	}
	md.WriteString("\n## Charts\n\n")
	for _, c := range charts {
		p, err := c.draw(r)
		if err != nil {
			return fmt.Errorf("plan: report: %s: %w", c.file, err)
		}
		p.Title.Text = c.title
		if err := svgplot.Save(p, filepath.Join(dir, c.file), 7*vg.Inch, 4.5*vg.Inch); err != nil {
			return fmt.Errorf("plan: report: %w", err)
		}
		fmt.Fprintf(&md, "![%s](%s)\n\n", c.title, c.file)
	}
	if err := os.WriteFile(filepath.Join(dir, "plan.md"), md.Bytes(), 0o644); err != nil {
		return fmt.Errorf("plan: report: %w", err)
	}
	return nil
}

func line(p *plot.Plot, name string, xys plotter.XYs, i int, points bool) error {
	l, s, err := plotter.NewLinePoints(xys)
	if err != nil {
		return err
	}
	l.Color = svgplot.Color(i)
	l.Width = vg.Points(1.5)
	p.Add(l)
	if points {
		s.Color = l.Color
		p.Add(s)
	}
	p.Legend.Add(name, l)
	return nil
}

func chartQPSRecall(r Report) (*plot.Plot, error) {
	p := plot.New()
	p.X.Label.Text = "recall@k"
	p.Y.Label.Text = "queries/s, one core"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{}
	by := map[int]plotter.XYs{}
	for _, a := range r.Calibration.ANN {
		if !(a.QPS > 0) {
			continue
		}
		by[a.Reels] = append(by[a.Reels], plotter.XY{X: a.Recall, Y: a.QPS})
	}
	sizes := make([]int, 0, len(by))
	for n := range by {
		sizes = append(sizes, n)
	}
	sort.Ints(sizes)
	for i, n := range sizes {
		xy := by[n]
		sort.Slice(xy, func(a, b int) bool { return xy[a].X < xy[b].X })
		if err := line(p, fmt.Sprintf("%d reels", n), xy, i, true); err != nil {
			return nil, err
		}
	}
	p.Legend.Top = true
	return p, nil
}

func chartLoad(r Report) (*plot.Plot, error) {
	p := plot.New()
	p.X.Label.Text = "offered requests/s"
	p.Y.Label.Text = "p99, ms"
	var xy plotter.XYs
	top := 0.0
	for _, c := range r.Plan.Curve {
		if math.IsInf(c.P99Us, 1) || c.Util > 0.985 {
			continue
		}
		xy = append(xy, plotter.XY{X: c.QPS, Y: c.P99Us / 1e3})
	}
	for _, m := range r.Measured {
		top = max(top, m.P99Us/1e3)
	}
	if err := line(p, "model (M/G/c)", xy, 0, false); err != nil {
		return nil, err
	}
	if len(r.Measured) > 0 {
		var mxy plotter.XYs
		for _, m := range r.Measured {
			mxy = append(mxy, plotter.XY{X: m.QPS, Y: m.P99Us / 1e3})
		}
		sort.Slice(mxy, func(a, b int) bool { return mxy[a].X < mxy[b].X })
		if err := line(p, "measured (bench load)", mxy, 1, true); err != nil {
			return nil, err
		}
	}
	if t := float64(r.Plan.Target.P99.Microseconds()) / 1e3; t > 0 {
		hl, err := plotter.NewLine(plotter.XYs{{X: 0, Y: t}, {X: r.Plan.SaturationQPS, Y: t}})
		if err != nil {
			return nil, err
		}
		hl.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		hl.Color = color.Gray{Y: 120}
		p.Add(hl)
		p.Legend.Add("p99 target", hl)
	}
	p.Y.Min = 0
	p.Y.Max = max(float64(r.Plan.Target.P99.Microseconds())/1e3*2, top*1.1)
	p.X.Min = 0
	p.X.Max = r.Plan.SaturationQPS
	p.Legend.Top = true
	p.Legend.Left = true
	return p, nil
}

func chartCost(r Report) (*plot.Plot, error) {
	p := plot.New()
	p.X.Label.Text = "reels"
	p.Y.Label.Text = "cores (GPU counted as 16)"
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = plot.LogTicks{}
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{}
	sizes := r.Sizes
	if len(sizes) == 0 {
		sizes = []int64{1e6, 3e6, 1e7, 3e7, 1e8, 3e8, 1e9}
	}
	var lastErr, err0 error
	drawn := 0
	for i, gpu := range []bool{false, true} {
		var xy plotter.XYs
		for _, n := range sizes {
			t := r.Plan.Target
			t.Reels, t.GPU, t.Shards, t.Replicas = n, gpu, 0, 0
			pl, err := Make(r.Calibration, t)
			if err != nil {
				err0 = err
				continue
			}
			xy = append(xy, plotter.XY{X: float64(n), Y: cost(Option{Cores: pl.TotalCores, GPUs: pl.TotalGPUs})})
		}
		if len(xy) == 0 {
			lastErr = fmt.Errorf("no plan for any size (gpu %v): %w", gpu, err0)
			continue
		}
		drawn++
		name := "CPU only"
		if gpu {
			name = "ranker on GPUs"
		}
		if err := line(p, name, xy, i, true); err != nil {
			return nil, err
		}
	}
	if drawn == 0 {
		// Nothing to draw: the chart says so rather than the report
		// failing (a memory wall at every size, say).
		p.Title.Text = "no catalogue size can be planned: " + lastErr.Error()
		if len(p.Title.Text) > 110 {
			p.Title.Text = p.Title.Text[:107] + "..."
		}
		p.X.Min, p.X.Max = float64(sizes[0]), float64(sizes[len(sizes)-1])
		p.Y.Min, p.Y.Max = 1, 1e6
		return p, nil
	}
	p.Legend.Top = true
	p.Legend.Left = true
	return p, nil
}
