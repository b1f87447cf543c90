package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
)

// gemmCase is one GEMM problem with its inputs.
type gemmCase struct {
	m, k, n int
	a, b    []float32
	bias    []float32 // nil or n entries
	act     Activation
}

// newGemmCase makes random inputs in [-1, 1); a and b start one element
// past a 64-byte boundary so that the kernels see unaligned rows.
func newGemmCase(rng *rand.Rand, m, k, n int, withBias bool, act Activation) gemmCase {
	g := gemmCase{m: m, k: k, n: n, act: act}
	g.a = unalignedRandom(rng, m*k)
	g.b = unalignedRandom(rng, k*n)
	if withBias {
		g.bias = unalignedRandom(rng, n)
	}
	return g
}

func unalignedRandom(rng *rand.Rand, n int) []float32 {
	buf := AlignedFloat32(n + 1)[1:]
	for i := range buf {
		buf[i] = rng.Float32()*2 - 1
	}
	return buf[:n:n]
}

const gemmGuard = float32(-12345.5)

// run calls f on an output that starts as NaN (so that an unwritten output
// shows), sits one element past an aligned boundary and is followed by
// guard values, and checks the guards.
func (g gemmCase) run(t *testing.T, f func(c []float32)) []float32 {
	t.Helper()
	size := g.m * g.n
	buf := AlignedFloat32(size + 1 + 40)[1:]
	for i := range buf {
		buf[i] = gemmGuard
	}
	c := buf[:size:size]
	for i := range c {
		c[i] = float32(math.NaN())
	}
	f(c)
	for i, x := range buf[size:] {
		if x != gemmGuard {
			t.Fatalf("%v: guard %d past C overwritten: %v", g, i, x)
		}
	}
	return c
}

func (g gemmCase) String() string {
	return fmt.Sprintf("m=%d k=%d n=%d bias=%v act=%v", g.m, g.k, g.n, g.bias != nil, g.act)
}

// gemmScale is, for each output, the sum of |a_ip*b_pj| plus |bias_j|: the
// size that the rounding error of any summation order is measured against.
func gemmScale(a, b, bias []float32, m, k, n int) []float32 {
	abs := func(x []float32) []float32 {
		if x == nil {
			return nil
		}
		y := make([]float32, len(x))
		for i, v := range x {
			y[i] = float32(math.Abs(float64(v)))
		}
		return y
	}
	s := make([]float32, m*n)
	gemmGeneric(s, abs(a), abs(b), abs(bias), m, k, n, ActNone)
	return s
}

// gemmCompare checks got against want within a relative error of the
// scale, NaN against NaN.
func gemmCompare(t *testing.T, what string, g gemmCase, got, want, scale []float32) {
	t.Helper()
	// Summation order: k roundings of the scale. The outputs' own
	// rounding (after a sigmoid, the scale says nothing of it): four units,
	// the fused sigmoid being within 2 (TestGemmSigmoid).
	tol := float64(g.k+4) * 0x1p-23
	bad := 0
	for i := range want {
		w, x := float64(want[i]), float64(got[i])
		if math.IsNaN(w) || math.IsNaN(x) {
			if math.IsNaN(w) != math.IsNaN(x) {
				t.Errorf("%s %v: C[%d][%d] = %v, want %v", what, g, i/g.n, i%g.n, x, w)
				bad++
			}
		} else if math.Abs(x-w) > tol*float64(scale[i])+0x1p-21*math.Abs(w)+1e-30 && !(math.IsInf(w, 0) && w == x) {
			t.Errorf("%s %v: C[%d][%d] = %v, want %v (scale %v)", what, g, i/g.n, i%g.n, x, w, scale[i])
			bad++
		}
		if bad > 5 {
			t.FailNow()
		}
	}
}

// check runs Gemm, GemmPacked and GemmBF16 on g against their references.
func (g gemmCase) check(t *testing.T) {
	t.Helper()
	scale := gemmScale(g.a, g.b, g.bias, g.m, g.k, g.n)
	want := make([]float32, g.m*g.n)
	gemmGeneric(want, g.a, g.b, g.bias, g.m, g.k, g.n, g.act)

	got := g.run(t, func(c []float32) { Gemm(c, g.a, g.b, g.bias, g.m, g.k, g.n, g.act) })
	gemmCompare(t, "Gemm", g, got, want, scale)

	pb := PackB(g.b, g.k, g.n)
	if pb.K() != g.k || pb.N() != g.n {
		t.Fatalf("PackB: K, N = %d, %d; want %d, %d", pb.K(), pb.N(), g.k, g.n)
	}
	got = g.run(t, func(c []float32) { GemmPacked(c, g.a, g.m, pb, g.bias, g.act) })
	gemmCompare(t, "GemmPacked", g, got, want, scale)

	hb := PackBF16(g.b, g.k, g.n)
	if hb.K() != g.k || hb.N() != g.n {
		t.Fatalf("PackBF16: K, N = %d, %d; want %d, %d", hb.K(), hb.N(), g.k, g.n)
	}
	gemmBF16Generic(want, g.a, g.m, hb, g.bias, g.act)
	got = g.run(t, func(c []float32) { GemmBF16(c, g.a, g.m, hb, g.bias, g.act) })
	gemmCompare(t, "GemmBF16", g, got, want, scale)
}

