package plan

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
)

// annFit is the index's cost a query as a function of the catalogue and
// nprobe, fitted to the calibration's sweep by non-negative least squares:
//
//	t(n, p) = A + B·L + C·p + D·n·p/L   microseconds
//
// where L is the lists of an index over n reels: A is the query's fixed
// cost (the rotation, the refine of K·4 candidates, the result), B·L the
// probe ranking (one inner product a list), C·p the tables and list set-up
// of each probed list, and D the cost of one code scanned.
type annFit struct {
	A, B, C, D float64
	// RMS is the fit's root-mean-square relative error over the points.
	RMS float64
}

func (f annFit) at(n float64, lists, nprobe float64) float64 {
	return f.A + f.B*lists + f.C*nprobe + f.D*n*nprobe/lists
}

// fitANN fits annFit to the points: of the fits over every subset of the
// four terms whose coefficients are all non-negative, the one with the
// least squared relative error (so that the small catalogue's points weigh
// as much as the large one's). minD (µs a code, the scan kernel's own cost)
// is the least D: on catalogues small enough to calibrate in seconds the
// lists are short, the scan hides under the per-list costs, and a free fit
// can price it at nothing, which the large catalogues a plan extrapolates
// to would expose.
func fitANN(pts []ANNPoint, minD float64) (annFit, error) {
	if len(pts) < 4 {
		return annFit{}, fmt.Errorf("plan: %d index points, want at least 4 to fit the scan cost", len(pts))
	}
	row := func(p ANNPoint) [4]float64 {
		n, l, q := float64(p.Reels), float64(p.Lists), float64(p.Nprobe)
		return [4]float64{1, l, q, n * q / l}
	}
	// The time beyond the kernel's share.
	rest := func(p ANNPoint) float64 { return p.MeanUs - minD*row(p)[3] }
	best, bestErr := annFit{}, math.Inf(1)
	for mask := 1; mask < 16; mask++ {
		var cols []int
		for j := range 4 {
			if mask&(1<<j) != 0 {
				cols = append(cols, j)
			}
		}
		k := len(cols)
		// Normal equations of the relative error: each row divided by the
		// measured time.
		ata := make([]float64, k*k)
		atb := make([]float64, k)
		for _, p := range pts {
			r := row(p)
			w := 1 / p.MeanUs
			for a := range k {
				atb[a] += r[cols[a]] * w * rest(p) * w
				for b := range k {
					ata[a*k+b] += r[cols[a]] * w * r[cols[b]] * w
				}
			}
		}
		x, ok := solve(ata, atb, k)
		if !ok {
			continue
		}
		var coef [4]float64
		neg := false
		for a, j := range cols {
			if x[a] < 0 {
				neg = true
			}
			coef[j] = x[a]
		}
		if neg {
			continue
		}
		f := annFit{A: coef[0], B: coef[1], C: coef[2], D: coef[3] + minD}
		var se float64
		for _, p := range pts {
			e := (f.at(float64(p.Reels), float64(p.Lists), float64(p.Nprobe)) - p.MeanUs) / p.MeanUs
			se += e * e
		}
		if se < bestErr {
			best, bestErr = f, se
		}
	}
	if math.IsInf(bestErr, 1) {
		return annFit{}, errors.New("plan: no non-negative fit of the index's cost")
	}
	best.RMS = math.Sqrt(bestErr / float64(len(pts)))
	return best, nil
}

// solve solves the k x k system a·x = b by Gaussian elimination with
// partial pivoting; ok is false when it is singular.
func solve(a, b []float64, k int) ([]float64, bool) {
	a, b = slices.Clone(a), slices.Clone(b)
	for c := range k {
		p := c
		for r := c + 1; r < k; r++ {
			if math.Abs(a[r*k+c]) > math.Abs(a[p*k+c]) {
				p = r
			}
		}
		if math.Abs(a[p*k+c]) < 1e-300 {
			return nil, false
		}
		if p != c {
			for j := range k {
				a[c*k+j], a[p*k+j] = a[p*k+j], a[c*k+j]
			}
			b[c], b[p] = b[p], b[c]
		}
		for r := c + 1; r < k; r++ {
			f := a[r*k+c] / a[c*k+c]
			for j := c; j < k; j++ {
				a[r*k+j] -= f * a[c*k+j]
			}
			b[r] -= f * b[c]
		}
	}
	x := make([]float64, k)
	for r := k - 1; r >= 0; r-- {
		s := b[r]
		for j := r + 1; j < k; j++ {
			s -= a[r*k+j] * x[j]
		}
		x[r] = s / a[r*k+r]
		if math.IsNaN(x[r]) || math.IsInf(x[r], 0) {
			return nil, false
		}
	}
	return x, true
}

