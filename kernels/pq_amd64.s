//go:build amd64 && gc && !purego && !noasm

#include "textflag.h"

// func pqTableAVX512(dst []float32, q []float32, t []float32, m int, ksub int, dsub int, l2 bool)
// Requires: AVX512F
//
// For each sub-quantizer, for each group of 64 (then 16) centroids, sum over
// the dsub dimensions: broadcast q[j], FMA with row j of the transposed
// codebook (IP), or subtract and FMA the square (L2).
TEXT ·pqTableAVX512(SB), NOSPLIT, $0-97
	MOVQ dst_base+0(FP), DI
	MOVQ q_base+24(FP), SI
	MOVQ t_base+48(FP), DX
	MOVQ m+72(FP), CX
	MOVQ ksub+80(FP), R8
	MOVQ dsub+88(FP), R9
	MOVBLZX l2+96(FP), R10
	MOVQ R8, R11
	SHLQ $2, R11                     // row stride in bytes

sub:
	XORQ R12, R12                    // column byte offset

group64:
	MOVQ R11, AX
	SUBQ R12, AX
	CMPQ AX, $256
	JB   group16
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	LEAQ (DX)(R12*1), R14
	MOVQ SI, BX
	MOVQ R9, R13
	TESTQ R10, R10
	JNZ  l2x64

ipx64:
	VBROADCASTSS (BX), Z4
	VFMADD231PS (R14), Z4, Z0
	VFMADD231PS 64(R14), Z4, Z1
	VFMADD231PS 128(R14), Z4, Z2
	VFMADD231PS 192(R14), Z4, Z3
	ADDQ R11, R14
	ADDQ $4, BX
	DECQ R13
	JNZ  ipx64
	JMP  store64

l2x64:
	VBROADCASTSS (BX), Z4
	VSUBPS (R14), Z4, Z5
	VSUBPS 64(R14), Z4, Z6
	VSUBPS 128(R14), Z4, Z7
	VSUBPS 192(R14), Z4, Z8
	VFMADD231PS Z5, Z5, Z0
	VFMADD231PS Z6, Z6, Z1
	VFMADD231PS Z7, Z7, Z2
	VFMADD231PS Z8, Z8, Z3
	ADDQ R11, R14
	ADDQ $4, BX
	DECQ R13
	JNZ  l2x64

store64:
	VMOVUPS Z0, (DI)(R12*1)
	VMOVUPS Z1, 64(DI)(R12*1)
	VMOVUPS Z2, 128(DI)(R12*1)
	VMOVUPS Z3, 192(DI)(R12*1)
	ADDQ $256, R12
	JMP  group64

group16:
	CMPQ R12, R11
	JAE  nextsub
	VPXORD Z0, Z0, Z0
	LEAQ (DX)(R12*1), R14
	MOVQ SI, BX
	MOVQ R9, R13
	TESTQ R10, R10
	JNZ  l2x16

ipx16:
	VBROADCASTSS (BX), Z4
	VFMADD231PS (R14), Z4, Z0
	ADDQ R11, R14
	ADDQ $4, BX
	DECQ R13
	JNZ  ipx16
	JMP  store16

l2x16:
	VBROADCASTSS (BX), Z4
	VSUBPS (R14), Z4, Z5
	VFMADD231PS Z5, Z5, Z0
	ADDQ R11, R14
	ADDQ $4, BX
	DECQ R13
	JNZ  l2x16

store16:
	VMOVUPS Z0, (DI)(R12*1)
	ADDQ $64, R12
	JMP  group16

nextsub:
	ADDQ R11, DI                     // dst += ksub
	LEAQ (SI)(R9*4), SI              // q += dsub
	MOVQ R11, AX
	IMULQ R9, AX
	ADDQ AX, DX                      // t += dsub*ksub
	DECQ CX
	JNZ  sub
	VZEROUPPER
	RET

