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
	avx2 := func(m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, acc bool) {
		i := 0
		for ; i+4 <= m; i += 4 {
			j := matMul4(false, a[i*lda:], lda, b, ldb, c[i*ldc:], ldc, k, n, acc)
			if j != n/16*16 {
				t.Fatalf("AVX2 tile did %d of %d columns", j, n)
			}
			matMulGo(4, j, n, k, a[i*lda:], lda, b, ldb, c[i*ldc:], ldc, acc)
		}
		matMulGo(m-i, 0, n, k, a[i*lda:], lda, b, ldb, c[i*ldc:], ldc, acc)
	}
	for _, m := range []int{4, 8} {
		for _, n := range []int{16, 17, 31, 32, 48, 64, 65} {
			for _, k := range []int{1, 3, 64} {
				for _, acc := range []bool{false, true} {
					checkMatMul(t, avx2, m, n, k, acc)
				}
			}
		}
	}
}
