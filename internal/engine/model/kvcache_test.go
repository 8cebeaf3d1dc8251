package model

import (
	"context"
	"strings"
	"testing"

	"github.com/open-autoglm/autoglm/internal/engine/quant"
	"github.com/open-autoglm/autoglm/internal/engine/synth"
)

// kvSpec has a head size of 32, so that every KV cache type applies, and
// grouped-query attention (4 query heads per KV head).
// kvSpec is a small model with F32 weights: F32 products keep activations in
// f32, so the differences the tests see come from the cache's rounding alone
// (with quantised weights, activations are rounded to 8 bits per product, and
// a key rounded to f16 can move an activation across a rounding step).
func kvSpec(arch string) synth.Spec {
	return synth.Spec{Arch: arch, Dim: 256, Layers: 2, Heads: 8, KVHeads: 2, FFN: 128, Vocab: 320, Ctx: 128, Type: quant.F32, Seed: 11}
}

// runSteps feeds tokens to a fresh cache, first in one prompt pass of
// prompt tokens, then one token per step, and returns every position's
// logits.
func runSteps(t *testing.T, m *Model, tokens []int32, prompt int) []float32 {
	t.Helper()
	c := m.NewCache()
	var all []float32
	s := &Seq{Cache: c, Tokens: tokens[:prompt], AllLogits: true}
	if err := m.Forward(context.Background(), []*Seq{s}); err != nil {
		t.Fatal(err)
	}
	all = append(all, s.Logits...)
	for i := prompt; i < len(tokens); i++ {
		s.Tokens = tokens[i : i+1]
		if err := m.Forward(context.Background(), []*Seq{s}); err != nil {
			t.Fatal(err)
		}
		all = append(all, s.Logits...)
	}
	return all
}

func longTokens(n int) []int32 {
	out := make([]int32, n)
	for i := range out {
		out[i] = int32((i*37 + 11) % 320)
	}
	return out
}

// TestKVCacheTypes compares f16 and q8_0 caches with the f32 cache over a
// 40-token sequence (a 24-token prompt, then 16 single steps, so the cache
// also grows twice): the logits stay within 1% (f16) and 5% (q8_0) of the
// largest f32 logit. Rounding the keys and values gives about 0.05% (f16)
// and 1–2% (q8_0) on these random models; the f32 cache is exact.
func TestKVCacheTypes(t *testing.T) {
	tokens := longTokens(40)
	for _, arch := range []string{"llama", "qwen2", "glm4"} {
		t.Run(arch, func(t *testing.T) {
			f := synthFile(t, kvSpec(arch))
			ref := runSteps(t, loadModel(t, f, Options{Threads: 2}), tokens, 24)
			w := make([]float64, len(ref))
			for i, v := range ref {
				w[i] = float64(v)
			}
			for _, tc := range []struct {
				typ quant.Type
				tol float64
			}{{KVF32, 0}, {KVF16, 0.01}, {KVQ8_0, 0.05}} {
				got := runSteps(t, loadModel(t, f, Options{Threads: 2, KVType: tc.typ}), tokens, 24)
				e := relErr(got, w)
				if e > tc.tol {
					t.Errorf("%v cache: relative error %.3g > %.3g", tc.typ, e, tc.tol)
				}
				t.Logf("%v cache: relative error %.3g", tc.typ, e)
			}
		})
	}
}

