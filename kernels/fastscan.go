package kernels

import (
	"fmt"
	"math"
)

// fastScan4Perm is the order of vectors within the 16 bytes of one sub-quantizer.
var fastScan4Perm = [16]int{0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15}

// FastScan4BlockSize is the number of vectors in one packed block.
const FastScan4BlockSize = 32

// fastScan4NSQ is m rounded up to even: the sub-quantizers a packed block stores.
func fastScan4NSQ(m int) int { return (m + 1) &^ 1 }

// FastScan4BlockBytes is the size in bytes of one packed block of 32 vectors
// with m sub-quantizers: m rounded up to even, times 16.
func FastScan4BlockBytes(m int) int { return fastScan4NSQ(m) * 16 }

// FastScan4Size is len(packed) for n vectors of m 4-bit codes: n rounded up
// to a multiple of 32 vectors, times [FastScan4BlockBytes].
func FastScan4Size(n, m int) int {
	return (n + FastScan4BlockSize - 1) / FastScan4BlockSize * FastScan4BlockBytes(m)
}

// FastScan4LUTSize is len(lut) for m sub-quantizers: m rounded up to even, times 16.
func FastScan4LUTSize(m int) int { return fastScan4NSQ(m) * 16 }

func checkFastScan4Shape(name string, n, m int) {
	if n < 0 || m < 1 {
		panic(fmt.Sprintf("kernels: %s: n = %d, m = %d; want n >= 0, m >= 1", name, n, m))
	}
}

// PackCodes4 packs n vectors of m 4-bit codes (codes[i*m+j], one code per
// byte; only the low 4 bits are used) into dst in the fast-scan block layout
// below. len(dst) must be FastScan4Size(n, m); every byte of dst is written,
// padding included. [UnpackCodes4] is the inverse.
//
// Fast-scan codes have 16 centroids per
// sub-quantizer, packed so that one 32-byte load holds 32 vectors x 2
// sub-quantizers, scanned with distance tables of 16 uint8 entries that live
// in vector registers (VPSHUFB), accumulated in uint16.
//
// # Packed layout
//
// Vectors are grouped in blocks of 32. Let nsq be m rounded up to even (an
// odd m gets one padding sub-quantizer whose codes are 0). A block is nsq*16
// bytes: nsq/2 groups of 32 bytes, one per pair of sub-quantizers (2p, 2p+1).
// In the group of pair p, byte j (0 <= j < 16) holds sub-quantizer 2p and
// byte 16+j holds sub-quantizer 2p+1, for two vectors each:
//
//	low nibble:  code of vector perm[j]      (vectors 0..15 of the block)
//	high nibble: code of vector perm[j] + 16 (vectors 16..31)
//	perm = {0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15}
//
// This is FAISS's pq4_pack_codes layout with bbs = 32. A 128-bit lane then
// holds one sub-quantizer, so VPSHUFB looks it up in its own 16-entry table
// (the lut bytes of that sub-quantizer, in order: a 256-bit load of the lut
// at 32*p serves pair p, a 512-bit load at 64*q serves sub-quantizers
// 4q..4q+3). The interleave perm puts vector w in the even byte and vector
// w+8 in the odd byte of 16-bit word w, so the uint16 accumulation
// (even sums = words minus 256 x odd sums, odd sums = words >> 8) yields the
// 32 sums in vector order with no final shuffle of words. Vectors past n in
// the last block are padding with all codes 0.
//
// # Distances
//
// Sums are taken modulo 2^16 over all nsq sub-quantizers (the padding one
// included, whose lut entries [QuantizeTable4] sets to 0). With a table from
// [QuantizeTable4] they never wrap, smaller is always better, and
// float32(sum)/scale + bias is the distance of the float table (the inner
// product itself for InnerProduct, whose scale is negative) within
// m*0.5/|scale|.
func PackCodes4(dst []byte, codes []uint8, n, m int) {
	checkFastScan4Shape("PackCodes4", n, m)
	if len(codes) != n*m {
		panic(fmt.Sprintf("kernels: PackCodes4: len(codes) = %d, want n*m = %d*%d", len(codes), n, m))
	}
	if len(dst) != FastScan4Size(n, m) {
		panic(fmt.Sprintf("kernels: PackCodes4: len(dst) = %d, want FastScan4Size(%d, %d) = %d", len(dst), n, m, FastScan4Size(n, m)))
	}
	nsq := fastScan4NSQ(m)
	bb := nsq * 16
	code := func(v, sq int) byte {
		if v >= n || sq >= m {
			return 0
		}
		return codes[v*m+sq] & 15
	}
	for b := 0; b*FastScan4BlockSize < n; b++ {
		blk := dst[b*bb : (b+1)*bb]
		v0 := b * FastScan4BlockSize
		for sq := 0; sq < nsq; sq++ {
			out := blk[(sq>>1)*32+(sq&1)*16:][:16]
			for j, v := range fastScan4Perm {
				out[j] = code(v0+v, sq) | code(v0+v+16, sq)<<4
			}
		}
	}
}

