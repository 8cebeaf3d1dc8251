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
	checkTile4(t, matMul4NEON, 16)
}
