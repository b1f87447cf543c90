package bench

import (
	"fmt"
	"math"
	"path"
	"slices"
	"strings"
)

// MannWhitney is the two-sided Mann–Whitney U test of whether x and y come
// from the same distribution, the test benchstat uses: u is the U statistic
// of x (the count of pairs with x above y, ties counting a half), p the
// two-sided p-value. With no ties and at most 50 values in all, p is
// exact (the U distribution counted); otherwise it is the normal
// approximation with the tie correction and a continuity correction. An
// empty sample, or samples all equal, give p = 1.
func MannWhitney(x, y []float64) (u, p float64) {
	n1, n2 := len(x), len(y)
	if n1 == 0 || n2 == 0 {
		return 0, 1
	}
	type obs struct {
		v   float64
		inX bool
	}
	all := make([]obs, 0, n1+n2)
	for _, v := range x {
		all = append(all, obs{v, true})
	}
	for _, v := range y {
		all = append(all, obs{v, false})
	}
	slices.SortFunc(all, func(a, b obs) int {
		switch {
		case a.v < b.v:
			return -1
		case a.v > b.v:
			return 1
		}
		return 0
	})
	n := n1 + n2
	var r1, tieSum float64
	ties := false
	for i := 0; i < n; {
		j := i + 1
		for j < n && all[j].v == all[i].v {
			j++
		}
		rank := float64(i+j+1) / 2 // mean of ranks i+1..j
		for k := i; k < j; k++ {
			if all[k].inX {
				r1 += rank
			}
		}
		if t := float64(j - i); t > 1 {
			ties = true
			tieSum += t*t*t - t
		}
		i = j
	}
	u = r1 - float64(n1*(n1+1))/2
	if !ties && n <= 50 {
		return u, exactP(n1, n2, int(math.Round(u)))
	}
	mu := float64(n1*n2) / 2
	sigma2 := float64(n1*n2) / 12 * (float64(n+1) - tieSum/float64(n*(n-1)))
	if !(sigma2 > 0) {
		return u, 1
	}
	z := (math.Abs(u-mu) - 0.5) / math.Sqrt(sigma2)
	if z < 0 {
		z = 0
	}
	return u, math.Min(1, math.Erfc(z/math.Sqrt2))
}

// exactP is the two-sided p-value of U = u for samples of n1 and n2
// without ties: the share of the C(n1+n2, n1) orderings whose U is as far
// from the middle, counted by the recurrence
// f(n1, n2, u) = f(n1-1, n2, u-n2) + f(n1, n2-1, u).
func exactP(n1, n2, u int) float64 {
	maxU := n1 * n2
	// f[j][w]: orderings of i values of x and j of y with U = w, built up in i.
	f := make([][]float64, n2+1)
	for j := range f {
		f[j] = make([]float64, maxU+1)
		f[j][0] = 1 // i = 0: U is 0
	}
	for i := 1; i <= n1; i++ {
		g := make([][]float64, n2+1)
		for j := range g {
			g[j] = make([]float64, maxU+1)
			for w := 0; w <= i*j; w++ {
				// The largest value is x's (it beats all j of y) or y's.
				if w >= j {
					g[j][w] += f[j][w-j]
				}
				if j > 0 {
					g[j][w] += g[j-1][w]
				}
			}
		}
		f = g
	}
	var total, lo, hi float64
	for w, c := range f[n2] {
		total += c
		if w <= u {
			lo += c
		}
		if w >= u {
			hi += c
		}
	}
	return math.Min(1, 2*math.Min(lo, hi)/total)
}

// MinP is the smallest two-sided p-value the test can give for samples of
// n1 and n2: below alpha, a difference can be significant at all.
func MinP(n1, n2 int) float64 {
	if n1 == 0 || n2 == 0 {
		return 1
	}
	return exactP(n1, n2, 0)
}

// CompareOptions choose what Compare reports and flags.
type CompareOptions struct {
	// Metric keeps the metrics whose name contains it, or matches it as a
	// glob when it has *, ? or [; empty keeps all.
	Metric string
	// Threshold is the relative change past which a significant change
	// for the worse is a regression (0.05: 5%).
	Threshold float64
	// Alpha is the p-value below which a change is significant (0.05).
	Alpha float64
}

// Change is one metric's change from runs A to runs B.
type Change struct {
	Name, Unit, Better string
	A, B               float64 // medians of the samples
	NA, NB             int     // samples
	Delta              float64 // (B - A) / A; NaN when A is 0
	P                  float64 // Mann–Whitney p-value
	Significant        bool    // P < Alpha
	Regression         bool    // significant, worse, and past the threshold
	Note               string  // why a change cannot be significant, or that a side lacks the metric
}

// Worse reports whether the change goes the wrong way for its metric.
func (c Change) Worse() bool {
	if c.Better == LowerIsBetter {
		return c.B > c.A
	}
	return c.B < c.A
}

