package kernels

import (
	"fmt"
	"math"
	"sync"
	"unsafe"
)

// BF16 is a bfloat16: the top 16 bits of a float32 (sign, 8-bit exponent,
// 7-bit mantissa).
type BF16 uint16

// ToBF16 rounds x to the nearest bfloat16, ties to even. Values beyond the
// largest bfloat16 round to ±Inf; NaN stays NaN (quiet).
func ToBF16(x float32) BF16 {
	u := math.Float32bits(x)
	if u&0x7fffffff > 0x7f800000 { // NaN: keep the sign and top payload, set the quiet bit
		return BF16(u>>16 | 0x40)
	}
	u += 0x7fff + (u>>16)&1
	return BF16(u >> 16)
}

// Float32 widens h to float32 exactly.
func (h BF16) Float32() float32 { return math.Float32frombits(uint32(h) << 16) }

// roundBF16 is x rounded to bfloat16 and widened back to float32.
func roundBF16(x float32) float32 { return ToBF16(x).Float32() }

// PackedBF16 is a k×n weight matrix rounded to bfloat16 and laid out for
// VDPBF16PS: ⌈n/32⌉ panels of ⌈k/2⌉ rows × 32 columns, each entry a 32-bit
// pair holding B[2q][j] in its low half and B[2q+1][j] in its high half (zero
// past row k), 64-byte aligned. Pack once with [PackBF16]; read-only after,
// safe to share between goroutines.
type PackedBF16 struct {
	k, n, kp int
	panels   []uint32 // panels[j*kp*32 + q*32 + col]

	// f32 is the same rounded matrix as f32 panels, for CPUs without
	// AVX512_BF16; made on first use.
	f32Once sync.Once
	f32     *PackedB
}

// K is the inner dimension: the rows of B.
func (p *PackedBF16) K() int { return p.k }

// N is the outer dimension: the columns of B and of C.
func (p *PackedBF16) N() int { return p.n }

// PackBF16 rounds the k×n row-major matrix b to bfloat16 (nearest, ties to
// even) and packs it for [GemmBF16].
func PackBF16(b []float32, k, n int) *PackedBF16 {
	if k < 0 || n < 0 {
		panic(fmt.Sprintf("kernels: PackBF16: negative shape k = %d, n = %d", k, n))
	}
	if len(b) != k*n {
		panic(fmt.Sprintf("kernels: PackBF16: len(b) = %d, want k*n = %d", len(b), k*n))
	}
	kp := (k + 1) / 2
	p := &PackedBF16{k: k, n: n, kp: kp, panels: alignedUint32(gemmPanelLen(kp, n))}
	for j0 := 0; j0 < n; j0 += gemmNR {
		w := min(gemmNR, n-j0)
		panel := p.panels[j0*kp : j0*kp+kp*gemmNR]
		for q := range kp {
			row := panel[q*gemmNR : q*gemmNR+w]
			lo := b[2*q*n+j0 : 2*q*n+j0+w]
			for j, x := range lo {
				row[j] = uint32(ToBF16(x))
			}
			if 2*q+1 < k {
				hi := b[(2*q+1)*n+j0 : (2*q+1)*n+j0+w]
				for j, x := range hi {
					row[j] |= uint32(ToBF16(x)) << 16
				}
			}
		}
	}
	return p
}

// alignedUint32 is AlignedFloat32 for uint32.
func alignedUint32(n int) []uint32 {
	if n <= 0 {
		return []uint32{}
	}
	buf := make([]uint32, n+Align/4)
	off := alignOffset(unsafe.Pointer(&buf[0])) / 4
	return buf[off : off+n : off+n]
}

// at returns the rounded B[p][j] as float32.
func (pb *PackedBF16) at(p, j int) float32 {
	v := pb.panels[j/gemmNR*pb.kp*gemmNR+p/2*gemmNR+j%gemmNR]
	return BF16(v >> (16 * uint(p&1))).Float32()
}

// unpack returns the rounded B as a k×n row-major f32 matrix.
func (pb *PackedBF16) unpack() []float32 {
	b := make([]float32, pb.k*pb.n)
	for p := range pb.k {
		for j := range pb.n {
			b[p*pb.n+j] = pb.at(p, j)
		}
	}
	return b
}

// packedF32 returns the rounded B packed as f32 panels, made once.
func (pb *PackedBF16) packedF32() *PackedB {
	pb.f32Once.Do(func() {
		pb.f32 = PackB(pb.unpack(), pb.k, pb.n)
	})
	return pb.f32
}

// GemmBF16 computes C = act(A×B + bias) with A and B rounded to bfloat16
// (nearest, ties to even) and the products and sums in float32: A is m×k
// float32 (rounded while it is packed), B is packed by [PackBF16], C is m×n,
// bias has n entries or is nil. With AVX512_BF16 it runs VDPBF16PS, which
// adds the products of each pair of k before accumulating and treats
// subnormal inputs and results as zero; elsewhere it gives the same
// rounded-input product through f32 code. Safe for concurrent use.
func GemmBF16(c, a []float32, m int, b *PackedBF16, bias []float32, act Activation) {
	if b == nil {
		panic("kernels: GemmBF16: nil PackedBF16")
	}
	gemmCheck("GemmBF16", c, a, bias, m, b.k, b.n, act)
	gemmBF16(c, a, m, b, bias, act)
}

// gemmBF16Generic is the bf16 reference: A and B rounded to bfloat16, then
// the f32 triple loop of gemmGeneric.
func gemmBF16Generic(c, a []float32, m int, b *PackedBF16, bias []float32, act Activation) {
	ar := make([]float32, len(a))
	for i, x := range a {
		ar[i] = roundBF16(x)
	}
	gemmGeneric(c, ar, b.unpack(), bias, m, b.k, b.n, act)
}