func TestGemmShapes(t *testing.T) {
	// Every m up to 29 runs every row count of both kernels (1..14 and
	// 1..6), alone and after full row blocks.
	var ms []int
	for m := range 30 {
		ms = append(ms, m)
	}
	ks := []int{0, 1, 2, 3, 4, 7, 16, 17}
	ns := []int{0, 1, 2, 7, 8, 15, 16, 17, 24, 31, 32, 33, 47, 48, 49, 63, 64, 65}
	if testing.Short() {
		ms = ms[:16]
		ns = []int{0, 1, 15, 16, 17, 31, 32, 33, 48, 65}
	}
	forEachLevel(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(1, 2))
		i := 0
		for _, m := range ms {
			for _, k := range ks {
				for _, n := range ns {
					i++
					newGemmCase(rng, m, k, n, i%2 == 0, Activation(i%3)).check(t)
				}
			}
		}
	})
}

// TestGemmBlocks covers the k and n block edges (gemmKC, gemmKP pairs,
// gemmNC) and shapes like the ranker's layers.
func TestGemmBlocks(t *testing.T) {
	shapes := [][3]int{
		{3, 255, 40}, {15, 256, 33}, {14, 257, 64}, {29, 511, 17}, {6, 512, 97},
		{7, 513, 31}, {2, 1023, 5}, {17, 1025, 48}, {5, 40, 511}, {13, 33, 512},
		{15, 20, 513}, {3, 300, 1100}, {100, 64, 96}, {50, 256, 128},
	}
	if testing.Short() {
		shapes = shapes[:10]
	}
	forEachLevel(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(3, 4))
		for i, s := range shapes {
			newGemmCase(rng, s[0], s[1], s[2], i%2 == 0, Activation(i%3)).check(t)
		}
	})
}

// TestGemmNaN checks that NaN and Inf in A or B reach the outputs they
// touch, through ReLU as well.
func TestGemmNaN(t *testing.T) {
	forEachLevel(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(5, 6))
		for _, act := range []Activation{ActNone, ActReLU, ActSigmoid} {
			g := newGemmCase(rng, 17, 40, 37, true, act)
			g.a[3*g.k+5] = float32(math.NaN())
			g.b[7*g.n+35] = float32(math.Inf(1))
			g.b[9*g.n+2] = float32(math.NaN())
			g.check(t)
		}
	})
}

func TestGemmNaNRow(t *testing.T) {
	// Every output of a row whose A holds a NaN is NaN, ReLU included.
	forEachLevel(t, func(t *testing.T) {
		m, k, n := 3, 8, 40
		a := make([]float32, m*k)
		b := make([]float32, k*n)
		for i := range b {
			b[i] = 1
		}
		a[1*k+4] = float32(math.NaN())
		c := make([]float32, m*n)
		GemmPacked(c, a, m, PackB(b, k, n), nil, ActReLU)
		for j := range n {
			if !math.IsNaN(float64(c[n+j])) || c[j] != 0 {
				t.Fatalf("C[1][%d] = %v, C[0][%d] = %v; want NaN and 0", j, c[n+j], j, c[j])
			}
		}
	})
}

