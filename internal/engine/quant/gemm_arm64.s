//go:build !purego

#include "textflag.h"

// NEON kernels for arm64, written by hand. Each tile multiplies one weight
// row by T (1 to 4) activation rows: the row's blocks are decoded into
// registers once and dotted with the T activation blocks, which are read
// from cache. Every tile comes twice: with SDOT (the dot product extension,
// ARMv8.2 ASIMDDP) and with SMULL/SMLAL2 and pairwise adds for cores
// without it; gemm_arm64.go picks one at init.
//
// The NEON instructions the Go assembler lacks are WORD encodings from
// neon_arm64.h.
#include "neon_arm64.h"

// HSUM leaves the sum of the four lanes of vector v in its lane 0.
#define HSUM(v) FADDP4(v, v, v); FADDP2(v, v)

// ZACC clears the four tile accumulators V16-V19.
#define ZACC \
	VEOR V16.B16, V16.B16, V16.B16; \
	VEOR V17.B16, V17.B16, V17.B16; \
	VEOR V18.B16, V18.B16, V18.B16; \
	VEOR V19.B16, V19.B16, V19.B16

// STORE writes the lane sums of the first T accumulators V16-V19 to
// Y, Y+YS, Y+2·YS, Y+3·YS, then returns.
#define STORE(T, Y, YS) \
	HSUM(16); \
	FMOVS F16, (Y); \
	CMP $2, T; \
	BLT done; \
	ADD YS, Y; \
	HSUM(17); \
	FMOVS F17, (Y); \
	CMP $3, T; \
	BLT done; \
	ADD YS, Y; \
	HSUM(18); \
	FMOVS F18, (Y); \
	CMP $4, T; \
	BLT done; \
	ADD YS, Y; \
	HSUM(19); \
	FMOVS F19, (Y); \
done: \
	RET

// LDF16 loads the binary16 at ADDR into F (as float32), through V's
// lane 0; R24 is scratch.
#define LDF16(ADDR, V, F) \
	MOVHU ADDR, R24; \
	VMOV R24, V.H[0]; \
	FCVTHS F, F

// ---- 32-element blocks: Q8_0, Q4_0 and Q5_0 weights, Q8 activations ----
//
// func(w *byte, x *int8, xs int, dv *float32, vs int, nb int, T int, y *float32, ys int)
//
// w: the weight row (nb blocks); x: the first activation row, the next
// ones xs bytes apart; dv: the first row's block scales (eight copies of
// each, 32 bytes a block), the next rows vs bytes apart; y: the first
// result, the next ones ys bytes apart.
//
// Registers: R10-R13 activation rows, R14-R17 their scales, V0-V1 the
// decoded weight block (signed), F9 its scale, V16-V19 the accumulators,
// V20-V23 and V30-V31 constants.

#define Q8SETUP \
	MOVD R1, R10; \
	ADD R2, R10, R11; \
	ADD R2, R11, R12; \
	ADD R2, R12, R13; \
	MOVD R3, R14; \
	ADD R4, R14, R15; \
	ADD R4, R15, R16; \
	ADD R4, R16, R17; \
	ZACC; \
	VMOVI $15, V30.B16; \
	VMOVI $8, V31.B16; \
	MOVD $0x0101010101010101, R9; \
	VEOR V20.B16, V20.B16, V20.B16; \
	VMOV R9, V20.D[1]; \
	VMOVI $2, V21.B16; \
	VADD V20.B16, V21.B16, V21.B16; \
	MOVD $0x8040201008040201, R9; \
	VDUP R9, V22.D2; \
	VMOVI $16, V23.B16

#define DEC_Q8_0 \
	LDF16((R0), V9, F9); \
	ADD $2, R0, R9; \
	VLD1 (R9), [V0.B16, V1.B16]; \
	ADD $34, R0

