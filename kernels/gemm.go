package kernels

import (
	"fmt"
	"math"
)

//go:generate go run gemm_asm_gen.go

// Activation is the function a GEMM applies to each output after adding the bias.
type Activation uint8

const (
	// ActNone leaves A×B + bias as it is.
	ActNone Activation = iota
	// ActReLU is max(0, x); NaN stays NaN.
	ActReLU
	// ActSigmoid is 1 / (1 + exp(-x)).
	ActSigmoid
)

// String names the activation: "none", "relu" or "sigmoid".
func (a Activation) String() string {
	switch a {
	case ActNone:
		return "none"
	case ActReLU:
		return "relu"
	case ActSigmoid:
		return "sigmoid"
	}
	return fmt.Sprintf("Activation(%d)", uint8(a))
}

// gemmNR is the width of a packed B panel: 32 columns, two zmm registers
// (the AVX2 kernel reads each panel as two 16-column halves).
const gemmNR = 32

// PackedB is a k×n weight matrix laid out for the GEMM kernels: ⌈n/32⌉
// panels of k rows × 32 columns, each panel contiguous, the last one padded
// with zero columns, the whole buffer 64-byte aligned. Pack the weights once
// with [PackB] and pass them to [GemmPacked] on every call. A PackedB is
// read-only after PackB and safe to share between goroutines.
type PackedB struct {
	k, n   int
	panels []float32 // panel j holds columns 32j..32j+31: panels[j*k*32 + p*32 + col]
}

// K is the inner dimension: the rows of B.
func (p *PackedB) K() int { return p.k }

// N is the outer dimension: the columns of B and of C.
func (p *PackedB) N() int { return p.n }

// PackB packs the k×n row-major matrix b into panels for [GemmPacked].
func PackB(b []float32, k, n int) *PackedB {
	if k < 0 || n < 0 {
		panic(fmt.Sprintf("kernels: PackB: negative shape k = %d, n = %d", k, n))
	}
	if len(b) != k*n {
		panic(fmt.Sprintf("kernels: PackB: len(b) = %d, want k*n = %d", len(b), k*n))
	}
	p := &PackedB{k: k, n: n, panels: AlignedFloat32(gemmPanelLen(k, n))}
	packBPanels(p.panels, b, k, n)
	return p
}

// gemmPanelLen is the length of the panel buffer for a k×n matrix.
func gemmPanelLen(k, n int) int {
	return k * (n + gemmNR - 1) / gemmNR * gemmNR
}

// packBPanels writes b (k×n, row-major) into dst as 32-column panels. dst
// holds gemmPanelLen(k, n) elements; the padding columns are set to zero.
// It goes 16 rows of B at a time across all panels, so that it reads whole
// rows and writes 2 KiB runs instead of walking B down one column strip.
func packBPanels(dst, b []float32, k, n int) {
	const rows = 16
	for p0 := 0; p0 < k; p0 += rows {
		p1 := min(k, p0+rows)
		for j0 := 0; j0 < n; j0 += gemmNR {
			w := min(gemmNR, n-j0)
			panel := dst[j0*k : j0*k+k*gemmNR]
			for p := p0; p < p1; p++ {
				row := panel[p*gemmNR : p*gemmNR+gemmNR]
				copy(row, b[p*n+j0:p*n+j0+w])
				clear(row[w:])
			}
		}
	}
}

// at returns B[p][j].
func (pb *PackedB) at(p, j int) float32 {
	return pb.panels[j/gemmNR*pb.k*gemmNR+p*gemmNR+j%gemmNR]
}

// Gemm computes C = act(A×B + bias): A is m×k, B is k×n and C is m×n, all
// row-major; bias has n entries, or is nil for none. It packs B on each call
// into a pooled buffer; for weights used many times, pack them once with
// [PackB] and call [GemmPacked]. Safe for concurrent use.
func Gemm(c, a, b, bias []float32, m, k, n int, act Activation) {
	gemmCheck("Gemm", c, a, bias, m, k, n, act)
	if len(b) != k*n {
		panic(fmt.Sprintf("kernels: Gemm: len(b) = %d, want k*n = %d", len(b), k*n))
	}
	gemm(c, a, b, bias, m, k, n, act)
}

