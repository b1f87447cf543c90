package eventlog

import (
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
)

// TestExactFloat holds the scanner's short-float path to strconv, bit for
// bit, wherever it answers.
func TestExactFloat(t *testing.T) {
	check := func(s string) {
		f, ok := exactFloat([]byte(s))
		if !ok {
			return
		}
		want, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Fatalf("%q: exactFloat answered %v, strconv fails: %v", s, f, err)
		}
		if math.Float64bits(f) != math.Float64bits(want) {
			t.Fatalf("%q: exactFloat %v (%x), strconv %v (%x)", s, f, math.Float64bits(f), want, math.Float64bits(want))
		}
	}
	for _, s := range []string{"0.5", "-0.0", "0.0", "1.25", "120.5", "0.0042", "1e5", "1E-5", "2.5e-06", "1.3761269",
		"14.951953", "0.42719868", "123456789012345.0", "1234567890123456.0", "1e22", "1e23", "1e-22", "1e-23",
		"9.999999999999999e22", "0.000000000000000000000001", "-1.5e+3", "100.000"} {
		check(s)
	}
	rng := rand.New(rand.NewPCG(1, 1))
	for range 200000 {
		x := math.Float64frombits(rng.Uint64())
		if math.IsNaN(x) || math.IsInf(x, 0) {
			continue
		}
		check(strconv.FormatFloat(x, 'g', -1, 64))
		check(strconv.FormatFloat(float64(float32(rng.Float64()*100)), 'g', -1, 32))
		check(strconv.FormatFloat(rng.Float64(), 'f', rng.IntN(14), 64))
		check(strconv.FormatFloat(rng.Float64()*1e6, 'e', rng.IntN(12), 64))
	}
	if _, ok := exactFloat([]byte("0.1234567890123456")); ok {
		t.Error("16 significant digits took the short path")
	}
}
