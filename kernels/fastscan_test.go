package kernels

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// fs4Sizes are the vector counts the fast-scan tests try: around block edges.
var fs4Sizes = []int{0, 1, 2, 15, 16, 17, 31, 32, 33, 63, 64, 65, 95, 96, 97, 127, 128, 129, 200, 300}

// fs4Ms are the sub-quantizer counts: odd and even, around the 2- and
// 4-sub-quantizer groups of the kernels, and the common 32, 64.
var fs4Ms = []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 15, 16, 17, 31, 32, 33, 63, 64, 65, 96, 128}

func randCodes4(r *rand.Rand, n, m int) []uint8 {
	c := make([]uint8, n*m)
	for i := range c {
		c[i] = uint8(r.IntN(16))
	}
	return c
}

// packUnaligned packs codes into a buffer that starts one byte past a
// 64-byte boundary, so the kernels' loads are unaligned.
func packUnaligned(codes []uint8, n, m int) []byte {
	sz := FastScan4Size(n, m)
	buf := AlignedBytes(sz + 1)[1:]
	PackCodes4(buf, codes, n, m)
	return buf
}

// directSums4 is the sum over the sub-quantizers of lut[s*16+code], modulo
// 2^16, read from the unpacked codes: it checks the layout as well as the scan.
func directSums4(codes []uint8, n, m int, lut []uint8) []uint16 {
	out := make([]uint16, n)
	for i := range n {
		var s uint16
		for j := range m {
			s += uint16(lut[j*16+int(codes[i*m+j]&15)])
		}
		s += uint16(lut[len(lut)-16]) * uint16(fastScan4NSQ(m)-m) // padding codes are 0
		out[i] = s
	}
	return out
}

func randLUT4(r *rand.Rand, m int) []uint8 {
	lut := make([]uint8, FastScan4LUTSize(m))
	for i := range lut {
		lut[i] = uint8(r.IntN(256))
	}
	return lut
}

func TestPackCodes4RoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, m := range fs4Ms {
		for _, n := range fs4Sizes {
			codes := randCodes4(r, n, m)
			packed := make([]byte, FastScan4Size(n, m))
			for i := range packed {
				packed[i] = 0xAA // every byte must be written
			}
			PackCodes4(packed, codes, n, m)
			got := make([]uint8, n*m)
			UnpackCodes4(got, packed, n, m)
			if !slices.Equal(got, codes) {
				t.Fatalf("m=%d n=%d: unpack(pack(codes)) differs", m, n)
			}
			// Padding vectors and the padding sub-quantizer hold code 0.
			padN := (n + 31) / 32 * 32
			all := make([]uint8, padN*fastScan4NSQ(m))
			UnpackCodes4(all, packed, padN, fastScan4NSQ(m))
			for v := range padN {
				for s := range fastScan4NSQ(m) {
					want := uint8(0)
					if v < n && s < m {
						want = codes[v*m+s]
					}
					if all[v*fastScan4NSQ(m)+s] != want {
						t.Fatalf("m=%d n=%d: vector %d sub-quantizer %d = %d, want %d", m, n, v, s, all[v*fastScan4NSQ(m)+s], want)
					}
				}
			}
		}
	}
}

// TestPackCodes4Layout pins the documented byte layout with a hand-checked case.
func TestPackCodes4Layout(t *testing.T) {
	const n, m = 32, 2
	codes := make([]uint8, n*m)
	for v := range n {
		codes[v*m] = uint8(v % 16)      // sub-quantizer 0
		codes[v*m+1] = uint8(15 - v%16) // sub-quantizer 1
	}
	codes[17*m] = 9 // vector 17, sub-quantizer 0: high nibble of byte 2
	packed := make([]byte, FastScan4Size(n, m))
	PackCodes4(packed, codes, n, m)
	// byte j of sub-quantizer 0 = code(perm[j]) | code(perm[j]+16)<<4.
	if packed[0] != 0x00 || packed[1] != 0x88 || packed[2] != 0x91 || packed[3] != 0x99 {
		t.Errorf("sub-quantizer 0 bytes = % x, want 00 88 91 99 ...", packed[:4])
	}
	if packed[16] != 0xFF || packed[17] != 0x77 {
		t.Errorf("sub-quantizer 1 bytes = % x, want ff 77 ...", packed[16:18])
	}
}

