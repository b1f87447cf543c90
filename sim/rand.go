package sim

import (
	"math"
	"math/bits"
)

// Rand is a small deterministic random number generator (xoshiro256**).
// Every random choice of the world comes from a Rand derived from the seed
// and the identity of what it decides (a user, a reel, a session), so the
// world does not depend on the order in which goroutines run. A Rand is not
// safe for concurrent use.
type Rand struct {
	s     [4]uint64
	spare float64
	has   bool
}

// Stream tags: each kind of decision draws from its own stream.
const (
	tagTopics uint64 = iota + 1
	tagUser
	tagInterest
	tagPreReel
	tagReel
	tagEmbed
	tagUpload
	tagFollow
	tagPlan
	tagBehaviour
	tagPolicy
	tagDescription
)

func mix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// derive hashes a seed, a stream tag and two identifiers into one key.
func derive(seed, tag, a, b uint64) uint64 {
	h := mix64(seed + 0x9e3779b97f4a7c15)
	h = mix64(h ^ (tag * 0xd1342543de82ef95))
	h = mix64(h ^ (a + 0x632be59bd9b4e019))
	return mix64(h ^ (b * 0x8cb92ba72f3d8dd7))
}

// NewRand returns a generator seeded from key.
func NewRand(key uint64) *Rand {
	r := &Rand{}
	r.Seed(key)
	return r
}

// Seed resets r to the stream of key.
func (r *Rand) Seed(key uint64) {
	x := key
	for i := range r.s {
		x += 0x9e3779b97f4a7c15
		r.s[i] = mix64(x)
	}
	if r.s == [4]uint64{} {
		r.s[0] = 1
	}
	r.has = false
}

func (r *Rand) reseed(seed, tag, a, b uint64) { r.Seed(derive(seed, tag, a, b)) }

// Uint64 returns 64 random bits.
func (r *Rand) Uint64() uint64 {
	s := &r.s
	out := bits.RotateLeft64(s[1]*5, 7) * 9
	t := s[1] << 17
	s[2] ^= s[0]
	s[3] ^= s[1]
	s[1] ^= s[2]
	s[0] ^= s[3]
	s[2] ^= t
	s[3] = bits.RotateLeft64(s[3], 45)
	return out
}

// Float64 returns a uniform number in [0, 1).
func (r *Rand) Float64() float64 { return float64(r.Uint64()>>11) * 0x1p-53 }

// IntN returns a uniform integer in [0, n); n must be positive.
func (r *Rand) IntN(n int64) int64 {
	if n <= 0 {
		panic("sim: Rand.IntN: n must be positive")
	}
	un := uint64(n)
	hi, lo := bits.Mul64(r.Uint64(), un)
	if lo < un {
		thresh := -un % un
		for lo < thresh {
			hi, lo = bits.Mul64(r.Uint64(), un)
		}
	}
	return int64(hi)
}

// Norm returns a standard normal number (Marsaglia's polar method).
func (r *Rand) Norm() float64 {
	if r.has {
		r.has = false
		return r.spare
	}
	for {
		u := 2*r.Float64() - 1
		v := 2*r.Float64() - 1
		s := u*u + v*v
		if s > 0 && s < 1 {
			f := math.Sqrt(-2 * math.Log(s) / s)
			r.spare, r.has = v*f, true
			return u * f
		}
	}
}

// Exp returns an exponential number of mean 1.
func (r *Rand) Exp() float64 { return -math.Log(1 - r.Float64()) }

// Poisson returns a Poisson number of mean lambda (lambda small: by
// multiplication of uniforms; large: a rounded normal approximation).
func (r *Rand) Poisson(lambda float64) int {
	if lambda <= 0 {
		return 0
	}
	if lambda > 30 {
		n := math.Round(lambda + math.Sqrt(lambda)*r.Norm())
		if n < 0 {
			return 0
		}
		return int(n)
	}
	l := math.Exp(-lambda)
	k := 0
	p := r.Float64()
	for p > l {
		k++
		p *= r.Float64()
	}
	return k
}

// alias is Walker's alias table for sampling an index by weight in O(1).
type alias struct {
	prob  []float64
	alias []int32
}

func newAlias(w []float64) alias {
	n := len(w)
	a := alias{prob: make([]float64, n), alias: make([]int32, n)}
	if n == 0 {
		return a
	}
	var sum float64
	for _, x := range w {
		sum += x
	}
	scaled := make([]float64, n)
	small := make([]int32, 0, n)
	large := make([]int32, 0, n)
	for i, x := range w {
		scaled[i] = x * float64(n) / sum
		if scaled[i] < 1 {
			small = append(small, int32(i))
		} else {
			large = append(large, int32(i))
		}
	}
	for len(small) > 0 && len(large) > 0 {
		s := small[len(small)-1]
		small = small[:len(small)-1]
		l := large[len(large)-1]
		a.prob[s] = scaled[s]
		a.alias[s] = l
		scaled[l] -= 1 - scaled[s]
		if scaled[l] < 1 {
			large = large[:len(large)-1]
			small = append(small, l)
		}
	}
	for _, l := range large {
		a.prob[l] = 1
		a.alias[l] = l
	}
	for _, s := range small {
		a.prob[s] = 1
		a.alias[s] = s
	}
	return a
}

func (a *alias) sample(r *Rand) int {
	i := r.IntN(int64(len(a.prob)))
	if r.Float64() < a.prob[i] {
		return int(i)
	}
	return int(a.alias[i])
}
