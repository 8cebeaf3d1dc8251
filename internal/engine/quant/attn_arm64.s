//go:build !purego

#include "textflag.h"

// NEON forms of the attention kernels: see attn.go for what each computes
// and attn_arm64.go for when each is chosen. Vector floating-point
// arithmetic other than the fused multiply-adds is WORD-encoded
// (neon_arm64.h).
#include "neon_arm64.h"

// The exponential's constants, attnExpC<>, in the order expSubNEON loads
// them.
#include "attn_exp.h"

// func matMul4x16NEON(a *float32, lda int, b *float32, ldb int, c *float32, ldc int, k, nblk, acc int)
//
// Register plan: V0-V15 the 4×16 accumulators (row i in V(4i)..V(4i+3)),
// V16-V19 the broadcast elements of A's four rows, V20-V23 one row of B.
// R9-R12 A's four rows, R13 B, R14/R15/R19/R20 C's four rows, R21 k left.
TEXT ·matMul4x16NEON(SB), NOSPLIT, $0-72
	MOVD a+0(FP), R0
	MOVD lda+8(FP), R1
	LSL $2, R1
	MOVD b+16(FP), R2
	MOVD ldb+24(FP), R3
	LSL $2, R3
	MOVD c+32(FP), R4
	MOVD ldc+40(FP), R5
	LSL $2, R5
	MOVD k+48(FP), R6
	MOVD nblk+56(FP), R7
	MOVD acc+64(FP), R8
	CBZ R7, mm_done
mm_block:
	MOVD R0, R9
	ADD R1, R9, R10
	ADD R1, R10, R11
	ADD R1, R11, R12
	MOVD R2, R13
	MOVD R4, R14
	ADD R5, R14, R15
	ADD R5, R15, R19
	ADD R5, R19, R20
	CBZ R8, mm_zero
	VLD1 (R14), [V0.S4, V1.S4, V2.S4, V3.S4]
	VLD1 (R15), [V4.S4, V5.S4, V6.S4, V7.S4]
	VLD1 (R19), [V8.S4, V9.S4, V10.S4, V11.S4]
	VLD1 (R20), [V12.S4, V13.S4, V14.S4, V15.S4]
	B mm_k
mm_zero:
	VEOR V0.B16, V0.B16, V0.B16
	VEOR V1.B16, V1.B16, V1.B16
	VEOR V2.B16, V2.B16, V2.B16
	VEOR V3.B16, V3.B16, V3.B16
	VEOR V4.B16, V4.B16, V4.B16
	VEOR V5.B16, V5.B16, V5.B16
	VEOR V6.B16, V6.B16, V6.B16
	VEOR V7.B16, V7.B16, V7.B16
	VEOR V8.B16, V8.B16, V8.B16
	VEOR V9.B16, V9.B16, V9.B16
	VEOR V10.B16, V10.B16, V10.B16
	VEOR V11.B16, V11.B16, V11.B16
	VEOR V12.B16, V12.B16, V12.B16
	VEOR V13.B16, V13.B16, V13.B16
	VEOR V14.B16, V14.B16, V14.B16
	VEOR V15.B16, V15.B16, V15.B16
mm_k:
	MOVD R6, R21
mm_kloop:
	VLD1R (R9), [V16.S4]
	VLD1R (R10), [V17.S4]
	VLD1R (R11), [V18.S4]
	VLD1R (R12), [V19.S4]
	ADD $4, R9
	ADD $4, R10
	ADD $4, R11
	ADD $4, R12
	VLD1 (R13), [V20.S4, V21.S4, V22.S4, V23.S4]
	ADD R3, R13
	VFMLA V16.S4, V20.S4, V0.S4
	VFMLA V16.S4, V21.S4, V1.S4
	VFMLA V16.S4, V22.S4, V2.S4
	VFMLA V16.S4, V23.S4, V3.S4
	VFMLA V17.S4, V20.S4, V4.S4
	VFMLA V17.S4, V21.S4, V5.S4
	VFMLA V17.S4, V22.S4, V6.S4
	VFMLA V17.S4, V23.S4, V7.S4
	VFMLA V18.S4, V20.S4, V8.S4
	VFMLA V18.S4, V21.S4, V9.S4
	VFMLA V18.S4, V22.S4, V10.S4
	VFMLA V18.S4, V23.S4, V11.S4
	VFMLA V19.S4, V20.S4, V12.S4
	VFMLA V19.S4, V21.S4, V13.S4
	VFMLA V19.S4, V22.S4, V14.S4
	VFMLA V19.S4, V23.S4, V15.S4
	SUBS $1, R21
	BNE mm_kloop
	VST1 [V0.S4, V1.S4, V2.S4, V3.S4], (R14)
	VST1 [V4.S4, V5.S4, V6.S4, V7.S4], (R15)
	VST1 [V8.S4, V9.S4, V10.S4, V11.S4], (R19)
	VST1 [V12.S4, V13.S4, V14.S4, V15.S4], (R20)
	ADD $64, R2
	ADD $64, R4
	SUBS $1, R7
	BNE mm_block
mm_done:
	RET