func TestGemmConcurrent(t *testing.T) {
	forEachLevel(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(7, 8))
		var wg sync.WaitGroup
		errs := make(chan string, 16)
		for w := range 8 {
			g := newGemmCase(rng, 20+w, 300, 70+w, true, ActReLU)
			pb := PackB(g.b, g.k, g.n)
			hb := PackBF16(g.b, g.k, g.n)
			want := make([]float32, g.m*g.n)
			gemmGeneric(want, g.a, g.b, g.bias, g.m, g.k, g.n, g.act)
			wantBF := make([]float32, g.m*g.n)
			gemmBF16Generic(wantBF, g.a, g.m, hb, g.bias, g.act)
			scale := gemmScale(g.a, g.b, g.bias, g.m, g.k, g.n)
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := make([]float32, g.m*g.n)
				for range 20 {
					Gemm(c, g.a, g.b, g.bias, g.m, g.k, g.n, g.act)
					if e := gemmMaxErr(c, want, scale); e > 1e-4 {
						errs <- fmt.Sprintf("Gemm %v: relative error %g", g, e)
						return
					}
					GemmPacked(c, g.a, g.m, pb, g.bias, g.act)
					if e := gemmMaxErr(c, want, scale); e > 1e-4 {
						errs <- fmt.Sprintf("GemmPacked %v: relative error %g", g, e)
						return
					}
					GemmBF16(c, g.a, g.m, hb, g.bias, g.act)
					if e := gemmMaxErr(c, wantBF, scale); e > 1e-4 {
						errs <- fmt.Sprintf("GemmBF16 %v: relative error %g", g, e)
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for e := range errs {
			t.Error(e)
		}
	})
}

func gemmMaxErr(got, want, scale []float32) float64 {
	var worst float64
	for i := range want {
		e := math.Abs(float64(got[i]-want[i])) / (float64(scale[i]) + 1e-30)
		worst = max(worst, e)
	}
	return worst
}

func TestGemmPanics(t *testing.T) {
	f := make([]float32, 100)
	pb := PackB(f[:12], 3, 4)
	hb := PackBF16(f[:12], 3, 4)
	cases := []struct {
		name, want string
		f          func()
	}{
		{"len(a)", "kernels: Gemm: len(a) = 5, want m*k = 6", func() { Gemm(f[:8], f[:5], f[:12], nil, 2, 3, 4, ActNone) }},
		{"len(b)", "kernels: Gemm: len(b) = 11, want k*n = 12", func() { Gemm(f[:8], f[:6], f[:11], nil, 2, 3, 4, ActNone) }},
		{"len(c)", "kernels: Gemm: len(c) = 9, want m*n = 8", func() { Gemm(f[:9], f[:6], f[:12], nil, 2, 3, 4, ActNone) }},
		{"len(bias)", "kernels: Gemm: len(bias) = 3, want n = 4", func() { Gemm(f[:8], f[:6], f[:12], f[:3], 2, 3, 4, ActNone) }},
		{"negative", "kernels: Gemm: negative shape", func() { Gemm(nil, nil, nil, nil, -1, 3, 4, ActNone) }},
		{"act", "kernels: Gemm: unknown activation 3", func() { Gemm(f[:8], f[:6], f[:12], nil, 2, 3, 4, 3) }},
		{"packed len(a)", "kernels: GemmPacked: len(a) = 7, want m*k = 6", func() { GemmPacked(f[:8], f[:7], 2, pb, nil, ActNone) }},
		{"packed len(c)", "kernels: GemmPacked: len(c) = 7, want m*n = 8", func() { GemmPacked(f[:7], f[:6], 2, pb, nil, ActNone) }},
		{"packed nil", "kernels: GemmPacked: nil PackedB", func() { GemmPacked(f[:8], f[:6], 2, nil, nil, ActNone) }},
		{"bf16 len(bias)", "kernels: GemmBF16: len(bias) = 5, want n = 4", func() { GemmBF16(f[:8], f[:6], 2, hb, f[:5], ActNone) }},
		{"bf16 nil", "kernels: GemmBF16: nil PackedBF16", func() { GemmBF16(f[:8], f[:6], 2, nil, nil, ActNone) }},
		{"PackB", "kernels: PackB: len(b) = 11, want k*n = 12", func() { PackB(f[:11], 3, 4) }},
		{"PackBF16", "kernels: PackBF16: len(b) = 13, want k*n = 12", func() { PackBF16(f[:13], 3, 4) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				r := recover()
				if s, _ := r.(string); !strings.HasPrefix(s, tc.want) {
					t.Errorf("panic %v; want %q", r, tc.want)
				}
			}()
			tc.f()
		})
	}
}

func TestActivationString(t *testing.T) {
	for a, want := range map[Activation]string{ActNone: "none", ActReLU: "relu", ActSigmoid: "sigmoid", 9: "Activation(9)"} {
		if a.String() != want {
			t.Errorf("%d.String() = %q, want %q", uint8(a), a.String(), want)
		}
	}
}

