package quant

import "github.com/open-autoglm/autoglm/internal/engine/fastmath"

// The routines in this file are the attention kernels of the model: the
// score and value products as small float32 matrix products, and the
// softmax pieces (exponentials with their sum, scaling, f16 rounding, f16
// rows). Each has a portable Go form here and vector forms chosen at init
// (attn_amd64.go); the tests compare the two for every length class.

// MatMulF32 sets c[i*ldc+j] (or, with acc, adds to it) the sum over p < k of
// a[i*lda+p]·b[p*ldb+j], for i < m and j < n: C = A·B (+ C) with A m×k and
// B k×n, both row-major with the given strides. Sums run over p in order
// with fused multiply-adds in the vector forms, so results may differ from
// the Go form in the last bits.
func MatMulF32(m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, acc bool) {
	if m <= 0 || n <= 0 {
		return
	}
	_ = c[(m-1)*ldc+n-1]
	if k <= 0 {
		if !acc {
			for i := range m {
				clear(c[i*ldc : i*ldc+n])
			}
		}
		return
	}
	_ = a[(m-1)*lda+k-1]
	_ = b[(k-1)*ldb+n-1]
	i := 0
	if matMul4Vec != nil {
		for ; i+4 <= m; i += 4 {
			j := matMul4Vec(a[i*lda:], lda, b, ldb, c[i*ldc:], ldc, k, n, acc)
			if j < n {
				matMulGo(4, j, n, k, a[i*lda:], lda, b, ldb, c[i*ldc:], ldc, acc)
			}
		}
	}
	if i < m {
		matMulGo(m-i, 0, n, k, a[i*lda:], lda, b, ldb, c[i*ldc:], ldc, acc)
	}
}

// matMulGo is MatMulF32 over columns [j0, n) of m rows.
func matMulGo(m, j0, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, acc bool) {
	for i := range m {
		ci := c[i*ldc+j0 : i*ldc+n]
		if !acc {
			clear(ci)
		}
		ai := a[i*lda : i*lda+k]
		for p, x := range ai {
			bp := b[p*ldb+j0 : p*ldb+n]
			for j := range ci {
				ci[j] += x * bp[j]
			}
		}
	}
}

// matMul4Vec runs four rows of MatMulF32 over a prefix of the columns and
// returns how many it did; nil where the CPU has no vector form.
var matMul4Vec func(a []float32, lda int, b []float32, ldb int, c []float32, ldc int, k, n int, acc bool) int

// ExpSub sets x[i] = e^(x[i]-m), with e^x as fastmath.Exp computes it, and
// returns the sum of the results in float64: the exponentials of a softmax
// row shifted by its maximum. m must be at least every x[i] (the vector
// forms are exact only for arguments up to 0); arguments below -87.3 give
// 0 in the Go form and e^-87.3 in the vector forms.
func ExpSub(x []float32, m float32) float64 {
	var s float64
	i := 0
	if expSubVec != nil && len(x) >= 8 {
		s = expSubVec(&x[0], len(x)/8, m)
		i = len(x) / 8 * 8
	}
	for ; i < len(x); i++ {
		e := fastmath.Exp(x[i] - m)
		x[i] = e
		s += float64(e)
	}
	return s
}

var expSubVec func(x *float32, n8 int, m float32) float64

// ScaleF32 multiplies every x[i] by a; with roundF16 it then rounds each
// product to the nearest f16 (ties to even), as the softmax weights of an
// f16 KV cache are before they meet the values.
func ScaleF32(x []float32, a float32, roundF16 bool) {
	i := 0
	if scaleVec != nil && len(x) >= 8 {
		r := 0
		if roundF16 {
			r = 1
		}
		scaleVec(&x[0], len(x)/8, a, r)
		i = len(x) / 8 * 8
	}
	for ; i < len(x); i++ {
		v := x[i] * a
		if roundF16 {
			v = F16ToF32(F32ToF16(v))
		}
		x[i] = v
	}
}

var scaleVec func(x *float32, n8 int, a float32, round int)

// F16RowToF32 expands len(dst) little-endian f16 values from src.
func F16RowToF32(dst []float32, src []byte) {
	_ = src[2*len(dst)-1]
	i := 0
	if f16RowVec != nil && len(dst) >= 8 {
		f16RowVec(&dst[0], &src[0], len(dst)/8)
		i = len(dst) / 8 * 8
	}
	for ; i < len(dst); i++ {
		dst[i] = F16ToF32(uint16(src[2*i]) | uint16(src[2*i+1])<<8)
	}
}

var f16RowVec func(dst *float32, src *byte, n8 int)

// MaxF32 returns the largest of x (which must not be empty). Where x holds
// a NaN the result is unspecified (a softmax over x is NaN either way).
func MaxF32(x []float32) float32 {
	m := x[0]
	i := 1
	if maxVec != nil && len(x) >= 8 {
		m = maxVec(&x[0], len(x)/8)
		i = len(x) / 8 * 8
	}
	for _, v := range x[i:] {
		if v > m {
			m = v
		}
	}
	return m
}

var maxVec func(x *float32, n8 int) float32
