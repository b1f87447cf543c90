package ranker

import (
	"slices"
	"strconv"

	"github.com/reelrank/reelrank/kernels"
)

// Precision selects the arithmetic of a model's GEMMs.
type Precision uint8

const (
	// F32 runs every layer in float32 (kernels.GemmPacked).
	F32 Precision = iota
	// BF16 rounds the weights and the activations that enter each GEMM to
	// bfloat16 and accumulates in float32 (kernels.GemmBF16): about twice
	// the throughput on CPUs with AVX512_BF16. The hoisted user part of the
	// first layer stays in float32.
	BF16
)

// String names the precision: "f32" or "bf16".
func (p Precision) String() string {
	switch p {
	case F32:
		return "f32"
	case BF16:
		return "bf16"
	}
	return "Precision(" + strconv.Itoa(int(p)) + ")"
}

// packed is a k×n weight matrix ready for the GEMM kernels, in one of the
// two precisions, with the bias and activation of its layer.
type packed struct {
	k, n int
	f32  *kernels.PackedB
	bf16 *kernels.PackedBF16
	bias []float32
	act  kernels.Activation
}

func pack(w []float32, k, n int, bias []float32, act kernels.Activation, prec Precision) *packed {
	p := &packed{k: k, n: n, bias: slices.Clone(bias), act: act}
	if prec == BF16 {
		p.bf16 = kernels.PackBF16(w, k, n)
	} else {
		p.f32 = kernels.PackB(w, k, n)
	}
	return p
}

// run computes c = act(a·W + bias) for m rows of a; bias overrides the
// layer's own when not nil.
func (p *packed) run(c, a []float32, m int, bias []float32) {
	if bias == nil {
		bias = p.bias
	}
	if p.bf16 != nil {
		kernels.GemmBF16(c[:m*p.n], a[:m*p.k], m, p.bf16, bias, p.act)
		return
	}
	kernels.GemmPacked(c[:m*p.n], a[:m*p.k], m, p.f32, bias, p.act)
}

// packMLP packs every layer of m.
func packMLP(m *MLP, prec Precision) []*packed {
	out := make([]*packed, len(m.Layers))
	for i := range m.Layers {
		l := &m.Layers[i]
		out[i] = pack(l.W, l.In, l.Out, l.B, l.Act, prec)
	}
	return out
}

// forward runs the packed layers on m rows of x, ping-ponging between the
// two scratch buffers, and returns the output rows (inside buf0 or buf1).
func forward(layers []*packed, x []float32, m int, buf0, buf1 []float32) []float32 {
	in := x
	for i, l := range layers {
		dst := buf0
		if i%2 == 1 {
			dst = buf1
		}
		l.run(dst, in, m, nil)
		in = dst[:m*l.n]
	}
	return in
}

// grow returns b with length n, reallocating only when its capacity is short.
func grow(b []float32, n int) []float32 {
	if cap(b) < n {
		return kernels.AlignedFloat32(n)
	}
	return b[:n]
}
