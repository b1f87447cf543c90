package features

import "math"

// fastLog1p returns log(1+x) for finite x >= 0 within 3e-6 absolute
// error, several times faster than math.Log1p, with no division and no
// branch, small enough to inline: the features need a monotone squashing
// of counts, the same online and offline, not the last bit. Callers pass
// counts and ages, never negative or NaN.
func fastLog1p(x float32) float32 {
	y := 1 + x
	// As musl's logf does: shift the bits so that the mantissa m lands in
	// [sqrt(1/2), sqrt(2)) and the exponent k absorbs the rest.
	ix := math.Float32bits(y) + (0x3f800000 - 0x3f3504f3)
	k := int32(ix>>23) - 127
	t := math.Float32frombits(ix&0x007fffff+0x3f3504f3) - 1
	// log(1+t) = t·p(t), p a least-squares fit on Chebyshev nodes over
	// t in [-0.293, 0.415]: error below 3e-6.
	p := 1.00000469 + t*(-0.499903599+t*(0.332567608+t*(-0.253978637+t*(0.220705394+t*-0.143384745))))
	return t*p + float32(k)*math.Ln2
}

// fastExp returns e^x for x in [-700, 700] (the callers clamp) within
// 3e-9 relative error, about three times faster than math.Exp: the
// decayed counters are float32, so that is below their own rounding.
func fastExp(x float64) float64 {
	// e^x = 2^n · 2^f with n = round(x·log2 e), |f| <= 1/2.
	y := x * math.Log2E
	n := math.Floor(y + 0.5)
	f := y - n
	// 2^f by a least-squares fit on Chebyshev nodes over [-1/2, 1/2].
	p := 0.99999999995961486 + f*(0.69314720671623908+f*(0.24022651213704041+f*(0.055503272022266271+
		f*(0.0096180255884565757+f*(0.0013400436958447503+f*0.00015469736619263353)))))
	return p * math.Float64frombits(uint64(int64(n)+1023)<<52)
}