// Q4_0: low nibbles are elements 0-15, high nibbles 16-31, less 8.
#define DEC_Q4_0 \
	LDF16((R0), V9, F9); \
	ADD $2, R0, R9; \
	VLD1 (R9), [V2.B16]; \
	ADD $18, R0; \
	VAND V30.B16, V2.B16, V0.B16; \
	VUSHR $4, V2.B16, V1.B16; \
	VSUB V31.B16, V0.B16, V0.B16; \
	VSUB V31.B16, V1.B16, V1.B16

// Q5_0: as Q4_0 with a fifth bit per element from the 32-bit qh (bit j for
// element j), less 16. TBL spreads qh's bytes over the lanes (V20, V21 hold
// the byte indexes), AND/CMEQ against each lane's bit (V22) turns set bits
// into 0xff, AND with 16 (V23) into the fifth bit.
#define DEC_Q5_0 \
	LDF16((R0), V9, F9); \
	MOVWU 2(R0), R9; \
	VMOV R9, V10.S[0]; \
	VTBL V20.B16, [V10.B16], V11.B16; \
	VTBL V21.B16, [V10.B16], V12.B16; \
	VAND V22.B16, V11.B16, V11.B16; \
	VAND V22.B16, V12.B16, V12.B16; \
	VCMEQ V22.B16, V11.B16, V11.B16; \
	VCMEQ V22.B16, V12.B16, V12.B16; \
	VAND V23.B16, V11.B16, V11.B16; \
	VAND V23.B16, V12.B16, V12.B16; \
	ADD $6, R0, R9; \
	VLD1 (R9), [V2.B16]; \
	ADD $22, R0; \
	VAND V30.B16, V2.B16, V0.B16; \
	VUSHR $4, V2.B16, V1.B16; \
	VORR V11.B16, V0.B16, V0.B16; \
	VORR V12.B16, V1.B16, V1.B16; \
	VSUB V23.B16, V0.B16, V0.B16; \
	VSUB V23.B16, V1.B16, V1.B16

// One block of one activation row: ACC += (Σ w·x) · dw · dx.
#define Q8STEP_SDOT(X, D, ACC) \
	VLD1.P 32(X), [V4.B16, V5.B16]; \
	VEOR V6.B16, V6.B16, V6.B16; \
	SDOT(6, 0, 4); \
	SDOT(6, 1, 5); \
	SCVTF(6, 6); \
	FMOVS.P 32(D), F8; \
	FMULS F9, F8, F8; \
	FMLAE(ACC, 6, 8)

// Without SDOT: two products per 16-bit lane (|w·x| ≤ 127·127), then
// pairwise widening adds to 32 bits.
#define Q8STEP_NEON(X, D, ACC) \
	VLD1.P 32(X), [V4.B16, V5.B16]; \
	SMULL8(6, 0, 4); \
	SMLAL2_8(6, 0, 4); \
	SMULL8(7, 1, 5); \
	SMLAL2_8(7, 1, 5); \
	SADDLP(6, 6); \
	SADALP(6, 7); \
	SCVTF(6, 6); \
	FMOVS.P 32(D), F8; \
	FMULS F9, F8, F8; \
	FMLAE(ACC, 6, 8)

#define Q8TILE(DEC, STEP) \
	Q8SETUP; \
loop: \
	DEC; \
	STEP(R10, R14, 16); \
	CMP $2, R6; \
	BLT next; \
	STEP(R11, R15, 17); \
	CMP $3, R6; \
	BLT next; \
	STEP(R12, R16, 18); \
	CMP $4, R6; \
	BLT next; \
	STEP(R13, R17, 19); \
next: \
	SUBS $1, R5; \
	BNE loop; \
	STORE(R6, R7, R8)

// func tileQ8_0SDOT(w *byte, x *int8, xs int, dv *float32, vs int, nb int, T int, y *float32, ys int)
TEXT ·tileQ8_0SDOT(SB), NOSPLIT, $0-72
	MOVD w+0(FP), R0
	MOVD x+8(FP), R1
	MOVD xs+16(FP), R2
	MOVD dv+24(FP), R3
	MOVD vs+32(FP), R4
	MOVD nb+40(FP), R5
	MOVD T+48(FP), R6
	MOVD y+56(FP), R7
	MOVD ys+64(FP), R8
	Q8TILE(DEC_Q8_0, Q8STEP_SDOT)

