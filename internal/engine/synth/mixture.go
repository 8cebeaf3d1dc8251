package synth

import (
	"fmt"
	"strings"

	"github.com/open-autoglm/autoglm/internal/engine/quant"
)

// mixture is a quantisation preset: the default matrix type of a llama.cpp
// file type and the rules its quantiser applies on top, so that a synthetic
// file has the same tensor types (and size) as one made by llama.cpp's
// llama-quantize from a float file of the same shape.
type mixture struct {
	name     string
	fileType uint32 // general.file_type (llama.cpp's llama_ftype)
	base     quant.Type
	// moreBits is the type of attn_v and ffn_down in the layers that get
	// more bits (the _M mixtures); 0 for none.
	moreBits quant.Type
	// fusedQKV is the type of a fused attn_qkv; 0 for base.
	fusedQKV quant.Type
}

var mixtures = []mixture{
	{name: "F32", fileType: 0, base: quant.F32},
	{name: "F16", fileType: 1, base: quant.F16},
	{name: "Q4_0", fileType: 2, base: quant.Q4_0},
	{name: "Q4_1", fileType: 3, base: quant.Q4_1},
	{name: "Q8_0", fileType: 7, base: quant.Q8_0},
	{name: "Q5_0", fileType: 8, base: quant.Q5_0},
	{name: "Q5_1", fileType: 9, base: quant.Q5_1},
	{name: "Q4_K_S", fileType: 14, base: quant.Q4_K},
	{name: "Q4_K_M", fileType: 15, base: quant.Q4_K, moreBits: quant.Q6_K, fusedQKV: quant.Q5_K},
	{name: "Q5_K_S", fileType: 16, base: quant.Q5_K},
	{name: "Q5_K_M", fileType: 17, base: quant.Q5_K, moreBits: quant.Q6_K, fusedQKV: quant.Q6_K},
	{name: "Q6_K", fileType: 18, base: quant.Q6_K},
}

// Mixtures returns the names Spec.Mixture accepts.
func Mixtures() []string {
	names := make([]string, len(mixtures))
	for i, m := range mixtures {
		names[i] = m.name
	}
	return names
}

func findMixture(name string) (mixture, error) {
	for _, m := range mixtures {
		if strings.EqualFold(m.name, name) {
			return m, nil
		}
	}
	return mixture{}, fmt.Errorf("synth: unknown mixture %q (have %s)", name, strings.Join(Mixtures(), ", "))
}

// role is what a matrix is for, which is what the mixture rules look at.
type role int

const (
	roleOther role = iota
	roleTokenEmbd
	roleOutput
	roleAttnV
	roleAttnQKV
	roleFFNDown
)

// moreBitsLayer reports whether layer i of n gets more bits in the _M
// mixtures: the first and last eighth, and every third layer between.
func moreBitsLayer(i, n int) bool {
	return i < n/8 || i >= 7*n/8 || (i-n/8)%3 == 2
}

// typeFor returns the type of one matrix of cols columns. Quantised types
// whose block does not divide cols fall back as llama.cpp does (K-quants to
// a 32-block type, then F16).
func (m mixture) typeFor(r role, layer, layers, cols int, tied bool) quant.Type {
	if m.base.BlockSize() == 1 {
		return m.base
	}
	t := m.base
	switch {
	case r == roleOutput || (r == roleTokenEmbd && tied):
		// The output projection keeps more precision.
		switch {
		case cols%m.base.BlockSize() != 0:
			t = quant.Q8_0
		case m.base != quant.Q8_0:
			t = quant.Q6_K
		}
	case r == roleAttnV || r == roleFFNDown:
		if m.moreBits != 0 && moreBitsLayer(layer, layers) {
			t = m.moreBits
		}
	case r == roleAttnQKV:
		if m.fusedQKV != 0 {
			t = m.fusedQKV
		}
	}
	if cols%t.BlockSize() == 0 {
		return t
	}
	switch t {
	case quant.Q4_K:
		t = quant.Q5_0
	case quant.Q5_K:
		t = quant.Q5_1
	case quant.Q6_K:
		t = quant.Q8_0
	}
	if cols%t.BlockSize() != 0 {
		return quant.F16
	}
	return t
}
