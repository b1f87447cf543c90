package kernels

import (
	"fmt"
	"math"
)

// F16 is an IEEE 754 half-precision float (binary16). The index keeps its
// refine copies of reel vectors in it: half the bytes of float32, and about
// three significant decimal digits, which re-ranks a thousand candidates
// almost exactly.
type F16 uint16

// ToF16 rounds f to the nearest half-precision value, ties to even, as the
// F16C instruction VCVTPS2PH does: overflow gives Inf, NaN stays NaN.
func ToF16(f float32) F16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int(b>>23) & 0xff
	mant := b & 0x7fffff
	if exp == 0xff {
		if mant != 0 {
			return F16(sign | 0x7e00 | uint16(mant>>13))
		}
		return F16(sign | 0x7c00)
	}
	e := exp - 127 + 15
	if e >= 0x1f {
		return F16(sign | 0x7c00)
	}
	if e <= 0 {
		if e < -10 {
			return F16(sign)
		}
		m := mant | 0x800000
		shift := uint(14 - e)
		half := m >> shift
		rem := m & (1<<shift - 1)
		mid := uint32(1) << (shift - 1)
		if rem > mid || rem == mid && half&1 == 1 {
			half++
		}
		return F16(sign | uint16(half))
	}
	half := uint32(e)<<10 | mant>>13
	rem := mant & 0x1fff
	if rem > 0x1000 || rem == 0x1000 && half&1 == 1 {
		half++ // a carry into the exponent is right, up to Inf
	}
	return F16(sign | uint16(half))
}

// Float32 returns h as a float32, exactly.
func (h F16) Float32() float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	switch {
	case exp == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp == 0:
		if mant == 0 {
			return math.Float32frombits(sign)
		}
		e := uint32(127 - 14)
		for mant&0x400 == 0 {
			mant <<= 1
			e--
		}
		return math.Float32frombits(sign | e<<23 | (mant&0x3ff)<<13)
	}
	return math.Float32frombits(sign | (exp+112)<<23 | mant<<13)
}

// ToF16s rounds every value of src into dst, which must be as long.
func ToF16s(dst []F16, src []float32) {
	if len(dst) != len(src) {
		panic(fmt.Sprintf("kernels: ToF16s: len(dst) = %d, len(src) = %d", len(dst), len(src)))
	}
	for i, v := range src {
		dst[i] = ToF16(v)
	}
}

// DotF16 returns the inner product of a float32 query q and a half-precision
// vector x of the same length, computed in float32.
func DotF16(q []float32, x []F16) float32 {
	if len(q) != len(x) {
		panic(fmt.Sprintf("kernels: DotF16: len(q) = %d, len(x) = %d", len(q), len(x)))
	}
	return dotF16(q, x)
}

// L2SqF16 returns the squared Euclidean distance between a float32 query q
// and a half-precision vector x of the same length, computed in float32.
func L2SqF16(q []float32, x []F16) float32 {
	if len(q) != len(x) {
		panic(fmt.Sprintf("kernels: L2SqF16: len(q) = %d, len(x) = %d", len(q), len(x)))
	}
	return l2SqF16(q, x)
}

// DotF16Many scores a float32 query q against many half-precision rows that
// lie anywhere in memory: dst[i] = DotF16(q, rows[i]). The assembly fetches
// rows a few ahead of the one it scores, which hides most of the memory
// latency of re-ranking candidates scattered over an index. Every row must
// be as long as q, and len(dst) == len(rows).
func DotF16Many(dst, q []float32, rows [][]F16) {
	checkF16Many("DotF16Many", dst, q, rows)
	dotF16Many(dst, q, rows)
}

// L2SqF16Many is DotF16Many for squared Euclidean distances.
func L2SqF16Many(dst, q []float32, rows [][]F16) {
	checkF16Many("L2SqF16Many", dst, q, rows)
	l2SqF16Many(dst, q, rows)
}

func checkF16Many(name string, dst, q []float32, rows [][]F16) {
	if len(dst) != len(rows) {
		panic(fmt.Sprintf("kernels: %s: len(dst) = %d, len(rows) = %d", name, len(dst), len(rows)))
	}
	for i, r := range rows {
		if len(r) != len(q) {
			panic(fmt.Sprintf("kernels: %s: len(rows[%d]) = %d, len(q) = %d", name, i, len(r), len(q)))
		}
	}
}

func dotF16ManyGeneric(dst, q []float32, rows [][]F16) {
	for i, r := range rows {
		dst[i] = dotF16Generic(q, r)
	}
}

func l2SqF16ManyGeneric(dst, q []float32, rows [][]F16) {
	for i, r := range rows {
		dst[i] = l2SqF16Generic(q, r)
	}
}

// dotF16Generic is the reference for every DotF16 path.
func dotF16Generic(q []float32, x []F16) float32 {
	var s float32
	for i, h := range x {
		s += q[i] * h.Float32()
	}
	return s
}

// l2SqF16Generic is the reference for every L2SqF16 path.
func l2SqF16Generic(q []float32, x []F16) float32 {
	var s float32
	for i, h := range x {
		d := q[i] - h.Float32()
		s += d * d
	}
	return s
}