// func tileQ8_0NEON(w *byte, x *int8, xs int, dv *float32, vs int, nb int, T int, y *float32, ys int)
TEXT ·tileQ8_0NEON(SB), NOSPLIT, $0-72
	MOVD w+0(FP), R0
	MOVD x+8(FP), R1
	MOVD xs+16(FP), R2
	MOVD dv+24(FP), R3
	MOVD vs+32(FP), R4
	MOVD nb+40(FP), R5
	MOVD T+48(FP), R6
	MOVD y+56(FP), R7
	MOVD ys+64(FP), R8
	Q8TILE(DEC_Q8_0, Q8STEP_NEON)

// func tileQ4_0SDOT(w *byte, x *int8, xs int, dv *float32, vs int, nb int, T int, y *float32, ys int)
TEXT ·tileQ4_0SDOT(SB), NOSPLIT, $0-72
	MOVD w+0(FP), R0
	MOVD x+8(FP), R1
	MOVD xs+16(FP), R2
	MOVD dv+24(FP), R3
	MOVD vs+32(FP), R4
	MOVD nb+40(FP), R5
	MOVD T+48(FP), R6
	MOVD y+56(FP), R7
	MOVD ys+64(FP), R8
	Q8TILE(DEC_Q4_0, Q8STEP_SDOT)

// func tileQ4_0NEON(w *byte, x *int8, xs int, dv *float32, vs int, nb int, T int, y *float32, ys int)
TEXT ·tileQ4_0NEON(SB), NOSPLIT, $0-72
	MOVD w+0(FP), R0
	MOVD x+8(FP), R1
	MOVD xs+16(FP), R2
	MOVD dv+24(FP), R3
	MOVD vs+32(FP), R4
	MOVD nb+40(FP), R5
	MOVD T+48(FP), R6
	MOVD y+56(FP), R7
	MOVD ys+64(FP), R8
	Q8TILE(DEC_Q4_0, Q8STEP_NEON)

// func tileQ5_0NEON(w *byte, x *int8, xs int, dv *float32, vs int, nb int, T int, y *float32, ys int)
TEXT ·tileQ5_0NEON(SB), NOSPLIT, $0-72
	MOVD w+0(FP), R0
	MOVD x+8(FP), R1
	MOVD xs+16(FP), R2
	MOVD dv+24(FP), R3
	MOVD vs+32(FP), R4
	MOVD nb+40(FP), R5
	MOVD T+48(FP), R6
	MOVD y+56(FP), R7
	MOVD ys+64(FP), R8
	Q8TILE(DEC_Q5_0, Q8STEP_NEON)

// func tileQ5_0SDOT(w *byte, x *int8, xs int, dv *float32, vs int, nb int, T int, y *float32, ys int)
TEXT ·tileQ5_0SDOT(SB), NOSPLIT, $0-72
	MOVD w+0(FP), R0
	MOVD x+8(FP), R1
	MOVD xs+16(FP), R2
	MOVD dv+24(FP), R3
	MOVD vs+32(FP), R4
	MOVD nb+40(FP), R5
	MOVD T+48(FP), R6
	MOVD y+56(FP), R7
	MOVD ys+64(FP), R8
	Q8TILE(DEC_Q5_0, Q8STEP_SDOT)

// ---- K-quants: Q4_K and Q6_K weights, Q8_K activations ----
//
// The same shape of tile over 256-element super-blocks; dv holds sixteen
// copies of each super-block's scale (64 bytes a super-block), and for
// Q4_K bs holds each super-block's sixteen sums of 16 quants, laid out
// like dv.
//
// Registers: V0-V15 the decoded super-block, V20-V23 its sub-block scales
// (and for Q4_K mins) as int32 lanes, F29 d, F30 dmin, V16-V19 the
// accumulators; V24-V28 and F31 are scratch.