func TestFastScan4(t *testing.T) {
	forEachLevel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(3, 4))
		for _, m := range fs4Ms {
			for _, n := range fs4Sizes {
				codes := randCodes4(r, n, m)
				packed := packUnaligned(codes, n, m)
				lut := randLUT4(r, m) // arbitrary bytes: sums wrap modulo 2^16
				want := directSums4(codes, n, m, lut)
				buf := make([]uint16, n+8)
				for i := range buf {
					buf[i] = 0xBEEF
				}
				FastScan4(buf[:n:n], packed, m, lut)
				if !slices.Equal(buf[:n], want) {
					i := firstDiff(buf[:n], want)
					t.Fatalf("m=%d n=%d: sum[%d] = %d, want %d", m, n, i, buf[i], want[i])
				}
				for i := n; i < len(buf); i++ {
					if buf[i] != 0xBEEF {
						t.Fatalf("m=%d n=%d: wrote past len(dst) at %d", m, n, i)
					}
				}
			}
		}
		// A large list, and scanning a prefix of a longer packed buffer.
		const n, m = 5000, 64
		codes := randCodes4(r, n, m)
		packed := packUnaligned(codes, n, m)
		lut := randLUT4(r, m)
		want := directSums4(codes, n, m, lut)
		got := make([]uint16, n)
		FastScan4(got, packed, m, lut)
		if !slices.Equal(got, want) {
			t.Fatalf("n=%d m=%d: sums differ at %d", n, m, firstDiff(got, want))
		}
		FastScan4(got[:1000], packed, m, lut)
		if !slices.Equal(got[:1000], want[:1000]) {
			t.Fatalf("prefix scan differs")
		}
	})
}

func firstDiff[T comparable](a, b []T) int {
	for i := range a {
		if a[i] != b[i] {
			return i
		}
	}
	return -1
}

// floatADC4 is the float distance sum over the table for each vector.
func floatADC4(codes []uint8, n, m int, table []float32) []float64 {
	out := make([]float64, n)
	for i := range n {
		var s float64
		for j := range m {
			s += float64(table[j*16+int(codes[i*m+j])])
		}
		out[i] = s
	}
	return out
}