// UnpackCodes4 is the inverse of [PackCodes4]: it writes the n x m codes
// (one per byte) stored in packed to dst. len(dst) must be n*m and
// len(packed) at least FastScan4Size(n, m).
func UnpackCodes4(dst []uint8, packed []byte, n, m int) {
	checkFastScan4Shape("UnpackCodes4", n, m)
	if len(dst) != n*m {
		panic(fmt.Sprintf("kernels: UnpackCodes4: len(dst) = %d, want n*m = %d*%d", len(dst), n, m))
	}
	if len(packed) < FastScan4Size(n, m) {
		panic(fmt.Sprintf("kernels: UnpackCodes4: len(packed) = %d, want at least FastScan4Size(%d, %d) = %d", len(packed), n, m, FastScan4Size(n, m)))
	}
	bb := FastScan4BlockBytes(m)
	for v := 0; v < n; v++ {
		blk := packed[v/FastScan4BlockSize*bb:]
		w := v % FastScan4BlockSize
		shift := uint(0)
		if w >= 16 {
			w -= 16
			shift = 4
		}
		j := 2*w - 15*(w/8) // inverse of fastScan4Perm
		for sq := 0; sq < m; sq++ {
			dst[v*m+sq] = blk[(sq>>1)*32+(sq&1)*16+j] >> shift & 15
		}
	}
}

// QuantizeTable4 turns a float distance table of m sub-quantizers x 16
// centroids (table[s*16+c], from [PQCodebook.Table] with ksub = 16) into
// the uint8 table the fast-scan kernels look up, and returns scale and bias
// such that float32(sum)/scale + bias recovers the table's distance sum.
//
// For L2 the table is used as is; for InnerProduct it is negated first, so
// that in the quantized domain smaller is better for both metrics (what
// [FastScan4Filter] assumes). Each sub-table's minimum is subtracted (their
// sum, negated back for InnerProduct, is bias) and entries are scaled by
//
//	a = min(255/maxSpan, (65535 - m/2)/sumSpans)
//
// and rounded to nearest. The m/2 margin below FAISS's 65535/sumSpans absorbs
// the rounding of the m entries, so no m-term sum can exceed 65535. scale is
// a for L2 and -a for InnerProduct, so the recovered value is the inner
// product itself (larger is better) while the uint16 sums stay
// smaller-is-better. Each entry is off by at most 0.5 quantization steps, so
// a rescaled sum is within m*0.5/|scale| of the float sum (plus float32
// rounding). len(table) must be m*16 and len(lut) FastScan4LUTSize(m); the
// padding sub-quantizer of an odd m gets entries 0.
func QuantizeTable4(lut []uint8, table []float32, m int, metric Metric) (scale, bias float32) {
	checkFastScan4Shape("QuantizeTable4", 0, m)
	if len(table) != m*16 {
		panic(fmt.Sprintf("kernels: QuantizeTable4: len(table) = %d, want m*16 = %d*16", len(table), m))
	}
	if len(lut) != FastScan4LUTSize(m) {
		panic(fmt.Sprintf("kernels: QuantizeTable4: len(lut) = %d, want FastScan4LUTSize(%d) = %d", len(lut), m, FastScan4LUTSize(m)))
	}
	neg := metric == InnerProduct
	var lows [256]float32
	lo := lows[:]
	if m > len(lows) {
		lo = make([]float32, m)
	}
	var maxSpan, sumSpans, sumMins float64
	for s := range m {
		t := table[s*16 : s*16+16 : s*16+16]
		mn, mx := float32(math.Inf(1)), float32(math.Inf(-1))
		for _, v := range t {
			mn = min(mn, v)
			mx = max(mx, v)
		}
		if neg {
			mn, mx = -mx, -mn
		}
		if !(mn <= mx) { // all NaN
			mn, mx = 0, 0
		}
		span := float64(mx) - float64(mn)
		maxSpan = max(maxSpan, span)
		sumSpans += span
		sumMins += float64(mn)
		lo[s] = mn
	}
	a := min(255/maxSpan, (65535-float64(m)/2)/sumSpans)
	if !(a > 0) || math.IsInf(a, 0) {
		a = 1 // all spans 0 (or not finite): any scale will do
	}
	a32 := float32(a)
	// q = (v - mn) * a + 0.5, rounded down, clamped to [0, 255]; for inner
	// product v is negated, so q = (-v - mn) * a + 0.5 = v * (-a) + (0.5 - mn*a).
	sign := a32
	if neg {
		sign = -a32
	}
	for s := range m {
		off := 0.5 - float32(float64(lo[s])*a)
		out := lut[s*16 : s*16+16 : s*16+16]
		for c, v := range table[s*16 : s*16+16 : s*16+16] {
			q := v*sign + off
			// NaN fails q > 0 and so becomes 0.
			if !(q > 0) {
				q = 0
			}
			out[c] = uint8(min(q, 255))
		}
	}
	clear(lut[m*16:])
	if metric == InnerProduct {
		return -a32, float32(-sumMins)
	}
	return a32, float32(sumMins)
}

