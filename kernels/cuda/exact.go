//go:build cuda

package cuda

import (
	"errors"
	"fmt"
	"unsafe"

	"github.com/reelrank/reelrank/kernels"
	"gorgonia.org/cu"
)

// Catalogue is a catalogue's vectors resident on a device in f16, for
// exact re-scoring and brute-force top-k. A score is larger-is-better: the
// inner product, or the negated squared L2 distance. A Catalogue is not
// safe for concurrent use.
type Catalogue struct {
	d                            *Device
	n, dim                       int
	metric                       kernels.Metric
	vecs                         buf
	q, s1, i1, s2, i2, rows, out buf
	closed                       bool
}

// NewCatalogue uploads n = len(vecs)/dim vectors, rounded to f16.
func (d *Device) NewCatalogue(vecs []float32, dim int, metric kernels.Metric) (*Catalogue, error) {
	if dim <= 0 || dim > MaxDim || len(vecs)%dim != 0 || len(vecs) == 0 || len(vecs)/dim > 1<<31-1 {
		return nil, fmt.Errorf("%w: catalogue of %d values in rows of %d (dimension 1..%d)", ErrBadInput, len(vecs), dim, MaxDim)
	}
	if metric > kernels.L2 {
		return nil, fmt.Errorf("%w: catalogue metric %v", ErrBadInput, metric)
	}
	if !finite(vecs) {
		return nil, fmt.Errorf("%w: catalogue has a value that is not finite", ErrBadInput)
	}
	h := make([]kernels.F16, len(vecs))
	kernels.ToF16s(h, vecs)
	c := &Catalogue{d: d, n: len(vecs) / dim, dim: dim, metric: metric}
	err := d.do("upload catalogue", func() error {
		return d.upload(&c.vecs, unsafe.Pointer(&h[0]), int64(len(h))*2)
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Len and Dim are the catalogue's rows and dimension.
func (c *Catalogue) Len() int { return c.n }
func (c *Catalogue) Dim() int { return c.dim }

// Backend names the device.
func (c *Catalogue) Backend() string { return c.d.Name() }

func (c *Catalogue) queries(q []float32) (int, error) {
	if c.closed {
		return 0, fmt.Errorf("cuda: catalogue: %w", ErrClosed)
	}
	if len(q) == 0 || len(q)%c.dim != 0 {
		return 0, fmt.Errorf("%w: %d query values in rows of %d", ErrBadInput, len(q), c.dim)
	}
	if !finite(q) {
		return 0, fmt.Errorf("%w: a query value is not finite", ErrBadInput)
	}
	return len(q) / c.dim, nil
}

// TopK writes, for each of the nq = len(queries)/Dim queries, its k best
// rows, best first, into rows[q·k:] and their scores into scores[q·k:];
// with fewer than k rows the rest are -1 with score -inf.
func (c *Catalogue) TopK(queries []float32, k int, rows []int32, scores []float32) error {
	nq, err := c.queries(queries)
	if err != nil {
		return err
	}
	if k < 1 || k > MaxK || len(rows) != nq*k || len(scores) != nq*k {
		return fmt.Errorf("%w: top-%d (1..%d) of %d queries into %d rows and %d scores", ErrBadInput, k, MaxK, nq, len(rows), len(scores))
	}
	chunks := (c.n + topkChunk - 1) / topkChunk
	d := c.d
	return d.do("top-k", func() error {
		p := &d.pool
		part := int64(nq * chunks * k * 4)
		for _, e := range []struct {
			b *buf
			n int64
		}{{&c.q, int64(len(queries)) * 4}, {&c.s1, part}, {&c.i1, part}, {&c.s2, part}, {&c.i2, part}} {
			if err := p.ensure(e.b, e.n); err != nil {
				return err
			}
		}
		s := d.stream
		if err := cu.MemcpyHtoDAsync(c.q.ptr, unsafe.Pointer(&queries[0]), int64(len(queries))*4, s); err != nil {
			return wrap("copy queries", err)
		}
		if err := d.launch("ip_topk", [3]int{chunks, nq, 1}, topkThreads, 0,
			c.vecs.ptr, c.q.ptr, c.n, c.dim, k, int64(c.metric), c.s1.ptr, c.i1.ptr); err != nil {
			return err
		}
		inS, inI, outS, outI := c.s1.ptr, c.i1.ptr, c.s2.ptr, c.i2.ptr
		for count := chunks * k; count > k; {
			outChunks := (count + topkChunk - 1) / topkChunk
			if err := d.launch("topk_merge", [3]int{outChunks, nq, 1}, topkThreads, 0,
				inS, inI, count, k, outS, outI); err != nil {
				return err
			}
			count = outChunks * k
			inS, inI, outS, outI = outS, outI, inS, inI
		}
		if err := cu.MemcpyDtoHAsync(unsafe.Pointer(&scores[0]), inS, int64(nq*k*4), s); err != nil {
			return wrap("copy scores", err)
		}
		if err := cu.MemcpyDtoHAsync(unsafe.Pointer(&rows[0]), inI, int64(nq*k*4), s); err != nil {
			return wrap("copy rows", err)
		}
		return d.sync("top-k")
	})
}

// Rescore scores candidate rows exactly: the nq = len(queries)/Dim
// queries have m = len(cand)/nq candidates each, query q's at
// cand[q·m:(q+1)·m], and out[i] gets cand[i]'s score. A row outside the
// catalogue is refused.
func (c *Catalogue) Rescore(queries []float32, cand []int32, out []float32) error {
	nq, err := c.queries(queries)
	if err != nil {
		return err
	}
	if len(cand)%nq != 0 || len(out) != len(cand) {
		return fmt.Errorf("%w: %d candidates for %d queries into %d scores", ErrBadInput, len(cand), nq, len(out))
	}
	for i, r := range cand {
		if r < 0 || int(r) >= c.n {
			return fmt.Errorf("%w: candidate %d is row %d of %d", ErrBadInput, i, r, c.n)
		}
	}
	if len(cand) == 0 {
		return nil
	}
	m := len(cand) / nq
	d := c.d
	return d.do("rescore", func() error {
		p := &d.pool
		for _, e := range []struct {
			b *buf
			n int64
		}{{&c.q, int64(len(queries)) * 4}, {&c.rows, int64(len(cand)) * 4}, {&c.out, int64(len(cand)) * 4}} {
			if err := p.ensure(e.b, e.n); err != nil {
				return err
			}
		}
		s := d.stream
		if err := cu.MemcpyHtoDAsync(c.q.ptr, unsafe.Pointer(&queries[0]), int64(len(queries))*4, s); err != nil {
			return wrap("copy queries", err)
		}
		if err := cu.MemcpyHtoDAsync(c.rows.ptr, unsafe.Pointer(&cand[0]), int64(len(cand))*4, s); err != nil {
			return wrap("copy candidates", err)
		}
		grid := [3]int{(len(cand) + rowBlock - 1) / rowBlock, 1, 1}
		if err := d.launch("rescore", grid, rowBlock, 0, c.vecs.ptr, c.q.ptr, c.rows.ptr,
			c.n, c.dim, m, nq, int64(c.metric), c.out.ptr); err != nil {
			return err
		}
		if err := cu.MemcpyDtoHAsync(unsafe.Pointer(&out[0]), c.out.ptr, int64(len(out))*4, s); err != nil {
			return wrap("copy scores", err)
		}
		return d.sync("rescore")
	})
}

// Close frees the catalogue's device memory.
func (c *Catalogue) Close() error {
	if c.closed {
		return nil
	}
	c.closed = true
	return c.d.do("close catalogue", func() error {
		var errs []error
		for _, b := range []*buf{&c.vecs, &c.q, &c.s1, &c.i1, &c.s2, &c.i2, &c.rows, &c.out} {
			errs = append(errs, c.d.pool.put(*b))
			*b = buf{}
		}
		return errors.Join(errs...)
	})
}
