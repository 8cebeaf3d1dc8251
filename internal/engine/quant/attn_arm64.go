//go:build !purego

package quant

import "golang.org/x/sys/cpu"

// The attention kernels of attn_arm64.s, on every arm64 CPU with Advanced
// SIMD (the base NEON set; none needs the dot product extension).
func init() {
	if !cpu.ARM64.HasASIMD {
		return
	}
	matMul4Vec = matMul4NEON
	expSubVec = expSubNEON
	scaleVec = scaleNEON
	f16RowVec = f16RowNEON
	maxVec = maxNEON
}

// matMul4NEON runs four rows of MatMulF32 over as many whole 16-column
// blocks as n holds and returns the columns done.
func matMul4NEON(a []float32, lda int, b []float32, ldb int, c []float32, ldc int, k, n int, acc bool) int {
	nb := n / 16
	if nb == 0 {
		return 0
	}
	accI := 0
	if acc {
		accI = 1
	}
	matMul4x16NEON(&a[0], lda, &b[0], ldb, &c[0], ldc, k, nb, accI)
	return nb * 16
}

// matMul4x16NEON computes nblk 16-column blocks of four rows of C = A·B
// (+ C when acc is 1); strides are in elements, k ≥ 1.
//
//go:noescape
func matMul4x16NEON(a *float32, lda int, b *float32, ldb int, c *float32, ldc int, k, nblk, acc int)

// expSubNEON is ExpSub over n8 steps of eight elements.
//
//go:noescape
func expSubNEON(x *float32, n8 int, m float32) float64

// scaleNEON is ScaleF32 over n8 steps of eight elements (round is 0 or 1).
//
//go:noescape
func scaleNEON(x *float32, n8 int, a float32, round int)

// f16RowNEON is F16RowToF32 over n8 steps of eight elements.
//
//go:noescape
func f16RowNEON(dst *float32, src *byte, n8 int)

// maxNEON is the largest of n8·8 elements (n8 ≥ 1).
//
//go:noescape
func maxNEON(x *float32, n8 int) float32
