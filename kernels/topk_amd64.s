//go:build amd64 && gc && !purego && !noasm

#include "textflag.h"

// The threshold filter of the top-k selector: the indices of the scores that
// reach a threshold, packed in order. Ordered, quiet predicates make NaN fail.
// VCMPPS predicates: 0x12 = LE_OQ, 0x1d = GE_OQ (thresh <= s, thresh >= s).

DATA iota16<>+0(SB)/4, $0
DATA iota16<>+4(SB)/4, $1
DATA iota16<>+8(SB)/4, $2
DATA iota16<>+12(SB)/4, $3
DATA iota16<>+16(SB)/4, $4
DATA iota16<>+20(SB)/4, $5
DATA iota16<>+24(SB)/4, $6
DATA iota16<>+28(SB)/4, $7
DATA iota16<>+32(SB)/4, $8
DATA iota16<>+36(SB)/4, $9
DATA iota16<>+40(SB)/4, $10
DATA iota16<>+44(SB)/4, $11
DATA iota16<>+48(SB)/4, $12
DATA iota16<>+52(SB)/4, $13
DATA iota16<>+56(SB)/4, $14
DATA iota16<>+60(SB)/4, $15
GLOBL iota16<>(SB), RODATA|NOPTR, $64

// FILTER512(pred): 16 scores a step; compress the passing indices of Z1 into
// Z3 and store all 16 lanes at idx[count] (the slack absorbs the rest).
#define FILTER512(pred, skip) \
	VCMPPS      pred, (SI), Z0, K1; \
	KORTESTW    K1, K1; \
	JZ          skip; \
	VPCOMPRESSD Z1, K1, Z3; \
	VMOVDQU32   Z3, (DI)(R8*4); \
	KMOVW       K1, AX; \
	POPCNTL     AX, AX; \
	ADDQ        AX, R8; \
skip: \
	VPADDD      Z2, Z1, Z1; \
	ADDQ        $64, SI

// func filterScoresAVX512(idx []int32, scores []float32, thresh float32, largest bool) int
// Requires: AVX512F, POPCNT
TEXT ·filterScoresAVX512(SB), NOSPLIT, $0-64
	MOVQ         idx_base+0(FP), DI
	MOVQ         scores_base+24(FP), SI
	MOVQ         scores_len+32(FP), CX
	VBROADCASTSS thresh+48(FP), Z0
	VMOVDQU32    iota16<>(SB), Z1
	MOVL         $16, AX
	VPBROADCASTD AX, Z2
	XORQ         R8, R8
	SHRQ         $4, CX
	JZ           done
	MOVBLZX      largest+52(FP), AX
	TESTL        AX, AX
	JZ           smallest

largest:
	FILTER512($0x12, skipge)
	DECQ CX
	JNZ  largest
	JMP  done

smallest:
	FILTER512($0x1d, skiple)
	DECQ CX
	JNZ  smallest

done:
	MOVQ R8, ret+56(FP)
	VZEROUPPER
	RET

// FILTER256(pred): 8 scores a step; walk the set bits of the compare mask.
#define FILTER256(pred, bits, next) \
	VCMPPS    pred, (SI), Y0, Y3; \
	VMOVMSKPS Y3, AX; \
	TESTL     AX, AX; \
	JZ        next; \
bits: \
	TZCNTL    AX, BX; \
	ADDL      DX, BX; \
	MOVL      BX, (DI)(R8*4); \
	INCQ      R8; \
	BLSRL     AX, AX; \
	JNZ       bits; \
next: \
	ADDL      $8, DX; \
	ADDQ      $32, SI

// func filterScoresAVX2(idx []int32, scores []float32, thresh float32, largest bool) int
// Requires: AVX, BMI1
TEXT ·filterScoresAVX2(SB), NOSPLIT, $0-64
	MOVQ         idx_base+0(FP), DI
	MOVQ         scores_base+24(FP), SI
	MOVQ         scores_len+32(FP), CX
	VBROADCASTSS thresh+48(FP), Y0
	XORQ         R8, R8
	XORL         DX, DX
	SHRQ         $3, CX
	JZ           done
	MOVBLZX      largest+52(FP), AX
	TESTL        AX, AX
	JZ           smallest

largest:
	FILTER256($0x12, bitsge, nextge)
	DECQ CX
	JNZ  largest
	JMP  done

smallest:
	FILTER256($0x1d, bitsle, nextle)
	DECQ CX
	JNZ  smallest

done:
	MOVQ R8, ret+56(FP)
	VZEROUPPER
	RET
