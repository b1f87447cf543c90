package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

func randNorm(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.NormFloat64())
	}
	return s
}

// pqTableDirect is the table computed from the m-major centroids, in float64.
func pqTableDirect(cent, q []float32, m, ksub, dsub int, metric Metric) (val, mag []float64) {
	val = make([]float64, m*ksub)
	mag = make([]float64, m*ksub)
	for s := range m {
		for c := range ksub {
			var v, a float64
			for j := range dsub {
				x, y := float64(q[s*dsub+j]), float64(cent[(s*ksub+c)*dsub+j])
				if metric == L2 {
					v += (x - y) * (x - y)
					a += (x - y) * (x - y)
				} else {
					v += x * y
					a += math.Abs(x * y)
				}
			}
			val[s*ksub+c], mag[s*ksub+c] = v, a
		}
	}
	return val, mag
}

func TestPQTable(t *testing.T) {
	forEachLevel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(11, 12))
		for _, ksub := range []int{1, 3, 8, 16, 24, 32, 48, 64, 80, 256} {
			for _, dsub := range []int{1, 2, 3, 4, 8, 17} {
				for _, m := range []int{1, 2, 5, 8} {
					cent := randNorm(r, m*ksub*dsub)
					cb := NewPQCodebook(cent, m, ksub, dsub)
					q := randNorm(r, m*dsub)
					for _, metric := range []Metric{L2, InnerProduct} {
						buf := make([]float32, m*ksub+9)
						for i := range buf {
							buf[i] = 42
						}
						dst := buf[1 : 1+m*ksub : 1+m*ksub] // unaligned
						cb.Table(dst, q, metric)
						want, mag := pqTableDirect(cent, q, m, ksub, dsub, metric)
						for i := range dst {
							if d := math.Abs(float64(dst[i]) - want[i]); d > 1e-6*(mag[i]+1e-30)*float64(dsub) {
								t.Fatalf("ksub=%d dsub=%d m=%d %v: entry %d = %g, want %g", ksub, dsub, m, metric, i, dst[i], want[i])
							}
						}
						if buf[0] != 42 || buf[len(buf)-8] != 42 {
							t.Fatalf("ksub=%d dsub=%d m=%d: wrote outside dst", ksub, dsub, m)
						}
					}
				}
			}
		}
		// d = 128, M = 64 (dsub = 2) as the ranker uses it, both ksub.
		for _, ksub := range []int{16, 256} {
			const m, dsub = 64, 2
			cent := randNorm(r, m*ksub*dsub)
			cb := NewPQCodebook(cent, m, ksub, dsub)
			q := randNorm(r, m*dsub)
			dst := make([]float32, m*ksub)
			cb.Table(dst, q, L2)
			want, mag := pqTableDirect(cent, q, m, ksub, dsub, L2)
			for i := range dst {
				if d := math.Abs(float64(dst[i]) - want[i]); d > 1e-6*mag[i]*dsub+1e-30 {
					t.Fatalf("ksub=%d: entry %d = %g, want %g", ksub, i, dst[i], want[i])
				}
			}
		}
	})
}

func TestPQTableNaN(t *testing.T) {
	forEachLevel(t, func(t *testing.T) {
		const m, ksub, dsub = 2, 16, 2
		cent := make([]float32, m*ksub*dsub)
		cent[(1*ksub+3)*dsub+1] = float32(math.NaN())
		cb := NewPQCodebook(cent, m, ksub, dsub)
		dst := make([]float32, m*ksub)
		for _, metric := range []Metric{L2, InnerProduct} {
			cb.Table(dst, []float32{1, 2, 3, 4}, metric)
			for i, v := range dst {
				if math.IsNaN(float64(v)) != (i == ksub+3) {
					t.Fatalf("%v: entry %d = %g", metric, i, v)
				}
			}
		}
	})
}

func sameBits(a, b float32) bool {
	return math.Float32bits(a) == math.Float32bits(b) || (a != a && b != b)
}

// forEachScan8 runs f for each level and each 8-bit scan kernel.
func forEachScan8(t *testing.T, f func(t *testing.T)) {
	for _, gather := range []bool{false, true} {
		t.Run(fmt.Sprintf("gather=%v", gather), func(t *testing.T) {
			pqScan8Gather = gather
			defer func() { pqScan8Gather = false }()
			forEachLevel(t, f)
		})
	}
}

