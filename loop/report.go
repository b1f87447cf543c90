package loop

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/reelrank/reelrank/engine"
	"github.com/reelrank/reelrank/internal/fsutil"
	"github.com/reelrank/reelrank/train"
)

// ModelInfo is one model a night trained.
type ModelInfo struct {
	Night        int     `json:"night"` // trained after this many days
	Version      string  `json:"version"`
	IPS          bool    `json:"ips"`
	TrainSeconds float64 `json:"train_seconds"`
	// Outcome: installed, canary (promoted or rolled back), refused, or
	// the arm it serves.
	Outcome string `json:"outcome"`
	// The validation day's watch-through AUC of the model, the oracle
	// and popularity, and retrieval's recall@1000 of the oracle's top 100
	// for the towers and for popularity, and of the watch-throughs.
	WatchAUC           float64 `json:"watch_auc"`
	OracleWatchAUC     float64 `json:"oracle_watch_auc"`
	PopularityWatchAUC float64 `json:"popularity_watch_auc"`
	Recall             float64 `json:"recall_at_1000_of_oracle_top100"`
	PopularityRecall   float64 `json:"popularity_recall_at_1000_of_oracle_top100"`
	TestRecall         float64 `json:"recall_at_1000_of_watch_throughs"`
}

func (m *ModelInfo) fill(r *train.Report) {
	for _, h := range r.Heads {
		if h.Head == "watch" {
			m.WatchAUC, m.OracleWatchAUC, m.PopularityWatchAUC = h.AUC, h.OracleAUC, h.PopularityAUC
		}
	}
	m.Recall, m.PopularityRecall, m.TestRecall = r.Retrieval.Recall, r.Retrieval.PopularityRecall, r.Retrieval.TestRecall
}

// Report is a loop's outcome.
type Report struct {
	World struct {
		Users, Reels, Days int
		Seed               uint64
	} `json:"world"`
	Arms       []string    `json:"arms"`
	Warmup     int         `json:"warmup_days"`
	Epsilon    float64     `json:"epsilon"`
	FreshShare float64     `json:"fresh_share"`
	PageSize   int         `json:"page_size"`
	Days       []DayArm    `json:"days"`
	Models     []ModelInfo `json:"models"`
	// Changes are the engine's arm changes: installs, canaries,
	// promotions, rollbacks.
	Changes  []engine.Change `json:"changes"`
	Rejected int64           `json:"rejected_events"`
	Seconds  float64         `json:"seconds"`
}

// report computes the figures once the loop has run.
func (s *server) report(ctx context.Context) (*Report, error) {
	if s.groupOf == nil {
		s.groupOf = make([]uint8, s.w.NumUsers()+1)
		s.stats.groupOf = s.groupOf
	}
	figs, err := s.stats.figures(ctx, s.cfg.Threads)
	if err != nil {
		return nil, err
	}
	r := &Report{Arms: s.cfg.Arms, Warmup: s.cfg.Warmup, Epsilon: s.cfg.Epsilon, FreshShare: s.cfg.FreshShare,
		PageSize: s.cfg.PageSize, Days: figs, Models: s.models, Rejected: s.rejected}
	r.World.Users, r.World.Reels, r.World.Days, r.World.Seed = s.cfg.World.Users, s.cfg.World.Reels, s.cfg.World.Days, s.cfg.World.Seed
	for _, c := range s.eng.ArmsStatus(false).History {
		if c.Action != "experiments" {
			r.Changes = append(r.Changes, c)
		}
	}
	return r, nil
}

// Figure returns the arm's figures of day (from 1).
func (r *Report) Figure(day int, arm string) (DayArm, bool) {
	for _, f := range r.Days {
		if f.Day == day && f.Arm == arm {
			return f, true
		}
	}
	return DayArm{}, false
}

// charts are the report's charts: a name, a title, and the figure drawn.
var charts = []struct {
	name, title, unit string
	value             func(DayArm) float64
}{
	{"watch-time", "Watch time per user", "s", func(f DayArm) float64 { return f.WatchTimePerUser }},
	{"watch-through", "Watch-through rate", "", func(f DayArm) float64 { return f.WatchThroughRate }},
	{"reels", "Distinct reels served", "", func(f DayArm) float64 { return float64(f.Reels) }},
	{"authors", "Distinct authors served", "", func(f DayArm) float64 { return float64(f.Authors) }},
	{"fresh", "Fresh-reel share of impressions", "", func(f DayArm) float64 { return f.FreshShare }},
	{"topics", "Distinct topics per active user", "", func(f DayArm) float64 { return f.TopicsPerUser }},
	{"regret", "Oracle regret per impression", "", func(f DayArm) float64 { return f.Regret }},
	{"cumulative-regret", "Cumulative regret (sum of daily means)", "", func(f DayArm) float64 { return f.CumulativeRegret }},
}

