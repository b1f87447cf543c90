package ann

import (
	"fmt"
	"math/rand/v2"
	"runtime"

	"gonum.org/v1/gonum/mat"

	"github.com/reelrank/reelrank/kernels"
)

// OPQ: an orthogonal rotation R applied to every vector (x·R, x a row) before
// product quantization, learned so that the product quantizer of the rotated
// vectors distorts them less (Ge, He, Ke and Sun, "Optimized Product
// Quantization", the non-parametric method). The training alternates two
// minimisations of ||XR − Y||², X the training vectors and Y their PQ
// reconstructions:
//
//   - R fixed: train the sub-quantizers on XR and encode it, which gives Y;
//   - Y fixed: R is the orthogonal Procrustes solution U·Vᵀ, where
//     XᵀY = U·Σ·Vᵀ is a singular value decomposition.
//
// R starts at the identity, so that the first round is the plain product
// quantizer of X and the rounds after it lower the distortion from there: on
// data that plain PQ already suits (sub-vectors independent and clustered)
// the rotation stays near I, where a random start ends an order of magnitude
// worse; on mixed, anisotropic data a random start ends somewhat better (15
// to 30% lower distortion after 10 to 20 rounds on the tests' data), which
// is not worth that risk. Later rounds warm-start the k-means of each
// sub-space from the previous round's codebook, as the alternation assumes.
//
// Cost: each round is two d×d×n GEMMs, the sub-space k-means and encoding,
// and a d×d SVD (gonum, float64), which dominates for large d: about 0.25 s
// at d = 256, 2.3 s at 512 and 17 s at 1024 per round on two cores.

const (
	// opqDefaultIters is the number of rounds when the caller passes 0.
	opqDefaultIters = 20
	// opqMaxTrain caps the training sample (256 × 256 vectors, as FAISS).
	opqMaxTrain = 1 << 16
	// opqPQIters0 and opqPQIters are the Lloyd iterations per sub-space in
	// the first round (from k-means++ seeds) and in the later, warm-started ones.
	opqPQIters0 = 10
	opqPQIters  = 4
	// opqPerCentroid caps the k-means subsample at ksub × 256 vectors.
	opqPerCentroid = 256
	// opqMaxParts caps the row chunks of XᵀY (see opqXT).
	opqMaxParts  = 8
	opqPartRows  = 2048 // least rows of a chunk
	opqRotateRow = 256  // rows per GEMM task of a rotation
)

// opqStats records the training, for tests: the mean squared PQ
// reconstruction error of the rotated sample at each round, before that
// round's Procrustes step.
type opqStats struct {
	sample     int
	distortion []float64
}

// trainOPQ learns an orthogonal d×d rotation R (row-major) such that
// product-quantizing the rotated vectors x·R (row vector times R) with m
// sub-quantizers of ksub centroids has lower distortion than quantizing x.
// x holds n = len(x)/d training vectors, of which at most 65,536 drawn with
// the seed are used. iters is the number of rounds (0 means 20). The result
// is deterministic for a seed, whatever threads is (0 means GOMAXPROCS). It
// returns an error, and never panics, on bad input.
func trainOPQ(x []float32, d, m, ksub, iters int, seed uint64, threads int) ([]float32, error) {
	return trainOPQStats(x, d, m, ksub, iters, seed, threads, nil)
}