// FastScan4Rescale writes dst[i] = float32(sums[i])/scale + bias, the
// distance (or inner product) that a uint16 sum from [FastScan4] stands for,
// with scale and bias from [QuantizeTable4]. len(dst) must be len(sums).
func FastScan4Rescale(dst []float32, sums []uint16, scale, bias float32) {
	if len(dst) != len(sums) {
		panic(fmt.Sprintf("kernels: FastScan4Rescale: len(dst) = %d, want len(sums) = %d", len(dst), len(sums)))
	}
	for i, s := range sums {
		dst[i] = float32(s)/scale + bias
	}
}

// FastScan4Threshold is the uint16 threshold for [FastScan4Filter] that keeps
// the vectors whose rescaled value beats d: below d for L2 (scale > 0), above
// d for InnerProduct (scale < 0). It is ceil((d-bias)*scale) clamped to
// [0, 65535].
func FastScan4Threshold(d, scale, bias float32) uint16 {
	x := math.Ceil((float64(d) - float64(bias)) * float64(scale))
	switch {
	case !(x > 0):
		return 0
	case x > 65535:
		return 65535
	}
	return uint16(x)
}

// FastScan4 writes to dst[i] the uint16 sum over the sub-quantizers of
// lut[s*16 + code(i, s)] for the first n = len(dst) vectors of packed (laid
// out by [PackCodes4] with m sub-quantizers), modulo 2^16. lut is the
// quantized table from [QuantizeTable4] (len FastScan4LUTSize(m)); len(packed)
// must be at least FastScan4Size(n, m).
func FastScan4(dst []uint16, packed []byte, m int, lut []uint8) {
	n := len(dst)
	checkFastScan4Args("FastScan4", packed, n, m, lut)
	full := n / FastScan4BlockSize
	bb := FastScan4BlockBytes(m)
	if full > 0 {
		fastScan4(dst[:full*FastScan4BlockSize], packed[:full*bb], full, m, lut)
	}
	if rest := n - full*FastScan4BlockSize; rest > 0 {
		var tmp [FastScan4BlockSize]uint16
		fastScan4(tmp[:], packed[full*bb:(full+1)*bb], 1, m, lut)
		copy(dst[full*FastScan4BlockSize:], tmp[:rest])
	}
}

