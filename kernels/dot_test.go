package kernels

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"
)

// randFloats returns n values in [-1, 1) starting off elements into a
// 64-byte-aligned buffer, so that off != 0 gives an unaligned slice.
func randFloats(r *rand.Rand, n, off int) []float32 {
	buf := AlignedFloat32(n + off)
	for i := range buf {
		buf[i] = r.Float32()*2 - 1
	}
	return buf[off : off+n : off+n]
}

// exactDot is the inner product in float64 and the sum of |terms|, which
// bounds the rounding error of any float32 summation order.
func exactDot(a, b []float32) (sum, abs float64) {
	for i := range a {
		t := float64(a[i]) * float64(b[i])
		sum += t
		abs += math.Abs(t)
	}
	return sum, abs
}

func exactL2(a, b []float32) (sum, abs float64) {
	for i := range a {
		d := float64(a[i]) - float64(b[i])
		sum += d * d
	}
	return sum, sum
}

// closeTo reports whether a float32 result computed from n terms is within the
// worst-case rounding error of any summation order of the exact value.
func closeTo(got float32, exact, abs float64, n int) bool {
	tol := float64(n+4)*0x1p-23*abs + 1e-30
	return math.Abs(float64(got)-exact) <= tol
}

var pairSizes = func() []int {
	var s []int
	for n := 0; n <= 300; n++ {
		s = append(s, n)
	}
	return append(s, 511, 512, 513, 1000, 4096+7)
}()

func TestDotL2Sq(t *testing.T) {
	kernelsPair := []struct {
		name  string
		f     func(a, b []float32) float32
		ref   func(a, b []float32) float32
		exact func(a, b []float32) (float64, float64)
	}{
		{"Dot", Dot, dotGeneric, exactDot},
		{"L2Sq", L2Sq, l2SqGeneric, exactL2},
	}
	forEachLevel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(1, 2))
		for _, k := range kernelsPair {
			for _, n := range pairSizes {
				for _, off := range []int{0, 1, 3} {
					a, b := randFloats(r, n, off), randFloats(r, n, (off+1)%4)
					got := k.f(a, b)
					exact, abs := k.exact(a, b)
					if !closeTo(got, exact, abs, n) {
						t.Fatalf("%s n=%d off=%d: got %v, exact %v (generic %v)", k.name, n, off, got, exact, k.ref(a, b))
					}
				}
			}
		}
	})
}

func TestDotL2SqNaN(t *testing.T) {
	forEachLevel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(3, 4))
		for _, n := range []int{1, 7, 8, 9, 16, 17, 63, 64, 65, 130} {
			for _, pos := range []int{0, n / 2, n - 1} {
				a, b := randFloats(r, n, 0), randFloats(r, n, 0)
				a[pos] = float32(math.NaN())
				if got := Dot(a, b); !math.IsNaN(float64(got)) {
					t.Errorf("Dot n=%d NaN at %d: got %v", n, pos, got)
				}
				if got := L2Sq(b, a); !math.IsNaN(float64(got)) {
					t.Errorf("L2Sq n=%d NaN at %d: got %v", n, pos, got)
				}
				a[pos] = float32(math.Inf(1))
				b[pos] = 0.5
				if got := Dot(a, b); !math.IsInf(float64(got), 1) {
					t.Errorf("Dot n=%d +Inf at %d: got %v", n, pos, got)
				}
			}
		}
	})
}

var batchDims = []int{0, 1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 127, 128, 129, 300, 784}

func TestBatch(t *testing.T) {
	type batchFn struct {
		name  string
		f     func(dst, q, rows []float32)
		exact func(a, b []float32) (float64, float64)
	}
	fns := []batchFn{{"DotBatch", DotBatch, exactDot}, {"L2SqBatch", L2SqBatch, exactL2}}
	forEachLevel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(5, 6))
		for _, k := range fns {
			for _, d := range batchDims {
				for _, n := range []int{0, 1, 2, 3, 4, 5, 7, 8, 9, 13, 64, 67} {
					off := (d + n) % 3
					q := randFloats(r, d, off)
					rows := randFloats(r, n*d, 1-off%2)
					buf := make([]float32, n+8)
					for i := range buf {
						buf[i] = 42
					}
					dst := buf[:n:n]
					k.f(dst, q, rows)
					for i := range n {
						exact, abs := k.exact(q, rows[i*d:(i+1)*d])
						if !closeTo(dst[i], exact, abs, d) {
							t.Fatalf("%s d=%d n=%d row %d: got %v, exact %v", k.name, d, n, i, dst[i], exact)
						}
					}
					for i := n; i < len(buf); i++ {
						if buf[i] != 42 {
							t.Fatalf("%s d=%d n=%d: wrote past dst at %d", k.name, d, n, i)
						}
					}
				}
			}
		}
	})
}

