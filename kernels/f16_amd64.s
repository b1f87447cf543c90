//go:build amd64 && gc && !purego && !noasm

#include "textflag.h"
#include "reduce_amd64.h"

// Half-precision rows against a float32 query. SI = q, DI = x, CX = n.
//   DOTH(q, x, acc): acc += q * x
//   L2H(q, x, acc):  x = x - q; acc += x * x
#define DOTH(q, x, acc) VFMADD231PS q, x, acc
#define L2H(q, x, acc) VSUBPS q, x, x; VFMADD231PS x, x, acc

#define F16PAIR512(STEP) \
	VXORPS Z0, Z0, Z0; \
	VXORPS Z1, Z1, Z1; \
	VXORPS Z2, Z2, Z2; \
	VXORPS Z3, Z3, Z3; \
loop64: \
	CMPQ      CX, $64; \
	JB        loop16; \
	VCVTPH2PS (DI), Z4; \
	VCVTPH2PS 32(DI), Z5; \
	VCVTPH2PS 64(DI), Z6; \
	VCVTPH2PS 96(DI), Z7; \
	STEP((SI), Z4, Z0); \
	STEP(64(SI), Z5, Z1); \
	STEP(128(SI), Z6, Z2); \
	STEP(192(SI), Z7, Z3); \
	ADDQ      $256, SI; \
	ADDQ      $128, DI; \
	SUBQ      $64, CX; \
	JMP       loop64; \
loop16: \
	CMPQ      CX, $16; \
	JB        tail; \
	VCVTPH2PS (DI), Z4; \
	STEP((SI), Z4, Z0); \
	ADDQ      $64, SI; \
	ADDQ      $32, DI; \
	SUBQ      $16, CX; \
	JMP       loop16; \
tail: \
	TESTQ     CX, CX; \
	JZ        reduce; \
	MOVQ      CX, DX; \
	MASK16(DX, K1); \
	VCVTPH2PS.Z (DI), K1, Z4; \
	VMOVUPS.Z (SI), K1, Z5; \
	STEP(Z5, Z4, Z1); \
reduce: \
	VADDPS        Z1, Z0, Z0; \
	VADDPS        Z3, Z2, Z2; \
	VADDPS        Z2, Z0, Z0; \
	VEXTRACTF64X4 $1, Z0, Y1; \
	VADDPS        Y1, Y0, Y0; \
	HSUM8(Y0, X0, X1)

#define F16PAIR256(STEP) \
	VXORPS Y0, Y0, Y0; \
	VXORPS Y1, Y1, Y1; \
	VXORPS Y2, Y2, Y2; \
	VXORPS Y3, Y3, Y3; \
loop32: \
	CMPQ      CX, $32; \
	JB        loop8; \
	VCVTPH2PS (DI), Y4; \
	VCVTPH2PS 16(DI), Y5; \
	VCVTPH2PS 32(DI), Y6; \
	VCVTPH2PS 48(DI), Y7; \
	STEP((SI), Y4, Y0); \
	STEP(32(SI), Y5, Y1); \
	STEP(64(SI), Y6, Y2); \
	STEP(96(SI), Y7, Y3); \
	ADDQ      $128, SI; \
	ADDQ      $64, DI; \
	SUBQ      $32, CX; \
	JMP       loop32; \
loop8: \
	CMPQ      CX, $8; \
	JB        reduce; \
	VCVTPH2PS (DI), Y4; \
	STEP((SI), Y4, Y0); \
	ADDQ      $32, SI; \
	ADDQ      $16, DI; \
	SUBQ      $8, CX; \
	JMP       loop8; \
reduce: \
	VADDPS       Y1, Y0, Y0; \
	VADDPS       Y3, Y2, Y2; \
	VADDPS       Y2, Y0, Y0; \
	HSUM8(Y0, X0, X1)

// MANY512(STEP): dst[i] = STEP-reduce(q, rows[i]) for every row, fetching
// the row PFDIST ahead into cache one line at a time while scoring row i.
// R8 = dst, R9 = q, R10 = rows (24-byte slice headers), R11 = count,
// R12 = d, R13 = bytes of a row (2d).
#define PFDIST 8
#define MANY512(STEP) \
	MOVQ dst_base+0(FP), R8; \
	MOVQ q_base+24(FP), R9; \
	MOVQ q_len+32(FP), R12; \
	MOVQ rows_base+48(FP), R10; \
	MOVQ rows_len+56(FP), R11; \
	LEAQ (R12)(R12*1), R13; \
	XORQ BX, BX; \
rowloop: \
	CMPQ BX, R11; \
	JAE  done; \
	LEAQ PFDIST(BX), DX; \
	CMPQ DX, R11; \
	JAE  nopf; \
	LEAQ (DX)(DX*2), DX; \
	MOVQ (R10)(DX*8), DX; \
	XORQ AX, AX; \
pfloop: \
	PREFETCHT0 (DX)(AX*1); \
	ADDQ $64, AX; \
	CMPQ AX, R13; \
	JB   pfloop; \
nopf: \
	LEAQ (BX)(BX*2), DX; \
	MOVQ (R10)(DX*8), DI; \
	MOVQ R9, SI; \
	MOVQ R12, CX; \
	F16PAIR512(STEP); \
	VMOVSS X0, (R8)(BX*4); \
	INCQ BX; \
	JMP  rowloop; \
done: \
	VZEROUPPER

// func dotF16AVX512(q []float32, x []F16) float32
// Requires: AVX512F
TEXT ·dotF16AVX512(SB), NOSPLIT, $0-52
	MOVQ q_base+0(FP), SI
	MOVQ x_base+24(FP), DI
	MOVQ x_len+32(FP), CX
	F16PAIR512(DOTH)
	VMOVSS X0, ret+48(FP)
	VZEROUPPER
	RET

// func l2SqF16AVX512(q []float32, x []F16) float32
// Requires: AVX512F
TEXT ·l2SqF16AVX512(SB), NOSPLIT, $0-52
	MOVQ q_base+0(FP), SI
	MOVQ x_base+24(FP), DI
	MOVQ x_len+32(FP), CX
	F16PAIR512(L2H)
	VMOVSS X0, ret+48(FP)
	VZEROUPPER
	RET

// func dotF16AVX2(q []float32, x []F16) float32
// Requires: AVX, FMA3, F16C
TEXT ·dotF16AVX2(SB), NOSPLIT, $0-52
	MOVQ q_base+0(FP), SI
	MOVQ x_base+24(FP), DI
	MOVQ x_len+32(FP), CX
	F16PAIR256(DOTH)
	VMOVSS X0, ret+48(FP)
	VZEROUPPER
	RET

// func l2SqF16AVX2(q []float32, x []F16) float32
// Requires: AVX, FMA3, F16C
TEXT ·l2SqF16AVX2(SB), NOSPLIT, $0-52
	MOVQ q_base+0(FP), SI
	MOVQ x_base+24(FP), DI
	MOVQ x_len+32(FP), CX
	F16PAIR256(L2H)
	VMOVSS X0, ret+48(FP)
	VZEROUPPER
	RET

// func dotF16ManyAVX512(dst, q []float32, rows [][]F16)
// Requires: AVX512F
TEXT ·dotF16ManyAVX512(SB), NOSPLIT, $0-72
	MANY512(DOTH)
	RET

// func l2SqF16ManyAVX512(dst, q []float32, rows [][]F16)
// Requires: AVX512F
TEXT ·l2SqF16ManyAVX512(SB), NOSPLIT, $0-72
	MANY512(L2H)
	RET
