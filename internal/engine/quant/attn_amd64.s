//go:build !purego

#include "textflag.h"

// Attention kernels: see attn.go for what each computes and attn_amd64.go
// for when each is chosen.

// The exponential's constants, attnExpC<>.
#include "attn_exp.h"

// func matMul4x16AVX2(a *float32, lda int, b *float32, ldb int, c *float32, ldc int, k, nblk, acc int)
//
// Register plan: Y0-Y7 the 4×16 accumulators (row i in Y(2i), Y(2i+1)),
// Y8-Y9 one row of B, Y10-Y13 the broadcast elements of A's four rows.
// AX A, R8/R9 1×/3× A's stride, BX/DI B, R10 B's stride, DX C, R11/R12
// 1×/3× C's stride, SI blocks left, CX k left, R13 A's column.
TEXT ·matMul4x16AVX2(SB), NOSPLIT, $0-72
	MOVQ a+0(FP), AX
	MOVQ lda+8(FP), R8
	SHLQ $2, R8
	LEAQ (R8)(R8*2), R9
	MOVQ b+16(FP), BX
	MOVQ ldb+24(FP), R10
	SHLQ $2, R10
	MOVQ c+32(FP), DX
	MOVQ ldc+40(FP), R11
	SHLQ $2, R11
	LEAQ (R11)(R11*2), R12
	MOVQ nblk+56(FP), SI
	TESTQ SI, SI
	JZ mm16_done
mm16_block:
	MOVQ acc+64(FP), CX
	TESTQ CX, CX
	JZ mm16_zero
	VMOVUPS (DX), Y0
	VMOVUPS 32(DX), Y1
	VMOVUPS (DX)(R11*1), Y2
	VMOVUPS 32(DX)(R11*1), Y3
	VMOVUPS (DX)(R11*2), Y4
	VMOVUPS 32(DX)(R11*2), Y5
	VMOVUPS (DX)(R12*1), Y6
	VMOVUPS 32(DX)(R12*1), Y7
	JMP mm16_start
mm16_zero:
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
mm16_start:
	MOVQ AX, R13
	MOVQ BX, DI
	MOVQ k+48(FP), CX
mm16_k:
	VMOVUPS (DI), Y8
	VMOVUPS 32(DI), Y9
	VBROADCASTSS (R13), Y10
	VFMADD231PS Y8, Y10, Y0
	VFMADD231PS Y9, Y10, Y1
	VBROADCASTSS (R13)(R8*1), Y11
	VFMADD231PS Y8, Y11, Y2
	VFMADD231PS Y9, Y11, Y3
	VBROADCASTSS (R13)(R8*2), Y12
	VFMADD231PS Y8, Y12, Y4
	VFMADD231PS Y9, Y12, Y5
	VBROADCASTSS (R13)(R9*1), Y13
	VFMADD231PS Y8, Y13, Y6
	VFMADD231PS Y9, Y13, Y7
	ADDQ $4, R13
	ADDQ R10, DI
	DECQ CX
	JNZ mm16_k
	VMOVUPS Y0, (DX)
	VMOVUPS Y1, 32(DX)
	VMOVUPS Y2, (DX)(R11*1)
	VMOVUPS Y3, 32(DX)(R11*1)
	VMOVUPS Y4, (DX)(R11*2)
	VMOVUPS Y5, 32(DX)(R11*2)
	VMOVUPS Y6, (DX)(R12*1)
	VMOVUPS Y7, 32(DX)(R12*1)
	ADDQ $64, BX
	ADDQ $64, DX
	DECQ SI
	JNZ mm16_block
mm16_done:
	VZEROUPPER
	RET

// func matMul4x32AVX512(a *float32, lda int, b *float32, ldb int, c *float32, ldc int, k, nblk, acc int)
//
// Register plan: Z0-Z7 the 4×32 accumulators (row i in Z(2i), Z(2i+1)),
// Z8-Z9 one row of B, Z10-Z13 the broadcast elements of A's four rows.
// AX A, R8/R9 1×/3× A's stride, BX/DI B, R10 B's stride, DX C, R11/R12
// 1×/3× C's stride, SI blocks left, CX k left, R13 A's column.
TEXT ·matMul4x32AVX512(SB), NOSPLIT, $0-72
	MOVQ a+0(FP), AX
	MOVQ lda+8(FP), R8
	SHLQ $2, R8
	LEAQ (R8)(R8*2), R9
	MOVQ b+16(FP), BX
	MOVQ ldb+24(FP), R10
	SHLQ $2, R10
	MOVQ c+32(FP), DX
	MOVQ ldc+40(FP), R11
	SHLQ $2, R11
	LEAQ (R11)(R11*2), R12
	MOVQ nblk+56(FP), SI
	TESTQ SI, SI
	JZ mm32_done