// Compare compares every metric that runs a and b share (samples of the
// runs on each side pooled; a run without samples gives its value), in
// the order the metrics first appear in a.
func Compare(a, b []Run, opt CompareOptions) ([]Change, error) {
	if opt.Alpha <= 0 || opt.Alpha >= 1 {
		return nil, fmt.Errorf("bench: compare: alpha %v, want 0 < alpha < 1", opt.Alpha)
	}
	if opt.Threshold < 0 || math.IsNaN(opt.Threshold) {
		return nil, fmt.Errorf("bench: compare: threshold %v, want >= 0", opt.Threshold)
	}
	if opt.Metric != "" && strings.ContainsAny(opt.Metric, "*?[") {
		if _, err := path.Match(opt.Metric, ""); err != nil {
			return nil, fmt.Errorf("bench: compare: --metric %q: %w", opt.Metric, err)
		}
	}
	sa, order := pool(a)
	sb, orderB := pool(b)
	for _, n := range orderB {
		if _, ok := sa[n.Name]; !ok {
			order = append(order, n)
		}
	}
	var out []Change
	for _, m := range order {
		if !metricMatches(opt.Metric, m.Name) {
			continue
		}
		xa, xb := sa[m.Name], sb[m.Name]
		c := Change{Name: m.Name, Unit: m.Unit, Better: m.Better, NA: len(xa), NB: len(xb), P: math.NaN(), Delta: math.NaN()}
		if len(xa) == 0 || len(xb) == 0 {
			c.Note = "only in B"
			if len(xb) == 0 {
				c.Note = "only in A"
			}
			c.A, c.B = median(xa), median(xb)
			out = append(out, c)
			continue
		}
		c.A, c.B = median(xa), median(xb)
		if c.A != 0 {
			c.Delta = (c.B - c.A) / math.Abs(c.A)
		}
		_, c.P = MannWhitney(xa, xb)
		c.Significant = c.P < opt.Alpha
		if !c.Significant && MinP(len(xa), len(xb)) >= opt.Alpha {
			c.Note = fmt.Sprintf("too few samples (%d+%d) to be significant at %g", len(xa), len(xb), opt.Alpha)
		}
		c.Regression = c.Significant && c.Worse() && !math.IsNaN(c.Delta) && math.Abs(c.Delta) > opt.Threshold
		out = append(out, c)
	}
	if len(out) == 0 {
		if opt.Metric != "" {
			return nil, fmt.Errorf("bench: compare: no metric matches %q", opt.Metric)
		}
		return nil, fmt.Errorf("bench: compare: the runs have no metrics")
	}
	return out, nil
}

func metricMatches(pattern, name string) bool {
	if pattern == "" {
		return true
	}
	if strings.ContainsAny(pattern, "*?[") {
		ok, _ := path.Match(pattern, name)
		return ok
	}
	return strings.Contains(name, pattern)
}

// pool gathers, for each metric name, the samples of every run.
func pool(runs []Run) (map[string][]float64, []Metric) {
	by := map[string][]float64{}
	var order []Metric
	for _, r := range runs {
		for _, m := range r.Metrics {
			if _, ok := by[m.Name]; !ok {
				order = append(order, m)
			}
			if len(m.Samples) > 0 {
				by[m.Name] = append(by[m.Name], m.Samples...)
			} else {
				by[m.Name] = append(by[m.Name], m.Value)
			}
		}
	}
	return by, order
}

// Regressions counts the changes flagged as regressions.
func Regressions(cs []Change) int {
	n := 0
	for _, c := range cs {
		if c.Regression {
			n++
		}
	}
	return n
}

// FormatChange is one line of a comparison, benchstat's way: the medians,
// the change, and "~" where it is not significant.
func FormatChange(c Change) string {
	unit := c.Unit
	switch {
	case c.Note == "only in A" || c.Note == "only in B":
		return fmt.Sprintf("%-40s %12s %12s  %s", c.Name, fmtVal(c.A, c.NA), fmtVal(c.B, c.NB), c.Note)
	}
	delta := "~"
	if c.Significant {
		delta = fmt.Sprintf("%+.2f%%", 100*c.Delta)
		if math.IsNaN(c.Delta) {
			delta = "changed"
		}
	}
	flag := ""
	if c.Regression {
		flag = "  REGRESSION"
	}
	note := ""
	if c.Note != "" {
		note = "  (" + c.Note + ")"
	}
	return fmt.Sprintf("%-40s %12s %12s %-10s %9s (p=%.3f n=%d+%d)%s%s", c.Name, fmtVal(c.A, c.NA), fmtVal(c.B, c.NB), unit,
		delta, c.P, c.NA, c.NB, flag, note)
}

func fmtVal(v float64, n int) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprintf("%.4g", v)
}