// probeCurve says how many lists a query must probe to reach a recall, as
// a function of the catalogue: at each calibrated size, nprobe for the
// recall by interpolation in log nprobe; between sizes and beyond them,
// nprobe = P1·(n/n1)^Beta, Beta fitted to the two extreme sizes and kept
// within [0, 0.5]: 0 when a fixed nprobe keeps the recall as the lists
// grow by √n, 0.5 when the probed share of the lists must stay fixed.
type probeCurve struct {
	Recall float64
	N1, P1 float64
	Beta   float64
	// Sizes and Nprobes are the calibrated sizes and their nprobe.
	Sizes, Nprobes []float64
}

// errRecall is wrapped when the calibration never reached the recall.
var errRecall = errors.New("recall not reached")

func newProbeCurve(pts []ANNPoint, recall float64) (probeCurve, error) {
	by := map[int][]ANNPoint{}
	for _, p := range pts {
		by[p.Reels] = append(by[p.Reels], p)
	}
	sizes := make([]int, 0, len(by))
	for n := range by {
		sizes = append(sizes, n)
	}
	sort.Ints(sizes)
	pc := probeCurve{Recall: recall}
	for _, n := range sizes {
		ps := by[n]
		sort.Slice(ps, func(i, j int) bool { return ps[i].Nprobe < ps[j].Nprobe })
		np, ok := nprobeFor(ps, recall)
		if !ok {
			best := 0.0
			for _, p := range ps {
				best = max(best, p.Recall)
			}
			return probeCurve{}, fmt.Errorf("plan: recall %.3f: the index reached at most %.3f on %d reels in calibration: %w", recall, best, n, errRecall)
		}
		pc.Sizes = append(pc.Sizes, float64(n))
		pc.Nprobes = append(pc.Nprobes, np)
	}
	k := len(pc.Sizes) - 1
	pc.N1, pc.P1 = pc.Sizes[k], pc.Nprobes[k]
	if k > 0 {
		pc.Beta = math.Log(pc.Nprobes[k]/pc.Nprobes[0]) / math.Log(pc.Sizes[k]/pc.Sizes[0])
		pc.Beta = min(max(pc.Beta, 0), 0.5)
	}
	return pc, nil
}

// nprobe returns the lists to probe on n reels (of lists lists).
func (pc probeCurve) nprobe(n, lists float64) float64 {
	p := pc.P1 * math.Pow(n/pc.N1, pc.Beta)
	return min(max(math.Ceil(p), 1), lists)
}

// nprobeFor interpolates, in log nprobe, the nprobe at which the sweep
// (sorted by nprobe) first reaches recall.
func nprobeFor(ps []ANNPoint, recall float64) (float64, bool) {
	for i, p := range ps {
		if p.Recall < recall {
			continue
		}
		if i == 0 {
			return float64(p.Nprobe), true
		}
		q := ps[i-1]
		if p.Recall <= q.Recall {
			return float64(p.Nprobe), true
		}
		f := (recall - q.Recall) / (p.Recall - q.Recall)
		return math.Exp(math.Log(float64(q.Nprobe)) + f*(math.Log(float64(p.Nprobe))-math.Log(float64(q.Nprobe)))), true
	}
	return 0, false
}

// listsFor is the lists of a shard's index over n reels: ann's default,
// 4·√n, without its cap of 4096 (a plan sets Options.Lists past it), and
// within [1, n/16].
func listsFor(n float64) float64 {
	return max(1, math.Min(math.Round(4*math.Sqrt(n)), math.Floor(n/16)))
}

