package model

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/open-autoglm/autoglm/internal/engine/gguf"
	"github.com/open-autoglm/autoglm/internal/engine/quant"
	"github.com/open-autoglm/autoglm/internal/engine/synth"
)

// TestTiledAttentionMatchesRows runs long prompts through the tiled
// attention (tiles of unequal size, several key and value blocks, a second
// prompt on top of a cached history) and checks every position's logits
// against the same tokens fed one per step, which take the per-row path.
// Group sizes 4 and 3 cover query counts that do and do not fill the
// kernels' four-row tiles; each KV cache type keeps its own rounding in
// both paths.
func TestTiledAttentionMatchesRows(t *testing.T) {
	const first, second = 300, 37
	tokens := longTokens(first + second)
	for _, heads := range []int{8, 6} {
		spec := kvSpec("qwen2")
		spec.Ctx = 512
		spec.Heads = heads
		spec.Dim = 32 * heads
		f := synthFile(t, spec)
		for _, typ := range []quant.Type{KVF32, KVF16, KVQ8_0} {
			t.Run(fmt.Sprintf("heads%d/%v", heads, typ), func(t *testing.T) {
				m := loadModel(t, f, Options{Threads: 2, KVType: typ})
				ctx := context.Background()
				v := m.cfg.Vocab
				step := m.NewCache()
				want := make([]float32, 0, len(tokens)*v)
				for _, tok := range tokens {
					s := &Seq{Cache: step, Tokens: []int32{tok}}
					if err := m.Forward(ctx, []*Seq{s}); err != nil {
						t.Fatal(err)
					}
					want = append(want, s.Logits...)
				}
				c := m.NewCache()
				a := &Seq{Cache: c, Tokens: tokens[:first], AllLogits: true}
				if err := m.Forward(ctx, []*Seq{a}); err != nil {
					t.Fatal(err)
				}
				got := append([]float32(nil), a.Logits...)
				b := &Seq{Cache: c, Tokens: tokens[first:], AllLogits: true}
				if err := m.Forward(ctx, []*Seq{b}); err != nil {
					t.Fatal(err)
				}
				got = append(got, b.Logits...)
				// With an f16 cache the query, keys and values are
				// rounded to f16; a prompt pass and single steps compute
				// them with differently shaped matrix products, whose
				// last-bit differences round some of them to the
				// neighbouring f16 (about 1.6e-4 here, as much when both
				// runs take the per-row path).
				tol := 1e-4
				if typ == KVF16 {
					tol = 1e-3
				}
				worst := 0.0
				for p := range tokens {
					w := make([]float64, v)
					for j, x := range want[p*v : (p+1)*v] {
						w[j] = float64(x)
					}
					e := relErr(got[p*v:(p+1)*v], w)
					worst = max(worst, e)
					if e > tol {
						t.Fatalf("position %d: tiled vs per-row relative error %.3g", p, e)
					}
				}
				t.Logf("largest relative error %.3g", worst)
			})
		}
	}
}

// BenchmarkAttention measures a one-layer model of Qwen2.5-0.5B's attention
// shape (14 query heads of 64, 2 KV heads) whose matrices are small, so
// that attention dominates: a prompt pass of P tokens, and one decoding
// step at position P.
func BenchmarkAttention(b *testing.B) {
	spec := synth.Spec{Arch: "llama", Dim: 896, Layers: 1, Heads: 14, KVHeads: 2, FFN: 128, Vocab: 320,
		Ctx: 2048, Type: quant.Q8_0, Seed: 3}
	f := synthFile(b, spec)
	for _, kv := range []quant.Type{KVF32, KVF16} {
		m := loadModel(b, f, Options{Threads: 1, KVType: kv})
		ctx := context.Background()
		for _, p := range []int{512, 2047} {
			tokens := longTokens(p)
			c := m.NewCache()
			b.Run(fmt.Sprintf("%v/pp%d", kv, p), func(b *testing.B) {
				cpu := cpuTime()
				for b.Loop() {
					c.Reset()
					if err := m.Forward(ctx, []*Seq{{Cache: c, Tokens: tokens}}); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(p)*float64(b.N)/b.Elapsed().Seconds(), "tok/s")
				b.ReportMetric(float64(p)*float64(b.N)/(cpuTime()-cpu).Seconds(), "tok/cpu-s")
			})
			b.Run(fmt.Sprintf("%v/tg@%d", kv, p), func(b *testing.B) {
				c.Reset()
				if err := m.Forward(ctx, []*Seq{{Cache: c, Tokens: tokens}}); err != nil {
					b.Fatal(err)
				}
				cpu := cpuTime()
				for b.Loop() {
					c.Truncate(p)
					if err := m.Forward(ctx, []*Seq{{Cache: c, Tokens: []int32{1}}}); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64((cpuTime()-cpu).Microseconds())/float64(b.N), "cpu-µs/op")
			})
		}
	}
}

// BenchmarkFilePrompts measures prompt processing of the GGUF files in
// AUTOGLM_BENCH_MODELS (comma-separated; skipped when unset) at 128, 512 and
// 2048 tokens with an f16 KV cache (llama-bench's default), at
// AUTOGLM_BENCH_THREADS threads (default 1), in tokens per second and per
// CPU-second: the figure to compare on a machine shared with other work.
func BenchmarkFilePrompts(b *testing.B) {
	list := os.Getenv("AUTOGLM_BENCH_MODELS")
	if list == "" {
		b.Skip("AUTOGLM_BENCH_MODELS not set")
	}
	threads := 1
	if v := os.Getenv("AUTOGLM_BENCH_THREADS"); v != "" {
		threads, _ = strconv.Atoi(v)
	}
	ctx := context.Background()
	for _, path := range strings.Split(list, ",") {
		f, err := gguf.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { f.Close() })
		m := loadModel(b, f, Options{Threads: threads, ContextLength: 2048, KVType: KVF16})
		vocab := m.Config().Vocab
		for _, p := range []int{128, 512, 2048} {
			prompt := make([]int32, p)
			for i := range prompt {
				prompt[i] = int32((i*7919 + 13) % vocab)
			}
			b.Run(fmt.Sprintf("%s/pp%d/t%d", filepath.Base(path), p, threads), func(b *testing.B) {
				c := m.NewCache()
				cpu := cpuTime()
				for b.Loop() {
					c.Reset()
					if err := m.Forward(ctx, []*Seq{{Cache: c, Tokens: prompt}}); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(p*b.N)/b.Elapsed().Seconds(), "tok/s")
				b.ReportMetric(float64(p*b.N)/(cpuTime()-cpu).Seconds(), "tok/cpu-s")
			})
		}
	}
}