// Q4_K: 8 sub-blocks of 32, 6-bit scales and mins packed in 12 bytes.
// Bytes 0-3 (a) hold sc[0..3] in bits 0-5, bytes 4-7 (b) mn[0..3], bytes
// 8-11 (c) the low four bits of sc[4..7] and mn[4..7]; the top two bits of
// those are bits 6-7 of a and b.
#define DEC_Q4_K \
	LDF16((R0), V29, F29); \
	LDF16(2(R0), V30, F30); \
	MOVWU 4(R0), R1; \
	MOVWU 8(R0), R2; \
	MOVWU 12(R0), R3; \
	ANDW $0x3f3f3f3f, R1, R4; \
	LSRW $2, R1, R5; \
	ANDW $0x30303030, R5, R5; \
	ANDW $0x0f0f0f0f, R3, R23; \
	ORRW R5, R23, R23; \
	ORR R23<<32, R4, R4; \
	VMOV R4, V20.D[0]; \
	ANDW $0x3f3f3f3f, R2, R4; \
	LSRW $2, R2, R5; \
	ANDW $0x30303030, R5, R5; \
	LSRW $4, R3, R23; \
	ANDW $0x0f0f0f0f, R23, R23; \
	ORRW R5, R23, R23; \
	ORR R23<<32, R4, R4; \
	VMOV R4, V22.D[0]; \
	VUXTL V20.B8, V20.H8; \
	VUXTL2 V20.H8, V21.S4; \
	VUXTL V20.H4, V20.S4; \
	VUXTL V22.B8, V22.H8; \
	VUXTL2 V22.H8, V23.S4; \
	VUXTL V22.H4, V22.S4; \
	VMOVI $15, V28.B16; \
	ADD $16, R0, R1; \
	VLD1.P 64(R1), [V24.B16, V25.B16, V26.B16, V27.B16]; \
	VAND V28.B16, V24.B16, V0.B16; \
	VAND V28.B16, V25.B16, V1.B16; \
	VUSHR $4, V24.B16, V2.B16; \
	VUSHR $4, V25.B16, V3.B16; \
	VAND V28.B16, V26.B16, V4.B16; \
	VAND V28.B16, V27.B16, V5.B16; \
	VUSHR $4, V26.B16, V6.B16; \
	VUSHR $4, V27.B16, V7.B16; \
	VLD1 (R1), [V24.B16, V25.B16, V26.B16, V27.B16]; \
	VAND V28.B16, V24.B16, V8.B16; \
	VAND V28.B16, V25.B16, V9.B16; \
	VUSHR $4, V24.B16, V10.B16; \
	VUSHR $4, V25.B16, V11.B16; \
	VAND V28.B16, V26.B16, V12.B16; \
	VAND V28.B16, V27.B16, V13.B16; \
	VUSHR $4, V26.B16, V14.B16; \
	VUSHR $4, V27.B16, V15.B16; \
	ADD $144, R0

// One 32-element sub-block (weights in V w0, w1): V27 += sc[i] · Σ w·x.
#define SUB32_SDOT(X, w0, w1, s, i) \
	VLD1.P 32(X), [V24.B16, V25.B16]; \
	VEOR V26.B16, V26.B16, V26.B16; \
	SDOT(26, w0, 24); \
	SDOT(26, w1, 25); \
	MLAE(27, 26, s, i)

// Without SDOT: four products per 16-bit lane (|w·x| ≤ 15·127).
#define SUB32_NEON(X, w0, w1, s, i) \
	VLD1.P 32(X), [V24.B16, V25.B16]; \
	SMULL8(26, w0, 24); \
	SMLAL2_8(26, w0, 24); \
	SMLAL8(26, w1, 25); \
	SMLAL2_8(26, w1, 25); \
	SADDLP(26, 26); \
	MLAE(27, 26, s, i)

