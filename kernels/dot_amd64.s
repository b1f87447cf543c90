//go:build amd64 && gc && !purego && !noasm

#include "textflag.h"
#include "reduce_amd64.h"

// Dot and squared-L2 kernels, AVX-512 and AVX2. One macro body per shape,
// instantiated with the per-element step of each metric:
//   DOTSTEP(m, x, acc, t): acc += m * x
//   L2STEP(m, x, acc, t):  t = x - m; acc += t * t
// Ragged tails are handled here with masked loads (opmask on AVX-512,
// VMASKMOVPS on AVX2), which never touch memory past the slices.

#define DOTSTEP(m, x, acc, t) VFMADD231PS m, x, acc
#define L2STEP(m, x, acc, t) VSUBPS m, x, t; VFMADD231PS t, t, acc

// Y15 = mask of the first CX (1..7) float lanes, from tailmask; clobbers AX, CX.
#define MASK8(ymm) \
	LEAQ    tailmask<>+32(SB), AX; \
	SHLQ    $2, CX; \
	SUBQ    CX, AX; \
	VMOVDQU (AX), ymm

DATA tailmask<>+0(SB)/4, $-1
DATA tailmask<>+4(SB)/4, $-1
DATA tailmask<>+8(SB)/4, $-1
DATA tailmask<>+12(SB)/4, $-1
DATA tailmask<>+16(SB)/4, $-1
DATA tailmask<>+20(SB)/4, $-1
DATA tailmask<>+24(SB)/4, $-1
DATA tailmask<>+28(SB)/4, $-1
DATA tailmask<>+32(SB)/4, $0
DATA tailmask<>+36(SB)/4, $0
DATA tailmask<>+40(SB)/4, $0
DATA tailmask<>+44(SB)/4, $0
DATA tailmask<>+48(SB)/4, $0
DATA tailmask<>+52(SB)/4, $0
DATA tailmask<>+56(SB)/4, $0
DATA tailmask<>+60(SB)/4, $0
GLOBL tailmask<>(SB), RODATA|NOPTR, $64

// PAIR512: reduce over one pair of vectors; SI = a, DI = b, CX = n. Result in X0.
#define PAIR512(STEP) \
	VXORPS Z0, Z0, Z0; \
	VXORPS Z1, Z1, Z1; \
	VXORPS Z2, Z2, Z2; \
	VXORPS Z3, Z3, Z3; \
loop64: \
	CMPQ    CX, $64; \
	JB      loop16; \
	VMOVUPS (SI), Z4; \
	VMOVUPS 64(SI), Z5; \
	VMOVUPS 128(SI), Z6; \
	VMOVUPS 192(SI), Z7; \
	STEP((DI), Z4, Z0, Z8); \
	STEP(64(DI), Z5, Z1, Z9); \
	STEP(128(DI), Z6, Z2, Z10); \
	STEP(192(DI), Z7, Z3, Z11); \
	ADDQ    $256, SI; \
	ADDQ    $256, DI; \
	SUBQ    $64, CX; \
	JMP     loop64; \
loop16: \
	CMPQ    CX, $16; \
	JB      tail; \
	VMOVUPS (SI), Z4; \
	STEP((DI), Z4, Z0, Z8); \
	ADDQ    $64, SI; \
	ADDQ    $64, DI; \
	SUBQ    $16, CX; \
	JMP     loop16; \
tail: \
	TESTQ   CX, CX; \
	JZ      reduce; \
	MOVQ    CX, DX; \
	MASK16(DX, K1); \
	VMOVUPS.Z (SI), K1, Z4; \
	VMOVUPS.Z (DI), K1, Z5; \
	STEP(Z5, Z4, Z1, Z8); \
reduce: \
	VADDPS        Z1, Z0, Z0; \
	VADDPS        Z3, Z2, Z2; \
	VADDPS        Z2, Z0, Z0; \
	VEXTRACTF64X4 $1, Z0, Y1; \
	VADDPS        Y1, Y0, Y0; \
	HSUM8(Y0, X0, X1)

// PAIR256: as PAIR512 with ymm registers.
#define PAIR256(STEP) \
	VXORPS Y0, Y0, Y0; \
	VXORPS Y1, Y1, Y1; \
	VXORPS Y2, Y2, Y2; \
	VXORPS Y3, Y3, Y3; \
