package ann

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reelrank/reelrank/kernels"
)

// KMeansOptions configures [TrainKMeans].
type KMeansOptions struct {
	// K is the number of centroids, 1..65536.
	K int
	// Iters is the number of Lloyd iterations (assign, then update); 0 means 10.
	Iters int
	// Seed drives the sample and the initialisation: the same seed on the
	// same input gives the same centroids, bit for bit, whatever Threads is.
	Seed uint64
	// MaxPerCentroid caps the training set at K*MaxPerCentroid points, drawn
	// with the seed; 0 means 256.
	MaxPerCentroid int
	// Threads is the number of goroutines; 0 means runtime.GOMAXPROCS(0).
	Threads int
}

const (
	kmMaxK               = 1 << 16
	kmDefaultIters       = 10
	kmDefaultPerCentroid = 256

	// kmSeedPoints is the least size of the subsample that k-means++ seeds
	// from (4*K when larger): k-means++ is K sequential passes over it.
	kmSeedPoints = 20000
	// kmSeedBudget caps the multiply-adds of k-means++ (K × points × d, about
	// 2.5 s); beyond it, the seeds are K random sample points.
	kmSeedBudget = 3e10
	// kmSeedChunk is the fixed partition of the k-means++ distance updates.
	kmSeedChunk = 1024

	// kmBlock points are scored against kmChunk centroids per GEMM
	// call: the 256×512 distance tile (512 KiB) stays in L2 while the argmin
	// reads it.
	kmBlock = 256
	kmChunk = 512

	// kmSplitEps is the relative perturbation of a split centroid (FAISS's EPS).
	kmSplitEps = 1.0 / 1024
)

// TrainKMeans returns K centroids (K*d floats, row-major) of the n = len(x)/d
// points of x under the L2 distance. It samples at most K*MaxPerCentroid
// points, seeds the centroids by k-means++ (D² sampling) on a subsample of
// max(20000, 4K) of them (by K random sample points when K×subsample×d
// passes 3e10, from K ≈ 8192 at d = 128), and runs Lloyd iterations whose assignment step is
// a GEMM against the centroids. A cluster left empty by an update takes half
// of the largest one. It returns an error, and never panics, on bad input.
func TrainKMeans(x []float32, d int, opt KMeansOptions) ([]float32, error) {
	return trainKMeans(x, d, opt, nil)
}

// kmStats records what one training did, for tests and benchmarks.
type kmStats struct {
	sample    int           // points in the training sample
	seedN     int           // points k-means++ seeded from
	seedTime  time.Duration // k-means++
	lloydTime time.Duration // all Lloyd iterations
	objective []float64     // sum of squared distances at each assignment
}

func trainKMeans(x []float32, d int, opt KMeansOptions, st *kmStats) ([]float32, error) {
	k := opt.K
	switch {
	case d <= 0:
		return nil, fmt.Errorf("ann: TrainKMeans: dimension d = %d, want d > 0", d)
	case len(x)%d != 0:
		return nil, fmt.Errorf("ann: TrainKMeans: len(x) = %d is not a multiple of d = %d", len(x), d)
	case k <= 0 || k > kmMaxK:
		return nil, fmt.Errorf("ann: TrainKMeans: K = %d, want 1..%d", k, kmMaxK)
	case opt.Iters < 0:
		return nil, fmt.Errorf("ann: TrainKMeans: Iters = %d, want >= 0", opt.Iters)
	case opt.MaxPerCentroid < 0:
		return nil, fmt.Errorf("ann: TrainKMeans: MaxPerCentroid = %d, want >= 0", opt.MaxPerCentroid)
	case opt.Threads < 0:
		return nil, fmt.Errorf("ann: TrainKMeans: Threads = %d, want >= 0", opt.Threads)
	}
	n := len(x) / d
	if n < k {
		return nil, fmt.Errorf("ann: TrainKMeans: need at least K = %d points, have %d", k, n)
	}
	if i := kmFirstNonFinite(x, d); i >= 0 {
		return nil, fmt.Errorf("ann: TrainKMeans: point %d has a NaN or Inf coordinate", i)
	}
	iters := kmOr(opt.Iters, kmDefaultIters)
	perCen := kmOr(opt.MaxPerCentroid, kmDefaultPerCentroid)
	threads := kmOr(opt.Threads, runtime.GOMAXPROCS(0))
	rng := rand.New(rand.NewPCG(opt.Seed, 0x9e3779b97f4a7c15))

	xs := x
	if perCen < n/k+1 && k*perCen < n { // the first test avoids overflow in k*perCen
		xs = kmSample(x, n, d, k*perCen, rng)
	}
	ns := len(xs) / d

	t0 := time.Now()
	seedN := min(ns, max(kmSeedPoints, 4*k))
	var c []float32
	if float64(k)*float64(seedN)*float64(d) <= kmSeedBudget {
		c = kmSeedPP(xs, ns, d, k, seedN, rng, threads)
	} else {
		// k-means++ would take minutes (K sequential passes): start from K
		// distinct sample points, as FAISS does by default.
		seedN = k
		c = kmSample(xs, ns, d, k, rng)
	}
	t1 := time.Now()
	var obj []float64
	if st != nil {
		obj = make([]float64, 0, iters)
	}
	kmLloyd(xs, d, k, c, iters, threads, func(sse float64) {
		if st != nil {
			obj = append(obj, sse)
		}
	})
	if st != nil {
		*st = kmStats{sample: ns, seedN: seedN, seedTime: t1.Sub(t0), lloydTime: time.Since(t1), objective: obj}
	}
	return c, nil
}

