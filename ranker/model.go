package ranker

import (
	"errors"
	"fmt"
	"math"

	"github.com/reelrank/reelrank/kernels"
)

// ErrInvalidModel is wrapped by every error of a Validate method: a model
// whose shapes do not fit together or whose weights are not finite.
var ErrInvalidModel = errors.New("ranker: invalid model")

// ErrBadInput is wrapped by the errors of inference on bad inputs: vectors
// of the wrong length, NaN or infinite features.
var ErrBadInput = errors.New("ranker: bad input")

// maxDim bounds a layer's width, so that In*Out cannot overflow and a
// corrupt bundle cannot ask for absurd buffers.
const maxDim = 1 << 20

// Dense is one fully connected layer: y = Act(x·W + B) for a row x of In
// values.
type Dense struct {
	In, Out int
	// W holds In×Out weights, row-major: W[i*Out+j] joins input i to output j.
	W []float32
	// B holds Out biases.
	B   []float32
	Act kernels.Activation
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidModel, fmt.Sprintf(format, args...))
}

// Validate reports whether the layer's shapes agree and its weights are
// finite.
func (d *Dense) Validate() error {
	if d.In <= 0 || d.Out <= 0 || d.In > maxDim || d.Out > maxDim {
		return invalid("dense shape %d×%d out of range [1, %d]", d.In, d.Out, maxDim)
	}
	if len(d.W) != d.In*d.Out {
		return invalid("dense %d×%d has %d weights, want %d", d.In, d.Out, len(d.W), d.In*d.Out)
	}
	if len(d.B) != d.Out {
		return invalid("dense %d×%d has %d biases, want %d", d.In, d.Out, len(d.B), d.Out)
	}
	if d.Act > kernels.ActSigmoid {
		return invalid("dense %d×%d has unknown activation %d", d.In, d.Out, d.Act)
	}
	if i := firstNonFinite(d.W); i >= 0 {
		return invalid("dense %d×%d: weight W[%d][%d] = %v is not finite", d.In, d.Out, i/d.Out, i%d.Out, d.W[i])
	}
	if i := firstNonFinite(d.B); i >= 0 {
		return invalid("dense %d×%d: bias B[%d] = %v is not finite", d.In, d.Out, i, d.B[i])
	}
	return nil
}

// MLP is a stack of dense layers, each one's Out the next one's In.
type MLP struct {
	Layers []Dense
}

// In is the width of the MLP's input, 0 for no layers.
func (m *MLP) In() int {
	if len(m.Layers) == 0 {
		return 0
	}
	return m.Layers[0].In
}

// Out is the width of the MLP's output, 0 for no layers.
func (m *MLP) Out() int {
	if len(m.Layers) == 0 {
		return 0
	}
	return m.Layers[len(m.Layers)-1].Out
}

// Validate checks every layer and that the layers chain.
func (m *MLP) Validate() error {
	if len(m.Layers) == 0 {
		return invalid("MLP has no layers")
	}
	for i := range m.Layers {
		l := &m.Layers[i]
		if err := l.Validate(); err != nil {
			return fmt.Errorf("layer %d: %w", i, err)
		}
		if i > 0 && l.In != m.Layers[i-1].Out {
			return invalid("layer %d takes %d inputs but layer %d gives %d", i, l.In, i-1, m.Layers[i-1].Out)
		}
	}
	return nil
}

// firstNonFinite returns the index of the first NaN or infinity in v, or
// -1. The common all-finite case costs one SIMD dot product: x·x is finite
// for every finite x below 1.8e19, and any NaN or infinity makes it so.
func firstNonFinite(v []float32) int {
	if s := kernels.Dot(v, v); !math.IsNaN(float64(s)) && !math.IsInf(float64(s), 0) {
		return -1
	}
	for i, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return i
		}
	}
	return -1
}

// l2Normalize scales v to unit length; a zero vector stays zero.
func l2Normalize(v []float32) {
	s := float64(kernels.Dot(v, v))
	if s == 0 {
		return
	}
	if math.IsInf(s, 0) { // the squares overflowed float32
		s = 0
		for _, x := range v {
			s += float64(x) * float64(x)
		}
	}
	inv := 1 / math.Sqrt(s)
	for i := range v {
		v[i] = float32(float64(v[i]) * inv)
	}
}