func TestQuantizeTable4(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	tables := map[string]func(m int) []float32{
		"random": func(m int) []float32 {
			tb := make([]float32, m*16)
			for i := range tb {
				tb[i] = float32(r.NormFloat64()*3 + 1)
			}
			return tb
		},
		// Equal spans: the sum bound binds for m > 257, where rounding
		// could push an m-term sum past 65535 without the m/2 margin.
		"equal-spans": func(m int) []float32 {
			tb := make([]float32, m*16)
			for s := range m {
				for c := range 16 {
					tb[s*16+c] = float32(c) + float32(s)*0.25 + 0.4999
				}
			}
			return tb
		},
		"one-wide": func(m int) []float32 {
			tb := make([]float32, m*16)
			for i := range tb {
				tb[i] = float32(r.Float64())
			}
			tb[5] = 1000
			return tb
		},
		"constant": func(m int) []float32 {
			tb := make([]float32, m*16)
			for i := range tb {
				tb[i] = 2.5
			}
			return tb
		},
	}
	forEachLevel(t, func(t *testing.T) {
		for name, gen := range tables {
			for _, m := range []int{1, 2, 7, 16, 63, 64, 255, 256, 257, 300, 511} {
				for _, metric := range []Metric{L2, InnerProduct} {
					table := gen(m)
					lut := make([]uint8, FastScan4LUTSize(m))
					scale, bias := QuantizeTable4(lut, table, m, metric)
					if (metric == InnerProduct) != (scale < 0) {
						t.Fatalf("%s m=%d %v: scale = %g", name, m, metric, scale)
					}
					// No m-term sum can exceed 65535.
					var maxSum int
					for s := range fastScan4NSQ(m) {
						maxSum += int(slices.Max(lut[s*16 : s*16+16]))
					}
					if maxSum > 65535 {
						t.Fatalf("%s m=%d %v: largest sum %d > 65535", name, m, metric, maxSum)
					}
					const n = 100
					codes := randCodes4(r, n, m)
					// All-max and all-min codes too.
					packed := packUnaligned(codes, n, m)
					sums := make([]uint16, n)
					FastScan4(sums, packed, m, lut)
					if want := directSums4(codes, n, m, lut); !slices.Equal(sums, want) {
						t.Fatalf("%s m=%d %v: sums differ from the generic ones", name, m, metric)
					}
					dist := make([]float32, n)
					FastScan4Rescale(dist, sums, scale, bias)
					ref := floatADC4(codes, n, m, table)
					bound := float64(m) * 0.5 / math.Abs(float64(scale))
					for i := range n {
						// float32 rounding of sum/scale + bias on top of the quantization bound.
						tol := bound*(1+1e-6) + 1e-6*(math.Abs(ref[i])+math.Abs(float64(bias))+math.Abs(float64(sums[i])/float64(scale)))
						if d := math.Abs(float64(dist[i]) - ref[i]); d > tol {
							t.Fatalf("%s m=%d %v: vector %d: rescaled %g, float ADC %g, |diff| %g > bound %g", name, m, metric, i, dist[i], ref[i], d, tol)
						}
					}
				}
			}
		}
	})
}

func TestQuantizeTable4Order(t *testing.T) {
	// Smaller sums are better for both metrics: the best vector by the float
	// table has the smallest sum when the table is spread enough.
	table := make([]float32, 2*16)
	for i := range table {
		table[i] = float32(i % 16)
	}
	lut := make([]uint8, FastScan4LUTSize(2))
	for _, metric := range []Metric{L2, InnerProduct} {
		QuantizeTable4(lut, table, 2, metric)
		best := 0
		if metric == InnerProduct {
			best = 15 // largest inner product
		}
		if lut[best] != 0 || lut[16+best] != 0 {
			t.Errorf("%v: lut entries of the best code = %d, %d; want 0", metric, lut[best], lut[16+best])
		}
	}
}

func TestFastScan4Threshold(t *testing.T) {
	for _, tc := range []struct {
		d, scale, bias float32
		want           uint16
	}{
		{10, 2, 0, 20}, {10.2, 2, 0, 21}, {-1, 2, 0, 0}, {1e9, 2, 0, 65535},
		{-10, -2, 0, 20}, {5, -2, 10, 10},
	} {
		if got := FastScan4Threshold(tc.d, tc.scale, tc.bias); got != tc.want {
			t.Errorf("FastScan4Threshold(%g, %g, %g) = %d, want %d", tc.d, tc.scale, tc.bias, got, tc.want)
		}
	}
}

func TestFastScan4Filter(t *testing.T) {
	forEachLevel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(7, 8))
		for _, m := range []int{1, 2, 3, 4, 5, 8, 16, 17, 32, 64, 65} {
			for _, n := range fs4Sizes {
				codes := randCodes4(r, n, m)
				packed := packUnaligned(codes, n, m)
				lut := randLUT4(r, m)
				sums := directSums4(codes, n, m, lut)
				for _, thresh := range []uint16{0, 1, uint16(r.IntN(65536)), 65535, median(sums)} {
					for _, capacity := range []int{0, 31, 32, 33, 64, 100, n + 32} {
						checkFilter(t, sums, packed, n, m, lut, thresh, capacity)
					}
				}
			}
		}
	})
}

func median(s []uint16) uint16 {
	if len(s) == 0 {
		return 1
	}
	c := slices.Clone(s)
	slices.Sort(c)
	return c[len(c)/2]
}