// One super-block of one activation row:
// ACC += dx·(d·Σ sc·(w·x) - dmin·Σ mn·(sum of the sub-block's x)).
#define Q4KSTEP(SUB, X, D, B, ACC) \
	VEOR V27.B16, V27.B16, V27.B16; \
	SUB(X, 0, 1, 20, 0); \
	SUB(X, 2, 3, 20, 1); \
	SUB(X, 4, 5, 20, 2); \
	SUB(X, 6, 7, 20, 3); \
	SUB(X, 8, 9, 21, 0); \
	SUB(X, 10, 11, 21, 1); \
	SUB(X, 12, 13, 21, 2); \
	SUB(X, 14, 15, 21, 3); \
	SCVTF(27, 27); \
	FMOVS.P 64(D), F31; \
	FMULS F29, F31, F28; \
	FMLAE(ACC, 27, 28); \
	VLD1.P 32(B), [V24.S4, V25.S4]; \
	ADDP4(24, 24, 25); \
	MUL4(26, 24, 22); \
	VLD1.P 32(B), [V24.S4, V25.S4]; \
	ADDP4(24, 24, 25); \
	MLA4(26, 24, 23); \
	SCVTF(26, 26); \
	FMULS F30, F31, F28; \
	FMLSE(ACC, 26, 28)

#define Q4KTILE(SUB) \
	MOVD R1, R10; \
	ADD R2, R10, R11; \
	ADD R2, R11, R12; \
	ADD R2, R12, R13; \
	MOVD R3, R14; \
	ADD R5, R14, R15; \
	ADD R5, R15, R16; \
	ADD R5, R16, R17; \
	MOVD R4, R19; \
	ADD R5, R19, R20; \
	ADD R5, R20, R21; \
	ADD R5, R21, R22; \
	ZACC; \
loop: \
	DEC_Q4_K; \
	Q4KSTEP(SUB, R10, R14, R19, 16); \
	CMP $2, R7; \
	BLT next; \
	Q4KSTEP(SUB, R11, R15, R20, 17); \
	CMP $3, R7; \
	BLT next; \
	Q4KSTEP(SUB, R12, R16, R21, 18); \
	CMP $4, R7; \
	BLT next; \
	Q4KSTEP(SUB, R13, R17, R22, 19); \
next: \
	SUBS $1, R6; \
	BNE loop; \
	STORE(R7, R8, R9)

// func tileQ4_KSDOT(w *byte, x *int8, xs int, dv *float32, bs *int32, vs int, nb int, T int, y *float32, ys int)
TEXT ·tileQ4_KSDOT(SB), NOSPLIT, $0-80
	MOVD w+0(FP), R0
	MOVD x+8(FP), R1
	MOVD xs+16(FP), R2
	MOVD dv+24(FP), R3
	MOVD bs+32(FP), R4
	MOVD vs+40(FP), R5
	MOVD nb+48(FP), R6
	MOVD T+56(FP), R7
	MOVD y+64(FP), R8
	MOVD ys+72(FP), R9
	Q4KTILE(SUB32_SDOT)

// func tileQ4_KNEON(w *byte, x *int8, xs int, dv *float32, bs *int32, vs int, nb int, T int, y *float32, ys int)
TEXT ·tileQ4_KNEON(SB), NOSPLIT, $0-80
	MOVD w+0(FP), R0
	MOVD x+8(FP), R1
	MOVD xs+16(FP), R2
	MOVD dv+24(FP), R3
	MOVD bs+32(FP), R4
	MOVD vs+40(FP), R5
	MOVD nb+48(FP), R6
	MOVD T+56(FP), R7
	MOVD y+64(FP), R8
	MOVD ys+72(FP), R9
	Q4KTILE(SUB32_NEON)