func TestPQScan8(t *testing.T) {
	forEachScan8(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(13, 14))
		for _, m := range []int{1, 2, 7, 8, 9, 15, 16, 17, 31, 32, 33, 48, 63, 64, 65, 100} {
			table := randNorm(r, m*256)
			for _, n := range []int{0, 1, 2, 3, 7, 16, 33, 100} {
				codes := make([]uint8, n*m+1)[1:] // unaligned, ends at the slice end
				for i := range codes {
					codes[i] = uint8(r.IntN(256))
				}
				want := make([]float32, n)
				pqScan8Generic(want, codes, m, table)
				buf := make([]float32, n+8)
				for i := range buf {
					buf[i] = 42
				}
				PQScan8(buf[:n:n], codes, m, table)
				for i := range n {
					if !sameBits(buf[i], want[i]) {
						t.Fatalf("m=%d n=%d: dst[%d] = %g, want %g", m, n, i, buf[i], want[i])
					}
					// And the reference is the plain sum, up to rounding.
					var s float64
					for j := range m {
						s += float64(table[j*256+int(codes[i*m+j])])
					}
					if math.Abs(float64(want[i])-s) > 1e-5*float64(m) {
						t.Fatalf("m=%d n=%d: dst[%d] = %g, plain sum %g", m, n, i, want[i], s)
					}
				}
				for i := n; i < len(buf); i++ {
					if buf[i] != 42 {
						t.Fatalf("m=%d n=%d: wrote past len(dst)", m, n)
					}
				}
			}
		}
		// NaN and Inf in the table flow through.
		table := make([]float32, 20*256)
		table[3*256+7] = float32(math.NaN())
		table[5*256+9] = float32(math.Inf(1))
		codes := []uint8{0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
			0, 0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
		dst := make([]float32, 2)
		PQScan8(dst, codes, 20, table)
		if !math.IsNaN(float64(dst[0])) || !math.IsInf(float64(dst[1]), 1) {
			t.Fatalf("NaN/Inf: got %v", dst)
		}
	})
}

func TestPQPanics(t *testing.T) {
	cb := NewPQCodebook(make([]float32, 4*16*2), 4, 16, 2)
	for name, f := range map[string]func(){
		"NewPQCodebook len": func() { NewPQCodebook(make([]float32, 10), 4, 16, 2) },
		"NewPQCodebook m=0": func() { NewPQCodebook(nil, 0, 16, 2) },
		"Table q":           func() { cb.Table(make([]float32, 64), make([]float32, 7), L2) },
		"Table dst":         func() { cb.Table(make([]float32, 63), make([]float32, 8), L2) },
		"PQScan8 codes":     func() { PQScan8(make([]float32, 3), make([]uint8, 11), 4, make([]float32, 1024)) },
		"PQScan8 table":     func() { PQScan8(make([]float32, 3), make([]uint8, 12), 4, make([]float32, 1023)) },
		"PQScan8 m=0":       func() { PQScan8(nil, nil, 0, nil) },
	} {
		func() {
			defer func() {
				msg, _ := recover().(string)
				if !strings.HasPrefix(msg, "kernels: ") {
					t.Errorf("%s: panic %q, want a kernels: message", name, msg)
				}
			}()
			f()
		}()
	}
}

// FuzzPQScan8 compares the dispatched 8-bit scan with the generic one, bit for bit.
func FuzzPQScan8(f *testing.F) {
	f.Add(uint8(64), uint8(10), []byte("seed"))
	f.Add(uint8(1), uint8(1), []byte{})
	f.Add(uint8(17), uint8(3), []byte{0xFF, 0x00, 0x80, 0x7F})
	f.Fuzz(func(t *testing.T, m8, n8 uint8, data []byte) {
		m := int(m8)%130 + 1
		n := int(n8) % 64
		r := rand.New(rand.NewPCG(uint64(len(data)), uint64(m*100+n)))
		table := randNorm(r, m*256)
		for i, b := range data {
			if b == 0xFF { // a few specials
				table[(i*131)%len(table)] = float32(math.Inf(1 - 2*(i%2)))
			}
		}
		codes := make([]uint8, n*m)
		for i := range codes {
			codes[i] = uint8(r.IntN(256))
			if len(data) > 0 {
				codes[i] ^= data[i%len(data)]
			}
		}
		want := make([]float32, n)
		pqScan8Generic(want, codes, m, table)
		eachLevel(func(l Level) {
			for _, gather := range []bool{false, true} {
				pqScan8Gather = gather
				got := make([]float32, n)
				PQScan8(got, codes, m, table)
				pqScan8Gather = false
				for i := range n {
					if !sameBits(got[i], want[i]) {
						t.Fatalf("%v gather=%v m=%d n=%d: dst[%d] = %g, want %g", l, gather, m, n, i, got[i], want[i])
					}
				}
			}
		})
	})
}
