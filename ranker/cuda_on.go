//go:build cuda

package ranker

import (
	"errors"
	"fmt"

	"github.com/reelrank/reelrank/kernels/cuda"
)

// probeCUDA opens GPU 0 to see that it works, and names it.
func probeCUDA() (string, error) {
	d, err := cuda.Open(0)
	if err != nil {
		return "", err
	}
	name := d.Name()
	return name, d.Close()
}

// CUDAScorer is the GPU's BatchScorer: the model resident on a device,
// each batch staged into pinned memory and scored in one pass
// (kernels/cuda's MLP.Run). Not safe for concurrent use; a Batcher runs
// it from one goroutine.
type CUDAScorer struct {
	dev            *cuda.Device
	mlp            *cuda.MLP
	nu, nR, nC, nE int
	check          *Scorer
}

func newCUDAScorer(m *Multitask) (BatchScorer, error) { return NewCUDAScorer(m, 0) }

// NewCUDAScorer uploads m to GPU ordinal.
func NewCUDAScorer(m *Multitask, ordinal int) (*CUDAScorer, error) {
	spec, err := m.CUDASpec()
	if err != nil {
		return nil, err
	}
	check, err := m.NewScorer()
	if err != nil {
		return nil, err
	}
	dev, err := cuda.Open(ordinal)
	if err != nil {
		return nil, fmt.Errorf("ranker: %w", err)
	}
	mlp, err := dev.NewMLP(spec)
	if err != nil {
		_ = dev.Close()
		return nil, fmt.Errorf("ranker: upload to %s: %w", dev.Name(), err)
	}
	sp := m.Spec
	return &CUDAScorer{dev: dev, mlp: mlp, nu: len(sp.User), nR: len(sp.Reel), nC: len(sp.Cross), nE: sp.EmbedDim, check: check}, nil
}

// Backend names the GPU.
func (c *CUDAScorer) Backend() string { return c.dev.Name() }

// ScoreBatch scores the batch in one pass on the GPU. A device lost wraps
// ErrBackendDown as well as cuda.ErrDeviceLost.
func (c *CUDAScorer) ScoreBatch(ins []Inputs, outs []*Scores) error {
	if len(ins) != len(outs) {
		return fmt.Errorf("%w: %d inputs but %d outputs", ErrBadInput, len(ins), len(outs))
	}
	M := 0
	for i := range ins {
		if outs[i] == nil {
			return fmt.Errorf("%w: request %d of the batch has no output", ErrBadInput, i)
		}
		if err := c.check.Check(ins[i]); err != nil {
			return fmt.Errorf("request %d of the batch: %w", i, err)
		}
		M += ins[i].N
	}
	b, err := c.mlp.NewBatch(len(ins), M)
	if err != nil {
		return c.wrap(err)
	}
	stageBatch(ins, c.nu, c.nR, c.nC, c.nE, b.User, b.Rest, b.Seg)
	if err := c.mlp.Run(b); err != nil {
		return c.wrap(err)
	}
	T := c.mlp.Tasks()
	row := 0
	for i, in := range ins {
		o := outs[i]
		o.Tasks = T
		o.Probs = grow(o.Probs, in.N*T)
		o.Score = grow(o.Score, in.N)
		copy(o.Probs, b.Probs[row*T:(row+in.N)*T])
		copy(o.Score, b.Score[row:row+in.N])
		row += in.N
	}
	return nil
}

func (c *CUDAScorer) wrap(err error) error {
	if errors.Is(err, cuda.ErrDeviceLost) || errors.Is(err, cuda.ErrClosed) {
		return fmt.Errorf("ranker: %w: %w", ErrBackendDown, err)
	}
	return fmt.Errorf("ranker: %s: %w", c.dev.Name(), err)
}

// Close frees the model on the device and releases the device.
func (c *CUDAScorer) Close() error {
	return errors.Join(c.mlp.Close(), c.dev.Close())
}
