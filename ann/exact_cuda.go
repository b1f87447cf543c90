//go:build cuda

package ann

import (
	"errors"
	"fmt"

	"github.com/reelrank/reelrank/kernels"
	"github.com/reelrank/reelrank/kernels/cuda"
)

// ExactCUDA is the GPU's Exact: the vectors resident in device memory as
// f16 (kernels/cuda's Catalogue). Its errors wrap ErrBadQuery for bad
// arguments, and kernels/cuda's ErrOutOfMemory or ErrDeviceLost for the
// device's failures: fall back to an ExactCPU on those. It is safe for
// concurrent use; the device serialises the work.
type ExactCUDA struct {
	dev *cuda.Device
	cat *cuda.Catalogue
}

var _ Exact = (*ExactCUDA)(nil)

// NewExactCUDA uploads n = len(vecs)/dim vectors to GPU ordinal.
func NewExactCUDA(vecs []float32, dim int, metric kernels.Metric, ordinal int) (*ExactCUDA, error) {
	dev, err := cuda.Open(ordinal)
	if err != nil {
		return nil, fmt.Errorf("ann: exact: %w", err)
	}
	cat, err := dev.NewCatalogue(vecs, dim, metric)
	if err != nil {
		_ = dev.Close()
		return nil, mapExactErr("upload", err)
	}
	return &ExactCUDA{dev: dev, cat: cat}, nil
}

func mapExactErr(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, cuda.ErrBadInput) {
		return fmt.Errorf("ann: exact %s: %w: %w", op, ErrBadQuery, err)
	}
	return fmt.Errorf("ann: exact %s: %w", op, err)
}

// Len is the number of rows.
func (e *ExactCUDA) Len() int { return e.cat.Len() }

// Dim is the vectors' dimension.
func (e *ExactCUDA) Dim() int { return e.cat.Dim() }

// Backend names the GPU.
func (e *ExactCUDA) Backend() string { return e.dev.Name() }

// Rescore implements Exact.
func (e *ExactCUDA) Rescore(queries []float32, cand []int32, out []float32) error {
	return mapExactErr("rescore", e.cat.Rescore(queries, cand, out))
}

// TopK implements Exact.
func (e *ExactCUDA) TopK(queries []float32, k int, rows []int32, scores []float32) error {
	if k > MaxExactK {
		return fmt.Errorf("%w: k = %d over %d", ErrBadQuery, k, MaxExactK)
	}
	return mapExactErr("top-k", e.cat.TopK(queries, k, rows, scores))
}

// Close frees the device memory and releases the device.
func (e *ExactCUDA) Close() error { return errors.Join(e.cat.Close(), e.dev.Close()) }