// Q6_K: one 128-element half of a super-block into eight registers of
// 6-bit quants (still offset by 32). ql is in V24-V27, qh in V28-V29,
// 0x0f in V30 and 0x30 in V31; V20 is scratch.
#define Q6HALF(A, B, C, D, E, F, G, H) \
	VAND V30.B16, V24.B16, A; \
	VSHL $4, V28.B16, V20.B16; \
	VAND V31.B16, V20.B16, V20.B16; \
	VORR V20.B16, A, A; \
	VAND V30.B16, V25.B16, B; \
	VSHL $4, V29.B16, V20.B16; \
	VAND V31.B16, V20.B16, V20.B16; \
	VORR V20.B16, B, B; \
	VAND V30.B16, V26.B16, C; \
	VSHL $2, V28.B16, V20.B16; \
	VAND V31.B16, V20.B16, V20.B16; \
	VORR V20.B16, C, C; \
	VAND V30.B16, V27.B16, D; \
	VSHL $2, V29.B16, V20.B16; \
	VAND V31.B16, V20.B16, V20.B16; \
	VORR V20.B16, D, D; \
	VUSHR $4, V24.B16, E; \
	VAND V31.B16, V28.B16, V20.B16; \
	VORR V20.B16, E, E; \
	VUSHR $4, V25.B16, F; \
	VAND V31.B16, V29.B16, V20.B16; \
	VORR V20.B16, F, F; \
	VUSHR $4, V26.B16, G; \
	VUSHR $2, V28.B16, V20.B16; \
	VAND V31.B16, V20.B16, V20.B16; \
	VORR V20.B16, G, G; \
	VUSHR $4, V27.B16, H; \
	VUSHR $2, V29.B16, V20.B16; \
	VAND V31.B16, V20.B16, V20.B16; \
	VORR V20.B16, H, H

// Q6_K: ql[128], qh[64], 16 int8 sub-block scales, d. The quants become
// signed (less 32) in V0-V15, one 16-element sub-block each.
#define DEC_Q6_K \
	VMOVI $15, V30.B16; \
	VMOVI $0x30, V31.B16; \
	ADD $128, R0, R2; \
	MOVD R0, R1; \
	VLD1.P 64(R1), [V24.B16, V25.B16, V26.B16, V27.B16]; \
	VLD1.P 32(R2), [V28.B16, V29.B16]; \
	Q6HALF(V0.B16, V1.B16, V2.B16, V3.B16, V4.B16, V5.B16, V6.B16, V7.B16); \
	VLD1 (R1), [V24.B16, V25.B16, V26.B16, V27.B16]; \
	VLD1 (R2), [V28.B16, V29.B16]; \
	Q6HALF(V8.B16, V9.B16, V10.B16, V11.B16, V12.B16, V13.B16, V14.B16, V15.B16); \
	VMOVI $32, V24.B16; \
	VSUB V24.B16, V0.B16, V0.B16; \
	VSUB V24.B16, V1.B16, V1.B16; \
	VSUB V24.B16, V2.B16, V2.B16; \
	VSUB V24.B16, V3.B16, V3.B16; \
	VSUB V24.B16, V4.B16, V4.B16; \
	VSUB V24.B16, V5.B16, V5.B16; \
	VSUB V24.B16, V6.B16, V6.B16; \
	VSUB V24.B16, V7.B16, V7.B16; \
	VSUB V24.B16, V8.B16, V8.B16; \
	VSUB V24.B16, V9.B16, V9.B16; \
	VSUB V24.B16, V10.B16, V10.B16; \
	VSUB V24.B16, V11.B16, V11.B16; \
	VSUB V24.B16, V12.B16, V12.B16; \
	VSUB V24.B16, V13.B16, V13.B16; \
	VSUB V24.B16, V14.B16, V14.B16; \
	VSUB V24.B16, V15.B16, V15.B16; \
	ADD $192, R0, R1; \
	VLD1 (R1), [V20.B16]; \
	SXTL2_8(22, 20); \
	SXTL8(20, 20); \
	SXTL2_16(21, 20); \
	SXTL16(20, 20); \
	SXTL2_16(23, 22); \
	SXTL16(22, 22); \
	LDF16(208(R0), V29, F29); \
	ADD $210, R0

// One 16-element sub-block (weights in V w): V27 += sc[i] · Σ w·x.
#define SUB16_SDOT(X, w, s, i) \
	VLD1.P 16(X), [V24.B16]; \
	VEOR V25.B16, V25.B16, V25.B16; \
	SDOT(25, w, 24); \
	MLAE(27, 25, s, i)