loop32: \
	CMPQ    CX, $32; \
	JB      loop8; \
	VMOVUPS (SI), Y4; \
	VMOVUPS 32(SI), Y5; \
	VMOVUPS 64(SI), Y6; \
	VMOVUPS 96(SI), Y7; \
	STEP((DI), Y4, Y0, Y8); \
	STEP(32(DI), Y5, Y1, Y9); \
	STEP(64(DI), Y6, Y2, Y10); \
	STEP(96(DI), Y7, Y3, Y11); \
	ADDQ    $128, SI; \
	ADDQ    $128, DI; \
	SUBQ    $32, CX; \
	JMP     loop32; \
loop8: \
	CMPQ    CX, $8; \
	JB      tail; \
	VMOVUPS (SI), Y4; \
	STEP((DI), Y4, Y0, Y8); \
	ADDQ    $32, SI; \
	ADDQ    $32, DI; \
	SUBQ    $8, CX; \
	JMP     loop8; \
tail: \
	TESTQ   CX, CX; \
	JZ      reduce; \
	MASK8(Y15); \
	VMASKMOVPS (SI), Y15, Y4; \
	VMASKMOVPS (DI), Y15, Y5; \
	STEP(Y5, Y4, Y1, Y8); \
reduce: \
	VADDPS Y1, Y0, Y0; \
	VADDPS Y3, Y2, Y2; \
	VADDPS Y2, Y0, Y0; \
	HSUM8(Y0, X0, X1)

// func dotAVX512(a, b []float32) float32
// Requires: AVX512F
TEXT ·dotAVX512(SB), NOSPLIT, $0-52
	MOVQ a_base+0(FP), SI
	MOVQ b_base+24(FP), DI
	MOVQ a_len+8(FP), CX
	PAIR512(DOTSTEP)
	VMOVSS X0, ret+48(FP)
	VZEROUPPER
	RET

// func l2SqAVX512(a, b []float32) float32
// Requires: AVX512F
TEXT ·l2SqAVX512(SB), NOSPLIT, $0-52
	MOVQ a_base+0(FP), SI
	MOVQ b_base+24(FP), DI
	MOVQ a_len+8(FP), CX
	PAIR512(L2STEP)
	VMOVSS X0, ret+48(FP)
	VZEROUPPER
	RET

// func dotAVX2(a, b []float32) float32
// Requires: AVX, AVX2, FMA3
TEXT ·dotAVX2(SB), NOSPLIT, $0-52
	MOVQ a_base+0(FP), SI
	MOVQ b_base+24(FP), DI
	MOVQ a_len+8(FP), CX
	PAIR256(DOTSTEP)
	VMOVSS X0, ret+48(FP)
	VZEROUPPER
	RET

// func l2SqAVX2(a, b []float32) float32
// Requires: AVX, AVX2, FMA3
TEXT ·l2SqAVX2(SB), NOSPLIT, $0-52
	MOVQ a_base+0(FP), SI
	MOVQ b_base+24(FP), DI
	MOVQ a_len+8(FP), CX
	PAIR256(L2STEP)
	VMOVSS X0, ret+48(FP)
	VZEROUPPER
	RET

// BATCH512: one query (SI, length R8) against BX rows starting at DI, row
// stride R9 bytes, results to DX. Four rows at a time share each query load;
// their four sums are reduced together with VHADDPS and stored as one xmm.
#define BATCH512(STEP) \
	MOVQ  R8, R9; \
	SHLQ  $2, R9; \
	MASK16(R8, K1); \
rows4: \
	CMPQ  BX, $4; \
	JB    rows1; \
	VXORPS Z0, Z0, Z0; \
	VXORPS Z1, Z1, Z1; \
	VXORPS Z2, Z2, Z2; \
	VXORPS Z3, Z3, Z3; \
	MOVQ  SI, AX; \
	MOVQ  DI, R10; \
	LEAQ  (DI)(R9*1), R11; \
	LEAQ  (DI)(R9*2), R12; \
	LEAQ  (R11)(R9*2), R13; \
	MOVQ  R8, CX; \
