package local

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/open-autoglm/autoglm/api"
	"github.com/open-autoglm/autoglm/internal/apierr"
	"github.com/open-autoglm/autoglm/internal/backend"
	"github.com/open-autoglm/autoglm/internal/config"
	"github.com/open-autoglm/autoglm/internal/engine/synth"
	"github.com/open-autoglm/autoglm/internal/engine/tokenizer"
)

func openSynth(t *testing.T, spec synth.Spec) *Backend {
	t.Helper()
	var buf bytes.Buffer
	if err := synth.Write(&buf, spec); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "m.gguf")
	if err := os.WriteFile(p, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := Open(config.Backend{Type: "local", Path: p, Model: "m", Parallel: 2, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// TestFIMPrompts builds models whose vocabularies carry each convention's FIM tokens (or
// name arbitrary tokens in the metadata) and checks the exact prompt token sequence.
func TestFIMPrompts(t *testing.T) {
	base := synth.Spec{Arch: "qwen2", Dim: 32, Layers: 1, Heads: 2, FFN: 32, Vocab: 600, Seed: 3}
	cases := []struct {
		name          string
		tokenizer     string
		specials      []string
		meta          map[string]any
		pre, suf, mid string // token texts expected in the prompt
	}{
		{"qwen", "", []string{"<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"}, nil, "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"},
		{"deepseek", "", []string{"<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>"}, nil, "<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>"},
		{"starcoder", "", []string{"<fim_prefix>", "<fim_middle>", "<fim_suffix>"}, nil, "<fim_prefix>", "<fim_suffix>", "<fim_middle>"},
		{"codellama", "llama", []string{"▁<PRE>", "▁<SUF>", "▁<MID>", "▁<EOT>"}, nil, "▁<PRE>", "▁<SUF>", "▁<MID>"},
		// Metadata wins over spellings: ids 256+3.. are the specials after qwen2's three.
		{"metadata", "", []string{"<A>", "<B>", "<C>", "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"},
			map[string]any{"tokenizer.ggml.fim_pre_token_id": uint32(0), "tokenizer.ggml.fim_suf_token_id": uint32(0), "tokenizer.ggml.fim_mid_token_id": uint32(0)},
			"<C>", "<A>", "<B>"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec := base
			spec.Specials, spec.Tokenizer = tc.specials, tc.tokenizer
			if tc.tokenizer == "llama" {
				spec.Arch = "llama"
			}
			if tc.meta != nil {
				// Find the ids the specials will get: write once, look them up, write again.
				probe := openSynth(t, spec)
				ids := map[string]uint32{}
				for _, s := range []string{"<A>", "<B>", "<C>"} {
					id, _ := probe.r.Tokenizer().Lookup(s)
					ids[s] = uint32(id)
				}
				spec.Metadata = map[string]any{"tokenizer.ggml.fim_pre_token_id": ids["<C>"],
					"tokenizer.ggml.fim_suf_token_id": ids["<A>"], "tokenizer.ggml.fim_mid_token_id": ids["<B>"]}
			}
			b := openSynth(t, spec)
			tok := b.r.Tokenizer()
			id := func(s string) int32 {
				v, ok := tok.Lookup(s)
				if !ok {
					t.Fatalf("%q not in the vocabulary", s)
				}
				return v
			}
			prefix, suffix := "func add(a, b int) int {\n\treturn ", "\n}\n"
			got, err := b.fimPrompts(api.TextInput(prefix), suffix)
			if err != nil {
				t.Fatal(err)
			}
			var want []int32
			if tok.AddBOS() {
				want = append(want, tok.BOS())
			}
			want = append(want, id(tc.pre))
			want = append(want, tok.Encode(prefix, tokenizer.EncodeOptions{})...)
			want = append(want, id(tc.suf))
			want = append(want, tok.Encode(suffix, tokenizer.EncodeOptions{})...)
			want = append(want, id(tc.mid))
			if !slices.Equal(got[0], want) {
				t.Errorf("prompt %v\nwant   %v", got[0], want)
			}
			// Through the API: the prompt is what usage counts; the answer generates.
			body := `{"model":"m","prompt":"func add(a, b int) int {\n\treturn ","suffix":"\n}\n","max_tokens":4,"temperature":0}`
			resp, err := b.Do(t.Context(), &backend.Request{Op: backend.OpCompletion, Body: []byte(body)})
			if err != nil {
				t.Fatal(err)
			}
			data, _ := io.ReadAll(resp.Body)
			var c api.Completion
			if resp.StatusCode != 200 || json.Unmarshal(data, &c) != nil || c.Usage.PromptTokens != len(want) {
				t.Errorf("completion with suffix: %d %s (want %d prompt tokens)", resp.StatusCode, data, len(want))
			}
		})
	}
}

func TestFIMRefusedWithoutTokens(t *testing.T) {
	b := openSynth(t, synth.Spec{Arch: "qwen2", Dim: 32, Layers: 1, Heads: 2, FFN: 32, Vocab: 400, Seed: 3})
	_, err := b.fimPrompts(api.TextInput("a"), "b")
	if e := apierr.From(err); e.Code != "fim_unsupported" || e.HTTPStatus() != 400 {
		t.Errorf("err = %v", err)
	}
	// Text that spells FIM markers is not parsed as them.
	b = openSynth(t, synth.Spec{Arch: "qwen2", Dim: 32, Layers: 1, Heads: 2, FFN: 32, Vocab: 600, Seed: 3,
		Specials: []string{"<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"}})
	got, err := b.fimPrompts(api.TextInput("x<|fim_middle|>y"), "")
	if err != nil {
		t.Fatal(err)
	}
	mid, _ := b.r.Tokenizer().Lookup("<|fim_middle|>")
	if n := slices.Index(got[0], mid); n != len(got[0])-1 {
		t.Errorf("FIM marker in the prefix text became a control token: %v", got[0])
	}
}
