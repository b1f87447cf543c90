package sim

import "math"

// The behaviour model is defined with these exp and log: plain float64
// arithmetic (relative error below 1e-11 against the math package), a few
// times faster than math.Exp and math.Log, so that the oracle stays cheap
// enough to call for every (user, reel) pair.

const (
	ln2Hi = 6.93147180369123816490e-01
	ln2Lo = 1.90821492927058770002e-10
	log2e = 1.44269504088896338700e+00
)

// exp2Bits[j] holds the bits of 2**(j/64).
var exp2Bits = func() (t [64]uint64) {
	for j := range t {
		t[j] = math.Float64bits(math.Exp2(float64(j) / 64))
	}
	return t
}()

// fexp returns e**x for x in [-708, 709], and saturates outside: e**x =
// 2**(k/64) · e**r with |r| < ln2/64, the first factor from a table and
// the second a degree-5 Taylor polynomial (error below r^6/720 < 3e-15),
// evaluated in Estrin's order. Small enough to inline.
func fexp(x float64) float64 {
	x = min(max(x, -708), 709)
	k := int64(x * (64 * log2e))
	kf := float64(k)
	r := (x - kf*(ln2Hi/64)) - kf*(ln2Lo/64)
	r2 := r * r
	p := (1 + r) + r2*((1.0/2+r*(1.0/6))+r2*(1.0/24+r*(1.0/120)))
	return p * math.Float64frombits(exp2Bits[k&63]+uint64(k>>6)<<52)
}

// flog returns the natural logarithm of a positive normal x (0 and
// negative x give -Inf and NaN).
func flog(x float64) float64 {
	switch {
	case x == 0:
		return math.Inf(-1)
	case x < 0 || x != x:
		return math.NaN()
	case math.IsInf(x, 1):
		return x
	}
	b := math.Float64bits(x)
	e := int64(b>>52) - 1023
	m := math.Float64frombits(b&(1<<52-1) | 1023<<52) // in [1, 2)
	if e == -1023 {                                   // subnormal
		return math.Log(x)
	}
	if m > math.Sqrt2 {
		m /= 2
		e++
	}
	// log(m) = 2 atanh(s), s = (m-1)/(m+1), |s| <= 0.1716
	s := (m - 1) / (m + 1)
	s2 := s * s
	s4 := s2 * s2
	s8 := s4 * s4
	t := s * ((2 + s2*(2.0/3)) + s4*(2.0/5+s2*(2.0/7)) + s8*((2.0/9+s2*(2.0/11))+s4*(2.0/13+s2*(2.0/15))))
	return float64(e)*ln2Hi + (t + float64(e)*ln2Lo)
}

// expN replaces v[:n] by their exponentials, exactly as fexp would; one
// loop lets the processor overlap the independent evaluations.
func expN(v *[8]float64, n int) {
	for i := range v[:n] {
		x := min(max(v[i], -708), 709)
		k := int64(x * (64 * log2e))
		kf := float64(k)
		r := (x - kf*(ln2Hi/64)) - kf*(ln2Lo/64)
		r2 := r * r
		p := (1 + r) + r2*((1.0/2+r*(1.0/6))+r2*(1.0/24+r*(1.0/120)))
		v[i] = p * math.Float64frombits(exp2Bits[k&63]+uint64(k>>6)<<52)
	}
}
