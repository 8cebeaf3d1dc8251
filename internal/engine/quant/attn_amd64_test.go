//go:build !purego

package quant

import (
	"testing"

	"golang.org/x/sys/cpu"
)

// TestMatMulF32AVX2 holds the AVX2 tile to the reference on AVX-512
// machines too, where MatMulF32 mostly takes the 32-column tile.
func TestMatMulF32AVX2(t *testing.T) {
	if !cpu.X86.HasAVX2 || !cpu.X86.HasFMA {
		t.Skip("no AVX2+FMA")
	}
	checkTile4(t, func(a []float32, lda int, b []float32, ldb int, c []float32, ldc int, k, n int, acc bool) int {
		return matMul4(false, a, lda, b, ldb, c, ldc, k, n, acc)
	}, 16)
}