// func pqTableAVX2(dst []float32, q []float32, t []float32, m int, ksub int, dsub int, l2 bool)
// Requires: AVX2, FMA3
TEXT ·pqTableAVX2(SB), NOSPLIT, $0-97
	MOVQ dst_base+0(FP), DI
	MOVQ q_base+24(FP), SI
	MOVQ t_base+48(FP), DX
	MOVQ m+72(FP), CX
	MOVQ ksub+80(FP), R8
	MOVQ dsub+88(FP), R9
	MOVBLZX l2+96(FP), R10
	MOVQ R8, R11
	SHLQ $2, R11

sub:
	XORQ R12, R12

group32:
	MOVQ R11, AX
	SUBQ R12, AX
	CMPQ AX, $128
	JB   group8
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	LEAQ (DX)(R12*1), R14
	MOVQ SI, BX
	MOVQ R9, R13
	TESTQ R10, R10
	JNZ  l2x32

ipx32:
	VBROADCASTSS (BX), Y4
	VFMADD231PS (R14), Y4, Y0
	VFMADD231PS 32(R14), Y4, Y1
	VFMADD231PS 64(R14), Y4, Y2
	VFMADD231PS 96(R14), Y4, Y3
	ADDQ R11, R14
	ADDQ $4, BX
	DECQ R13
	JNZ  ipx32
	JMP  store32

l2x32:
	VBROADCASTSS (BX), Y4
	VSUBPS (R14), Y4, Y5
	VSUBPS 32(R14), Y4, Y6
	VSUBPS 64(R14), Y4, Y7
	VSUBPS 96(R14), Y4, Y8
	VFMADD231PS Y5, Y5, Y0
	VFMADD231PS Y6, Y6, Y1
	VFMADD231PS Y7, Y7, Y2
	VFMADD231PS Y8, Y8, Y3
	ADDQ R11, R14
	ADDQ $4, BX
	DECQ R13
	JNZ  l2x32

store32:
	VMOVUPS Y0, (DI)(R12*1)
	VMOVUPS Y1, 32(DI)(R12*1)
	VMOVUPS Y2, 64(DI)(R12*1)
	VMOVUPS Y3, 96(DI)(R12*1)
	ADDQ $128, R12
	JMP  group32

group8:
	CMPQ R12, R11
	JAE  nextsub
	VXORPS Y0, Y0, Y0
	LEAQ (DX)(R12*1), R14
	MOVQ SI, BX
	MOVQ R9, R13
	TESTQ R10, R10
	JNZ  l2x8

ipx8:
	VBROADCASTSS (BX), Y4
	VFMADD231PS (R14), Y4, Y0
	ADDQ R11, R14
	ADDQ $4, BX
	DECQ R13
	JNZ  ipx8
	JMP  store8

l2x8:
	VBROADCASTSS (BX), Y4
	VSUBPS (R14), Y4, Y5
	VFMADD231PS Y5, Y5, Y0
	ADDQ R11, R14
	ADDQ $4, BX
	DECQ R13
	JNZ  l2x8

store8:
	VMOVUPS Y0, (DI)(R12*1)
	ADDQ $32, R12
	JMP  group8

nextsub:
	ADDQ R11, DI
	LEAQ (SI)(R9*4), SI
	MOVQ R11, AX
	IMULQ R9, AX
	ADDQ AX, DX
	DECQ CX
	JNZ  sub
	VZEROUPPER
	RET

// pqoff<> holds l*256 for lanes l = 0..15: the offset of sub-quantizer l's
// 256-entry table within a group of 16.
DATA pqoff<>+0(SB)/4, $0
DATA pqoff<>+4(SB)/4, $256
DATA pqoff<>+8(SB)/4, $512
DATA pqoff<>+12(SB)/4, $768
DATA pqoff<>+16(SB)/4, $1024
DATA pqoff<>+20(SB)/4, $1280
DATA pqoff<>+24(SB)/4, $1536
DATA pqoff<>+28(SB)/4, $1792
DATA pqoff<>+32(SB)/4, $2048
DATA pqoff<>+36(SB)/4, $2304
DATA pqoff<>+40(SB)/4, $2560
DATA pqoff<>+44(SB)/4, $2816
DATA pqoff<>+48(SB)/4, $3072
DATA pqoff<>+52(SB)/4, $3328
DATA pqoff<>+56(SB)/4, $3584
DATA pqoff<>+60(SB)/4, $3840
GLOBL pqoff<>(SB), RODATA|NOPTR, $64