inner4: \
	CMPQ    CX, $16; \
	JB      tail4; \
	VMOVUPS (AX), Z4; \
	STEP((R10), Z4, Z0, Z8); \
	STEP((R11), Z4, Z1, Z9); \
	STEP((R12), Z4, Z2, Z10); \
	STEP((R13), Z4, Z3, Z11); \
	ADDQ    $64, AX; \
	ADDQ    $64, R10; \
	ADDQ    $64, R11; \
	ADDQ    $64, R12; \
	ADDQ    $64, R13; \
	SUBQ    $16, CX; \
	JMP     inner4; \
tail4: \
	TESTQ   CX, CX; \
	JZ      red4; \
	VMOVUPS.Z (AX), K1, Z4; \
	VMOVUPS.Z (R10), K1, Z5; \
	VMOVUPS.Z (R11), K1, Z6; \
	VMOVUPS.Z (R12), K1, Z7; \
	VMOVUPS.Z (R13), K1, Z12; \
	STEP(Z5, Z4, Z0, Z8); \
	STEP(Z6, Z4, Z1, Z9); \
	STEP(Z7, Z4, Z2, Z10); \
	STEP(Z12, Z4, Z3, Z11); \
red4: \
	VEXTRACTF64X4 $1, Z0, Y4; \
	VEXTRACTF64X4 $1, Z1, Y5; \
	VEXTRACTF64X4 $1, Z2, Y6; \
	VEXTRACTF64X4 $1, Z3, Y7; \
	VADDPS  Y4, Y0, Y0; \
	VADDPS  Y5, Y1, Y1; \
	VADDPS  Y6, Y2, Y2; \
	VADDPS  Y7, Y3, Y3; \
	VHADDPS Y1, Y0, Y0; \
	VHADDPS Y3, Y2, Y2; \
	VHADDPS Y2, Y0, Y0; \
	VEXTRACTF128 $1, Y0, X1; \
	VADDPS  X1, X0, X0; \
	VMOVUPS X0, (DX); \
	ADDQ    $16, DX; \
	LEAQ    (DI)(R9*4), DI; \
	SUBQ    $4, BX; \
	JMP     rows4; \
rows1: \
	TESTQ   BX, BX; \
	JZ      done; \
	VXORPS  Z0, Z0, Z0; \
	MOVQ    SI, AX; \
	MOVQ    DI, R10; \
	MOVQ    R8, CX; \
inner1: \
	CMPQ    CX, $16; \
	JB      tail1; \
	VMOVUPS (AX), Z4; \
	STEP((R10), Z4, Z0, Z8); \
	ADDQ    $64, AX; \
	ADDQ    $64, R10; \
	SUBQ    $16, CX; \
	JMP     inner1; \
tail1: \
	TESTQ   CX, CX; \
	JZ      red1; \
	VMOVUPS.Z (AX), K1, Z4; \
	VMOVUPS.Z (R10), K1, Z5; \
	STEP(Z5, Z4, Z0, Z8); \
red1: \
	VEXTRACTF64X4 $1, Z0, Y1; \
	VADDPS  Y1, Y0, Y0; \
	HSUM8(Y0, X0, X1); \
	VMOVSS  X0, (DX); \
	ADDQ    $4, DX; \
	ADDQ    R9, DI; \
	DECQ    BX; \
	JMP     rows1; \
done: \
	VZEROUPPER

// BATCH256: as BATCH512 with ymm registers; the tail mask lives in Y15.
#define BATCH256(STEP) \
	MOVQ  R8, R9; \
	SHLQ  $2, R9; \
	VXORPS Y15, Y15, Y15; \
	MOVQ  R8, CX; \
	ANDQ  $7, CX; \
	JZ    rows4; \
	MASK8(Y15); \
rows4: \
	CMPQ  BX, $4; \
	JB    rows1; \
	VXORPS Y0, Y0, Y0; \
	VXORPS Y1, Y1, Y1; \
	VXORPS Y2, Y2, Y2; \
	VXORPS Y3, Y3, Y3; \
	MOVQ  SI, AX; \
	MOVQ  DI, R10; \
	LEAQ  (DI)(R9*1), R11; \
	LEAQ  (DI)(R9*2), R12; \
	LEAQ  (R11)(R9*2), R13; \
	MOVQ  R8, CX; \
inner4: \
	CMPQ    CX, $8; \
	JB      tail4; \
	VMOVUPS (AX), Y4; \
	STEP((R10), Y4, Y0, Y8); \
	STEP((R11), Y4, Y1, Y9); \
	STEP((R12), Y4, Y2, Y10); \
	STEP((R13), Y4, Y3, Y11); \
	ADDQ    $32, AX; \
	ADDQ    $32, R10; \
	ADDQ    $32, R11; \
	ADDQ    $32, R12; \
	ADDQ    $32, R13; \
	SUBQ    $8, CX; \
	JMP     inner4; \
