package runner

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/open-autoglm/autoglm/internal/engine/quant"
	"github.com/open-autoglm/autoglm/internal/engine/synth"
)

// writeSynth writes a random-weight model to a temporary file.
func writeSynth(tb testing.TB, spec synth.Spec) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "model.gguf")
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	if err := synth.Write(f, spec); err != nil {
		tb.Fatal(err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
	return path
}

func openSynth(tb testing.TB, spec synth.Spec, opt Options) *Runner {
	tb.Helper()
	r, err := Open(writeSynth(tb, spec), opt)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { r.Close() })
	return r
}

func TestSynthArchitectures(t *testing.T) {
	for _, tc := range []struct {
		spec     synth.Spec
		template string
	}{
		{synth.Spec{Arch: "qwen2", Dim: 64, Layers: 2, Heads: 4, KVHeads: 2, FFN: 96, Vocab: 400, Type: quant.Q8_0, Tied: true, Seed: 1}, "chatml"},
		{synth.Spec{Arch: "glm4", Dim: 64, Layers: 2, Heads: 4, KVHeads: 2, FFN: 96, Vocab: 400, Type: quant.Q4_0, Seed: 2}, "glm4"},
		{synth.Spec{Arch: "llama", Dim: 64, Layers: 2, Heads: 4, FFN: 96, Vocab: 400, Tokenizer: "llama", Seed: 3}, ""},
	} {
		t.Run(tc.spec.Arch, func(t *testing.T) {
			r := openSynth(t, tc.spec, Options{Parallel: 3, PrefillChunk: 8})
			info := r.Info()
			if info.Arch != tc.spec.Arch || info.VocabSize != tc.spec.Vocab || info.EmbeddingDim != 64 || info.ContextLength != 512 {
				t.Errorf("info %+v", info)
			}
			if tc.template != "" && info.Template != tc.template {
				t.Errorf("template %q, want %q", info.Template, tc.template)
			}
			prompts := []string{"hello world, this is a longer prompt that needs several chunks", "abc", "the quick brown fox"}
			alone := make([]generated, len(prompts))
			for i, p := range prompts {
				alone[i] = gen(r, Request{Prompt: encode(r, p), MaxTokens: 12})
				if alone[i].err != nil {
					t.Fatal(alone[i].err)
				}
			}
			together := make([]generated, len(prompts))
			var wg sync.WaitGroup
			for i, p := range prompts {
				wg.Go(func() { together[i] = gen(r, Request{Prompt: encode(r, p), MaxTokens: 12}) })
			}
			wg.Wait()
			for i := range prompts {
				if together[i].err != nil {
					t.Fatal(together[i].err)
				}
				// Only the prompt tokens found in a cache may differ.
				together[i].res.CachedTokens, alone[i].res.CachedTokens = 0, 0
				if together[i].res != alone[i].res {
					t.Errorf("prompt %d: batched %+v, alone %+v", i, together[i].res, alone[i].res)
				}
				if together[i].text != alone[i].text {
					t.Errorf("prompt %d:\n batched %q %v\n   alone %q %v", i, together[i].text, together[i].tokens, alone[i].text, alone[i].tokens)
				}
			}
			emb, err := r.Embed(context.Background(), [][]int32{encode(r, prompts[0]), encode(r, prompts[1])})
			if err != nil || len(emb) != 2 || len(emb[0]) != 64 {
				t.Errorf("Embed: %d vectors, %v", len(emb), err)
			}
		})
	}
}