DATA pqiota<>+0(SB)/4, $0
DATA pqiota<>+4(SB)/4, $1
DATA pqiota<>+8(SB)/4, $2
DATA pqiota<>+12(SB)/4, $3
DATA pqiota<>+16(SB)/4, $4
DATA pqiota<>+20(SB)/4, $5
DATA pqiota<>+24(SB)/4, $6
DATA pqiota<>+28(SB)/4, $7
DATA pqiota<>+32(SB)/4, $8
DATA pqiota<>+36(SB)/4, $9
DATA pqiota<>+40(SB)/4, $10
DATA pqiota<>+44(SB)/4, $11
DATA pqiota<>+48(SB)/4, $12
DATA pqiota<>+52(SB)/4, $13
DATA pqiota<>+56(SB)/4, $14
DATA pqiota<>+60(SB)/4, $15
GLOBL pqiota<>(SB), RODATA|NOPTR, $64

// PQ8_REDUCE leaves in X0 the sum of the 16 partial sums in Y0 (lanes 0..7)
// and Y1 (lanes 8..15) in the documented order. Clobbers X1.
#define PQ8_REDUCE \
	VADDPS     Y1, Y0, Y0 \ // p[l] + p[l+8]
	VEXTRACTF128 $1, Y0, X1 \
	VADDPS     X1, X0, X0 \ // + [l+4]
	VMOVHLPS   X0, X0, X1 \
	VADDPS     X1, X0, X0 \ // + [l+2]
	VMOVSHDUP  X0, X1     \
	VADDSS     X1, X0, X0   // + [l+1]

// func pqScan8AVX512(dst []float32, codes []uint8, m int, table []float32)
// Requires: AVX512F, AVX512DQ
//
// One vector at a time: VPMOVZXBD widens 16 code bytes (sub-quantizers
// s..s+15), pqoff adds each one's table offset, VGATHERDPS fetches the 16
// entries and lane l accumulates the partial sum p[l]. A ragged tail uses a
// masked load and gather. The gathers of consecutive vectors overlap.
TEXT ·pqScan8AVX512(SB), NOSPLIT, $0-80
	MOVQ dst_base+0(FP), DI
	MOVQ dst_len+8(FP), CX
	MOVQ codes_base+24(FP), SI
	MOVQ m+48(FP), R8
	MOVQ table_base+56(FP), DX
	VMOVDQU32 pqoff<>+0(SB), Z31
	MOVQ R8, R9
	SHRQ $4, R9                      // groups of 16
	MOVQ R8, R10
	ANDQ $15, R10
	MOVL $1, AX
	SHLXL R10, AX, AX
	DECL AX
	KMOVW AX, K2                     // tail lanes

vec:
	VPXORD Z0, Z0, Z0
	MOVQ SI, R11
	MOVQ DX, R12
	MOVQ R9, R13
	TESTQ R13, R13
	JZ   tail

group:
	VPMOVZXBD (R11), Z1
	VPADDD Z31, Z1, Z1
	KXNORW K1, K1, K1
	VPXORD Z2, Z2, Z2                // break the dependency on the old Z2
	VGATHERDPS (R12)(Z1*4), K1, Z2
	VADDPS Z2, Z0, Z0
	ADDQ $16, R11
	ADDQ $16384, R12                 // 16 tables of 256 floats
	DECQ R13
	JNZ  group

tail:
	TESTQ R10, R10
	JZ   reduce
	VPMOVZXBD.Z (R11), K2, Z1
	VPADDD Z31, Z1, Z1
	KMOVW K2, K1
	VPXORD Z2, Z2, Z2
	VGATHERDPS (R12)(Z1*4), K1, Z2
	VADDPS Z2, Z0, K2, Z0

