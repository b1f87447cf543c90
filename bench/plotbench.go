package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/reelrank/reelrank/internal/svgplot"
)

// PlotHistory draws the charts of a history into dir and returns the files
// written:
//
//   - p99-over-commits.svg: every latency metric whose name has "p99" (and
//     one chart a command), run after run, labelled by commit;
//   - recall-qps.svg: recall@k against single-thread queries a second for
//     each `bench ann` run, ann-benchmarks' way (up and to the right is
//     better, a log axis of QPS), with one line a run and peers' runs
//     (Run.Engine set) drawn beside ours;
//   - load-latency.svg: p50, p99 and p99.9 against the offered rate of the
//     newest `bench load` run (and the previous one, dashed).
//
// A chart with nothing to draw is not written.
func PlotHistory(runs []Run, dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("bench: plot: %w", err)
	}
	var written []string
	for _, c := range []struct {
		file string
		draw func([]Run) (*plot.Plot, bool, error)
	}{
		{"p99-over-commits.svg", chartP99},
		{"recall-qps.svg", chartRecallQPS},
		{"load-latency.svg", chartLoadLatency},
	} {
		p, ok, err := c.draw(runs)
		if err != nil {
			return written, fmt.Errorf("bench: plot: %s: %w", c.file, err)
		}
		if !ok {
			continue
		}
		path := filepath.Join(dir, c.file)
		if err := svgplot.Save(p, path, 8*vg.Inch, 5*vg.Inch); err != nil {
			return written, fmt.Errorf("bench: plot: %w", err)
		}
		written = append(written, path)
	}
	return written, nil
}

func addLine(p *plot.Plot, name string, xys plotter.XYs, i int, dashed bool) error {
	l, s, err := plotter.NewLinePoints(xys)
	if err != nil {
		return err
	}
	l.Color = svgplot.Color(i)
	l.Width = vg.Points(1.5)
	if dashed {
		l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	}
	s.Color = l.Color
	s.Shape = draw.CircleGlyph{}
	p.Add(l, s)
	p.Legend.Add(name, l)
	p.Legend.XOffs = -vg.Points(12) // the swatches clear the right edge
	return nil
}

func shortCommit(r Run) string {
	c := r.Commit
	if len(c) > 7 && c != "unknown" {
		c = c[:7]
	}
	if r.Modified {
		c += "+"
	}
	return c
}

// chartP99 is each p99 latency metric over the commits of the runs that
// have it, in the order the commits first appear in the history; several
// runs at one commit give their median.
func chartP99(runs []Run) (*plot.Plot, bool, error) {
	p := plot.New()
	p.Title.Text = "p99 over commits"
	p.X.Label.Text = "commit"
	p.Y.Label.Text = "p99, µs"
	values := map[string]map[int][]float64{} // series, commit position: values
	var names []string
	pos := map[string]int{}
	var ticks []plot.Tick
	for _, r := range runs {
		if r.Engine != "" {
			continue
		}
		for _, m := range r.Metrics {
			if !strings.Contains(strings.ToLower(m.Name), "p99") || m.Better != LowerIsBetter || !(m.Value > 0) {
				continue
			}
			v := m.Value
			switch m.Unit {
			case "ms":
				v *= 1000
			case "ns":
				v /= 1000
			case "s":
				v *= 1e6
			}
			c := shortCommit(r)
			x, ok := pos[c]
			if !ok {
				x = len(pos)
				pos[c] = x
				ticks = append(ticks, plot.Tick{Value: float64(x), Label: c})
			}
			key := r.Command + " " + m.Name
			if _, ok := values[key]; !ok {
				names = append(names, key)
				values[key] = map[int][]float64{}
			}
			values[key][x] = append(values[key][x], v)
		}
	}
	if len(names) == 0 {
		return nil, false, nil
	}
	// Too many labels overlap: keep about a dozen.
	if step := (len(ticks) + 11) / 12; step > 1 {
		for i := range ticks {
			if i%step != 0 {
				ticks[i].Label = ""
			}
		}
	}
	p.X.Tick.Marker = plot.ConstantTicks(ticks)
	p.X.Min, p.X.Max = -0.25, float64(len(ticks))-0.75
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{}
	sort.Strings(names)
	for i, n := range names {
		var xys plotter.XYs
		for x, vs := range values[n] {
			xys = append(xys, plotter.XY{X: float64(x), Y: median(vs)})
		}
		sort.Slice(xys, func(a, b int) bool { return xys[a].X < xys[b].X })
		if err := addLine(p, n, xys, i, false); err != nil {
			return nil, false, err
		}
	}
	p.Legend.Top = true
	return p, true, nil
}

