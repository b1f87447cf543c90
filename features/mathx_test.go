package features

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestFastLog1p(t *testing.T) {
	check := func(x float32) {
		got, want := float64(fastLog1p(x)), math.Log1p(float64(x))
		if math.Abs(got-want) > 3e-6+1e-6*want {
			t.Fatalf("fastLog1p(%v) = %v, want %v", x, got, want)
		}
	}
	for _, x := range []float32{0, 1e-30, 1e-4, 9.99e-4, 1e-3, 0.5, 1, 1.4142, 2, 3, 1e3, 1e6, 1e20, math.MaxFloat32 / 2} {
		check(x)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		check(float32(math.Exp(rng.Float64()*60 - 20)))
	}
	prev := float32(0)
	if fastLog1p(0) != 0 {
		t.Fatal("fastLog1p(0) != 0")
	}
	for x := float32(0); x < 10; x += 0.001 {
		if v := fastLog1p(x); v < prev {
			t.Fatalf("not monotone at %v", x)
		} else {
			prev = v
		}
	}
}

func BenchmarkFastLog1p(b *testing.B) {
	var s float32
	x := float32(0.5)
	for b.Loop() {
		s += fastLog1p(x)
		x += 0.25
	}
	_ = s
}
