//go:build amd64 && gc && !purego && !noasm

#include "textflag.h"

// func prefetch(b []byte)
TEXT ·prefetch(SB), NOSPLIT, $0-24
	MOVQ b_base+0(FP), SI
	MOVQ b_len+8(FP), CX
	LEAQ (SI)(CX*1), DX // end
	ANDQ $-64, SI       // the line of the first byte

loop:
	PREFETCHT0 (SI)
	ADDQ $64, SI
	CMPQ SI, DX
	JB   loop
	RET