reduce:
	VEXTRACTF32X8 $1, Z0, Y1
	PQ8_REDUCE
	VMOVSS X0, (DI)
	ADDQ R8, SI
	ADDQ $4, DI
	DECQ CX
	JNZ  vec
	VZEROUPPER
	RET

// func pqScan8AVX2(dst []float32, codes []uint8, m int, table []float32)
// Requires: AVX2
//
// As pqScan8AVX512 with two 8-lane gathers per 16 sub-quantizers (Y0 holds
// p[0..7], Y1 p[8..15]). A ragged tail is copied to a zeroed stack buffer so
// no load passes the end of codes, and masked by lane.
TEXT ·pqScan8AVX2(SB), NOSPLIT, $16-80
	MOVQ dst_base+0(FP), DI
	MOVQ dst_len+8(FP), CX
	MOVQ codes_base+24(FP), SI
	MOVQ m+48(FP), R8
	MOVQ table_base+56(FP), DX
	VMOVDQU pqoff<>+0(SB), Y15
	VMOVDQU pqoff<>+32(SB), Y14
	MOVQ R8, R9
	SHRQ $4, R9
	MOVQ R8, R10
	ANDQ $15, R10
	MOVD R10, X13
	VPBROADCASTD X13, Y13
	VMOVDQU pqiota<>+0(SB), Y12
	VPCMPGTD Y12, Y13, Y12           // lanes 0..7 below the tail length
	VMOVDQU pqiota<>+32(SB), Y11
	VPCMPGTD Y11, Y13, Y11           // lanes 8..15

vec:
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	MOVQ SI, R11
	MOVQ DX, R12
	MOVQ R9, R13
	TESTQ R13, R13
	JZ   tail

group:
	VPMOVZXBD (R11), Y2
	VPMOVZXBD 8(R11), Y3
	VPADDD Y15, Y2, Y2
	VPADDD Y14, Y3, Y3
	VPCMPEQD Y4, Y4, Y4
	VPCMPEQD Y6, Y6, Y6
	VXORPS Y5, Y5, Y5
	VXORPS Y7, Y7, Y7
	VGATHERDPS Y4, (R12)(Y2*4), Y5
	VGATHERDPS Y6, (R12)(Y3*4), Y7
	VADDPS Y5, Y0, Y0
	VADDPS Y7, Y1, Y1
	ADDQ $16, R11
	ADDQ $16384, R12
	DECQ R13
	JNZ  group

tail:
	TESTQ R10, R10
	JZ   reduce
	VPXOR X2, X2, X2
	VMOVDQU X2, 0(SP)
	XORQ AX, AX

copy:
	MOVB (R11)(AX*1), BX
	MOVB BX, 0(SP)(AX*1)
	INCQ AX
	CMPQ AX, R10
	JB   copy
	VPMOVZXBD 0(SP), Y2
	VPMOVZXBD 8(SP), Y3
	VPADDD Y15, Y2, Y2
	VPADDD Y14, Y3, Y3
	VMOVDQU Y12, Y4
	VMOVDQU Y11, Y6
	VXORPS Y5, Y5, Y5
	VXORPS Y7, Y7, Y7
	VGATHERDPS Y4, (R12)(Y2*4), Y5
	VGATHERDPS Y6, (R12)(Y3*4), Y7
	VADDPS Y5, Y0, Y0                // + 0 in masked lanes: p is never -0, so exact
	VADDPS Y7, Y1, Y1

reduce:
	PQ8_REDUCE
	VMOVSS X0, (DI)
	ADDQ R8, SI
	ADDQ $4, DI
	DECQ CX
	JNZ  vec
	VZEROUPPER
	RET

// PQ8_TERM adds the table entry of sub-quantizer k of the current group of
// 16 (codes at R11, tables at R12) to the scalar partial sum X.
#define PQ8_TERM(k, X) \
	MOVBLZX k(R11), R14 \
	VADDSS  (k*1024)(R12)(R14*4), X, X

// PQ8_BYTE adds the entry of sub-quantizer k whose code is the low byte of
// AX, and shifts the next code down.
#define PQ8_BYTE(k, X) \
	MOVBLZX AL, R14 \
	SHRQ    $8, AX \
	VADDSS  (k*1024)(R12)(R14*4), X, X