// Without SDOT: two products per 16-bit lane (|w·x| ≤ 32·127).
#define SUB16_NEON(X, w, s, i) \
	VLD1.P 16(X), [V24.B16]; \
	SMULL8(25, w, 24); \
	SMLAL2_8(25, w, 24); \
	SADDLP(25, 25); \
	MLAE(27, 25, s, i)

#define Q6KSTEP(SUB, X, D, ACC) \
	VEOR V27.B16, V27.B16, V27.B16; \
	SUB(X, 0, 20, 0); \
	SUB(X, 1, 20, 1); \
	SUB(X, 2, 20, 2); \
	SUB(X, 3, 20, 3); \
	SUB(X, 4, 21, 0); \
	SUB(X, 5, 21, 1); \
	SUB(X, 6, 21, 2); \
	SUB(X, 7, 21, 3); \
	SUB(X, 8, 22, 0); \
	SUB(X, 9, 22, 1); \
	SUB(X, 10, 22, 2); \
	SUB(X, 11, 22, 3); \
	SUB(X, 12, 23, 0); \
	SUB(X, 13, 23, 1); \
	SUB(X, 14, 23, 2); \
	SUB(X, 15, 23, 3); \
	SCVTF(27, 27); \
	FMOVS.P 64(D), F31; \
	FMULS F29, F31, F28; \
	FMLAE(ACC, 27, 28)

#define Q6KTILE(SUB) \
	MOVD R1, R10; \
	ADD R2, R10, R11; \
	ADD R2, R11, R12; \
	ADD R2, R12, R13; \
	MOVD R3, R14; \
	ADD R4, R14, R15; \
	ADD R4, R15, R16; \
	ADD R4, R16, R17; \
	ZACC; \
loop: \
	DEC_Q6_K; \
	Q6KSTEP(SUB, R10, R14, 16); \
	CMP $2, R6; \
	BLT next; \
	Q6KSTEP(SUB, R11, R15, 17); \
	CMP $3, R6; \
	BLT next; \
	Q6KSTEP(SUB, R12, R16, 18); \
	CMP $4, R6; \
	BLT next; \
	Q6KSTEP(SUB, R13, R17, 19); \
next: \
	SUBS $1, R5; \
	BNE loop; \
	STORE(R6, R7, R8)

// func tileQ6_KSDOT(w *byte, x *int8, xs int, dv *float32, vs int, nb int, T int, y *float32, ys int)
TEXT ·tileQ6_KSDOT(SB), NOSPLIT, $0-72
	MOVD w+0(FP), R0
	MOVD x+8(FP), R1
	MOVD xs+16(FP), R2
	MOVD dv+24(FP), R3
	MOVD vs+32(FP), R4
	MOVD nb+40(FP), R5
	MOVD T+48(FP), R6
	MOVD y+56(FP), R7
	MOVD ys+64(FP), R8
	Q6KTILE(SUB16_SDOT)

// func tileQ6_KNEON(w *byte, x *int8, xs int, dv *float32, vs int, nb int, T int, y *float32, ys int)
TEXT ·tileQ6_KNEON(SB), NOSPLIT, $0-72
	MOVD w+0(FP), R0
	MOVD x+8(FP), R1
	MOVD xs+16(FP), R2
	MOVD dv+24(FP), R3
	MOVD vs+32(FP), R4
	MOVD nb+40(FP), R5
	MOVD T+48(FP), R6
	MOVD y+56(FP), R7
	MOVD ys+64(FP), R8
	Q6KTILE(SUB16_NEON)

// ---- Float weights ----

// F16 step for one activation row: sixteen weights in V0-V3 (float32)
// times sixteen activations, into two accumulators.
#define F16STEP(X, A, B) \
	VLD1.P 64(X), [V4.S4, V5.S4, V6.S4, V7.S4]; \
	VFMLA V0.S4, V4.S4, A.S4; \
	VFMLA V1.S4, V5.S4, B.S4; \
	VFMLA V2.S4, V6.S4, A.S4; \
	VFMLA V3.S4, V7.S4, B.S4