mm32_block:
	MOVQ acc+64(FP), CX
	TESTQ CX, CX
	JZ mm32_zero
	VMOVUPS (DX), Z0
	VMOVUPS 64(DX), Z1
	VMOVUPS (DX)(R11*1), Z2
	VMOVUPS 64(DX)(R11*1), Z3
	VMOVUPS (DX)(R11*2), Z4
	VMOVUPS 64(DX)(R11*2), Z5
	VMOVUPS (DX)(R12*1), Z6
	VMOVUPS 64(DX)(R12*1), Z7
	JMP mm32_start
mm32_zero:
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	VPXORD Z4, Z4, Z4
	VPXORD Z5, Z5, Z5
	VPXORD Z6, Z6, Z6
	VPXORD Z7, Z7, Z7
mm32_start:
	MOVQ AX, R13
	MOVQ BX, DI
	MOVQ k+48(FP), CX
mm32_k:
	VMOVUPS (DI), Z8
	VMOVUPS 64(DI), Z9
	VBROADCASTSS (R13), Z10
	VFMADD231PS Z8, Z10, Z0
	VFMADD231PS Z9, Z10, Z1
	VBROADCASTSS (R13)(R8*1), Z11
	VFMADD231PS Z8, Z11, Z2
	VFMADD231PS Z9, Z11, Z3
	VBROADCASTSS (R13)(R8*2), Z12
	VFMADD231PS Z8, Z12, Z4
	VFMADD231PS Z9, Z12, Z5
	VBROADCASTSS (R13)(R9*1), Z13
	VFMADD231PS Z8, Z13, Z6
	VFMADD231PS Z9, Z13, Z7
	ADDQ $4, R13
	ADDQ R10, DI
	DECQ CX
	JNZ mm32_k
	VMOVUPS Z0, (DX)
	VMOVUPS Z1, 64(DX)
	VMOVUPS Z2, (DX)(R11*1)
	VMOVUPS Z3, 64(DX)(R11*1)
	VMOVUPS Z4, (DX)(R11*2)
	VMOVUPS Z5, 64(DX)(R11*2)
	VMOVUPS Z6, (DX)(R12*1)
	VMOVUPS Z7, 64(DX)(R12*1)
	ADDQ $128, BX
	ADDQ $128, DX
	DECQ SI
	JNZ mm32_block
mm32_done:
	VZEROUPPER
	RET

// func expSubAVX2(x *float32, n8 int, m float32) float64
//
// x = e^(x-m) eight at a time, as fastmath.Exp computes it with the
// argument clamped below at -87.3 (and up to 0 by contract), summing the
// results in two float64 accumulators of four lanes.
TEXT ·expSubAVX2(SB), NOSPLIT, $0-32
	MOVQ x+0(FP), SI
	MOVQ n8+8(FP), CX
	VBROADCASTSS m+16(FP), Y15
	VBROADCASTSS attnExpC<>+0(SB), Y14
	VBROADCASTSS attnExpC<>+4(SB), Y13
	VBROADCASTSS attnExpC<>+8(SB), Y12
	VBROADCASTSS attnExpC<>+12(SB), Y11
	VBROADCASTSS attnExpC<>+16(SB), Y10
	VBROADCASTSS attnExpC<>+40(SB), Y9
	VPBROADCASTD attnExpC<>+44(SB), Y8
	VXORPD Y6, Y6, Y6
	VXORPD Y7, Y7, Y7
	TESTQ CX, CX
	JZ exp_done