// PQ8_TAIL is PQ8_TERM for the k-th of a ragged tail of R10 terms.
#define PQ8_TAIL(k, X) \
	CMPQ    R10, $k \
	JBE     reduce \
	PQ8_TERM(k, X)

// func pqScan8Scalar(dst []float32, codes []uint8, m int, table []float32)
// Requires: AVX
//
// pqScan8Generic with scalar loads: the 16 partial sums live in X0..X15,
// codes come 8 to a 64-bit load and every term is a VADDSS from memory.
TEXT ·pqScan8Scalar(SB), NOSPLIT, $0-80
	MOVQ dst_base+0(FP), DI
	MOVQ dst_len+8(FP), CX
	MOVQ codes_base+24(FP), SI
	MOVQ m+48(FP), R8
	MOVQ table_base+56(FP), DX
	MOVQ R8, R9
	SHRQ $4, R9
	MOVQ R8, R10
	ANDQ $15, R10

vec:
	VXORPS X0, X0, X0
	VXORPS X1, X1, X1
	VXORPS X2, X2, X2
	VXORPS X3, X3, X3
	VXORPS X4, X4, X4
	VXORPS X5, X5, X5
	VXORPS X6, X6, X6
	VXORPS X7, X7, X7
	VXORPS X8, X8, X8
	VXORPS X9, X9, X9
	VXORPS X10, X10, X10
	VXORPS X11, X11, X11
	VXORPS X12, X12, X12
	VXORPS X13, X13, X13
	VXORPS X14, X14, X14
	VXORPS X15, X15, X15
	MOVQ SI, R11
	MOVQ DX, R12
	MOVQ R9, R13
	TESTQ R13, R13
	JZ   tail

group:
	MOVQ (R11), AX                   // codes of 8 sub-quantizers: one load, not 8
	PQ8_BYTE(0, X0)
	PQ8_BYTE(1, X1)
	PQ8_BYTE(2, X2)
	PQ8_BYTE(3, X3)
	PQ8_BYTE(4, X4)
	PQ8_BYTE(5, X5)
	PQ8_BYTE(6, X6)
	PQ8_BYTE(7, X7)
	MOVQ 8(R11), AX
	PQ8_BYTE(8, X8)
	PQ8_BYTE(9, X9)
	PQ8_BYTE(10, X10)
	PQ8_BYTE(11, X11)
	PQ8_BYTE(12, X12)
	PQ8_BYTE(13, X13)
	PQ8_BYTE(14, X14)
	PQ8_BYTE(15, X15)
	ADDQ $16, R11
	ADDQ $16384, R12
	DECQ R13
	JNZ  group

tail:
	PQ8_TAIL(0, X0)
	PQ8_TAIL(1, X1)
	PQ8_TAIL(2, X2)
	PQ8_TAIL(3, X3)
	PQ8_TAIL(4, X4)
	PQ8_TAIL(5, X5)
	PQ8_TAIL(6, X6)
	PQ8_TAIL(7, X7)
	PQ8_TAIL(8, X8)
	PQ8_TAIL(9, X9)
	PQ8_TAIL(10, X10)
	PQ8_TAIL(11, X11)
	PQ8_TAIL(12, X12)
	PQ8_TAIL(13, X13)
	PQ8_TAIL(14, X14)

reduce:
	VADDSS X8, X0, X0
	VADDSS X9, X1, X1
	VADDSS X10, X2, X2
	VADDSS X11, X3, X3
	VADDSS X12, X4, X4
	VADDSS X13, X5, X5
	VADDSS X14, X6, X6
	VADDSS X15, X7, X7
	VADDSS X4, X0, X0
	VADDSS X5, X1, X1
	VADDSS X6, X2, X2
	VADDSS X7, X3, X3
	VADDSS X2, X0, X0
	VADDSS X3, X1, X1
	VADDSS X1, X0, X0
	VMOVSS X0, (DI)
	ADDQ R8, SI
	ADDQ $4, DI
	DECQ CX
	JNZ  vec
	RET
