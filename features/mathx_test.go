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

func TestFastExp(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	check := func(x float64) {
		got, want := fastExp(x), math.Exp(x)
		if math.Abs(got/want-1) > 3e-9 {
			t.Fatalf("fastExp(%v) = %v, want %v", x, got, want)
		}
	}
	for _, x := range []float64{-700, -699.5, -1, -0.5, 0, 1e-12, 0.5, 1, 2.5, 88, 699.9, 700} {
		check(x)
	}
	for range 200000 {
		check(rng.Float64()*1400 - 700)
	}
	if fastExp(0) != 1 && math.Abs(fastExp(0)-1) > 1e-10 {
		t.Fatal("fastExp(0) far from 1")
	}
}