func checkFastScan4Args(name string, packed []byte, n, m int, lut []uint8) {
	checkFastScan4Shape(name, n, m)
	if len(packed) < FastScan4Size(n, m) {
		panic(fmt.Sprintf("kernels: %s: len(packed) = %d, want at least FastScan4Size(%d, %d) = %d", name, len(packed), n, m, FastScan4Size(n, m)))
	}
	if len(lut) != FastScan4LUTSize(m) {
		panic(fmt.Sprintf("kernels: %s: len(lut) = %d, want FastScan4LUTSize(%d) = %d", name, len(lut), m, FastScan4LUTSize(m)))
	}
}

// FastScan4Filter scans the first n vectors of packed like [FastScan4] and
// keeps only those whose uint16 sum is below thresh (smaller is better: see
// [QuantizeTable4] for inner product): for each, in vector order, it writes
// ids[k] = base + i and dists[k] = sum. It is the fused scan for top-k over
// long lists (a reservoir refills ids and dists, tightens thresh, and goes
// on).
//
// It stops before a block of 32 vectors that might not fit in what is left
// of ids and dists, and returns the number written and the number of vectors
// scanned: n when done, else a multiple of 32 at which to resume (with
// packed[scanned/32*FastScan4BlockBytes(m):], n-scanned and base+scanned).
// len(ids) and len(dists) must be equal; at least 32 makes progress certain.
// Nothing past count is written.
func FastScan4Filter(ids []int32, dists []uint16, packed []byte, n, m int, lut []uint8, thresh uint16, base int32) (count, scanned int) {
	checkFastScan4Args("FastScan4Filter", packed, n, m, lut)
	if len(ids) != len(dists) {
		panic(fmt.Sprintf("kernels: FastScan4Filter: len(ids) = %d, len(dists) = %d; want them equal", len(ids), len(dists)))
	}
	if thresh == 0 {
		return 0, n // nothing is below 0
	}
	full := n / FastScan4BlockSize
	bb := FastScan4BlockBytes(m)
	if full > 0 {
		var blocks int
		count, blocks = fastScan4Filter(ids, dists, packed[:full*bb], full, m, lut, thresh, base)
		scanned = blocks * FastScan4BlockSize
		if blocks < full {
			return count, scanned
		}
	}
	rest := n - full*FastScan4BlockSize
	if rest == 0 {
		return count, n
	}
	if len(ids)-count < FastScan4BlockSize {
		return count, scanned
	}
	var tmp [FastScan4BlockSize]uint16
	fastScan4(tmp[:], packed[full*bb:(full+1)*bb], 1, m, lut)
	for i, s := range tmp[:rest] {
		if s < thresh {
			ids[count] = base + int32(scanned+i)
			dists[count] = s
			count++
		}
	}
	return count, n
}

// fastScan4Generic is the reference for fastScan4: nblocks whole blocks,
// len(dst) = 32*nblocks.
func fastScan4Generic(dst []uint16, packed []byte, nblocks, m int, lut []uint8) {
	nsq := fastScan4NSQ(m)
	bb := nsq * 16
	for b := 0; b < nblocks; b++ {
		var acc [FastScan4BlockSize]uint16
		blk := packed[b*bb : (b+1)*bb]
		for sq := 0; sq < nsq; sq++ {
			t := lut[sq*16 : sq*16+16]
			in := blk[(sq>>1)*32+(sq&1)*16:][:16]
			for j, v := range fastScan4Perm {
				acc[v] += uint16(t[in[j]&15])
				acc[v+16] += uint16(t[in[j]>>4])
			}
		}
		copy(dst[b*FastScan4BlockSize:], acc[:])
	}
}

// fastScan4FilterGeneric is the reference for fastScan4Filter: it scans whole
// blocks while 32 more results fit in ids, and returns the count written and
// the blocks scanned. thresh > 0.
func fastScan4FilterGeneric(ids []int32, dists []uint16, packed []byte, nblocks, m int, lut []uint8, thresh uint16, base int32) (count, blocks int) {
	bb := FastScan4BlockBytes(m)
	var tmp [FastScan4BlockSize]uint16
	for blocks = 0; blocks < nblocks && len(ids)-count >= FastScan4BlockSize; blocks++ {
		fastScan4Generic(tmp[:], packed[blocks*bb:(blocks+1)*bb], 1, m, lut)
		for i, s := range tmp {
			if s < thresh {
				ids[count] = base + int32(blocks*FastScan4BlockSize+i)
				dists[count] = s
				count++
			}
		}
	}
	return count, blocks
}