// splitKey splits a metric name "key=value/.../figure" into its point's
// prefix value for key and the figure's name: ("nprobe=16/recall@k",
// "nprobe") gives 16, "recall@k".
func splitKey(name, key string) (float64, string, bool) {
	i := strings.LastIndexByte(name, '/')
	if i < 0 {
		return 0, "", false
	}
	for _, part := range strings.Split(name[:i], "/") {
		if v, ok := strings.CutPrefix(part, key+"="); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return 0, "", false
			}
			return f, name[i+1:], true
		}
	}
	return 0, "", false
}

// chartRecallQPS draws recall against queries a second for each ann run.
func chartRecallQPS(runs []Run) (*plot.Plot, bool, error) {
	p := plot.New()
	p.Title.Text = "recall against queries a second (up and right is better)"
	p.X.Label.Text = "recall@k"
	p.Y.Label.Text = "queries/s, one thread"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{}
	// The newest runs only: ours, then each peer's newest.
	var ours []Run
	peers := map[string]Run{}
	for _, r := range runs {
		if r.Command != "ann" {
			continue
		}
		if r.Engine == "" || r.Engine == "reelrank" {
			ours = append(ours, r)
		} else {
			peers[r.Engine] = r
		}
	}
	if len(ours) > 4 {
		ours = ours[len(ours)-4:]
	}
	var show []Run
	show = append(show, ours...)
	peerNames := make([]string, 0, len(peers))
	for n := range peers {
		peerNames = append(peerNames, n)
	}
	sort.Strings(peerNames)
	for _, n := range peerNames {
		show = append(show, peers[n])
	}
	lines := 0
	for i, r := range show {
		recall := map[float64]float64{}
		qps := map[float64]float64{}
		for _, m := range r.Metrics {
			np, fig, ok := splitKey(m.Name, "nprobe")
			if !ok {
				continue
			}
			switch fig {
			case "recall@k":
				recall[np] = m.Value
			case "qps_1thread":
				qps[np] = m.Value
			}
		}
		var xys plotter.XYs
		for np, rc := range recall {
			if q := qps[np]; q > 0 {
				xys = append(xys, plotter.XY{X: rc, Y: q})
			}
		}
		if len(xys) == 0 {
			continue
		}
		sort.Slice(xys, func(a, b int) bool { return xys[a].X < xys[b].X })
		name := "reelrank " + shortCommit(r)
		if r.Engine != "" && r.Engine != "reelrank" {
			name = r.Engine
		}
		if s := r.Settings["base"]; s != "" {
			name += " " + filepath.Base(s)
		}
		if err := addLine(p, name, xys, i, r.Engine != "" && r.Engine != "reelrank"); err != nil {
			return nil, false, err
		}
		lines++
	}
	p.Legend.Top = true
	return p, lines > 0, nil
}

// chartLoadLatency draws latency percentiles against the offered rate for
// the newest load run (solid) and the one before it (dashed).
func chartLoadLatency(runs []Run) (*plot.Plot, bool, error) {
	var load []Run
	for _, r := range runs {
		if r.Command == "load" && r.Engine == "" {
			load = append(load, r)
		}
	}
	if len(load) == 0 {
		return nil, false, nil
	}
	if len(load) > 2 {
		load = load[len(load)-2:]
	}
	p := plot.New()
	p.Title.Text = "latency against offered load"
	p.X.Label.Text = "offered requests/s"
	p.Y.Label.Text = "latency, ms"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{}
	lines := 0
	for ri := len(load) - 1; ri >= 0; ri-- {
		r := load[ri]
		for pi, pct := range []string{"p50_us", "p99_us", "p999_us"} {
			var xys plotter.XYs
			for _, m := range r.Metrics {
				q, fig, ok := splitKey(m.Name, "qps")
				if ok && fig == pct && m.Value > 0 {
					xys = append(xys, plotter.XY{X: q, Y: m.Value / 1000})
				}
			}
			if len(xys) == 0 {
				continue
			}
			sort.Slice(xys, func(a, b int) bool { return xys[a].X < xys[b].X })
			name := strings.TrimSuffix(pct, "_us") + " " + shortCommit(r)
			if err := addLine(p, name, xys, pi, ri != len(load)-1); err != nil {
				return nil, false, err
			}
			lines++
		}
	}
	p.Legend.Top = true
	p.Legend.Left = true
	return p, lines > 0, nil
}
