package synth

import (
	"strings"
	"testing"

	"github.com/open-autoglm/autoglm/internal/engine/quant"
)

func TestMixture(t *testing.T) {
	tests := []struct {
		name string
		spec Spec
		want map[string]quant.Type
	}{
		{
			name: "Q4_K_M, K-quant rows",
			spec: Spec{Dim: 256, Layers: 8, Heads: 4, KVHeads: 2, FFN: 256, Vocab: 260, Tied: true, Mixture: "Q4_K_M"},
			want: map[string]quant.Type{
				"token_embd.weight":        quant.Q6_K, // tied: the output's type
				"blk.0.attn_q.weight":      quant.Q4_K,
				"blk.0.attn_v.weight":      quant.Q6_K, // first eighth
				"blk.1.attn_v.weight":      quant.Q4_K,
				"blk.3.attn_v.weight":      quant.Q6_K, // every third between
				"blk.4.ffn_down.weight":    quant.Q4_K,
				"blk.6.ffn_down.weight":    quant.Q6_K,
				"blk.7.ffn_down.weight":    quant.Q6_K, // last eighth
				"blk.7.ffn_gate.weight":    quant.Q4_K,
				"blk.7.attn_output.weight": quant.Q4_K,
			},
		},
		{
			name: "Q4_K_M, rows of 96 fall back",
			spec: Spec{Dim: 96, Layers: 8, Heads: 4, KVHeads: 2, FFN: 256, Vocab: 300, Mixture: "Q4_K_M"},
			want: map[string]quant.Type{
				"token_embd.weight":     quant.Q5_0, // untied: the base type, fallen back
				"output.weight":         quant.Q8_0,
				"blk.0.attn_q.weight":   quant.Q5_0,
				"blk.0.attn_v.weight":   quant.Q8_0, // Q6_K falls back to Q8_0
				"blk.1.attn_v.weight":   quant.Q5_0,
				"blk.0.ffn_down.weight": quant.Q6_K, // 256 columns: no fallback
			},
		},
		{
			name: "Q4_0 keeps the tied embedding at Q8_0",
			spec: Spec{Dim: 96, Layers: 2, Heads: 4, FFN: 128, Vocab: 300, Tied: true, Mixture: "q4_0"},
			want: map[string]quant.Type{
				"token_embd.weight":     quant.Q8_0,
				"blk.1.attn_v.weight":   quant.Q4_0,
				"blk.1.ffn_down.weight": quant.Q4_0,
			},
		},
		{
			name: "F16 everywhere",
			spec: Spec{Dim: 96, Layers: 1, Heads: 4, FFN: 128, Vocab: 300, Tied: true, Mixture: "F16"},
			want: map[string]quant.Type{"token_embd.weight": quant.F16, "blk.0.attn_v.weight": quant.F16},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := open(t, write(t, tt.spec))
			for name, want := range tt.want {
				ti, ok := f.Tensor(name)
				if !ok {
					t.Errorf("no tensor %s", name)
					continue
				}
				if ti.Type != want {
					t.Errorf("%s: type %v, want %v", name, ti.Type, want)
				}
			}
			ft, ok := f.Uint("general.file_type")
			m, _ := findMixture(tt.spec.Mixture)
			if !ok || uint32(ft) != m.fileType {
				t.Errorf("general.file_type = %d, %v; want %d", ft, ok, m.fileType)
			}
			if _, ok := f.Tensor("blk.0.attn_norm.weight"); !ok {
				t.Error("norms missing")
			}
		})
	}
}

func TestMixtureUnknown(t *testing.T) {
	err := Write(nil, Spec{Dim: 64, Layers: 1, Heads: 4, FFN: 64, Vocab: 300, Mixture: "Q3_K_XL"})
	if err == nil {
		t.Fatal("unknown mixture accepted")
	}
	if got := err.Error(); !strings.Contains(got, "Q3_K_XL") || !strings.Contains(got, "Q4_K_M") {
		t.Errorf("error %q should name the mixture and the ones there are", got)
	}
}