func trainOPQStats(x []float32, d, m, ksub, iters int, seed uint64, threads int, st *opqStats) ([]float32, error) {
	switch {
	case d <= 0:
		return nil, fmt.Errorf("ann: OPQ: dimension d = %d, want d > 0", d)
	case len(x)%d != 0:
		return nil, fmt.Errorf("ann: OPQ: len(x) = %d is not a multiple of d = %d", len(x), d)
	case m <= 0 || d%m != 0:
		return nil, fmt.Errorf("ann: OPQ: %d sub-quantizers do not divide dimension %d", m, d)
	case ksub <= 0 || ksub > kmMaxK:
		return nil, fmt.Errorf("ann: OPQ: ksub = %d centroids, want 1..%d", ksub, kmMaxK)
	case iters < 0:
		return nil, fmt.Errorf("ann: OPQ: iters = %d, want >= 0", iters)
	}
	n := len(x) / d
	if n < ksub {
		return nil, fmt.Errorf("ann: OPQ: need at least ksub = %d training vectors, have %d", ksub, n)
	}
	if i := kmFirstNonFinite(x, d); i >= 0 {
		return nil, fmt.Errorf("ann: OPQ: training vector %d has a NaN or Inf coordinate", i)
	}
	iters = kmOr(iters, opqDefaultIters)
	if threads <= 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	rng := rand.New(rand.NewPCG(seed, 0x0b7a0b7a0b7a0b7a))
	xs := x
	if n > opqMaxTrain {
		xs = kmSample(x, n, d, opqMaxTrain, rng)
	}
	ns := len(xs) / d
	dsub := d / m

	rot := make([]float32, d*d)
	for i := range d {
		rot[i*d+i] = 1
	}
	// The sub-quantizers learn from a fixed subsample of 256 vectors per
	// centroid (what the index's product quantizer uses); every sample
	// vector is encoded for the Procrustes step.
	nk := min(ns, opqPerCentroid*ksub)
	var kmRows []int32
	if nk < ns {
		kmRows = kmPick(ns, nk, rng)
	}
	xt := newOPQXT(xs, d, threads)
	xr := make([]float32, ns*d)     // X·R
	y := make([]float32, ns*d)      // its PQ reconstruction
	sub := make([]float32, nk*dsub) // one sub-space of the subsample of X·R
	books := make([]float32, m*ksub*dsub)
	seeds := rand.New(rand.NewPCG(seed, 0x5eb5eb5eb5eb5eb5))
	bookSeed := make([]uint64, m)
	for s := range bookSeed {
		bookSeed[s] = seeds.Uint64()
	}
	if st != nil {
		*st = opqStats{sample: ns, distortion: make([]float64, 0, iters)}
	}

	for it := range iters {
		rotatePacked(xr, xs, kernels.PackB(rot, d, d), threads)
		for s := range m {
			for i := range nk {
				r := i
				if kmRows != nil {
					r = int(kmRows[i])
				}
				copy(sub[i*dsub:(i+1)*dsub], xr[r*d+s*dsub:])
			}
			book := books[s*ksub*dsub : (s+1)*ksub*dsub]
			if it == 0 {
				// MaxPerCentroid covers the whole subsample.
				c, err := TrainKMeans(sub, dsub, KMeansOptions{K: ksub, Iters: opqPQIters0, Seed: bookSeed[s], MaxPerCentroid: (nk + ksub - 1) / ksub, Threads: threads})
				if err != nil {
					return nil, fmt.Errorf("ann: OPQ: sub-quantizer %d: %w", s, err)
				}
				copy(book, c)
			} else {
				kmLloyd(sub, dsub, ksub, book, opqPQIters, threads, func(float64) {})
			}
		}
		sse := opqEncode(y, xr, kernels.NewPQCodebook(books, m, ksub, dsub), books, threads)
		if st != nil {
			st.distortion = append(st.distortion, sse/float64(ns))
		}
		var err error
		if rot, err = xt.procrustes(y, threads); err != nil {
			return nil, err
		}
	}
	return rot, nil
}

// opqEncode writes to y the PQ reconstruction of every row of x, the
// nearest centroid of each sub-space (books: m × ksub × dsub, cb the same
// codebook for the table kernel), and returns the sum of the squared
// distances. Rows go in fixed blocks summed in order: the sum does not
// depend on threads.
func opqEncode(y, x []float32, cb *kernels.PQCodebook, books []float32, threads int) float64 {
	m, ksub, dsub := cb.M, cb.Ksub, cb.Dsub
	d := m * dsub
	n := len(x) / d
	blocks := (n + opqRotateRow - 1) / opqRotateRow
	sums := make([]float64, blocks)
	tabs := make([][]float32, max(1, threads))
	kmParallel(blocks, threads, func(w, t int) {
		if tabs[w] == nil {
			tabs[w] = make([]float32, m*ksub)
		}
		tab := tabs[w]
		var sse float64
		for i := t * opqRotateRow; i < min(n, (t+1)*opqRotateRow); i++ {
			cb.Table(tab, x[i*d:(i+1)*d], kernels.L2)
			for s := range m {
				best, at := opqArgmin(tab[s*ksub : (s+1)*ksub])
				sse += float64(best)
				copy(y[i*d+s*dsub:i*d+(s+1)*dsub], books[(s*ksub+int(at))*dsub:])
			}
		}
		sums[t] = sse
	})
	var sse float64
	for _, v := range sums {
		sse += v
	}
	return sse
}

// opqXT is the training sample X transposed chunk by chunk, made once for
// every Procrustes step: the rows are cut into at most opqMaxParts fixed
// chunks, and xt[t] holds chunk t transposed (d × rows).
type opqXT struct {
	d, n, rows int
	xt         [][]float32
}

func newOPQXT(x []float32, d, threads int) *opqXT {
	n := len(x) / d
	parts := max(1, min(opqMaxParts, n/opqPartRows))
	rows := (n + parts - 1) / parts
	parts = (n + rows - 1) / rows
	p := &opqXT{d: d, n: n, rows: rows, xt: make([][]float32, parts)}
	kmParallel(parts, threads, func(_, t int) {
		i0, i1 := t*rows, min(n, (t+1)*rows)
		p.xt[t] = make([]float32, d*(i1-i0))
		opqTranspose(p.xt[t], x[i0*d:i1*d], i1-i0, d)
	})
	return p
}