// checkFilter runs FastScan4Filter to the end with the given capacity,
// resuming as documented, and compares with the sums.
func checkFilter(t *testing.T, sums []uint16, packed []byte, n, m int, lut []uint8, thresh uint16, capacity int) {
	t.Helper()
	const base = 1000
	var wantIDs []int32
	var wantD []uint16
	for i, s := range sums {
		if s < thresh {
			wantIDs = append(wantIDs, int32(base+i))
			wantD = append(wantD, s)
		}
	}
	var gotIDs []int32
	var gotD []uint16
	ids := make([]int32, capacity+5)
	dists := make([]uint16, capacity+5)
	done, bb := 0, FastScan4BlockBytes(m)
	for round := 0; done < n || round == 0; round++ {
		for i := range ids {
			ids[i], dists[i] = -7, 0xBEEF
		}
		count, scanned := FastScan4Filter(ids[:capacity], dists[:capacity], packed[done/32*bb:], n-done, m, lut, thresh, int32(base+done))
		if count > capacity || scanned > n-done || (scanned < n-done && scanned%32 != 0) {
			t.Fatalf("m=%d n=%d thresh=%d cap=%d: count %d scanned %d", m, n, thresh, capacity, count, scanned)
		}
		for i := count; i < len(ids); i++ {
			if ids[i] != -7 || dists[i] != 0xBEEF {
				t.Fatalf("m=%d n=%d thresh=%d cap=%d: wrote past count at %d", m, n, thresh, capacity, i)
			}
		}
		gotIDs = append(gotIDs, ids[:count]...)
		gotD = append(gotD, dists[:count]...)
		if scanned == 0 && n-done > 0 {
			if capacity >= 32 {
				t.Fatalf("m=%d n=%d cap=%d: no progress", m, n, capacity)
			}
			return // too small to make progress: nothing more to check
		}
		done += scanned
		if round > n+2 {
			t.Fatalf("no end")
		}
	}
	if !slices.Equal(gotIDs, wantIDs) || !slices.Equal(gotD, wantD) {
		t.Fatalf("m=%d n=%d thresh=%d cap=%d: got %d results, want %d (ids %v.., want %v..)", m, n, thresh, capacity, len(gotIDs), len(wantIDs), head(gotIDs), head(wantIDs))
	}
}

func head[T any](s []T) []T { return s[:min(len(s), 8)] }

