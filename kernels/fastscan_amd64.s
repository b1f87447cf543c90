//go:build amd64 && gc && !purego && !noasm

#include "textflag.h"

// Fast-scan of 4-bit PQ codes (layout in fastscan.go). Per 32-byte group of a
// pair of sub-quantizers: lo = bytes & 0x0F (vectors 0..15 of the block, in
// the perm order), hi = (bytes >> 4) & 0x0F (vectors 16..31); VPSHUFB looks
// each 128-bit lane up in the 16-entry table of its sub-quantizer. The uint8
// results r are summed in uint16 without unpacking: A += r (word w = even
// byte + 256*odd byte, modulo 2^16) and B += r >> 8 (odd bytes). At the end
// of the block A - B<<8 holds the even sums (vectors w) and B the odd sums
// (vectors w+8), one partial sum per lane, and the lanes are added.

// FS4_QUAD512 accumulates one 64-byte group (4 sub-quantizers) already
// loaded in Z4 (codes) and Z5 (tables) into Z0..Z3 (A_lo, B_lo, A_hi, B_hi).
// Z31 = 0x0F bytes. Clobbers Z4, Z6.
#define FS4_QUAD512 \
	VPSRLW  $4, Z4, Z6    \
	VPANDD  Z31, Z4, Z4   \
	VPANDD  Z31, Z6, Z6   \
	VPSHUFB Z4, Z5, Z4    \
	VPSHUFB Z6, Z5, Z6    \
	VPADDW  Z4, Z0, Z0    \
	VPSRLW  $8, Z4, Z4    \
	VPADDW  Z4, Z1, Z1    \
	VPADDW  Z6, Z2, Z2    \
	VPSRLW  $8, Z6, Z6    \
	VPADDW  Z6, Z3, Z3

// FS4_BLOCK512 leaves in Z12 the 32 uint16 sums of the block at SI and
// advances SI past it. DX = lut, BX = npairs. Clobbers R8, R9, Z0..Z13.
#define FS4_BLOCK512 \
	VPXORD  Z0, Z0, Z0                \
	VPXORD  Z1, Z1, Z1                \
	VPXORD  Z2, Z2, Z2                \
	VPXORD  Z3, Z3, Z3                \
	MOVQ    BX, R8                    \
	MOVQ    DX, R9                    \
	CMPQ    R8, $4                    \
	JB      quad                      \
oct:                                  \
	VMOVDQU64 (SI), Z4                \
	VMOVDQU64 (R9), Z5                \
	FS4_QUAD512                       \
	VMOVDQU64 64(SI), Z4              \
	VMOVDQU64 64(R9), Z5              \
	FS4_QUAD512                       \
	ADDQ    $128, SI                  \
	ADDQ    $128, R9                  \
	SUBQ    $4, R8                    \
	CMPQ    R8, $4                    \
	JAE     oct                       \
quad:                                 \
	CMPQ    R8, $2                    \
	JB      pair                      \
	VMOVDQU64 (SI), Z4                \
	VMOVDQU64 (R9), Z5                \
	FS4_QUAD512                       \
	ADDQ    $64, SI                   \
	ADDQ    $64, R9                   \
	SUBQ    $2, R8                    \
pair:                                 \
	TESTQ   R8, R8                    \
	JZ      combine                   \
	VMOVDQU (SI), Y4                  \ // VEX loads zero bits 511:256
	VMOVDQU (R9), Y5                  \
	FS4_QUAD512                       \
	ADDQ    $32, SI                   \
