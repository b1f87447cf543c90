package bench

import (
	"math"
	"testing"
)

func within(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

// TestMannWhitneyKnown checks the test against values from R's wilcox.test
// and SciPy's mannwhitneyu.
func TestMannWhitneyKnown(t *testing.T) {
	seq := func(a, b float64) []float64 {
		var s []float64
		for v := a; v <= b; v++ {
			s = append(s, v)
		}
		return s
	}
	for _, c := range []struct {
		name string
		x, y []float64
		u, p float64
		tol  float64
	}{
		// wilcox.test(1:6, 7:12): W = 0, p-value = 0.002165 (2/924).
		{"6+6 apart", seq(1, 6), seq(7, 12), 0, 2.0 / 924, 1e-12},
		// wilcox.test(1:5, 6:10): W = 0, p-value = 0.007937 (2/252).
		{"5+5 apart", seq(1, 5), seq(6, 10), 0, 2.0 / 252, 1e-12},
		// the same the other way round: U counts x above y.
		{"5+5 reversed", seq(6, 10), seq(1, 5), 25, 2.0 / 252, 1e-12},
		// wilcox.test(c(1,3,5,7), c(2,4,6,8)): W = 6, p-value = 0.6857.
		{"interleaved", []float64{1, 3, 5, 7}, []float64{2, 4, 6, 8}, 6, 0.6857142857, 1e-9},
		// wilcox.test(c(1,2,3), c(4,5,6)): W = 0, p-value = 0.1 (2/20).
		{"3+3 apart", seq(1, 3), seq(4, 6), 0, 0.1, 1e-12},
		// Ties: the normal approximation with tie and continuity corrections,
		// as wilcox.test(x, y, exact = FALSE, correct = TRUE): midranks give
		// R1 = 20, U = 5; the ties (three 2s, two each of 3, 4, 5) make
		// sigma² = 30/12 (12 - 42/110) = 29.0455, z = (10 - 0.5)/5.38938 =
		// 1.76272, p = 0.077947.
		{"ties", []float64{1, 2, 2, 3, 4}, []float64{2, 3, 4, 5, 5, 6}, 5, 0.077947, 1e-6},
		{"all equal", []float64{1, 1, 1}, []float64{1, 1}, 3, 1, 0},
		{"empty", nil, []float64{1}, 0, 1, 0},
	} {
		u, p := MannWhitney(c.x, c.y)
		if u != c.u || !within(p, c.p, c.tol) {
			t.Errorf("%s: U %v p %.6f, want U %v p %.6f", c.name, u, p, c.u, c.p)
		}
	}
}

// TestMannWhitneyNormal checks the large-sample path: 26+26 values apart,
// z = (338 - 0.5) / sqrt(26*26*53/12), p = erfc(z/√2).
func TestMannWhitneyNormal(t *testing.T) {
	var x, y []float64
	for i := range 26 {
		x = append(x, float64(i))
		y = append(y, float64(100+i))
	}
	u, p := MannWhitney(x, y)
	z := (338 - 0.5) / math.Sqrt(26*26*53/12.0)
	if u != 0 || !within(p, math.Erfc(z/math.Sqrt2), 1e-15) {
		t.Fatalf("U %v p %g", u, p)
	}
	if p > 1e-8 {
		t.Fatalf("p %g for samples far apart", p)
	}
	// scipy.stats.mannwhitneyu(range(1,6), range(6,11), method='asymptotic'): p = 0.01219.
	if z := (12.5 - 0.5) / math.Sqrt(25*11/12.0); !within(math.Erfc(z/math.Sqrt2), 0.01219, 1e-5) {
		t.Fatalf("normal approximation of 5+5: %g", math.Erfc(z/math.Sqrt2))
	}
}