// erlangC is the probability that an arrival waits in an M/M/c queue with
// offered load a = λ/μ (a < c), by the Erlang B recursion.
func erlangC(c int, a float64) float64 {
	if a <= 0 {
		return 0
	}
	if a >= float64(c) {
		return 1
	}
	b := 1.0
	for k := 1; k <= c; k++ {
		b = a * b / (float64(k) + a*b)
	}
	rho := a / float64(c)
	return b / (1 - rho + rho*b)
}

// queue is the model of one replica: Poisson arrivals at Lambda a second
// onto c cores, each request served on one core for a time of mean MeanUs
// and squared coefficient of variation CV2 (M/G/c), and a request's
// latency its wait in that queue plus a base drawn from Base: the time a
// request takes when nothing queues (its own work, the wire, the wake-ups
// on both sides), as measured, in equally likely samples (µs).
type queue struct {
	Cores  int
	Lambda float64 // requests a second
	MeanUs float64 // a core's time a request
	CV2    float64
	Base   []float64 // µs, sorted
}

// newQueue is a queue whose base is its service time: samples of it.
func newQueue(cores int, lambda float64, service []float64) queue {
	s := slices.Clone(service)
	slices.Sort(s)
	var sum, sq float64
	for _, v := range s {
		sum += v
		sq += v * v
	}
	m := sum / float64(len(s))
	v := sq/float64(len(s)) - m*m
	return queue{Cores: cores, Lambda: lambda, MeanUs: m, CV2: max(v, 0) / (m * m), Base: s}
}

// Utilisation is λ·E[S]/c.
func (q queue) Utilisation() float64 { return q.Lambda * q.MeanUs / 1e6 / float64(q.Cores) }

// WaitProb is Erlang C's probability of waiting.
func (q queue) WaitProb() float64 { return erlangC(q.Cores, q.Lambda*q.MeanUs/1e6) }

// waitRate is the rate (per µs) of the exponential tail of the wait of
// those who wait: Allen and Cunneen's correction of M/M/c's rate cμ − λ by
// (1 + cs²)/2 for the service time's variability.
func (q queue) waitRate() float64 {
	r := float64(q.Cores)/q.MeanUs - q.Lambda/1e6
	return r * 2 / (1 + q.CV2)
}

// MeanWaitUs is the Allen–Cunneen mean wait.
func (q queue) MeanWaitUs() float64 {
	if q.Utilisation() >= 1 {
		return math.Inf(1)
	}
	return q.WaitProb() / q.waitRate()
}

// exceed is P(wait + base > t µs): the base's samples convolved with a
// wait that is 0 with probability 1 − Pw and exponential beyond.
func (q queue) exceed(t float64) float64 {
	pw, th := q.WaitProb(), q.waitRate()
	// Base is sorted: the samples at or above t count whole; below t, the
	// wait's tail exp(−θ(t − v)) shrinks as v falls and is dropped once
	// under e^−40 of a sample's weight.
	i := sort.SearchFloat64s(q.Base, t)
	s := float64(len(q.Base) - i)
	for j := i - 1; j >= 0; j-- {
		x := th * (t - q.Base[j])
		if x > 40 {
			break
		}
		s += pw * math.Exp(-x)
	}
	return s / float64(len(q.Base))
}

// Quantile is the response time (µs) below which a share p of requests
// finish; +Inf at or past saturation.
func (q queue) Quantile(p float64) float64 {
	if q.Utilisation() >= 1 {
		return math.Inf(1)
	}
	lo, hi := 0.0, q.Base[len(q.Base)-1]
	for q.exceed(hi) > 1-p {
		hi *= 2
		if hi > 1e12 {
			return math.Inf(1)
		}
	}
	for hi-lo > 1e-6*hi && hi-lo > 1e-3 {
		mid := (lo + hi) / 2
		if q.exceed(mid) > 1-p {
			lo = mid
		} else {
			hi = mid
		}
	}
	return hi
}