// GemmPacked computes C = act(A×B + bias) with B packed by [PackB]: A is
// m×k, C is m×n (n = b.N(), k = b.K()), bias has n entries or is nil. Safe for
// concurrent use.
func GemmPacked(c, a []float32, m int, b *PackedB, bias []float32, act Activation) {
	if b == nil {
		panic("kernels: GemmPacked: nil PackedB")
	}
	gemmCheck("GemmPacked", c, a, bias, m, b.k, b.n, act)
	gemmPacked(c, a, m, b, bias, act)
}

func gemmCheck(name string, c, a, bias []float32, m, k, n int, act Activation) {
	if m < 0 || k < 0 || n < 0 {
		panic(fmt.Sprintf("kernels: %s: negative shape m = %d, k = %d, n = %d", name, m, k, n))
	}
	if len(a) != m*k {
		panic(fmt.Sprintf("kernels: %s: len(a) = %d, want m*k = %d", name, len(a), m*k))
	}
	if len(c) != m*n {
		panic(fmt.Sprintf("kernels: %s: len(c) = %d, want m*n = %d", name, len(c), m*n))
	}
	if bias != nil && len(bias) != n {
		panic(fmt.Sprintf("kernels: %s: len(bias) = %d, want n = %d", name, len(bias), n))
	}
	if act > ActSigmoid {
		panic(fmt.Sprintf("kernels: %s: unknown activation %d", name, act))
	}
}

// sigmoid is the logistic function, in float64 for a correctly rounded float32.
func sigmoid(x float32) float32 {
	return float32(1 / (1 + math.Exp(-float64(x))))
}

// activate applies act to one output: the last step of every GEMM path.
func activate(x float32, act Activation) float32 {
	switch act {
	case ActReLU:
		if x < 0 {
			return 0
		}
	case ActSigmoid:
		return sigmoid(x)
	}
	return x
}

// gemmBiasOnly is C = act(bias) for k = 0.
func gemmBiasOnly(c, bias []float32, m, n int, act Activation) {
	for i := range m {
		row := c[i*n : i*n+n]
		for j := range row {
			var x float32
			if bias != nil {
				x = bias[j]
			}
			row[j] = activate(x, act)
		}
	}
}

// gemmGeneric is the reference: for each output, the f32 sum of
// a[i][p]*b[p][j] over p in order, then bias, then the activation.
func gemmGeneric(c, a, b, bias []float32, m, k, n int, act Activation) {
	gemmGenericAt(c, a, m, k, n, bias, act, func(p int) []float32 { return b[p*n : p*n+n] })
}

// gemmGenericAt is gemmGeneric with the rows of B given by brow(p) (n entries).
// It runs i, p, j with a row of f32 sums, the same order of additions per
// output as the plain triple loop.
func gemmGenericAt(c, a []float32, m, k, n int, bias []float32, act Activation, brow func(p int) []float32) {
	for i := range m {
		row := c[i*n : i*n+n]
		clear(row)
		for p := range k {
			aip := a[i*k+p]
			br := brow(p)
			for j, bv := range br[:n] {
				row[j] += aip * bv
			}
		}
		for j := range row {
			x := row[j]
			if bias != nil {
				x += bias[j]
			}
			row[j] = activate(x, act)
		}
	}
}

// gemmPackedGeneric is the reference on packed B.
func gemmPackedGeneric(c, a []float32, m int, b *PackedB, bias []float32, act Activation) {
	gemmGeneric(c, a, b.unpack(), bias, m, b.k, b.n, act)
}

// unpack returns B as a k×n row-major matrix.
func (pb *PackedB) unpack() []float32 {
	b := make([]float32, pb.k*pb.n)
	for p := range pb.k {
		for j := range pb.n {
			b[p*pb.n+j] = pb.at(p, j)
		}
	}
	return b
}