func TestFastScan4Panics(t *testing.T) {
	lut := make([]uint8, FastScan4LUTSize(4))
	packed := make([]byte, FastScan4Size(40, 4))
	for name, f := range map[string]func(){
		"FastScan4 short packed":  func() { FastScan4(make([]uint16, 70), packed, 4, lut) },
		"FastScan4 lut":           func() { FastScan4(make([]uint16, 10), packed, 4, lut[:48]) },
		"FastScan4 m=0":           func() { FastScan4(make([]uint16, 10), packed, 0, lut) },
		"Filter ids/dists":        func() { FastScan4Filter(make([]int32, 40), make([]uint16, 39), packed, 40, 4, lut, 9, 0) },
		"Filter short packed":     func() { FastScan4Filter(nil, nil, packed, 65, 4, lut, 9, 0) },
		"PackCodes4 codes":        func() { PackCodes4(packed, make([]uint8, 159), 40, 4) },
		"PackCodes4 dst":          func() { PackCodes4(packed[:10], make([]uint8, 160), 40, 4) },
		"UnpackCodes4 dst":        func() { UnpackCodes4(make([]uint8, 10), packed, 40, 4) },
		"UnpackCodes4 packed":     func() { UnpackCodes4(make([]uint8, 160), packed[:100], 40, 4) },
		"QuantizeTable4 table":    func() { QuantizeTable4(lut, make([]float32, 63), 4, L2) },
		"QuantizeTable4 lut":      func() { QuantizeTable4(lut[:16], make([]float32, 64), 4, L2) },
		"FastScan4Rescale length": func() { FastScan4Rescale(make([]float32, 3), make([]uint16, 4), 1, 0) },
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

func TestQuantizeTable4Values(t *testing.T) {
	// NaN and Inf do not panic.
	table := make([]float32, 4*16)
	table[3] = float32(math.NaN())
	table[20] = float32(math.Inf(1))
	lut := make([]uint8, FastScan4LUTSize(4))
	QuantizeTable4(lut, table, 4, L2)
	QuantizeTable4(lut, table, 4, InnerProduct)
}

// FuzzFastScan4 compares the dispatched scan and filter with the generic ones.
func FuzzFastScan4(f *testing.F) {
	f.Add(uint8(64), uint16(100), uint16(30000), []byte("seed"))
	f.Add(uint8(1), uint16(1), uint16(1), []byte{})
	f.Add(uint8(3), uint16(33), uint16(65535), []byte{1, 2, 3, 4, 5, 6, 7})
	f.Add(uint8(17), uint16(97), uint16(500), []byte{0xFF, 0, 0x80})
	f.Fuzz(func(t *testing.T, m8 uint8, n16 uint16, thresh uint16, data []byte) {
		m := int(m8)%130 + 1
		n := int(n16) % 700
		r := rand.New(rand.NewPCG(uint64(len(data)), uint64(m*1000+n)))
		at := func(i int) byte {
			if len(data) == 0 {
				return byte(r.IntN(256))
			}
			return data[i%len(data)] ^ byte(r.IntN(256))
		}
		codes := make([]uint8, n*m)
		for i := range codes {
			codes[i] = at(i) & 15
		}
		lut := make([]uint8, FastScan4LUTSize(m))
		for i := range lut {
			lut[i] = at(i + 7)
		}
		packed := packUnaligned(codes, n, m)
		nb := (n + 31) / 32
		want := make([]uint16, nb*32)
		fastScan4Generic(want, packed, nb, m, lut)
		cp := r.IntN(n + 40)
		wi, wd := make([]int32, cp), make([]uint16, cp)
		wc, wb := 0, 0
		if thresh > 0 {
			wc, wb = fastScan4FilterGeneric(wi, wd, packed, nb, m, lut, thresh, 5)
		}
		eachLevel(func(l Level) {
			got := make([]uint16, n)
			FastScan4(got, packed, m, lut)
			if !slices.Equal(got, want[:n]) {
				t.Fatalf("%v m=%d n=%d: sums differ at %d", l, m, n, firstDiff(got, want[:n]))
			}
			if thresh > 0 {
				gi, gd := make([]int32, cp), make([]uint16, cp)
				gc, gb := fastScan4Filter(gi, gd, packed, nb, m, lut, thresh, 5)
				if wc != gc || wb != gb || !slices.Equal(wi, gi) || !slices.Equal(wd, gd) {
					t.Fatalf("%v m=%d n=%d thresh=%d cap=%d: filter (%d, %d), generic (%d, %d)", l, m, n, thresh, cp, gc, gb, wc, wb)
				}
			}
		})
	})
}

// FuzzPackCodes4 checks that unpacking inverts packing.
func FuzzPackCodes4(f *testing.F) {
	f.Add(uint8(64), []byte("some codes to pack"))
	f.Add(uint8(1), []byte{})
	f.Add(uint8(5), []byte{0xFF, 0x0F, 0x10})
	f.Fuzz(func(t *testing.T, m8 uint8, data []byte) {
		m := int(m8)%70 + 1
		n := len(data) / m
		codes := make([]uint8, n*m)
		for i := range codes {
			codes[i] = data[i] & 15
		}
		packed := make([]byte, FastScan4Size(n, m))
		PackCodes4(packed, codes, n, m)
		got := make([]uint8, n*m)
		UnpackCodes4(got, packed, n, m)
		if !slices.Equal(got, codes) {
			t.Fatalf("m=%d n=%d: round trip differs", m, n)
		}
	})
}