exp_loop:
	VMOVUPS (SI), Y0
	VSUBPS Y15, Y0, Y0
	VMAXPS Y14, Y0, Y0
	VMOVAPS Y12, Y2
	VFMADD231PS Y13, Y0, Y2
	VROUNDPS $1, Y2, Y2
	VMOVAPS Y0, Y3
	VFNMADD231PS Y11, Y2, Y3
	VFNMADD231PS Y10, Y2, Y3
	VBROADCASTSS attnExpC<>+20(SB), Y4
	VBROADCASTSS attnExpC<>+24(SB), Y5
	VFMADD213PS Y5, Y3, Y4
	VBROADCASTSS attnExpC<>+28(SB), Y5
	VFMADD213PS Y5, Y3, Y4
	VBROADCASTSS attnExpC<>+32(SB), Y5
	VFMADD213PS Y5, Y3, Y4
	VBROADCASTSS attnExpC<>+36(SB), Y5
	VFMADD213PS Y5, Y3, Y4
	VFMADD213PS Y12, Y3, Y4
	VMULPS Y3, Y3, Y5
	VFMADD213PS Y3, Y5, Y4
	VADDPS Y9, Y4, Y4
	VCVTPS2DQ Y2, Y2
	VPADDD Y8, Y2, Y2
	VPSLLD $23, Y2, Y2
	VMULPS Y2, Y4, Y4
	VMOVUPS Y4, (SI)
	VCVTPS2PD X4, Y1
	VADDPD Y1, Y6, Y6
	VEXTRACTF128 $1, Y4, X4
	VCVTPS2PD X4, Y1
	VADDPD Y1, Y7, Y7
	ADDQ $32, SI
	DECQ CX
	JNZ exp_loop
exp_done:
	VADDPD Y7, Y6, Y6
	VEXTRACTF128 $1, Y6, X7
	VADDPD X7, X6, X6
	VHADDPD X6, X6, X6
	VZEROUPPER
	MOVSD X6, ret+24(FP)
	RET

// func scaleAVX2(x *float32, n8 int, a float32, round int)
TEXT ·scaleAVX2(SB), NOSPLIT, $0-32
	MOVQ x+0(FP), SI
	MOVQ n8+8(FP), CX
	VBROADCASTSS a+16(FP), Y15
	MOVQ round+24(FP), DX
	TESTQ CX, CX
	JZ scale_done
	TESTQ DX, DX
	JNZ scale_round
scale_loop:
	VMULPS (SI), Y15, Y0
	VMOVUPS Y0, (SI)
	ADDQ $32, SI
	DECQ CX
	JNZ scale_loop
	JMP scale_done
scale_round:
	VMULPS (SI), Y15, Y0
	VCVTPS2PH $0, Y0, X1
	VCVTPH2PS X1, Y0
	VMOVUPS Y0, (SI)
	ADDQ $32, SI
	DECQ CX
	JNZ scale_round
scale_done:
	VZEROUPPER
	RET

// func f16RowAVX2(dst *float32, src *byte, n8 int)
TEXT ·f16RowAVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n8+16(FP), CX
	TESTQ CX, CX
	JZ f16_done
f16_loop:
	VCVTPH2PS (SI), Y0
	VMOVUPS Y0, (DI)
	ADDQ $16, SI
	ADDQ $32, DI
	DECQ CX
	JNZ f16_loop
f16_done:
	VZEROUPPER
	RET

// func maxAVX2(x *float32, n8 int) float32
TEXT ·maxAVX2(SB), NOSPLIT, $0-20
	MOVQ x+0(FP), SI
	MOVQ n8+8(FP), CX
	VMOVUPS (SI), Y0
	VMOVAPS Y0, Y1
	ADDQ $32, SI
	DECQ CX
	JZ max_reduce
	TESTQ $1, CX
	JZ max_pairs
	VMAXPS (SI), Y0, Y0
	ADDQ $32, SI
	DECQ CX
	JZ max_reduce
max_pairs:
	VMAXPS (SI), Y0, Y0
	VMAXPS 32(SI), Y1, Y1
	ADDQ $64, SI
	SUBQ $2, CX
	JNZ max_pairs
max_reduce:
	VMAXPS Y1, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VMAXPS X1, X0, X0
	VPERMILPS $0x4e, X0, X1
	VMAXPS X1, X0, X0
	VPERMILPS $0xb1, X0, X1
	VMAXPS X1, X0, X0
	VZEROUPPER
	MOVSS X0, ret+16(FP)
	RET