// procrustes returns the orthogonal R that minimises ||XR − Y||_F, y holding
// the n rows of Y: U·Vᵀ, where XᵀY = U·Σ·Vᵀ.
func (p *opqXT) procrustes(y []float32, threads int) ([]float32, error) {
	d := p.d
	var svd mat.SVD
	if !svd.Factorize(mat.NewDense(d, d, p.cross(y, threads)), mat.SVDFull) {
		return nil, fmt.Errorf("ann: OPQ: the singular value decomposition of XᵀY did not converge")
	}
	var u, v, r mat.Dense
	svd.UTo(&u)
	svd.VTo(&v)
	r.Mul(&u, v.T())
	rot := make([]float32, d*d)
	for i := range d {
		for j := range d {
			rot[i*d+j] = float32(r.At(i, j))
		}
	}
	return rot, nil
}

// cross returns XᵀY (d×d, row-major, float64): a float32 GEMM per chunk of
// rows, the chunks summed in float64 in order, so that the bits do not
// depend on threads.
func (p *opqXT) cross(y []float32, threads int) []float64 {
	d := p.d
	partial := make([][]float32, len(p.xt))
	kmParallel(len(p.xt), threads, func(_, t int) {
		i0, i1 := t*p.rows, min(p.n, (t+1)*p.rows)
		c := make([]float32, d*d)
		kernels.Gemm(c, p.xt[t], y[i0*d:i1*d], nil, d, i1-i0, d, kernels.ActNone)
		partial[t] = c
	})
	out := make([]float64, d*d)
	for _, c := range partial {
		for i, v := range c {
			out[i] += float64(v)
		}
	}
	return out
}

// opqTranspose writes to dst (c × r) the transpose of the r × c matrix src,
// tile by tile so that both sides stay in cache.
func opqTranspose(dst, src []float32, r, c int) {
	const tile = 32
	for i0 := 0; i0 < r; i0 += tile {
		for j0 := 0; j0 < c; j0 += tile {
			for i := i0; i < min(r, i0+tile); i++ {
				row := src[i*c : (i+1)*c]
				for j := j0; j < min(c, j0+tile); j++ {
					dst[j*r+i] = row[j]
				}
			}
		}
	}
}

// opqArgmin returns the smallest value of row (not empty, no NaN) and its
// first index: the minimum by branch-free min over four lanes, then a scan
// for its first occurrence, which mispredicts once instead of at every
// improvement.
func opqArgmin(row []float32) (float32, int) {
	b0, b1, b2, b3 := row[0], row[0], row[0], row[0]
	i := 0
	for ; i+4 <= len(row); i += 4 {
		r := row[i : i+4 : i+4]
		b0, b1, b2, b3 = min(b0, r[0]), min(b1, r[1]), min(b2, r[2]), min(b3, r[3])
	}
	for ; i < len(row); i++ {
		b0 = min(b0, row[i])
	}
	best := min(min(b0, b1), min(b2, b3))
	for j, v := range row {
		if v == best {
			return best, j
		}
	}
	return best, 0
}

// rotate writes dst = x·R for the n = len(x)/d rows of x, R the d×d
// row-major rotation rot. dst may not alias x. It panics if the lengths do
// not fit.
func rotate(dst, x, rot []float32, d int) {
	if d <= 0 || len(rot) != d*d || len(x)%d != 0 || len(dst) != len(x) {
		panic(fmt.Sprintf("ann: rotate: d = %d, len(rot) = %d, len(x) = %d, len(dst) = %d: want d > 0, d*d, a multiple of d, len(x)", d, len(rot), len(x), len(dst)))
	}
	kernels.Gemm(dst, x, rot, nil, len(x)/d, d, d, kernels.ActNone)
}

// rotatePacked is rotate with R packed once by kernels.PackB(rot, d, d),
// spread over at most threads goroutines by blocks of rows; the result does
// not depend on their number.
func rotatePacked(dst, x []float32, rot *kernels.PackedB, threads int) {
	d := rot.K()
	if d <= 0 || rot.N() != d || len(x)%d != 0 || len(dst) != len(x) {
		panic(fmt.Sprintf("ann: rotatePacked: R is %d×%d, len(x) = %d, len(dst) = %d", rot.K(), rot.N(), len(x), len(dst)))
	}
	n := len(x) / d
	kmParallel((n+opqRotateRow-1)/opqRotateRow, threads, func(_, t int) {
		i0, i1 := t*opqRotateRow, min(n, (t+1)*opqRotateRow)
		kernels.GemmPacked(dst[i0*d:i1*d], x[i0*d:i1*d], i1-i0, rot, nil, kernels.ActNone)
	})
}
