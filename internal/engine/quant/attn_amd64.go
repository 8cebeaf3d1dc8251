//go:build !purego

package quant

import "golang.org/x/sys/cpu"

// The attention kernels of attn_amd64.s: AVX2+FMA (with F16C, which every
// AVX2 CPU has) for all of them, AVX-512 for the matrix product, where a
// 4×32 tile in sixteen-lane registers halves the instructions per product.
func init() {
	x := &cpu.X86
	if !(x.HasAVX2 && x.HasFMA) {
		return
	}
	avx512 := x.HasAVX512F && x.HasAVX512VL
	matMul4Vec = func(a []float32, lda int, b []float32, ldb int, c []float32, ldc int, k, n int, acc bool) int {
		return matMul4(avx512, a, lda, b, ldb, c, ldc, k, n, acc)
	}
	expSubVec = expSubAVX2
	scaleVec = scaleAVX2
	f16RowVec = f16RowAVX2
	maxVec = maxAVX2
}

// matMul4 runs four rows of MatMulF32 over as many whole 32- (AVX-512) and
// 16-column blocks as n holds and returns the columns done.
func matMul4(avx512 bool, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, k, n int, acc bool) int {
	accI := 0
	if acc {
		accI = 1
	}
	j := 0
	if avx512 && n >= 32 {
		nb := n / 32
		matMul4x32AVX512(&a[0], lda, &b[0], ldb, &c[0], ldc, k, nb, accI)
		j = nb * 32
	}
	if n-j >= 16 {
		nb := (n - j) / 16
		matMul4x16AVX2(&a[0], lda, &b[j], ldb, &c[j], ldc, k, nb, accI)
		j += nb * 16
	}
	return j
}

// matMul4x16AVX2 computes nblk 16-column blocks of four rows of C = A·B
// (+ C when acc is 1); strides are in elements, k ≥ 1.
//
//go:noescape
func matMul4x16AVX2(a *float32, lda int, b *float32, ldb int, c *float32, ldc int, k, nblk, acc int)

// matMul4x32AVX512 is matMul4x16AVX2 with 32-column blocks.
//
//go:noescape
func matMul4x32AVX512(a *float32, lda int, b *float32, ldb int, c *float32, ldc int, k, nblk, acc int)

// expSubAVX2 is ExpSub over n8 steps of eight elements.
//
//go:noescape
func expSubAVX2(x *float32, n8 int, m float32) float64

// scaleAVX2 is ScaleF32 over n8 steps of eight elements (round is 0 or 1).
//
//go:noescape
func scaleAVX2(x *float32, n8 int, a float32, round int)

// f16RowAVX2 is F16RowToF32 over n8 steps of eight elements.
//
//go:noescape
func f16RowAVX2(dst *float32, src *byte, n8 int)

// maxAVX2 is the largest of n8·8 elements (n8 ≥ 1).
//
//go:noescape
func maxAVX2(x *float32, n8 int) float32
