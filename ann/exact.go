package ann

import (
	"container/heap"
	"errors"
	"fmt"
	"math"

	"github.com/reelrank/reelrank/kernels"
)

// Exact is exact search over a catalogue's vectors held in f16: the
// re-scoring of a query's candidates, and a brute-force top-k over every
// row (for small catalogues, and for measuring an index's recall). A score
// is larger-is-better: the inner product, or the negated squared L2
// distance. [ExactCPU] is the reference; the GPU's (build tag cuda,
// [NewExactCUDA]) keeps the vectors in device memory.
type Exact interface {
	// Len and Dim are the catalogue's rows and dimension.
	Len() int
	Dim() int
	// Rescore scores candidate rows for nq = len(queries)/Dim queries,
	// len(cand)/nq candidates each, query q's at cand[q·m:(q+1)·m], into
	// out (len(cand) scores). A row outside the catalogue is refused.
	Rescore(queries []float32, cand []int32, out []float32) error
	// TopK writes each query's k best rows, best first (ties to the
	// smaller row), into rows[q·k:(q+1)·k] and their scores into
	// scores[q·k:]; missing entries (k > Len) are row -1, score -inf.
	TopK(queries []float32, k int, rows []int32, scores []float32) error
	// Backend names where it runs: "cpu", "cuda:0 (...)".
	Backend() string
}

// ErrBadQuery is wrapped by the errors of Exact on bad arguments: shapes
// that do not fit, values that are not finite, rows out of range.
var ErrBadQuery = errors.New("ann: bad query")

// MaxExactK bounds the k of Exact.TopK (the GPU's top-k merges chunks of
// 4,096 and needs k at most half of that).
const MaxExactK = 2048

// ExactCPU is the CPU's Exact, over f16 vectors like the GPU's. It is safe
// for concurrent use.
type ExactCPU struct {
	rows   [][]kernels.F16
	dim    int
	metric kernels.Metric
}

// NewExactCPU holds n = len(vecs)/dim vectors, rounded to f16.
func NewExactCPU(vecs []float32, dim int, metric kernels.Metric) (*ExactCPU, error) {
	if dim <= 0 || len(vecs)%dim != 0 || len(vecs) == 0 || len(vecs)/dim > math.MaxInt32 {
		return nil, fmt.Errorf("%w: catalogue of %d values in rows of %d", ErrBadQuery, len(vecs), dim)
	}
	if metric > kernels.L2 {
		return nil, fmt.Errorf("%w: metric %v", ErrBadQuery, metric)
	}
	if i := nonFinite(vecs); i >= 0 {
		return nil, fmt.Errorf("%w: row %d has %v", ErrBadQuery, i/dim, vecs[i])
	}
	h := make([]kernels.F16, len(vecs))
	kernels.ToF16s(h, vecs)
	e := &ExactCPU{dim: dim, metric: metric, rows: make([][]kernels.F16, len(vecs)/dim)}
	for i := range e.rows {
		e.rows[i] = h[i*dim : (i+1)*dim : (i+1)*dim]
	}
	return e, nil
}

func nonFinite(v []float32) int {
	for i, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return i
		}
	}
	return -1
}

// Len is the number of rows.
func (e *ExactCPU) Len() int { return len(e.rows) }

// Dim is the vectors' dimension.
func (e *ExactCPU) Dim() int { return e.dim }

// Backend returns "cpu".
func (e *ExactCPU) Backend() string { return "cpu" }

func (e *ExactCPU) queries(q []float32) (int, error) {
	if len(q) == 0 || len(q)%e.dim != 0 {
		return 0, fmt.Errorf("%w: %d query values in rows of %d", ErrBadQuery, len(q), e.dim)
	}
	if i := nonFinite(q); i >= 0 {
		return 0, fmt.Errorf("%w: query %d has %v", ErrBadQuery, i/e.dim, q[i])
	}
	return len(q) / e.dim, nil
}

func (e *ExactCPU) score(q []float32, row []kernels.F16) float32 {
	if e.metric == kernels.L2 {
		return -kernels.L2SqF16(q, row)
	}
	return kernels.DotF16(q, row)
}

// Rescore implements Exact.
func (e *ExactCPU) Rescore(queries []float32, cand []int32, out []float32) error {
	nq, err := e.queries(queries)
	if err != nil {
		return err
	}
	if len(cand)%nq != 0 || len(out) != len(cand) {
		return fmt.Errorf("%w: %d candidates for %d queries into %d scores", ErrBadQuery, len(cand), nq, len(out))
	}
	for i, r := range cand {
		if r < 0 || int(r) >= len(e.rows) {
			return fmt.Errorf("%w: candidate %d is row %d of %d", ErrBadQuery, i, r, len(e.rows))
		}
	}
	if len(cand) == 0 {
		return nil
	}
	m := len(cand) / nq
	for i, r := range cand {
		q := queries[(i/m)*e.dim : (i/m+1)*e.dim]
		out[i] = e.score(q, e.rows[r])
	}
	return nil
}

// TopK implements Exact.
func (e *ExactCPU) TopK(queries []float32, k int, rows []int32, scores []float32) error {
	nq, err := e.queries(queries)
	if err != nil {
		return err
	}
	if k < 1 || k > MaxExactK || len(rows) != nq*k || len(scores) != nq*k {
		return fmt.Errorf("%w: top-%d (1..%d) of %d queries into %d rows and %d scores", ErrBadQuery, k, MaxExactK, nq, len(rows), len(scores))
	}
	h := make(worst, 0, k)
	for qi := range nq {
		q := queries[qi*e.dim : (qi+1)*e.dim]
		h = h[:0]
		for r, row := range e.rows {
			c := cand{e.score(q, row), int32(r)}
			if len(h) < k {
				heap.Push(&h, c)
			} else if c.better(h[0]) {
				h[0] = c
				heap.Fix(&h, 0)
			}
		}
		outR, outS := rows[qi*k:(qi+1)*k], scores[qi*k:(qi+1)*k]
		for i := k - 1; i >= 0; i-- {
			if len(h) == 0 {
				outR[i], outS[i] = -1, float32(math.Inf(-1))
				continue
			}
			c := heap.Pop(&h).(cand)
			outR[i], outS[i] = c.row, c.s
		}
		// Pop gives the worst first; with k > Len the missing entries
		// were written last-first above and must go to the end.
		if n := len(e.rows); n < k {
			copy(outR, outR[k-n:])
			copy(outS, outS[k-n:])
			for i := n; i < k; i++ {
				outR[i], outS[i] = -1, float32(math.Inf(-1))
			}
		}
	}
	return nil
}

type cand struct {
	s   float32
	row int32
}

// better: a higher score, or the same score at a smaller row.
func (c cand) better(o cand) bool { return c.s > o.s || (c.s == o.s && c.row < o.row) }

// worst is a heap whose top is the worst candidate kept.
type worst []cand

func (w worst) Len() int           { return len(w) }
func (w worst) Less(i, j int) bool { return w[j].better(w[i]) }
func (w worst) Swap(i, j int)      { w[i], w[j] = w[j], w[i] }
func (w *worst) Push(x any)        { *w = append(*w, x.(cand)) }
func (w *worst) Pop() any {
	old := *w
	c := old[len(old)-1]
	*w = old[:len(old)-1]
	return c
}
