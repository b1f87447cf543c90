//go:build cuda

package cuda

import (
	"errors"
	"fmt"
	"math"
	"unsafe"

	"github.com/reelrank/reelrank/kernels"
	"gorgonia.org/cu"
)

// devLayer is a layer's weights on the device.
type devLayer struct {
	k, n int
	w    buf // k×n, f32 or bf16
	bias buf // n f32; zero for the first layer, whose bias is z
	act  int64
}

// MLP is a ranker resident on a device. It is not safe for concurrent
// use: one goroutine (a ranker.Batcher's) runs its batches.
type MLP struct {
	d                      *Device
	prec                   Precision
	nu, nr, h1, width, T   int
	maxH                   int
	userW, b1              buf
	first                  devLayer
	layers                 []devLayer
	headW, headB, weights  buf
	u, x, seg, z, a, b, pr buf // batch scratch; pr holds probs then scores
	host                   pinned
	batch                  Batch
	closed                 bool
}

// Batch is one pass's input and output, in the MLP's pinned host memory.
// Fill User (R rows of UserIn values), Rest (M rows of RestIn) and Seg
// (each candidate row's request, 0..R-1), then call MLP.Run; Probs (M×T)
// and Score (M) hold the results. Its slices are valid until the next
// NewBatch.
type Batch struct {
	R, M         int
	User, Rest   []float32
	Seg          []int32
	Probs, Score []float32
}

