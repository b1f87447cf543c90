package ranker

import (
	"errors"
	"fmt"

	"github.com/reelrank/reelrank/kernels/cuda"
)

// Device says where a model's batches are scored.
type Device string

const (
	// CPU scores every request on the CPU (the default).
	CPU Device = "cpu"
	// CUDA scores batches on GPU 0 and fails to start without one (or in
	// a binary built without the cuda tag).
	CUDA Device = "cuda"
	// Auto is CUDA when a GPU is there, else the CPU.
	Auto Device = "auto"
)

// ErrNoCUDA is returned for the CUDA device by a binary built without
// the cuda tag.
var ErrNoCUDA = errors.New("ranker: built without CUDA; make build-cuda")

// ParseDevice reads "cpu", "cuda" or "auto" ("" is cpu).
func ParseDevice(s string) (Device, error) {
	switch Device(s) {
	case "", CPU:
		return CPU, nil
	case CUDA, Auto:
		return Device(s), nil
	}
	return "", fmt.Errorf("ranker: unknown device %q: want cpu, cuda or auto", s)
}

// ResolveDevice turns Auto into CUDA or CPU, and checks that CUDA can be
// had: the binary is built with the cuda tag and a device is present.
// note says, for Auto, what was chosen and why (print it once); err is
// CUDA's failure (wrapping ErrNoCUDA, or kernels/cuda's ErrNoDevice).
func ResolveDevice(d Device) (got Device, note string, err error) {
	switch d {
	case "", CPU:
		return CPU, "", nil
	case CUDA, Auto:
		name, err := probeCUDA()
		if err == nil {
			return CUDA, "ranker: scoring on " + name, nil
		}
		if d == CUDA {
			return "", "", err
		}
		return CPU, fmt.Sprintf("ranker: no GPU to score on (%v): scoring on the CPU", err), nil
	}
	return "", "", fmt.Errorf("ranker: unknown device %q", d)
}

// NewDeviceScorer returns the BatchScorer of device d for m: the CPU's
// Scorer, or the model uploaded to GPU 0 (Close it through io.Closer when
// done). Auto falls back to the CPU as ResolveDevice does.
func NewDeviceScorer(m *Multitask, d Device) (BatchScorer, error) {
	got, _, err := ResolveDevice(d)
	if err != nil {
		return nil, err
	}
	if got == CPU {
		return m.NewScorer()
	}
	return newCUDAScorer(m)
}

// CUDASpec returns the model as kernels/cuda runs it: the first layer
// split at the user's rows, the later layers, the heads side by side. An
// MMoE model has no GPU form (its experts and gates stay on the CPU).
func (m *Multitask) CUDASpec() (cuda.MLPSpec, error) {
	if err := m.Validate(); err != nil {
		return cuda.MLPSpec{}, err
	}
	if m.MMoE != nil {
		return cuda.MLPSpec{}, fmt.Errorf("%w: the GPU backend runs a shared bottom, not an MMoE", ErrInvalidModel)
	}
	nu := len(m.Spec.User)
	l1 := &m.Bottom.Layers[0]
	sp := cuda.MLPSpec{
		UserIn:  nu,
		UserW:   l1.W[:nu*l1.Out],
		First:   cuda.Layer{In: l1.In - nu, Out: l1.Out, W: l1.W[nu*l1.Out:], B: l1.B, Act: l1.Act},
		Weights: m.Weights,
	}
	for _, l := range m.Bottom.Layers[1:] {
		sp.Layers = append(sp.Layers, cuda.Layer{In: l.In, Out: l.Out, W: l.W, B: l.B, Act: l.Act})
	}
	sp.Heads, sp.HeadB = headsMatrix(m.Heads)
	if m.Precision == BF16 {
		sp.Precision = cuda.BF16
	}
	if err := sp.Validate(); err != nil {
		return cuda.MLPSpec{}, fmt.Errorf("%w: %w", ErrInvalidModel, err)
	}
	return sp, nil
}

// stageBatch lays out a batch as the GPU takes it: the users' rows, the
// candidates' [reel | cross | emb] rows, and each candidate row's
// request. The three slices must have the batch's sizes.
func stageBatch(ins []Inputs, nu, nR, nC, nE int, user, rest []float32, seg []int32) {
	nr := nR + nC + nE
	row := 0
	for r := range ins {
		in := &ins[r]
		copy(user[r*nu:(r+1)*nu], in.User)
		for i := range in.N {
			x := rest[row*nr : (row+1)*nr]
			copy(x, in.Reel[i*nR:(i+1)*nR])
			copy(x[nR:], in.Cross[i*nC:(i+1)*nC])
			copy(x[nR+nC:], in.Emb[i*nE:(i+1)*nE])
			seg[row] = int32(r)
			row++
		}
	}
}
