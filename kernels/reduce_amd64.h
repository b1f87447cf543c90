// Macros shared by the float kernels' assembly (dot_amd64.s, f16_amd64.s).

// HSUM8 adds the 8 floats of ymm y (whose low half is xlo) into xlo[0].
#define HSUM8(y, xlo, xt) \
	VEXTRACTF128 $1, y, xt; \
	VADDPS       xt, xlo, xlo; \
	VPERMILPS    $0x0e, xlo, xt; \
	VADDPS       xt, xlo, xlo; \
	VPERMILPS    $0x01, xlo, xt; \
	VADDSS       xt, xlo, xlo

// MASK16 sets opmask k to the low (reg & 15) bits, using AX and CX.
#define MASK16(reg, k) \
	MOVQ  reg, CX; \
	ANDQ  $15, CX; \
	MOVL  $1, AX; \
	SHLL  CX, AX; \
	DECL  AX; \
	KMOVW AX, k