func TestBatchMany(t *testing.T) {
	type manyFn struct {
		name  string
		f     func(dst, qs, rows []float32, d int)
		exact func(a, b []float32) (float64, float64)
	}
	fns := []manyFn{{"DotBatchMany", DotBatchMany, exactDot}, {"L2SqBatchMany", L2SqBatchMany, exactL2}}
	forEachLevel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(7, 8))
		for _, k := range fns {
			for _, c := range []struct{ m, n, d int }{{0, 5, 8}, {3, 0, 8}, {1, 1, 1}, {3, 5, 17}, {7, 9000, 16}, {5, 1100, 128}, {2, 70, 4000}} {
				qs, rows := randFloats(r, c.m*c.d, 1), randFloats(r, c.n*c.d, 0)
				dst := make([]float32, c.m*c.n)
				k.f(dst, qs, rows, c.d)
				for i := range c.m {
					for j := range c.n {
						exact, abs := k.exact(qs[i*c.d:(i+1)*c.d], rows[j*c.d:(j+1)*c.d])
						if got := dst[i*c.n+j]; !closeTo(got, exact, abs, c.d) {
							t.Fatalf("%s %+v [%d,%d]: got %v, exact %v", k.name, c, i, j, got, exact)
						}
					}
				}
			}
		}
	})
}

func TestDotShapePanics(t *testing.T) {
	mustPanic(t, "kernels: Dot: len(a) = 3, len(b) = 4", func() { Dot(make([]float32, 3), make([]float32, 4)) })
	mustPanic(t, "kernels: L2Sq", func() { L2Sq(make([]float32, 1), nil) })
	mustPanic(t, "len(rows) = 7", func() { DotBatch(make([]float32, 2), make([]float32, 4), make([]float32, 7)) })
	mustPanic(t, "kernels: L2SqBatch", func() { L2SqBatch(make([]float32, 2), make([]float32, 4), make([]float32, 9)) })
	mustPanic(t, "not multiples of d = 2", func() { DotBatchMany(nil, make([]float32, 5), make([]float32, 4), 2) })
	mustPanic(t, "len(dst) = 3, want m*n = 2*2", func() { L2SqBatchMany(make([]float32, 3), make([]float32, 4), make([]float32, 4), 2) })
	mustPanic(t, "negative dimension", func() { DotBatchMany(nil, nil, nil, -1) })
}

// floatsFromBytes turns fuzz bytes into float32 values, any bit pattern
// included (NaN, Inf, subnormals).
func floatsFromBytes(b []byte) []float32 {
	f := make([]float32, len(b)/4)
	for i := range f {
		f[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return f
}

// sameFloat compares a kernel result with its reference: both NaN, equal
// infinities, or within the rounding bound.
func sameFloat(got, want float32, exact, abs float64, n int) bool {
	switch {
	case math.IsNaN(float64(want)) || math.IsNaN(float64(got)):
		// Overflow to Inf in one summation order can meet the opposite Inf
		// in another; NaN on one side is only acceptable when the exact
		// terms do not fit in float32.
		return math.IsNaN(float64(got)) && math.IsNaN(float64(want)) || abs > math.MaxFloat32
	case math.IsInf(float64(want), 0) || math.IsInf(float64(got), 0):
		return got == want || abs > math.MaxFloat32/2
	}
	return closeTo(got, exact, abs, n)
}

func FuzzDot(f *testing.F) {
	f.Add([]byte{0, 0, 128, 63, 0, 0, 0, 64}, uint8(0))
	f.Add(make([]byte, 4*37*2), uint8(5))
	r := rand.New(rand.NewPCG(9, 9))
	seed := make([]byte, 4*2*77)
	for i := range seed {
		seed[i] = byte(r.IntN(64))
	}
	f.Add(seed, uint8(3))
	f.Fuzz(func(t *testing.T, data []byte, d uint8) {
		eachLevel(func(l Level) { checkDotFuzz(t, l, data, d) })
	})
}

// checkDotFuzz checks Dot, L2Sq and both batch forms on one fuzz input at level l.
func checkDotFuzz(t *testing.T, l Level, data []byte, d uint8) {
	v := floatsFromBytes(data)
	n := len(v) / 2
	a, b := v[:n], v[n:2*n]
	for _, k := range []struct {
		name  string
		f     func(a, b []float32) float32
		exact func(a, b []float32) (float64, float64)
	}{{"Dot", Dot, exactDot}, {"L2Sq", L2Sq, exactL2}} {
		got := k.f(a, b)
		exact, abs := k.exact(a, b)
		if !sameFloat(got, float32(exact), exact, abs, n) {
			t.Fatalf("%s %s n=%d: got %v, exact %v", l, k.name, n, got, exact)
		}
	}
	// The same data as a batch: q of dimension d, as many rows as fit.
	dim := int(d%40) + 1
	if len(v) < dim {
		return
	}
	q, rest := v[:dim], v[dim:]
	rows := rest[:len(rest)/dim*dim]
	dst := make([]float32, len(rows)/dim)
	for _, k := range []struct {
		name  string
		f     func(dst, q, rows []float32)
		exact func(a, b []float32) (float64, float64)
	}{{"DotBatch", DotBatch, exactDot}, {"L2SqBatch", L2SqBatch, exactL2}} {
		k.f(dst, q, rows)
		for i := range dst {
			exact, abs := k.exact(q, rows[i*dim:(i+1)*dim])
			if !sameFloat(dst[i], float32(exact), exact, abs, dim) {
				t.Fatalf("%s %s d=%d row %d: got %v, exact %v", l, k.name, dim, i, dst[i], exact)
			}
		}
	}
}