// write writes report.md, the charts and report.json into dir.
func (r *Report) write(dir string) error {
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("loop: report: %w", err)
	}
	if err := writeFile(filepath.Join(dir, ReportJSON), append(js, '\n')); err != nil {
		return err
	}
	for _, c := range charts {
		svg := r.chart(c.title, c.unit, c.value)
		if err := writeFile(filepath.Join(dir, chartsPrefix+c.name+".svg"), svg); err != nil {
			return err
		}
	}
	return writeFile(filepath.Join(dir, ReportMD), r.Markdown())
}

// chart draws one figure per arm over the days.
func (r *Report) chart(title, unit string, value func(DayArm) float64) []byte {
	series := make([]Series, len(r.Arms))
	for g, a := range r.Arms {
		series[g].Name = a
		for _, f := range r.Days {
			if f.Arm == a {
				series[g].Y = append(series[g].Y, value(f))
			}
		}
	}
	return LineChart(title, unit, r.Warmup, series)
}

// Markdown renders the report.
func (r *Report) Markdown() []byte {
	var b bytes.Buffer
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	p("# The learning loop\n\n")
	p("A world of %d users and %d reels (seed %d) over %d simulated days. The simulator's own policy (popularity with a 10%% uniform slice) serves the first %d days; "+
		"from then on the engine serves every request (pages of %d reels), the events flow back into its log and feature store, and every night the models are retrained on its log "+
		"(every day but the last for training, the last for validation). Each arm serves an equal share of the users, by a salted hash: %s. "+
		"Exploration: ε = %.2f; the fresh arm explores reels uploaded within the engine's fresh window at %.2f. Ran in %.0f s.\n\n",
		r.World.Users, r.World.Reels, r.World.Seed, r.World.Days, r.Warmup, r.PageSize, strings.Join(r.Arms, ", "), r.Epsilon, r.FreshShare, r.Seconds)
	last := r.World.Days
	p("## Day %d\n\n", last)
	p("| arm | users | watch time per user (s) | watch-through | distinct reels | distinct authors | reels since day 1 | fresh share | topics per user | regret per impression | cumulative regret |\n")
	p("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, a := range r.Arms {
		if f, ok := r.Figure(last, a); ok {
			p("| %s | %d | %.1f | %.4f | %d | %d | %d | %.4f | %.2f | %.4f | %.3f |\n", a, f.Users, f.WatchTimePerUser, f.WatchThroughRate,
				f.Reels, f.Authors, f.CumulativeReels, f.FreshShare, f.TopicsPerUser, f.Regret, f.CumulativeRegret)
		}
	}
	p("\n")
	for _, c := range charts {
		p("### %s\n\n![%s](%s%s.svg)\n\n", c.title, c.title, chartsPrefix, c.name)
		p("| day |")
		for _, a := range r.Arms {
			p(" %s |", a)
		}
		p("\n| ---: |%s\n", strings.Repeat(" ---: |", len(r.Arms)))
		for d := 1; d <= r.World.Days; d++ {
			p("| %d |", d)
			for _, a := range r.Arms {
				f, _ := r.Figure(d, a)
				p(" %s |", fmtFigure(c.value(f)))
			}
			p("\n")
		}
		p("\n")
	}
	p("## Nightly models\n\n")
	p("| night | version | IPS | training (s) | watch AUC | oracle | popularity | recall@1000 of oracle top 100 | popularity's | outcome |\n")
	p("| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n")
	for _, m := range r.Models {
		p("| %d | %s | %v | %.1f | %.4f | %.4f | %.4f | %.4f | %.4f | %s |\n", m.Night, m.Version, m.IPS, m.TrainSeconds, m.WatchAUC,
			m.OracleWatchAUC, m.PopularityWatchAUC, m.Recall, m.PopularityRecall, strings.ReplaceAll(m.Outcome, "|", "/"))
	}
	p("\n## Arm changes\n\n")
	for _, c := range r.Changes {
		p("- %s %s: %s\n", c.Action, c.Version, c.Reason)
	}
	if r.Rejected > 0 {
		p("\nThe engine refused %d served events.\n", r.Rejected)
	}
	return b.Bytes()
}

func fmtFigure(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v >= 100 || v <= -100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10 || v <= -10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.4f", v)
}

// ChartFiles names the chart files a report writes beside report.md.
func ChartFiles() []string {
	var out []string
	for _, c := range charts {
		out = append(out, chartsPrefix+c.name+".svg")
	}
	return out
}

// writeFile writes data to path atomically.
func writeFile(path string, data []byte) error {
	err := fsutil.WriteFile(path, 0o644, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
	if err != nil {
		return fmt.Errorf("loop: write %s: %w", path, err)
	}
	return nil
}