// TestKVCacheTypesBatched checks, for every cache type, that sequences
// batched together get the logits they get alone.
func TestKVCacheTypesBatched(t *testing.T) {
	f := synthFile(t, kvSpec("qwen2"))
	for _, typ := range []quant.Type{KVF32, KVF16, KVQ8_0} {
		t.Run(typ.String(), func(t *testing.T) {
			m := loadModel(t, f, Options{Threads: 3, KVType: typ})
			ctx := context.Background()
			histories := [][]int32{longTokens(20), longTokens(7), {5}}
			steps := [][]int32{{11, 12, 13}, {14}, {15, 16}}
			var want [][]float32
			for i := range histories {
				c := m.NewCache()
				if err := m.Forward(ctx, []*Seq{{Cache: c, Tokens: histories[i]}}); err != nil {
					t.Fatal(err)
				}
				s := &Seq{Cache: c, Tokens: steps[i], AllLogits: true}
				if err := m.Forward(ctx, []*Seq{s}); err != nil {
					t.Fatal(err)
				}
				want = append(want, s.Logits)
			}
			var prefill, seqs []*Seq
			for i := range histories {
				c := m.NewCache()
				prefill = append(prefill, &Seq{Cache: c, Tokens: histories[i]})
				seqs = append(seqs, &Seq{Cache: c, Tokens: steps[i], AllLogits: true})
			}
			if err := m.Forward(ctx, prefill); err != nil {
				t.Fatal(err)
			}
			if err := m.Forward(ctx, seqs); err != nil {
				t.Fatal(err)
			}
			for i, s := range seqs {
				w := make([]float64, len(want[i]))
				for j, v := range want[i] {
					w[j] = float64(v)
				}
				if e := relErr(s.Logits, w); e > 1e-5 {
					t.Errorf("seq %d: batched vs alone relative error %.3g", i, e)
				}
			}
		})
	}
}

func TestKVCacheMemory(t *testing.T) {
	f := synthFile(t, kvSpec("llama"))
	// 2 layers × 2 KV heads × 32 values, keys and values.
	for typ, want := range map[quant.Type]int64{KVF32: 2 * 2 * 2 * 32 * 4, KVF16: 2 * 2 * 2 * 32 * 2, KVQ8_0: 2 * 2 * 2 * 34} {
		m := loadModel(t, f, Options{KVType: typ})
		if got := m.KVBytesPerPosition(); got != want {
			t.Errorf("%v: %d bytes per position, want %d", typ, got, want)
		}
		c := m.NewCache()
		if c.Bytes() != 0 {
			t.Errorf("%v: empty cache holds %d bytes", typ, c.Bytes())
		}
		if err := m.Forward(context.Background(), []*Seq{{Cache: c, Tokens: longTokens(20)}}); err != nil {
			t.Fatal(err)
		}
		if c.Bytes() < 20*want || c.Bytes() > 128*want {
			t.Errorf("%v: %d bytes after 20 positions", typ, c.Bytes())
		}
	}
}

func TestKVTypeErrors(t *testing.T) {
	f := synthFile(t, smallSpec("llama", quant.F32)) // head size 16
	if _, err := Load(f, Options{KVType: KVQ8_0}); err == nil || !strings.Contains(err.Error(), "multiple of 32") {
		t.Errorf("q8_0 cache with head size 16: %v", err)
	}
	if _, err := Load(f, Options{KVType: quant.Q4_0}); err == nil {
		t.Error("Q4_0 cache accepted")
	}
	for name, want := range map[string]quant.Type{"f32": KVF32, "": KVF32, "F16": KVF16, "q8_0": KVQ8_0} {
		if got, err := ParseKVType(name); err != nil || got != want {
			t.Errorf("ParseKVType(%q) = %v, %v", name, got, err)
		}
	}
	if _, err := ParseKVType("q4_0"); err == nil {
		t.Error("ParseKVType(q4_0) accepted")
	}
}

// TestInspectKVBytes: the memory estimate read from the file alone (what `models show`
// prints) is what a loaded model's cache takes, for every KV cache type; a type the model
// cannot use is refused.
func TestInspectKVBytes(t *testing.T) {
	f := synthFile(t, kvSpec("llama"))
	s, err := Inspect(f)
	if err != nil {
		t.Fatal(err)
	}
	for typ, perPos := range map[quant.Type]int64{KVF32: 2 * 2 * 2 * 32 * 4, KVF16: 2 * 2 * 2 * 32 * 2, KVQ8_0: 2 * 2 * 2 * 34} {
		got, err := s.KVBytes(100, typ)
		m := loadModel(t, f, Options{KVType: typ})
		if err != nil || got != 100*perPos || got != 100*m.KVBytesPerPosition() {
			t.Errorf("%v: estimate %d (%v), want %d", typ, got, err, 100*perPos)
		}
	}
	small, err := Inspect(synthFile(t, smallSpec("llama", quant.F32))) // head size 16
	if err != nil {
		t.Fatal(err)
	}
	if _, err := small.KVBytes(100, KVQ8_0); err == nil || !strings.Contains(err.Error(), "multiple of 32") {
		t.Errorf("q8_0 estimate with head size 16: %v", err)
	}
}
