package svgplot

import (
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

func TestSave(t *testing.T) {
	dir := t.TempDir()
	p := plot.New()
	l, err := plotter.NewLine(plotter.XYs{{X: 1, Y: 2}, {X: 2, Y: 3}})
	if err != nil {
		t.Fatal(err)
	}
	l.Color = Color(1)
	p.Add(l)
	path := filepath.Join(dir, "a.svg")
	if err := Save(p, path, 4*vg.Inch, 3*vg.Inch); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := xml.Unmarshal(b, new(struct{})); err != nil {
		t.Errorf("not XML: %v", err)
	}
	// A log scale over no positive values panics inside the library.
	bad := plot.New()
	bad.Y.Scale = plot.LogScale{}
	bad.Y.Min, bad.Y.Max = -1, 0
	if err := Save(bad, filepath.Join(dir, "b.svg"), vg.Inch, vg.Inch); err == nil || !strings.Contains(err.Error(), "b.svg") {
		t.Errorf("an undrawable chart: %v", err)
	}
	if Color(0) == Color(1) || Color(8) != Color(0) || Color(-1) != Color(7) {
		t.Error("palette order")
	}
}
