package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestF16RoundTrip: every half converts to float32 and back unchanged.
func TestF16RoundTrip(t *testing.T) {
	for h := range 1 << 16 {
		f := F16(h).Float32()
		if f != f {
			if back := ToF16(f); back&0x7c00 != 0x7c00 || back&0x3ff == 0 {
				t.Fatalf("NaN %#04x came back as %#04x", h, back)
			}
			continue
		}
		if back := ToF16(f); back != F16(h) {
			t.Fatalf("%#04x -> %v -> %#04x", h, f, back)
		}
	}
}

// TestF16Rounding: ToF16 picks the nearest half, ties to even, for random
// floats over the whole range, subnormals and overflow included.
func TestF16Rounding(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 32))
	check := func(f float32) {
		h := ToF16(f)
		got := float64(h.Float32())
		x := float64(f)
		if math.Abs(x) >= 65520 { // rounds to Inf
			if !math.IsInf(got, int(math.Copysign(1, x))) {
				t.Fatalf("ToF16(%v) = %v, want Inf", f, got)
			}
			return
		}
		for _, nb := range []F16{h - 1, h + 1} {
			if nb&0x7c00 == 0x7c00 || (nb^h)&0x8000 != 0 {
				continue
			}
			alt := float64(nb.Float32())
			de, da := math.Abs(got-x), math.Abs(alt-x)
			if da < de || da == de && h&1 == 1 {
				t.Fatalf("ToF16(%v) = %#04x (%v); %#04x (%v) is nearer or even", f, h, got, nb, alt)
			}
		}
	}
	for range 200_000 {
		check(math.Float32frombits(r.Uint32()))
		check(float32(r.NormFloat64() * math.Pow(2, float64(r.IntN(40)-28))))
	}
	for _, f := range []float32{0, float32(math.Copysign(0, -1)), 1, -1, 65504, 65519.99, 65520, 6.1e-5, 5.96e-8, 2.98e-8, 2.99e-8, 1e-10} {
		check(f)
	}
}

func TestDotF16(t *testing.T) {
	forEachLevel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(33, 34))
		for _, n := range pairSizes {
			q := randFloats(r, n, n%3)
			xf := randFloats(r, n, 1)
			x := make([]F16, n+1)[1:] // unaligned
			ToF16s(x, xf)
			// The exact value uses the halves as stored.
			for i := range xf {
				xf[i] = x[i].Float32()
			}
			got := DotF16(q, x)
			exact, abs := exactDot(q, xf)
			if !closeTo(got, exact, abs, n) {
				t.Fatalf("DotF16 n=%d: got %v, exact %v", n, got, exact)
			}
			got = L2SqF16(q, x)
			exact, abs = exactL2(q, xf)
			if !closeTo(got, exact, abs, n) {
				t.Fatalf("L2SqF16 n=%d: got %v, exact %v", n, got, exact)
			}
		}
	})
}

func TestF16Panics(t *testing.T) {
	mustPanic(t, "kernels: DotF16: len(q) = 2, len(x) = 3", func() { DotF16(make([]float32, 2), make([]F16, 3)) })
	mustPanic(t, "kernels: L2SqF16", func() { L2SqF16(make([]float32, 2), nil) })
	mustPanic(t, "kernels: ToF16s", func() { ToF16s(make([]F16, 2), nil) })
}

func FuzzDotF16(f *testing.F) {
	f.Add([]byte{0, 0, 128, 63, 0, 60}, uint8(0))
	f.Add(make([]byte, 6*41), uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, _ uint8) {
		n := len(data) / 6
		q := floatsFromBytes(data[:4*n])
		x := make([]F16, n)
		xf := make([]float32, n)
		for i := range x {
			x[i] = F16(uint16(data[4*n+2*i]) | uint16(data[4*n+2*i+1])<<8)
			xf[i] = x[i].Float32()
		}
		eachLevel(func(l Level) {
			exact, abs := exactDot(q, xf)
			if got := DotF16(q, x); !sameFloat(got, float32(exact), exact, abs, n) {
				t.Fatalf("%s DotF16 n=%d: got %v, exact %v", l, n, got, exact)
			}
			exact, abs = exactL2(q, xf)
			if got := L2SqF16(q, x); !sameFloat(got, float32(exact), exact, abs, n) {
				t.Fatalf("%s L2SqF16 n=%d: got %v, exact %v", l, n, got, exact)
			}
			// The many-row forms sum in the same order as the one-row ones.
			many := make([]float32, 3)
			DotF16Many(many, q, [][]F16{x, x, x})
			L2SqF16Many(many[2:], q, [][]F16{x})
			d1, d2 := DotF16(q, x), L2SqF16(q, x)
			if !sameBits(many[0], d1) || !sameBits(many[1], d1) || !sameBits(many[2], d2) {
				t.Fatalf("%s n=%d: many-row forms %v differ from %v, %v", l, n, many, d1, d2)
			}
		})
	})
}

func TestF16Many(t *testing.T) {
	forEachLevel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(35, 36))
		for _, d := range []int{0, 1, 7, 8, 16, 17, 33, 128, 784} {
			for _, n := range []int{0, 1, 3, 4, 5, 9, 40} {
				q := randFloats(r, d, 1)
				pool := make([]F16, 50*d+3)
				for i := range pool {
					pool[i] = ToF16(r.Float32()*2 - 1)
				}
				rows := make([][]F16, n)
				for i := range rows {
					off := r.IntN(48*d + 1)
					rows[i] = pool[off : off+d]
				}
				buf := make([]float32, n+4)
				for i := range buf {
					buf[i] = 42
				}
				dst := buf[:n:n]
				for _, k := range []struct {
					name  string
					f     func(dst, q []float32, rows [][]F16)
					exact func(a, b []float32) (float64, float64)
				}{{"DotF16Many", DotF16Many, exactDot}, {"L2SqF16Many", L2SqF16Many, exactL2}} {
					k.f(dst, q, rows)
					for i := range n {
						xf := make([]float32, d)
						for j := range xf {
							xf[j] = rows[i][j].Float32()
						}
						exact, abs := k.exact(q, xf)
						if !closeTo(dst[i], exact, abs, d) {
							t.Fatalf("%s d=%d n=%d row %d: got %v, exact %v", k.name, d, n, i, dst[i], exact)
						}
					}
					for i := n; i < len(buf); i++ {
						if buf[i] != 42 {
							t.Fatalf("%s d=%d n=%d: wrote past dst", k.name, d, n)
						}
					}
				}
			}
		}
	})
	mustPanic(t, "len(rows[1]) = 3, len(q) = 4", func() {
		DotF16Many(make([]float32, 2), make([]float32, 4), [][]F16{make([]F16, 4), make([]F16, 3)})
	})
	mustPanic(t, "kernels: L2SqF16Many: len(dst) = 1, len(rows) = 2", func() {
		L2SqF16Many(make([]float32, 1), nil, [][]F16{nil, nil})
	})
}
