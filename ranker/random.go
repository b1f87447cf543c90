package ranker

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/reelrank/reelrank/features"
	"github.com/reelrank/reelrank/kernels"
)

// NewDense returns an in×out layer with He-uniform random weights (scaled
// for ReLU) and zero biases: the usual starting point of training, and the
// random models of tests and benchmarks.
func NewDense(in, out int, act kernels.Activation, rng *rand.Rand) Dense {
	d := Dense{In: in, Out: out, W: make([]float32, in*out), B: make([]float32, out), Act: act}
	lim := math.Sqrt(6 / float64(max(in, 1)))
	for i := range d.W {
		d.W[i] = float32((2*rng.Float64() - 1) * lim)
	}
	return d
}

// NewMLP returns an MLP from in through each width of hidden, every layer
// with ReLU, random as in [NewDense].
func NewMLP(in int, hidden []int, rng *rand.Rand) MLP {
	var m MLP
	for _, h := range hidden {
		m.Layers = append(m.Layers, NewDense(in, h, kernels.ActReLU, rng))
		in = h
	}
	return m
}

// Config shapes a new [Multitask].
type Config struct {
	// Hidden lists the widths of the shared bottom, or of each expert
	// when Experts > 0.
	Hidden []int
	// Experts > 0 makes an MMoE of that many experts.
	Experts int
	// Tasks names the heads; default DefaultTasks().
	Tasks []string
	// Weights are the final score's weights; default 1 for each task.
	Weights   []float32
	Precision Precision
}

// NewMultitask returns a randomly initialised ranker for spec.
func NewMultitask(spec features.Spec, cfg Config, rng *rand.Rand) (*Multitask, error) {
	if len(cfg.Hidden) == 0 {
		return nil, fmt.Errorf("%w: no hidden layers", ErrInvalidModel)
	}
	m := &Multitask{Spec: spec, Tasks: slices.Clone(cfg.Tasks), Weights: slices.Clone(cfg.Weights), Precision: cfg.Precision}
	if len(m.Tasks) == 0 {
		m.Tasks = DefaultTasks()
	}
	if len(m.Weights) == 0 {
		m.Weights = make([]float32, len(m.Tasks))
		for i := range m.Weights {
			m.Weights[i] = 1
		}
	}
	in := m.InputDim()
	width := cfg.Hidden[len(cfg.Hidden)-1]
	if cfg.Experts > 0 {
		m.MMoE = &MMoE{}
		for range cfg.Experts {
			m.MMoE.Experts = append(m.MMoE.Experts, NewMLP(in, cfg.Hidden, rng))
		}
		for range m.Tasks {
			g := NewDense(in, cfg.Experts, kernels.ActNone, rng)
			for i := range g.W {
				g.W[i] *= 0.1
			}
			m.MMoE.Gates = append(m.MMoE.Gates, g)
		}
	} else {
		m.Bottom = NewMLP(in, cfg.Hidden, rng)
	}
	for range m.Tasks {
		h := NewDense(width, 1, kernels.ActSigmoid, rng)
		for i := range h.W {
			h.W[i] *= 0.1
		}
		m.Heads = append(m.Heads, h)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return m, nil
}

// NewUserTower returns a random user tower over in features: ReLU layers
// of the hidden widths, then a linear layer to dim.
func NewUserTower(in int, hidden []int, dim int, rng *rand.Rand) *UserTower {
	return &UserTower{MLP: towerMLP(in, hidden, dim, rng)}
}

// NewReelTower returns a random reel tower for spec's reel features and
// embedding, with an id embedding row per id in ids.
func NewReelTower(spec features.Spec, hidden []int, dim int, ids []int64, rng *rand.Rand) *ReelTower {
	t := &ReelTower{Dim: dim, ReelFeatures: len(spec.Reel), IDs: slices.Clone(ids), IDEmb: make([]float32, len(ids)*dim)}
	t.Content = towerMLP(len(spec.Reel)+spec.EmbedDim, hidden, dim, rng)
	for i := range t.IDEmb {
		t.IDEmb[i] = float32(rng.NormFloat64() * 0.1)
	}
	return t
}

// towerMLP is ReLU layers of the hidden widths, then a linear layer to dim.
func towerMLP(in int, hidden []int, dim int, rng *rand.Rand) MLP {
	m := NewMLP(in, hidden, rng)
	last := in
	if len(hidden) > 0 {
		last = hidden[len(hidden)-1]
	}
	m.Layers = append(m.Layers, NewDense(last, dim, kernels.ActNone, rng))
	return m
}