// kmOr is v, or def when v is 0.
func kmOr(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// kmFirstNonFinite returns the index of the first point of x (dimension d) with
// a NaN or infinite coordinate, or -1.
func kmFirstNonFinite(x []float32, d int) int {
	for i, v := range x {
		// v-v is NaN for both NaN and ±Inf, and 0 otherwise.
		if v-v != 0 {
			return i / d
		}
	}
	return -1
}

// kmSample returns m distinct points of x (n points of dimension d) drawn
// by rng, in their order in x.
func kmSample(x []float32, n, d, m int, rng *rand.Rand) []float32 {
	idx := kmPick(n, m, rng)
	out := make([]float32, m*d)
	for i, j := range idx {
		copy(out[i*d:(i+1)*d], x[int(j)*d:int(j+1)*d])
	}
	return out
}

// kmPick returns m distinct indices of 0..n-1 drawn by rng (a partial
// Fisher-Yates shuffle), sorted.
func kmPick(n, m int, rng *rand.Rand) []int32 {
	idx := make([]int32, n)
	for i := range idx {
		idx[i] = int32(i)
	}
	for i := range m {
		j := i + rng.IntN(n-i)
		idx[i], idx[j] = idx[j], idx[i]
	}
	idx = idx[:m:m]
	slices.Sort(idx)
	return idx
}

// kmParallel runs f(worker, task) for every task in 0..tasks-1 on at most
// threads goroutines; worker numbers are 0..threads-1, so f may index
// per-worker scratch with them. Tasks are handed out in order, but callers
// never let a result depend on which worker ran a task.
func kmParallel(tasks, threads int, f func(worker, task int)) {
	threads = max(1, min(threads, tasks))
	if threads == 1 {
		for t := range tasks {
			f(0, t)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := range threads {
		wg.Go(func() {
			for {
				t := int(next.Add(1) - 1)
				if t >= tasks {
					return
				}
				f(w, t)
			}
		})
	}
	wg.Wait()
}

// kmSeedPP seeds k centroids by k-means++ (D² sampling) from m points of xs
// (ns points) picked by rng. Each pass updates the squared distances to the
// nearest chosen centre chunk by chunk (a fixed partition) and sums them per
// chunk in float64, so the draws do not depend on threads.
func kmSeedPP(xs []float32, ns, d, k, m int, rng *rand.Rand, threads int) []float32 {
	p := xs
	if m < ns {
		p = kmSample(xs, ns, d, m, rng)
	}
	c := make([]float32, k*d)
	d2 := make([]float32, m)
	chunks := (m + kmSeedChunk - 1) / kmSeedChunk
	sums := make([]float64, chunks)
	for i := range d2 {
		d2[i] = float32(math.Inf(1))
	}

	pick := rng.IntN(m)
	for j := range k {
		centre := c[j*d : (j+1)*d]
		copy(centre, p[pick*d:(pick+1)*d])
		if j == k-1 {
			break
		}
		kmParallel(chunks, threads, func(_, t int) {
			i0, i1 := t*kmSeedChunk, min(m, (t+1)*kmSeedChunk)
			var tmp [kmSeedChunk]float32
			dst := tmp[:i1-i0]
			kernels.L2SqBatch(dst, centre, p[i0*d:i1*d])
			var s float64
			for i, v := range dst {
				if v < d2[i0+i] {
					d2[i0+i] = v
				}
				s += float64(d2[i0+i])
			}
			sums[t] = s
		})
		var total float64
		for _, s := range sums {
			total += s
		}
		if total <= 0 {
			// Every point coincides with a chosen centre: fewer distinct
			// points than k. Take the next point; Lloyd splits clusters
			// that stay empty.
			pick = (pick + 1) % m
			continue
		}
		pick = kmDrawD2(d2, sums, rng.Float64()*total)
	}
	return c
}

// kmDrawD2 returns the point at which the running sum of d2 passes u, walking
// the chunk sums first; it never returns a point with d2 = 0.
func kmDrawD2(d2 []float32, sums []float64, u float64) int {
	t := 0
	for ; t < len(sums)-1 && u >= sums[t]; t++ {
		u -= sums[t]
	}
	last := -1
	for i := t * kmSeedChunk; i < min(len(d2), (t+1)*kmSeedChunk); i++ {
		v := float64(d2[i])
		if v <= 0 {
			continue
		}
		if u < v {
			return i
		}
		u -= v
		last = i
	}
	if last >= 0 {
		return last // rounding ran u past the chunk's sum
	}
	for i := len(d2) - 1; i >= 0; i-- {
		if d2[i] > 0 {
			return i
		}
	}
	return 0
}

// kmLloyd runs iters Lloyd iterations on the n = len(x)/d points of x, updating
// the k centroids c in place. It calls obj with the sum of squared distances
// after each assignment.
func kmLloyd(x []float32, d, k int, c []float32, iters, threads int, obj func(sse float64)) {
	n := len(x) / d
	labels := make([]int32, n)
	dist := make([]float32, n)
	xnorm := kmNorms(x, d, threads)
	counts := make([]int32, k)
	start := make([]int32, k+1)
	order := make([]int32, n)
	sums := make([][]float64, max(1, threads))
	for w := range sums {
		sums[w] = make([]float64, d)
	}
	scale := kmRMS(x)
	const updTask = 64 // centroids per update task
	for range iters {
		kmAssign(labels, dist, x, xnorm, d, c, threads)
		var sse float64
		for _, v := range dist {
			sse += float64(v)
		}
		obj(sse)

		// Counting sort of the points by label, so that each centroid sums
		// its points in index order, whatever the thread count.
		clear(counts)
		for _, l := range labels {
			counts[l]++
		}
		start[0] = 0
		for j := range k {
			start[j+1] = start[j] + counts[j]
		}
		pos := slices.Clone(start[:k])
		for i, l := range labels {
			order[pos[l]] = int32(i)
			pos[l]++
		}
		kmParallel((k+updTask-1)/updTask, threads, func(w, t int) {
			acc := sums[w]
			for j := t * updTask; j < min(k, (t+1)*updTask); j++ {
				members := order[start[j]:start[j+1]]
				if len(members) == 0 {
					continue
				}
				clear(acc)
				for _, i := range members {
					for p, v := range x[int(i)*d : int(i+1)*d] {
						acc[p] += float64(v)
					}
				}
				inv := 1 / float64(len(members))
				for p, s := range acc {
					c[j*d+p] = float32(s * inv)
				}
			}
		})
		kmSplitEmpty(c, counts, d, scale)
	}
}

// kmSplitEmpty gives every empty cluster, in index order, half of the largest
// cluster (the smaller index among equals): it copies that centroid and moves
// the two copies apart by a small symmetric perturbation, as FAISS does.
func kmSplitEmpty(c []float32, counts []int32, d int, scale float64) {
	floor := float32(1e-3 * scale)
	for e, ce := range counts {
		if ce != 0 {
			continue
		}
		big := 0
		for j, cj := range counts {
			if cj > counts[big] {
				big = j
			}
		}
		if counts[big] < 2 {
			return // fewer distinct assignments than clusters: nothing to split
		}
		src, dst := c[big*d:(big+1)*d], c[e*d:(e+1)*d]
		for p, v := range src {
			delta := kmSplitEps * max(float32(math.Abs(float64(v))), floor)
			if p%2 == 1 {
				delta = -delta
			}
			dst[p] = v + delta
			src[p] = v - delta
		}
		counts[e] = counts[big] / 2
		counts[big] -= counts[e]
	}
}

// kmRMS is the root mean square of the coordinates of x.
func kmRMS(x []float32) float64 {
	if len(x) == 0 {
		return 0
	}
	var s float64
	for _, v := range x {
		s += float64(v) * float64(v)
	}
	return math.Sqrt(s / float64(len(x)))
}

// kmNorms returns the squared norm of every point of x.
func kmNorms(x []float32, d, threads int) []float32 {
	n := len(x) / d
	out := make([]float32, n)
	kmParallel((n+kmBlock-1)/kmBlock, threads, func(_, t int) {
		for i := t * kmBlock; i < min(n, (t+1)*kmBlock); i++ {
			row := x[i*d : (i+1)*d]
			out[i] = kernels.Dot(row, row)
		}
	})
	return out
}

// AssignL2 writes to labels[i] the index of the centroid nearest to point i
// of x (dimension d) under the L2 distance, the smaller index among equals,
// and to dist[i] the squared distance when dist is not nil. centroids holds
// k = len(centroids)/d rows. It runs on threads goroutines (0 means
// runtime.GOMAXPROCS(0)); the answer does not depend on their number. It
// panics if the lengths do not fit: len(labels) (and len(dist)) must be
// len(x)/d, and there must be at least one centroid when there are points.
func AssignL2(labels []int32, dist []float32, x []float32, d int, centroids []float32, threads int) {
	if d <= 0 {
		panic(fmt.Sprintf("ann: AssignL2: dimension d = %d, want d > 0", d))
	}
	if len(x)%d != 0 || len(centroids)%d != 0 {
		panic(fmt.Sprintf("ann: AssignL2: len(x) = %d and len(centroids) = %d must be multiples of d = %d", len(x), len(centroids), d))
	}
	n := len(x) / d
	if len(labels) != n || (dist != nil && len(dist) != n) {
		panic(fmt.Sprintf("ann: AssignL2: len(labels) = %d, len(dist) = %d, want %d points", len(labels), len(dist), n))
	}
	if n == 0 {
		return
	}
	if len(centroids) == 0 {
		panic("ann: AssignL2: no centroids")
	}
	threads = kmOr(threads, runtime.GOMAXPROCS(0))
	var xnorm []float32
	if dist != nil && !kmDirect(d, len(centroids)/d) {
		xnorm = kmNorms(x, d, threads)
	}
	kmAssign(labels, dist, x, xnorm, d, centroids, threads)
}

// kmDirect tells whether kmAssign scores points with a plain loop of
// exact differences rather than the GEMM: for small dimensions and few
// centroids (the product-quantizer sub-spaces), where packing costs more than
// it saves.
func kmDirect(d, k int) bool {
	return d < 8 || d*k <= 256
}

// kmAssign is AssignL2 on checked input. xnorm holds the squared norms of the
// points; it is needed only on the GEMM path and only when dist is not nil.
func kmAssign(labels []int32, dist, x, xnorm []float32, d int, c []float32, threads int) {
	n, k := len(x)/d, len(c)/d
	blocks := (n + kmBlock - 1) / kmBlock
	if kmDirect(d, k) {
		kmParallel(blocks, threads, func(_, t int) {
			i0, i1 := t*kmBlock, min(n, (t+1)*kmBlock)
			var dd []float32
			if dist != nil {
				dd = dist[i0:i1]
			}
			kmAssignDirect(labels[i0:i1], dd, x[i0*d:i1*d], d, c)
		})
		return
	}

	// Distances less ||x||² come out of the GEMM as x·(-2cᵀ) + ||c||²,
	// chunk by chunk of centroids; scaling by -2 is exact.
	chunks := (k + kmChunk - 1) / kmChunk
	packed := make([]*kernels.PackedB, chunks)
	bias := make([][]float32, chunks)
	kmParallel(chunks, threads, func(_, t int) {
		j0, j1 := t*kmChunk, min(k, (t+1)*kmChunk)
		w := j1 - j0
		bt := make([]float32, d*w)
		b := make([]float32, w)
		for j := j0; j < j1; j++ {
			row := c[j*d : (j+1)*d]
			for p, v := range row {
				bt[p*w+j-j0] = -2 * v
			}
			b[j-j0] = kernels.Dot(row, row)
		}
		packed[t] = kernels.PackB(bt, d, w)
		bias[t] = b
	})

	var ids []int64
	if chunks > 1 {
		ids = make([]int64, k)
		for j := range ids {
			ids[j] = int64(j)
		}
	}
	threads = max(1, min(threads, blocks))
	scratch := make([]kmScratch, threads)
	kmParallel(blocks, threads, func(w, t int) {
		s := &scratch[w]
		if s.tile == nil {
			s.tile = kernels.AlignedFloat32(kmBlock * kmChunk)
			s.best = make([]float32, kmBlock)
			s.arg = make([]int32, kmBlock)
			s.sel = kernels.NewSelector(1, false)
		}
		i0, i1 := t*kmBlock, min(n, (t+1)*kmBlock)
		m := i1 - i0
		best, arg := s.best[:m], s.arg[:m]
		for i := range best {
			best[i] = float32(math.Inf(1))
			arg[i] = 0
		}
		a := x[i0*d : i1*d]
		for ch, pb := range packed {
			j0, w := ch*kmChunk, pb.N()
			tile := s.tile[:m*w]
			kernels.GemmPacked(tile, a, m, pb, bias[ch], kernels.ActNone)
			if ch == 0 {
				for i := range m {
					best[i], arg[i] = kmArgmin(tile[i*w : (i+1)*w])
				}
				continue
			}
			// Later chunks go through the SIMD filter of a Selector primed
			// with the best so far: only values that reach it are looked
			// at, and its smaller-id rule keeps the first of equals.
			for i := range m {
				sel := s.sel
				sel.Reset()
				sel.Add(int64(arg[i]), best[i])
				sel.Threshold()
				sel.Push(tile[i*w:(i+1)*w], ids[j0:j0+w])
				s.res = sel.Results(s.res)
				if r := s.res[0]; r.Score < best[i] {
					best[i], arg[i] = r.Score, int32(r.ID)
				}
			}
		}
		copy(labels[i0:i1], arg)
		if dist != nil {
			for i, b := range best {
				dist[i0+i] = max(0, xnorm[i0+i]+b)
			}
		}
	})
}

type kmScratch struct {
	tile []float32 // kmBlock × kmChunk partial distances
	best []float32 // per point of the block: the least partial distance so far
	arg  []int32   // and its centroid
	sel  *kernels.Selector
	res  []kernels.Result
}

// kmArgmin returns the smallest value of row and its first index; +Inf and 0
// when every value is NaN or +Inf.
func kmArgmin(row []float32) (float32, int32) {
	best, at := float32(math.Inf(1)), 0
	// Four running minima over interleaved lanes keep the compares
	// independent; lane q holds the first minimum among indices ≡ q (mod 4),
	// and the merge picks the smallest value, then the smallest index.
	var bv [4]float32
	var bi [4]int
	for q := range bv {
		bv[q], bi[q] = best, -1
	}
	i := 0
	for ; i+4 <= len(row); i += 4 {
		r := row[i : i+4 : i+4]
		if r[0] < bv[0] {
			bv[0], bi[0] = r[0], i
		}
		if r[1] < bv[1] {
			bv[1], bi[1] = r[1], i+1
		}
		if r[2] < bv[2] {
			bv[2], bi[2] = r[2], i+2
		}
		if r[3] < bv[3] {
			bv[3], bi[3] = r[3], i+3
		}
	}
	for ; i < len(row); i++ {
		if row[i] < bv[0] {
			bv[0], bi[0] = row[i], i
		}
	}
	at = -1
	for q := range bv {
		if bi[q] < 0 {
			continue
		}
		if at < 0 || bv[q] < best || (bv[q] == best && bi[q] < at) {
			best, at = bv[q], bi[q]
		}
	}
	if at < 0 {
		return float32(math.Inf(1)), 0
	}
	return best, int32(at)
}

// kmAssignDirect scores each point of x against every centroid of c with
// exact differences.
func kmAssignDirect(labels []int32, dist, x []float32, d int, c []float32) {
	k := len(c) / d
	for i := range labels {
		var best float32
		var arg int
		if d == 2 {
			x0, x1 := x[2*i], x[2*i+1]
			best, arg = float32(math.Inf(1)), 0
			for j := 0; j < k; j++ {
				c2 := c[2*j : 2*j+2 : 2*j+2]
				a, b := x0-c2[0], x1-c2[1]
				if s := a*a + b*b; s < best {
					best, arg = s, j
				}
			}
		} else {
			row := x[i*d : (i+1)*d : (i+1)*d]
			best, arg = float32(math.Inf(1)), 0
			for j := 0; j < k; j++ {
				cj := c[j*d : (j+1)*d : (j+1)*d]
				var s float32
				for p, v := range row {
					t := v - cj[p]
					s += t * t
				}
				if s < best {
					best, arg = s, j
				}
			}
		}
		labels[i] = int32(arg)
		if dist != nil {
			dist[i] = best
		}
	}
}
