package sim

import (
	"math"
	"testing"
)

func TestFastMath(t *testing.T) {
	r := NewRand(3)
	for i := range 200_000 {
		x := (r.Float64()*2 - 1) * 700
		if i%2 == 0 {
			x /= 100
		}
		if got, want := fexp(x), math.Exp(x); math.Abs(got-want) > 1e-12*want {
			t.Fatalf("fexp(%v) = %v, want %v", x, got, want)
		}
		v := [8]float64{x, -x, x / 3}
		if expN(&v, 3); v[0] != fexp(x) || v[1] != fexp(-x) || v[2] != fexp(x/3) {
			t.Fatalf("expN differs from fexp at %v", x)
		}
		y := math.Exp((r.Float64()*2 - 1) * 700)
		if got, want := flog(y), math.Log(y); math.Abs(got-want) > 1e-12*math.Max(1, math.Abs(want)) {
			t.Fatalf("flog(%v) = %v, want %v", y, got, want)
		}
	}
	if fexp(1000) != fexp(709) || fexp(-1000) != fexp(-708) || fexp(0) != 1 || fexp(-708) > 1e-307 {
		t.Error("fexp at the edges")
	}
	if flog(1) != 0 || !math.IsInf(flog(0), -1) || !math.IsNaN(flog(-1)) || flog(5e-324) != math.Log(5e-324) {
		t.Error("flog at the edges")
	}
}
