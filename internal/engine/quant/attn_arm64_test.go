//go:build !purego

package quant

import (
	"testing"

	"golang.org/x/sys/cpu"
)

// TestAttentionNEONChosen checks that the attention tests of attn_test.go
// run the NEON forms on this CPU, and that the matrix tile does every whole
// 16-column block.
func TestAttentionNEONChosen(t *testing.T) {
	if !cpu.ARM64.HasASIMD {
		t.Skip("no Advanced SIMD")
	}
	if matMul4Vec == nil || expSubVec == nil || scaleVec == nil || f16RowVec == nil || maxVec == nil {
		t.Fatal("an attention kernel has no NEON form installed")
	}
	neon := func(m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, acc bool) {
		i := 0
		for ; i+4 <= m; i += 4 {
			j := matMul4NEON(a[i*lda:], lda, b, ldb, c[i*ldc:], ldc, k, n, acc)
			if j != n/16*16 {
				t.Fatalf("NEON tile did %d of %d columns", j, n)
			}
			matMulGo(4, j, n, k, a[i*lda:], lda, b, ldb, c[i*ldc:], ldc, acc)
		}
		matMulGo(m-i, 0, n, k, a[i*lda:], lda, b, ldb, c[i*ldc:], ldc, acc)
	}
	for _, m := range []int{4, 8} {
		for _, n := range []int{16, 17, 31, 32, 48, 64, 65} {
			for _, k := range []int{1, 3, 64} {
				for _, acc := range []bool{false, true} {
					checkMatMul(t, neon, m, n, k, acc)
				}
			}
		}
	}
}
