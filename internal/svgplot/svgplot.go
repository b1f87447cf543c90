// Package svgplot writes gonum.org/v1/plot charts as SVG files, with the
// line colours the project's reports share (plan's capacity reports and
// bench's history charts).
package svgplot

import (
	"bytes"
	"fmt"
	"image/color"
	"os"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"
)

// Color is the colour of a chart's i-th line: eight that stay apart,
// repeating after.
func Color(i int) color.Color {
	palette := [...]color.RGBA{
		{31, 119, 180, 255}, {255, 127, 14, 255}, {44, 160, 44, 255}, {214, 39, 40, 255},
		{148, 103, 189, 255}, {140, 86, 75, 255}, {227, 119, 194, 255}, {127, 127, 127, 255},
	}
	return palette[(i%len(palette)+len(palette))%len(palette)]
}

// Save draws p on a w × h canvas and writes it to path as SVG. The plotting
// library panics on axes it cannot draw (a log scale over no positive
// values): Save returns that as an error naming path, not a crash.
func Save(p *plot.Plot, path string, w, h vg.Length) (err error) {
	c := vgsvg.New(w, h)
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%s: %v", path, r)
		}
	}()
	p.Draw(draw.New(c))
	var b bytes.Buffer
	if _, err := c.WriteTo(&b); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}