combine:                              \
	VPSLLW  $8, Z1, Z7                \
	VPSUBW  Z7, Z0, Z0                \ // E_lo: vectors 0..7, per lane
	VPSLLW  $8, Z3, Z7                \
	VPSUBW  Z7, Z2, Z2                \ // E_hi: vectors 16..23
	VSHUFI64X2 $0x44, Z1, Z0, Z8      \ // [E.0 E.1 O.0 O.1]
	VSHUFI64X2 $0xEE, Z1, Z0, Z9      \ // [E.2 E.3 O.2 O.3]
	VPADDW  Z9, Z8, Z8                \
	VSHUFI64X2 $0x44, Z3, Z2, Z10     \
	VSHUFI64X2 $0xEE, Z3, Z2, Z11     \
	VPADDW  Z11, Z10, Z10             \
	VSHUFI64X2 $0x88, Z10, Z8, Z12    \ // [L.0 L.2 H.0 H.2]
	VSHUFI64X2 $0xDD, Z10, Z8, Z13    \ // [L.1 L.3 H.1 H.3]
	VPADDW  Z13, Z12, Z12

// func fastScan4AVX512(dst []uint16, packed []byte, nblocks, npairs int, lut []uint8)
// Requires: AVX512F, AVX512BW
TEXT ·fastScan4AVX512(SB), NOSPLIT, $0-88
	MOVQ dst_base+0(FP), DI
	MOVQ packed_base+24(FP), SI
	MOVQ nblocks+48(FP), CX
	MOVQ npairs+56(FP), BX
	MOVQ lut_base+64(FP), DX
	TESTQ CX, CX
	JZ   done
	MOVL $0x0F0F0F0F, AX
	VPBROADCASTD AX, Z31

block:
	FS4_BLOCK512
	VMOVDQU64 Z12, (DI)
	ADDQ $64, DI
	DECQ CX
	JNZ  block

done:
	VZEROUPPER
	RET

// func fastScan4FilterAVX512(ids []int32, dists []uint16, packed []byte, nblocks, npairs int, lut []uint8, thresh uint16, base int32) (count, blocks int)
// Requires: AVX512F, AVX512BW, BMI2, POPCNT
TEXT ·fastScan4FilterAVX512(SB), NOSPLIT, $0-136
	MOVQ ids_base+0(FP), DI
	MOVQ ids_len+8(FP), R10       // capacity
	MOVQ dists_base+24(FP), R11
	MOVQ packed_base+48(FP), SI
	MOVQ nblocks+72(FP), CX
	MOVQ npairs+80(FP), BX
	MOVQ lut_base+88(FP), DX
	MOVWLZX thresh+112(FP), AX
	VPBROADCASTW AX, Z30
	MOVL base+116(FP), AX
	VPBROADCASTD AX, Z28
	VPADDD iota32<>+0(SB), Z28, Z28  // ids of lanes 0..15
	MOVL $16, AX
	VPBROADCASTD AX, Z26
	VPADDD Z26, Z28, Z29             // ids of lanes 16..31
	MOVL $32, AX
	VPBROADCASTD AX, Z27             // id step per block
	MOVL $0x0F0F0F0F, AX
	VPBROADCASTD AX, Z31
	XORQ R12, R12                    // count
	XORQ R13, R13                    // blocks

block:
	CMPQ R13, CX
	JAE  done
	MOVQ R10, AX
	SUBQ R12, AX
	CMPQ AX, $32
	JB   done
	FS4_BLOCK512
	VPCMPUW $1, Z30, Z12, K1         // sums < thresh
	KORTESTD K1, K1
	JZ   next
	KSHIFTRD $16, K1, K2
	KMOVW K1, AX
	POPCNTL AX, AX                   // passing in lanes 0..15
	MOVL $-1, R14
	BZHIL AX, R14, R14
	KMOVW R14, K3
	VPCOMPRESSD Z28, K1, Z20
	VMOVDQU32 Z20, K3, (DI)(R12*4)
	VPMOVZXWD Y12, Z21
	VPCOMPRESSD Z21, K1, Z21
	VPMOVDW Z21, K3, (R11)(R12*2)
	ADDQ AX, R12
	KMOVW K2, AX
	POPCNTL AX, AX                   // passing in lanes 16..31
	MOVL $-1, R14
	BZHIL AX, R14, R14
	KMOVW R14, K3
	VPCOMPRESSD Z29, K2, Z20
	VMOVDQU32 Z20, K3, (DI)(R12*4)
	VEXTRACTI64X4 $1, Z12, Y21
	VPMOVZXWD Y21, Z21
	VPCOMPRESSD Z21, K2, Z21
	VPMOVDW Z21, K3, (R11)(R12*2)
	ADDQ AX, R12