// EXP4 sets V6 to e^(V0-m) for the four lanes of V0, as expSubAVX2 does,
// with the constants loaded by expSubNEON; V2-V5 are scratch.
#define EXP4 \
	FSUB4(0, 0, 31); \
	FMAX4(0, 0, 30); \
	VMOV V28.B16, V2.B16; \
	VFMLA V29.S4, V0.S4, V2.S4; \
	FRINTM4(2, 2); \
	VMOV V0.B16, V3.B16; \
	VFMLS V27.S4, V2.S4, V3.S4; \
	VFMLS V26.S4, V2.S4, V3.S4; \
	VMOV V24.B16, V4.B16; \
	VFMLA V25.S4, V3.S4, V4.S4; \
	VMOV V23.B16, V5.B16; \
	VFMLA V4.S4, V3.S4, V5.S4; \
	VMOV V22.B16, V4.B16; \
	VFMLA V5.S4, V3.S4, V4.S4; \
	VMOV V21.B16, V5.B16; \
	VFMLA V4.S4, V3.S4, V5.S4; \
	VMOV V28.B16, V4.B16; \
	VFMLA V5.S4, V3.S4, V4.S4; \
	FMUL4(5, 3, 3); \
	VMOV V3.B16, V6.B16; \
	VFMLA V5.S4, V4.S4, V6.S4; \
	FADD4(6, 6, 20); \
	FCVTZS4(2, 2); \
	VADD V19.S4, V2.S4, V2.S4; \
	VSHL $23, V2.S4, V2.S4; \
	FMUL4(6, 6, 2)

// func expSubNEON(x *float32, n8 int, m float32) float64
//
// x = e^(x-m) four at a time, summing the results in two float64
// accumulators of two lanes (V17, V18).
TEXT ·expSubNEON(SB), NOSPLIT, $0-32
	MOVD x+0(FP), R0
	MOVD n8+8(FP), R1
	LSL $1, R1
	FMOVS m+16(FP), F31
	VDUP V31.S[0], V31.S4
	MOVD $attnExpC<>(SB), R2
	VLD1R (R2), [V30.S4]
	ADD $4, R2
	VLD1R (R2), [V29.S4]
	ADD $4, R2
	VLD1R (R2), [V28.S4]
	ADD $4, R2
	VLD1R (R2), [V27.S4]
	ADD $4, R2
	VLD1R (R2), [V26.S4]
	ADD $4, R2
	VLD1R (R2), [V25.S4]
	ADD $4, R2
	VLD1R (R2), [V24.S4]
	ADD $4, R2
	VLD1R (R2), [V23.S4]
	ADD $4, R2
	VLD1R (R2), [V22.S4]
	ADD $4, R2
	VLD1R (R2), [V21.S4]
	ADD $4, R2
	VLD1R (R2), [V20.S4]
	ADD $4, R2
	VLD1R (R2), [V19.S4]
	VEOR V17.B16, V17.B16, V17.B16
	VEOR V18.B16, V18.B16, V18.B16
	CBZ R1, exp_done
exp_loop:
	VLD1 (R0), [V0.S4]
	EXP4
	VST1.P [V6.S4], 16(R0)
	FCVTLD(7, 6)
	FCVTL2D(8, 6)
	FADD2D(17, 17, 7)
	FADD2D(18, 18, 8)
	SUBS $1, R1
	BNE exp_loop
exp_done:
	FADD2D(17, 17, 18)
	FADDPD(17, 17)
	FMOVD F17, ret+24(FP)
	RET

// func scaleNEON(x *float32, n8 int, a float32, round int)
TEXT ·scaleNEON(SB), NOSPLIT, $0-32
	MOVD x+0(FP), R0
	MOVD n8+8(FP), R1
	LSL $1, R1
	FMOVS a+16(FP), F31
	VDUP V31.S[0], V31.S4
	MOVD round+24(FP), R2
	CBZ R1, scale_done
	CBNZ R2, scale_round
scale_loop:
	VLD1 (R0), [V0.S4]
	FMUL4(0, 0, 31)
	VST1.P [V0.S4], 16(R0)
	SUBS $1, R1
	BNE scale_loop
	RET
scale_round:
	VLD1 (R0), [V0.S4]
	FMUL4(0, 0, 31)
	FCVTN(1, 0)
	FCVTL(0, 1)
	VST1.P [V0.S4], 16(R0)
	SUBS $1, R1
	BNE scale_round
scale_done:
	RET

// func f16RowNEON(dst *float32, src *byte, n8 int)
TEXT ·f16RowNEON(SB), NOSPLIT, $0-24
	MOVD dst+0(FP), R0
	MOVD src+8(FP), R1
	MOVD n8+16(FP), R2
	CBZ R2, f16_done
f16_loop:
	VLD1.P 16(R1), [V0.H8]
	FCVTL(1, 0)
	FCVTL2(2, 0)
	VST1.P [V1.S4, V2.S4], 32(R0)
	SUBS $1, R2
	BNE f16_loop
f16_done:
	RET

// func maxNEON(x *float32, n8 int) float32
TEXT ·maxNEON(SB), NOSPLIT, $0-20
	MOVD x+0(FP), R0
	MOVD n8+8(FP), R1
	VLD1.P 32(R0), [V0.S4, V1.S4]
	SUBS $1, R1
	BEQ max_reduce
max_loop:
	VLD1.P 32(R0), [V2.S4, V3.S4]
	FMAX4(0, 0, 2)
	FMAX4(1, 1, 3)
	SUBS $1, R1
	BNE max_loop
max_reduce:
	FMAX4(0, 0, 1)
	FMAXV(0, 0)
	FMOVS F0, ret+16(FP)
	RET