// NewMLP uploads a ranker to the device.
func (d *Device) NewMLP(spec MLPSpec) (*MLP, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	m := &MLP{
		d: d, prec: spec.Precision, nu: spec.UserIn, nr: spec.RestIn(), h1: spec.First.Out,
		width: spec.Width(), T: spec.Tasks(), maxH: spec.MaxHidden(),
	}
	err := d.do("upload mlp", func() error {
		if m.nu > 0 {
			if err := d.uploadF32(&m.userW, spec.UserW); err != nil {
				return err
			}
		}
		if err := d.uploadF32(&m.b1, spec.First.B); err != nil {
			return err
		}
		if err := m.uploadLayer(&m.first, &spec.First, false); err != nil {
			return err
		}
		m.layers = make([]devLayer, len(spec.Layers))
		for i := range spec.Layers {
			if err := m.uploadLayer(&m.layers[i], &spec.Layers[i], true); err != nil {
				return err
			}
		}
		for _, up := range []struct {
			b *buf
			v []float32
		}{{&m.headW, spec.Heads}, {&m.headB, spec.HeadB}, {&m.weights, spec.Weights}} {
			if err := d.uploadF32(up.b, up.v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		_ = m.Close()
		return nil, err
	}
	return m, nil
}

func (m *MLP) uploadLayer(dl *devLayer, l *Layer, withBias bool) error {
	dl.k, dl.n, dl.act = l.In, l.Out, int64(l.Act)
	if withBias {
		if err := m.d.uploadF32(&dl.bias, l.B); err != nil {
			return err
		}
	}
	if m.prec == BF16 {
		w := make([]kernels.BF16, len(l.W))
		for i, v := range l.W {
			w[i] = kernels.ToBF16(v)
		}
		return m.d.upload(&dl.w, unsafe.Pointer(&w[0]), int64(len(w))*2)
	}
	return m.d.uploadF32(&dl.w, l.W)
}

// uploadF32 copies v into a new device buffer. The context must be current.
func (d *Device) uploadF32(b *buf, v []float32) error {
	if len(v) == 0 {
		return nil
	}
	return d.upload(b, unsafe.Pointer(&v[0]), int64(len(v))*4)
}

func (d *Device) upload(b *buf, p unsafe.Pointer, n int64) error {
	nb, err := d.pool.get(n)
	if err != nil {
		return err
	}
	if err := cu.MemcpyHtoD(nb.ptr, p, n); err != nil {
		_ = d.pool.put(nb)
		return wrap("upload", err)
	}
	*b = nb
	return nil
}

// Backend names the device.
func (m *MLP) Backend() string { return m.d.Name() }

// Tasks is the number of heads; UserIn and RestIn the widths of the rows.
func (m *MLP) Tasks() int  { return m.T }
func (m *MLP) UserIn() int { return m.nu }
func (m *MLP) RestIn() int { return m.nr }

// NewBatch returns the staging of a pass of R requests and M candidate
// rows, growing the pinned memory as needed.
func (m *MLP) NewBatch(R, M int) (*Batch, error) {
	if m.closed {
		return nil, fmt.Errorf("cuda: mlp batch: %w", ErrClosed)
	}
	if R < 0 || M < 0 || R > 1<<20 || M > 1<<24 || (M > 0 && R == 0) {
		return nil, fmt.Errorf("%w: mlp batch of %d requests and %d rows", ErrBadInput, R, M)
	}
	offs := m.layout(R, M)
	err := m.d.do("pinned staging", func() error { return m.host.ensure(offs[5]) })
	if err != nil {
		return nil, err
	}
	m.batch = Batch{
		R: R, M: M,
		User:  m.host.f32(offs[0], R*m.nu),
		Rest:  m.host.f32(offs[1], M*m.nr),
		Seg:   m.host.i32(offs[2], M),
		Probs: m.host.f32(offs[3], M*m.T),
		Score: m.host.f32(offs[4], M),
	}
	return &m.batch, nil
}

// layout returns the byte offsets of a batch's parts in the pinned
// memory, 256-byte aligned, and the total.
func (m *MLP) layout(R, M int) [6]int {
	sizes := [5]int{R * m.nu * 4, M * m.nr * 4, M * 4, M * m.T * 4, M * 4}
	var offs [6]int
	for i, s := range sizes {
		offs[i+1] = offs[i] + (s+255)&^255
	}
	return offs
}

// Run scores b, which must be the Batch of the last NewBatch. The device
// output is poisoned with NaN before the pass, and a score left NaN fails
// the pass with ErrDriver: a kernel that skipped a row cannot pass
// unnoticed.
func (m *MLP) Run(b *Batch) error {
	if b != &m.batch || m.closed {
		return fmt.Errorf("%w: mlp run: not this MLP's current batch", ErrBadInput)
	}
	R, M := b.R, b.M
	if M == 0 {
		return nil
	}
	for i, s := range b.Seg {
		if s < 0 || int(s) >= R {
			return fmt.Errorf("%w: mlp run: row %d belongs to request %d of %d", ErrBadInput, i, s, R)
		}
	}
	offs := m.layout(R, M)
	d := m.d
	err := d.do("mlp run", func() error {
		p := &d.pool
		h := m.maxH
		for _, e := range []struct {
			b *buf
			n int
		}{{&m.u, max(R*m.nu, 1) * 4}, {&m.x, M * m.nr * 4}, {&m.seg, M * 4}, {&m.z, R * m.h1 * 4},
			{&m.a, M * h * 4}, {&m.b, M * h * 4}, {&m.pr, M * (m.T + 1) * 4}} {
			if err := p.ensure(e.b, int64(e.n)); err != nil {
				return err
			}
		}
		s := d.stream
		if m.nu > 0 {
			if err := cu.MemcpyHtoDAsync(m.u.ptr, m.host.ptr(offs[0]), int64(R*m.nu*4), s); err != nil {
				return wrap("copy users", err)
			}
		}
		if err := cu.MemcpyHtoDAsync(m.x.ptr, m.host.ptr(offs[1]), int64(M*m.nr*4), s); err != nil {
			return wrap("copy candidates", err)
		}
		if err := cu.MemcpyHtoDAsync(m.seg.ptr, m.host.ptr(offs[2]), int64(M*4), s); err != nil {
			return wrap("copy segments", err)
		}
		if err := cu.MemsetD32Async(m.pr.ptr, uint(math.Float32bits(float32(math.NaN()))), int64(M*(m.T+1)), s); err != nil {
			return wrap("poison outputs", err)
		}
		// The user's share of layer 1, once per request: z = u·W1u + b1
		// (K = 0 leaves z = b1 when the spec has no user features).
		if err := m.gemm(m.u.ptr, m.userW.ptr, F32, m.b1.ptr, 0, m.z.ptr, R, m.h1, m.nu, 0); err != nil {
			return err
		}
		// Layer 1 for every candidate, z of its request as the bias.
		if err := m.gemm(m.x.ptr, m.first.w.ptr, m.prec, m.z.ptr, m.seg.ptr, m.a.ptr, M, m.h1, m.nr, m.first.act); err != nil {
			return err
		}
		in, out := m.a.ptr, m.b.ptr
		for i := range m.layers {
			l := &m.layers[i]
			if err := m.gemm(in, l.w.ptr, m.prec, l.bias.ptr, 0, out, M, l.n, l.k, l.act); err != nil {
				return err
			}
			in, out = out, in
		}
		probs := m.pr.ptr
		score := probs + cu.DevicePtr(M*m.T*4)
		grid := [3]int{(M + rowBlock - 1) / rowBlock, 1, 1}
		if err := d.launch("heads", grid, rowBlock, 0, in, m.headW.ptr, m.headB.ptr, m.weights.ptr,
			probs, score, M, m.width, m.T); err != nil {
			return err
		}
		if err := cu.MemcpyDtoHAsync(m.host.ptr(offs[3]), probs, int64(M*m.T*4), s); err != nil {
			return wrap("copy probabilities", err)
		}
		if err := cu.MemcpyDtoHAsync(m.host.ptr(offs[4]), score, int64(M*4), s); err != nil {
			return wrap("copy scores", err)
		}
		return d.sync("mlp run")
	})
	if err != nil {
		return err
	}
	for i, v := range b.Score {
		if math.IsNaN(float64(v)) {
			return fmt.Errorf("cuda: mlp run: %w: row %d of %d was not scored", ErrDriver, i, M)
		}
	}
	return nil
}

// gemm launches c = act(a·w + bias) for m rows, bias per row segment when
// seg is not 0.
func (m *MLP) gemm(a, w cu.DevicePtr, prec Precision, bias, seg, c cu.DevicePtr, rows, n, k int, act int64) error {
	grid := [3]int{(n + gemmTile - 1) / gemmTile, (rows + gemmTile - 1) / gemmTile, 1}
	if prec == BF16 {
		return m.d.launch("gemm_bf16", grid, gemmBF16Block, 0, a, w, bias, seg, c, rows, n, k, act)
	}
	return m.d.launch("gemm_f32", grid, gemmF32Block, 0, a, w, bias, seg, c, rows, n, k, act)
}

// Close frees the MLP's device and pinned memory.
func (m *MLP) Close() error {
	if m.closed {
		return nil
	}
	m.closed = true
	return m.d.do("close mlp", func() error {
		var errs []error
		for _, b := range []*buf{&m.userW, &m.b1, &m.first.w, &m.headW, &m.headB, &m.weights,
			&m.u, &m.x, &m.seg, &m.z, &m.a, &m.b, &m.pr} {
			errs = append(errs, m.d.pool.put(*b))
			*b = buf{}
		}
		for i := range m.layers {
			errs = append(errs, m.d.pool.put(m.layers[i].w), m.d.pool.put(m.layers[i].bias))
		}
		errs = append(errs, m.host.free())
		return errors.Join(errs...)
	})
}
