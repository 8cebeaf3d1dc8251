package synth

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/open-autoglm/autoglm/internal/engine/chat"
	"github.com/open-autoglm/autoglm/internal/engine/gguf"
	"github.com/open-autoglm/autoglm/internal/engine/quant"
	"github.com/open-autoglm/autoglm/internal/engine/tokenizer"
)

func write(t *testing.T, s Spec) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := Write(&b, s); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func open(t *testing.T, data []byte) *gguf.File {
	t.Helper()
	f, err := gguf.Read(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestDeterministic(t *testing.T) {
	s := Spec{Arch: "qwen2", Dim: 32, Layers: 1, Heads: 2, FFN: 64, Vocab: 300, Seed: 1}
	a, b := write(t, s), write(t, s)
	if !bytes.Equal(a, b) {
		t.Error("same spec gave different bytes")
	}
	s.Seed = 2
	if bytes.Equal(a, write(t, s)) {
		t.Error("different seeds gave the same bytes")
	}
}

func TestArchitectures(t *testing.T) {
	tests := []struct {
		spec     Spec
		tensors  []string
		absent   []string
		family   chat.Family
		ropeDim  uint64
		tokModel string
	}{
		{
			spec:     Spec{Arch: "llama", Dim: 64, Layers: 2, Heads: 4, KVHeads: 2, FFN: 96, Vocab: 400, Type: quant.Q8_0, Tokenizer: "llama"},
			tensors:  []string{"token_embd.weight", "output.weight", "blk.1.attn_q.weight", "blk.1.ffn_gate.weight"},
			absent:   []string{"blk.0.attn_q.bias", "blk.0.attn_qkv.weight"},
			family:   chat.Llama2,
			ropeDim:  16,
			tokModel: "llama",
		},
		{
			spec:     Spec{Arch: "qwen2", Dim: 64, Layers: 1, Heads: 4, KVHeads: 2, FFN: 96, Vocab: 300, Tied: true},
			tensors:  []string{"blk.0.attn_q.bias", "blk.0.attn_k.bias", "blk.0.attn_v.bias"},
			absent:   []string{"output.weight"},
			family:   chat.ChatML,
			ropeDim:  16,
			tokModel: "gpt2",
		},
		{
			spec:     Spec{Arch: "chatglm", Dim: 64, Layers: 1, Heads: 4, KVHeads: 2, FFN: 96, Vocab: 300},
			tensors:  []string{"blk.0.attn_qkv.weight", "blk.0.attn_qkv.bias", "blk.0.ffn_up.weight"},
			absent:   []string{"blk.0.ffn_gate.weight", "blk.0.post_ffw_norm.weight"},
			family:   chat.GLM4,
			ropeDim:  8,
			tokModel: "gpt2",
		},
		{
			spec:     Spec{Arch: "glm4", Dim: 64, Layers: 1, Heads: 4, KVHeads: 2, FFN: 96, Vocab: 300},
			tensors:  []string{"blk.0.attn_q.bias", "blk.0.post_attention_norm.weight", "blk.0.post_ffw_norm.weight"},
			absent:   []string{"blk.0.ffn_gate.weight"},
			family:   chat.GLM4,
			ropeDim:  8,
			tokModel: "gpt2",
		},
	}
	for _, tc := range tests {
		t.Run(tc.spec.Arch, func(t *testing.T) {
			f := open(t, write(t, tc.spec))
			for _, name := range tc.tensors {
				if _, ok := f.Tensor(name); !ok {
					t.Errorf("missing %s", name)
				}
			}
			for _, name := range tc.absent {
				if _, ok := f.Tensor(name); ok {
					t.Errorf("unexpected %s", name)
				}
			}
			if ti, _ := f.Tensor("token_embd.weight"); ti.Type != tc.spec.Type || ti.Dims[0] != 64 || ti.Dims[1] != uint64(tc.spec.Vocab) {
				t.Errorf("token_embd %v %v", ti.Type, ti.Dims)
			}
			if v, _ := f.Uint(tc.spec.Arch + ".rope.dimension_count"); v != tc.ropeDim {
				t.Errorf("rope dimension %d, want %d", v, tc.ropeDim)
			}
			tmpl, _ := f.String("tokenizer.chat_template")
			if got := chat.Detect(tmpl).Family; got != tc.family {
				t.Errorf("chat template detected as %s, want %s", got, tc.family)
			}

			tok, err := tokenizer.FromGGUF(f)
			if err != nil {
				t.Fatal(err)
			}
			if tok.VocabSize() != tc.spec.Vocab || tok.Model() != tc.tokModel {
				t.Errorf("tokenizer %s with %d tokens", tok.Model(), tok.VocabSize())
			}
			const text = "hello world, the quick brown fox! 123"
			ids := tok.Encode(text, tokenizer.EncodeOptions{})
			if got := tok.Decode(ids); got != text {
				t.Errorf("round trip %q -> %v -> %q", text, ids, got)
			}
			if len(ids) >= len(text) {
				t.Errorf("merges unused: %d tokens for %d bytes", len(ids), len(text))
			}
		})
	}
}

func TestSpecErrors(t *testing.T) {
	base := Spec{Dim: 64, Layers: 1, Heads: 4, FFN: 96, Vocab: 300}
	for name, mod := range map[string]func(*Spec){
		"arch":         func(s *Spec) { s.Arch = "gpt5" },
		"tokenizer":    func(s *Spec) { s.Tokenizer = "wordpiece" },
		"zero dim":     func(s *Spec) { s.Dim = 0 },
		"heads":        func(s *Spec) { s.KVHeads = 3 },
		"uneven heads": func(s *Spec) { s.Heads = 5 },
		"small vocab":  func(s *Spec) { s.Vocab = 200 },
		"block size":   func(s *Spec) { s.Type = quant.Q4_K },
		"unsupported":  func(s *Spec) { s.Type = quant.Q2_K },
	} {
		s := base
		mod(&s)
		if err := Write(&bytes.Buffer{}, s); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// TestLargeVocab checks the piece generator reaches a Qwen-sized vocabulary
// with unique tokens.
func TestLargeVocab(t *testing.T) {
	if testing.Short() {
		t.Skip("large vocabulary")
	}
	s := Spec{Arch: "qwen2", Dim: 32, Layers: 1, Heads: 2, FFN: 32, Vocab: 151936, Tied: true}
	path := filepath.Join(t.TempDir(), "v.gguf")
	out, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := Write(out, s); err != nil {
		t.Fatal(err)
	}
	out.Close()
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tok, err := tokenizer.FromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	if tok.VocabSize() != 151936 {
		t.Errorf("vocab %d", tok.VocabSize())
	}
}
