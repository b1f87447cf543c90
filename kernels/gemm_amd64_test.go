//go:build amd64 && gc && !purego && !noasm

package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestGemmPairsBF16 checks the A converter of the bf16 path against ToBF16
// for every length 0..300, with guards past the pairs it writes. Subnormal
// inputs become zero (VDPBF16PS reads them as zero anyway).
func TestGemmPairsBF16(t *testing.T) {
	if !cpu.hwBF16 {
		t.Skip("no AVX512_BF16")
	}
	rng := rand.New(rand.NewPCG(12, 13))
	for n := range 301 {
		src := unalignedRandom(rng, n)
		for i := range src {
			switch rng.IntN(16) {
			case 0:
				src[i] = float32(math.NaN())
			case 1:
				src[i] = float32(math.Inf(-1))
			case 2:
				src[i] = math.Float32frombits(rng.Uint32() & 0x807fffff) // subnormal
			case 3:
				src[i] = math.Float32frombits(0x3f808000) // a tie
			}
		}
		np := (n + 1) / 2
		buf := make([]uint32, np+20)
		for i := range buf {
			buf[i] = 0xdeadbeef
		}
		gemmPairsBF16AVX512(buf[:np], src)
		for q := range np {
			lo, hi := src[2*q], float32(0)
			if 2*q+1 < n {
				hi = src[2*q+1]
			}
			for h, x := range []float32{lo, hi} {
				got := BF16(buf[q] >> (16 * h))
				want := ToBF16(x)
				switch {
				case math.IsNaN(float64(x)):
					if !math.IsNaN(float64(got.Float32())) {
						t.Fatalf("n=%d: pair %d half %d = %#04x, want NaN", n, q, h, got)
					}
				case x != 0 && math.Abs(float64(x)) < 0x1p-126:
					if got&0x7fff != 0 && got != want {
						t.Fatalf("n=%d: pair %d half %d = %#04x from subnormal %g, want 0 or %#04x", n, q, h, got, x, want)
					}
				case got != want:
					t.Fatalf("n=%d: pair %d half %d = %#04x from %g, want %#04x", n, q, h, got, x, want)
				}
			}
		}
		for i, v := range buf[np:] {
			if v != 0xdeadbeef {
				t.Fatalf("n=%d: guard %d overwritten: %#x", n, i, v)
			}
		}
	}
}