// func tileF16NEON(w *byte, x *float32, xs int, n16 int, T int, y *float32, ys int)
//
// One F16 row by T float32 activation rows, sixteen elements a step (the
// caller adds the rest). Two accumulators per row (V16-V19 and V20-V23)
// halve the dependency chains.
TEXT ·tileF16NEON(SB), NOSPLIT, $0-56
	MOVD w+0(FP), R0
	MOVD x+8(FP), R1
	MOVD xs+16(FP), R2
	MOVD n16+24(FP), R3
	MOVD T+32(FP), R4
	MOVD y+40(FP), R5
	MOVD ys+48(FP), R6
	MOVD R1, R10
	ADD R2, R10, R11
	ADD R2, R11, R12
	ADD R2, R12, R13
	ZACC
	VEOR V20.B16, V20.B16, V20.B16
	VEOR V21.B16, V21.B16, V21.B16
	VEOR V22.B16, V22.B16, V22.B16
	VEOR V23.B16, V23.B16, V23.B16

loop:
	VLD1.P 32(R0), [V0.H8, V1.H8]
	FCVTL2(3, 1)
	FCVTL(2, 1)
	FCVTL2(1, 0)
	FCVTL(0, 0)
	F16STEP(R10, V16, V20)
	CMP  $2, R4
	BLT  next
	F16STEP(R11, V17, V21)
	CMP  $3, R4
	BLT  next
	F16STEP(R12, V18, V22)
	CMP  $4, R4
	BLT  next
	F16STEP(R13, V19, V23)

next:
	SUBS $1, R3
	BNE  loop
	FADDP4(16, 16, 20)
	FADDP4(17, 17, 21)
	FADDP4(18, 18, 22)
	FADDP4(19, 19, 23)
	STORE(R4, R5, R6)

// func dotF32NEON(a *float32, b *float32, n16 int) float32
TEXT ·dotF32NEON(SB), NOSPLIT, $0-28
	MOVD a+0(FP), R0
	MOVD b+8(FP), R1
	MOVD n16+16(FP), R2
	ZACC

dotloop:
	VLD1.P 64(R0), [V0.S4, V1.S4, V2.S4, V3.S4]
	VLD1.P 64(R1), [V4.S4, V5.S4, V6.S4, V7.S4]
	VFMLA V0.S4, V4.S4, V16.S4
	VFMLA V1.S4, V5.S4, V17.S4
	VFMLA V2.S4, V6.S4, V18.S4
	VFMLA V3.S4, V7.S4, V19.S4
	SUBS  $1, R2
	BNE   dotloop
	FADDP4(16, 16, 17)
	FADDP4(18, 18, 19)
	FADDP4(16, 16, 18)
	HSUM(16)
	FMOVS F16, ret+24(FP)
	RET

// func axpyF32NEON(alpha float32, x *float32, y *float32, n16 int)
TEXT ·axpyF32NEON(SB), NOSPLIT, $0-32
	FMOVS alpha+0(FP), F0
	MOVD  x+8(FP), R0
	MOVD  y+16(FP), R1
	MOVD  n16+24(FP), R2
	VDUP  V0.S[0], V0.S4

axpyloop:
	VLD1.P 64(R0), [V4.S4, V5.S4, V6.S4, V7.S4]
	VLD1   (R1), [V16.S4, V17.S4, V18.S4, V19.S4]
	VFMLA  V0.S4, V4.S4, V16.S4
	VFMLA  V0.S4, V5.S4, V17.S4
	VFMLA  V0.S4, V6.S4, V18.S4
	VFMLA  V0.S4, V7.S4, V19.S4
	VST1.P [V16.S4, V17.S4, V18.S4, V19.S4], 64(R1)
	SUBS   $1, R2
	BNE    axpyloop
	RET