// toBF16Ref rounds through float64: the nearer of the two bfloat16 values
// around x, the even one on a tie.
func toBF16Ref(x float32) BF16 {
	u := math.Float32bits(x)
	lo := BF16(u >> 16)
	hi := lo + 1
	val := func(h BF16) float64 {
		if h&0x7fff == 0x7f80 { // Inf stands for 2^128 in the rounding
			return math.Copysign(0x1p128, float64(x))
		}
		return float64(h.Float32())
	}
	dlo := math.Abs(float64(x) - val(lo))
	dhi := math.Abs(float64(x) - val(hi))
	if dhi < dlo || (dhi == dlo && lo&1 == 1) {
		return hi
	}
	return lo
}

func TestToBF16(t *testing.T) {
	cases := map[uint32]BF16{
		0x3f800000: 0x3f80, // 1
		0x3f808000: 0x3f80, // tie, down to even
		0x3f818000: 0x3f82, // tie, up to even
		0x3f808001: 0x3f81, // above the tie
		0xbf80ffff: 0xbf81,
		0x7f7fffff: 0x7f80, // MaxFloat32 rounds to +Inf
		0xff7fffff: 0xff80,
		0x7f800000: 0x7f80, // +Inf
		0x00000001: 0x0000, // smallest subnormal rounds to zero
		0x80000000: 0x8000, // -0
	}
	for in, want := range cases {
		if got := ToBF16(math.Float32frombits(in)); got != want {
			t.Errorf("ToBF16(%#08x) = %#04x, want %#04x", in, got, want)
		}
	}
	for _, in := range []uint32{0x7fc00000, 0x7f800001, 0xffbfffff} {
		got := ToBF16(math.Float32frombits(in))
		if !math.IsNaN(float64(got.Float32())) || got>>15 != BF16(in>>31) {
			t.Errorf("ToBF16(%#08x) = %#04x, want a NaN of the same sign", in, got)
		}
	}
	rng := rand.New(rand.NewPCG(9, 10))
	for range 200000 {
		u := rng.Uint32()
		if u&0x7f800000 == 0x7f800000 {
			continue
		}
		x := math.Float32frombits(u)
		if got, want := ToBF16(x), toBF16Ref(x); got != want {
			t.Fatalf("ToBF16(%#08x) = %#04x, want %#04x", u, got, want)
		}
	}
}

func FuzzGemm(f *testing.F) {
	f.Add(uint8(3), uint16(5), uint16(7), uint64(1), true, uint8(1))
	f.Add(uint8(14), uint16(256), uint16(32), uint64(2), false, uint8(0))
	f.Add(uint8(15), uint16(257), uint16(33), uint64(3), true, uint8(2))
	f.Add(uint8(1), uint16(0), uint16(17), uint64(4), true, uint8(1))
	f.Add(uint8(6), uint16(513), uint16(16), uint64(5), false, uint8(1))
	f.Fuzz(func(t *testing.T, m8 uint8, k16, n16 uint16, seed uint64, withBias bool, act8 uint8) {
		m, k, n := int(m8%40), int(k16%600), int(n16%100)
		rng := rand.New(rand.NewPCG(seed, 11))
		newGemmCase(rng, m, k, n, withBias, Activation(act8%3)).check(t)
	})
}

// TestGemmSigmoid measures the fused sigmoid alone: with k = 1 and A = 1 the
// pre-activation is exactly B, so every output must be the correctly rounded
// sigmoid within 4 units in the last place (or 2e-38 where it is subnormal).
func TestGemmSigmoid(t *testing.T) {
	forEachLevel(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(14, 15))
		n := 4000
		b := make([]float32, n)
		for j := range b {
			switch {
			case j < 2000:
				b[j] = float32(j-1000) / 10 // -100 .. 100
			default:
				b[j] = float32(rng.NormFloat64() * math.Pow(10, float64(rng.IntN(7)-4)))
			}
		}
		b[0], b[1], b[2], b[3] = float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), 0
		c := make([]float32, n)
		GemmPacked(c, []float32{1}, 1, PackB(b, 1, n), nil, ActSigmoid)
		var worst float64
		for j, x := range b {
			want := sigmoid(x)
			got := c[j]
			if math.IsNaN(float64(want)) {
				if !math.IsNaN(float64(got)) {
					t.Errorf("sigmoid(%v) = %v, want NaN", x, got)
				}
				continue
			}
			d := math.Abs(float64(got) - float64(want))
			if want < 0x1p-126 {
				if d > 2e-38 {
					t.Errorf("sigmoid(%v) = %v, want %v", x, got, want)
				}
				continue
			}
			ulp := float64(math.Nextafter32(want, 2) - want)
			worst = max(worst, d/ulp)
			if d > 4*ulp {
				t.Errorf("sigmoid(%v) = %v, want %v (%.1f ulp)", x, got, want, d/ulp)
			}
		}
		t.Logf("worst error %.2f ulp", worst)
	})
}