next:
	VPADDD Z27, Z28, Z28
	VPADDD Z27, Z29, Z29
	INCQ R13
	JMP  block

done:
	MOVQ R12, count+120(FP)
	MOVQ R13, blocks+128(FP)
	VZEROUPPER
	RET

DATA iota32<>+0(SB)/4, $0
DATA iota32<>+4(SB)/4, $1
DATA iota32<>+8(SB)/4, $2
DATA iota32<>+12(SB)/4, $3
DATA iota32<>+16(SB)/4, $4
DATA iota32<>+20(SB)/4, $5
DATA iota32<>+24(SB)/4, $6
DATA iota32<>+28(SB)/4, $7
DATA iota32<>+32(SB)/4, $8
DATA iota32<>+36(SB)/4, $9
DATA iota32<>+40(SB)/4, $10
DATA iota32<>+44(SB)/4, $11
DATA iota32<>+48(SB)/4, $12
DATA iota32<>+52(SB)/4, $13
DATA iota32<>+56(SB)/4, $14
DATA iota32<>+60(SB)/4, $15
GLOBL iota32<>(SB), RODATA|NOPTR, $64

// FS4_PAIR256 accumulates one 32-byte group (2 sub-quantizers) loaded in Y4
// (codes) and Y5 (tables) into Y0..Y3 (A_lo, B_lo, A_hi, B_hi).
// Y15 = 0x0F bytes. Clobbers Y4, Y6.
#define FS4_PAIR256 \
	VPSRLW  $4, Y4, Y6    \
	VPAND   Y15, Y4, Y4   \
	VPAND   Y15, Y6, Y6   \
	VPSHUFB Y4, Y5, Y4    \
	VPSHUFB Y6, Y5, Y6    \
	VPADDW  Y4, Y0, Y0    \
	VPSRLW  $8, Y4, Y4    \
	VPADDW  Y4, Y1, Y1    \
	VPADDW  Y6, Y2, Y2    \
	VPSRLW  $8, Y6, Y6    \
	VPADDW  Y6, Y3, Y3

// FS4_BLOCK256 leaves in Y8 (vectors 0..15) and Y9 (vectors 16..31) the
// sums of the block at SI and advances SI past it. DX = lut, BX = npairs >= 1.
// Clobbers R8, R9, Y0..Y11.
#define FS4_BLOCK256 \
	VPXOR   Y0, Y0, Y0                \
	VPXOR   Y1, Y1, Y1                \
	VPXOR   Y2, Y2, Y2                \
	VPXOR   Y3, Y3, Y3                \
	MOVQ    BX, R8                    \
	MOVQ    DX, R9                    \
	CMPQ    R8, $2                    \
	JB      single                    \
two:                                  \
	VMOVDQU (SI), Y4                  \
	VMOVDQU (R9), Y5                  \
	FS4_PAIR256                       \
	VMOVDQU 32(SI), Y4                \
	VMOVDQU 32(R9), Y5                \
	FS4_PAIR256                       \
	ADDQ    $64, SI                   \
	ADDQ    $64, R9                   \
	SUBQ    $2, R8                    \
	CMPQ    R8, $2                    \
	JAE     two                       \
single:                               \
	TESTQ   R8, R8                    \
	JZ      combine                   \
	VMOVDQU (SI), Y4                  \
	VMOVDQU (R9), Y5                  \
	FS4_PAIR256                       \
	ADDQ    $32, SI                   \
