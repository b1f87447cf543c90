package loop

import (
	"bytes"
	"fmt"
	"html"
	"math"
)

// Series is one line of a chart: a value per day, from day 1.
type Series struct {
	Name string
	Y    []float64
}

// palette colours the series in order (Okabe and Ito's, legible to the
// colour-blind).
var palette = []string{"#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"}

// LineChart draws the series over days 1..n as a standalone SVG, with a
// dashed line after the first warmup days (0: none). Values that are
// not finite are left out of the lines.
func LineChart(title, unit string, warmup int, series []Series) []byte {
	const (
		width, height = 720, 360
		left, right   = 70, 130
		top, bottom   = 40, 45
	)
	pw, ph := float64(width-left-right), float64(height-top-bottom)
	n := 0
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, s := range series {
		n = max(n, len(s.Y))
		for _, v := range s.Y {
			if !math.IsNaN(v) && !math.IsInf(v, 0) {
				lo, hi = min(lo, v), max(hi, v)
			}
		}
	}
	if math.IsInf(lo, 1) {
		lo, hi = 0, 1
	}
	if lo > 0 && lo < hi*0.5 {
		lo = 0
	}
	if hi-lo < 1e-12 {
		hi = lo + math.Max(1, math.Abs(lo)*0.1)
	}
	pad := (hi - lo) * 0.05
	lo, hi = lo-pad, hi+pad
	x := func(day int) float64 {
		if n <= 1 {
			return float64(left) + pw/2
		}
		return float64(left) + pw*float64(day-1)/float64(n-1)
	}
	y := func(v float64) float64 { return float64(top) + ph*(1-(v-lo)/(hi-lo)) }
	var b bytes.Buffer
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	p(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	p(`<rect width="%d" height="%d" fill="white"/>`+"\n", width, height)
	label := html.EscapeString(title)
	if unit != "" {
		label += " (" + html.EscapeString(unit) + ")"
	}
	p(`<text x="%d" y="22" font-size="15" font-weight="bold">%s</text>`+"\n", left, label)
	// Grid and axis labels.
	for i := 0; i <= 4; i++ {
		v := lo + (hi-lo)*float64(i)/4
		yy := y(v)
		p(`<line x1="%d" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", left, float64(left)+pw, yy, yy)
		p(`<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", left-6, yy+4, tick(v, hi-lo))
	}
	for d := 1; d <= n; d++ {
		p(`<text x="%.1f" y="%d" text-anchor="middle">%d</text>`+"\n", x(d), height-bottom+18, d)
	}
	p(`<text x="%.1f" y="%d" text-anchor="middle">day</text>`+"\n", float64(left)+pw/2, height-6)
	if warmup > 0 && warmup < n {
		xx := (x(warmup) + x(warmup+1)) / 2
		p(`<line x1="%.1f" x2="%.1f" y1="%d" y2="%.1f" stroke="#888" stroke-dasharray="4 4"/>`+"\n", xx, xx, top, float64(top)+ph)
		p(`<text x="%.1f" y="%d" fill="#666" font-size="10">first model</text>`+"\n", xx+4, top+12)
	}
	p(`<rect x="%d" y="%d" width="%.0f" height="%.0f" fill="none" stroke="#333"/>`+"\n", left, top, pw, ph)
	for i, s := range series {
		c := palette[i%len(palette)]
		var pts bytes.Buffer
		for d, v := range s.Y {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				continue
			}
			fmt.Fprintf(&pts, "%.1f,%.1f ", x(d+1), y(v))
		}
		p(`<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", c, bytes.TrimSpace(pts.Bytes()))
		ly := top + 14 + 18*i
		p(`<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="%s" stroke-width="3"/>`+"\n", width-right+12, width-right+32, ly-4, ly-4, c)
		p(`<text x="%d" y="%d">%s</text>`+"\n", width-right+38, ly, html.EscapeString(s.Name))
	}
	p("</svg>\n")
	return b.Bytes()
}

// tick formats an axis value with the precision its range needs.
func tick(v, span float64) string {
	switch {
	case span >= 50:
		return fmt.Sprintf("%.0f", v)
	case span >= 5:
		return fmt.Sprintf("%.1f", v)
	case span >= 0.5:
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.4f", v)
}