tail4: \
	TESTQ   CX, CX; \
	JZ      red4; \
	VMASKMOVPS (AX), Y15, Y4; \
	VMASKMOVPS (R10), Y15, Y5; \
	VMASKMOVPS (R11), Y15, Y6; \
	VMASKMOVPS (R12), Y15, Y7; \
	VMASKMOVPS (R13), Y15, Y12; \
	STEP(Y5, Y4, Y0, Y8); \
	STEP(Y6, Y4, Y1, Y9); \
	STEP(Y7, Y4, Y2, Y10); \
	STEP(Y12, Y4, Y3, Y11); \
red4: \
	VHADDPS Y1, Y0, Y0; \
	VHADDPS Y3, Y2, Y2; \
	VHADDPS Y2, Y0, Y0; \
	VEXTRACTF128 $1, Y0, X1; \
	VADDPS  X1, X0, X0; \
	VMOVUPS X0, (DX); \
	ADDQ    $16, DX; \
	LEAQ    (DI)(R9*4), DI; \
	SUBQ    $4, BX; \
	JMP     rows4; \
rows1: \
	TESTQ   BX, BX; \
	JZ      done; \
	VXORPS  Y0, Y0, Y0; \
	MOVQ    SI, AX; \
	MOVQ    DI, R10; \
	MOVQ    R8, CX; \
inner1: \
	CMPQ    CX, $8; \
	JB      tail1; \
	VMOVUPS (AX), Y4; \
	STEP((R10), Y4, Y0, Y8); \
	ADDQ    $32, AX; \
	ADDQ    $32, R10; \
	SUBQ    $8, CX; \
	JMP     inner1; \
tail1: \
	TESTQ   CX, CX; \
	JZ      red1; \
	VMASKMOVPS (AX), Y15, Y4; \
	VMASKMOVPS (R10), Y15, Y5; \
	STEP(Y5, Y4, Y0, Y8); \
red1: \
	HSUM8(Y0, X0, X1); \
	VMOVSS  X0, (DX); \
	ADDQ    $4, DX; \
	ADDQ    R9, DI; \
	DECQ    BX; \
	JMP     rows1; \
done: \
	VZEROUPPER

// func dotBatchAVX512(dst, q, rows []float32)
// Requires: AVX512F
TEXT ·dotBatchAVX512(SB), NOSPLIT, $0-72
	MOVQ dst_base+0(FP), DX
	MOVQ dst_len+8(FP), BX
	MOVQ q_base+24(FP), SI
	MOVQ q_len+32(FP), R8
	MOVQ rows_base+48(FP), DI
	BATCH512(DOTSTEP)
	RET

// func l2SqBatchAVX512(dst, q, rows []float32)
// Requires: AVX512F
TEXT ·l2SqBatchAVX512(SB), NOSPLIT, $0-72
	MOVQ dst_base+0(FP), DX
	MOVQ dst_len+8(FP), BX
	MOVQ q_base+24(FP), SI
	MOVQ q_len+32(FP), R8
	MOVQ rows_base+48(FP), DI
	BATCH512(L2STEP)
	RET

// func dotBatchAVX2(dst, q, rows []float32)
// Requires: AVX, AVX2, FMA3
TEXT ·dotBatchAVX2(SB), NOSPLIT, $0-72
	MOVQ dst_base+0(FP), DX
	MOVQ dst_len+8(FP), BX
	MOVQ q_base+24(FP), SI
	MOVQ q_len+32(FP), R8
	MOVQ rows_base+48(FP), DI
	BATCH256(DOTSTEP)
	RET

// func l2SqBatchAVX2(dst, q, rows []float32)
// Requires: AVX, AVX2, FMA3
TEXT ·l2SqBatchAVX2(SB), NOSPLIT, $0-72
	MOVQ dst_base+0(FP), DX
	MOVQ dst_len+8(FP), BX
	MOVQ q_base+24(FP), SI
	MOVQ q_len+32(FP), R8
	MOVQ rows_base+48(FP), DI
	BATCH256(L2STEP)
	RET