combine:                              \
	VPSLLW  $8, Y1, Y7                \
	VPSUBW  Y7, Y0, Y0                \ // E_lo
	VPSLLW  $8, Y3, Y7                \
	VPSUBW  Y7, Y2, Y2                \ // E_hi
	VPERM2I128 $0x20, Y1, Y0, Y8      \ // [E.0 O.0]
	VPERM2I128 $0x31, Y1, Y0, Y10     \ // [E.1 O.1]
	VPADDW  Y10, Y8, Y8               \
	VPERM2I128 $0x20, Y3, Y2, Y9      \
	VPERM2I128 $0x31, Y3, Y2, Y11     \
	VPADDW  Y11, Y9, Y9

// func fastScan4AVX2(dst []uint16, packed []byte, nblocks, npairs int, lut []uint8)
// Requires: AVX2
TEXT ·fastScan4AVX2(SB), NOSPLIT, $0-88
	MOVQ dst_base+0(FP), DI
	MOVQ packed_base+24(FP), SI
	MOVQ nblocks+48(FP), CX
	MOVQ npairs+56(FP), BX
	MOVQ lut_base+64(FP), DX
	TESTQ CX, CX
	JZ   done
	MOVL $0x0F0F0F0F, AX
	MOVD AX, X15
	VPBROADCASTD X15, Y15

block:
	FS4_BLOCK256
	VMOVDQU Y8, (DI)
	VMOVDQU Y9, 32(DI)
	ADDQ $64, DI
	DECQ CX
	JNZ  block

done:
	VZEROUPPER
	RET

// func fastScan4FilterAVX2(ids []int32, dists []uint16, packed []byte, nblocks, npairs int, lut []uint8, thresh uint16, base int32) (count, blocks int)
// Requires: AVX2, BMI1
TEXT ·fastScan4FilterAVX2(SB), NOSPLIT, $64-136
	MOVQ ids_base+0(FP), DI
	MOVQ ids_len+8(FP), R10
	MOVQ dists_base+24(FP), R11
	MOVQ packed_base+48(FP), SI
	MOVQ nblocks+72(FP), CX
	MOVQ npairs+80(FP), BX
	MOVQ lut_base+88(FP), DX
	MOVWLZX thresh+112(FP), AX
	DECL AX                          // thresh-1: pass when min(sum, thresh-1) == sum
	MOVD AX, X14
	VPBROADCASTW X14, Y14
	MOVL $0x0F0F0F0F, AX
	MOVD AX, X15
	VPBROADCASTD X15, Y15
	XORQ R12, R12                    // count
	XORQ R13, R13                    // blocks

block:
	CMPQ R13, CX
	JAE  done
	MOVQ R10, AX
	SUBQ R12, AX
	CMPQ AX, $32
	JB   done
	FS4_BLOCK256
	VPMINUW Y14, Y8, Y0
	VPCMPEQW Y8, Y0, Y0
	VPMINUW Y14, Y9, Y1
	VPCMPEQW Y9, Y1, Y1
	VPMOVMSKB Y0, AX
	VPMOVMSKB Y1, R14
	SHLQ $32, R14
	ORQ  AX, R14                     // 2 bits per passing lane
	JZ   next
	VMOVDQU Y8, 0(SP)
	VMOVDQU Y9, 32(SP)

bits:
	TZCNTQ R14, AX                   // 2*lane
	MOVWLZX 0(SP)(AX*1), R8
	MOVW R8, (R11)(R12*2)
	SHRQ $1, AX
	MOVL R13, R9
	SHLL $5, R9
	ADDL R9, AX
	ADDL base+116(FP), AX            // id = base + 32*block + lane
	MOVL AX, (DI)(R12*4)
	INCQ R12
	BLSRQ R14, R14
	BLSRQ R14, R14
	JNZ  bits

next:
	INCQ R13
	JMP  block

done:
	MOVQ R12, count+120(FP)
	MOVQ R13, blocks+128(FP)
	VZEROUPPER
	RET
