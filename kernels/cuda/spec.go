package cuda

import (
	"fmt"
	"math"

	"github.com/reelrank/reelrank/kernels"
)

// Precision is the arithmetic of an MLP's GEMMs on the device.
type Precision uint8

const (
	// F32 runs every GEMM in float32.
	F32 Precision = iota
	// BF16 rounds weights and activations to bfloat16 and accumulates in
	// float32 on the tensor cores; the user's share of the first layer and
	// the heads stay in float32.
	BF16
)

// Layer is one dense layer: y = Act(x·W + B), W In×Out row-major.
type Layer struct {
	In, Out int
	W, B    []float32
	Act     kernels.Activation
}

// MLPSpec is a multitask ranker as the device runs it. A candidate's
// input row is [user | rest]; the first layer is given split by input
// rows: UserW (UserIn×H1) and First (the rest's rows, with the layer's
// bias B1 and activation). Layers follow; Heads is width×T with one
// sigmoid head per column, HeadB its biases, and a candidate's score is
// Σ_t Weights[t]·p_t.
type MLPSpec struct {
	UserIn int
	UserW  []float32 // UserIn×H1; empty when UserIn is 0
	First  Layer     // (input width - UserIn)×H1, B1 as its B
	Layers []Layer
	Heads  []float32 // width×T
	HeadB  []float32 // T
	// Weights are the score's weight per task.
	Weights   []float32
	Precision Precision
}

// MaxTasks bounds the heads of an MLP (the head kernel keeps a row's
// task sums in registers).
const MaxTasks = 32

// Tasks is the number of heads.
func (s *MLPSpec) Tasks() int { return len(s.HeadB) }

// RestIn is the width of a candidate's rest row.
func (s *MLPSpec) RestIn() int { return s.First.In }

// Width is the width of the last hidden layer, the heads' input.
func (s *MLPSpec) Width() int {
	if len(s.Layers) == 0 {
		return s.First.Out
	}
	return s.Layers[len(s.Layers)-1].Out
}

// MaxHidden is the widest hidden layer.
func (s *MLPSpec) MaxHidden() int {
	w := s.First.Out
	for _, l := range s.Layers {
		w = max(w, l.Out)
	}
	return w
}

// Validate checks the shapes chain and every weight is finite.
func (s *MLPSpec) Validate() error {
	const maxDim = 1 << 20
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: mlp: %s", ErrBadInput, fmt.Sprintf(format, args...))
	}
	layer := func(name string, l *Layer) error {
		if l.In <= 0 || l.Out <= 0 || l.In > maxDim || l.Out > maxDim {
			return bad("%s is %d×%d", name, l.In, l.Out)
		}
		if len(l.W) != l.In*l.Out || len(l.B) != l.Out {
			return bad("%s is %d×%d with %d weights and %d biases", name, l.In, l.Out, len(l.W), len(l.B))
		}
		if l.Act > kernels.ActSigmoid {
			return bad("%s has activation %d", name, l.Act)
		}
		if !finite(l.W) || !finite(l.B) {
			return bad("%s has a weight that is not finite", name)
		}
		return nil
	}
	if s.UserIn < 0 || s.UserIn > maxDim || len(s.UserW) != s.UserIn*s.First.Out || !finite(s.UserW) {
		return bad("user part %d×%d has %d weights (or one not finite)", s.UserIn, s.First.Out, len(s.UserW))
	}
	if err := layer("first layer", &s.First); err != nil {
		return err
	}
	prev := s.First.Out
	for i := range s.Layers {
		l := &s.Layers[i]
		if err := layer(fmt.Sprintf("layer %d", i+2), l); err != nil {
			return err
		}
		if l.In != prev {
			return bad("layer %d takes %d inputs, the one before gives %d", i+2, l.In, prev)
		}
		prev = l.Out
	}
	T := s.Tasks()
	if T == 0 || T > MaxTasks {
		return bad("%d tasks, want 1 to %d", T, MaxTasks)
	}
	if len(s.Heads) != prev*T || len(s.Weights) != T || !finite(s.Heads) || !finite(s.HeadB) || !finite(s.Weights) {
		return bad("heads: %d weights for %d×%d, %d score weights (or one not finite)", len(s.Heads), prev, T, len(s.Weights))
	}
	if s.Precision > BF16 {
		return bad("precision %d", s.Precision)
	}
	return nil
}

func finite(v []float32) bool {
	for _, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return false
		}
	}
	return true
}
