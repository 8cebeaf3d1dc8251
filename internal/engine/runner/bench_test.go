package runner

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/open-autoglm/autoglm/internal/engine/quant"
	"github.com/open-autoglm/autoglm/internal/engine/synth"
)

// benchRunner measures r end to end through Generate, on whatever threads r
// was opened with:
//   - prompt: a promptLen-token prompt and one sampled token (prompt tok/s);
//   - generate: genLen tokens after a 4-token prompt, timed from the first
//     token to the last (generation tok/s of one sequence);
//   - seqsN: N requests of genLen tokens at once, wall time from submission
//     to the last completion (aggregate generation tok/s, prefill included).
func benchRunner(b *testing.B, r *Runner, promptLen, genLen int, concurrency []int) {
	ctx := context.Background()
	vocab := r.Info().VocabSize
	prompt := make([]int32, promptLen)
	for i := range prompt {
		prompt[i] = int32(300 + (i*7919)%(vocab-300)) // clear of the specials at the start
	}

	b.Run("prompt", func(b *testing.B) {
		start := time.Now()
		p := append([]int32(nil), prompt...)
		i := 0
		for b.Loop() {
			// A different first token each time, so that no prefix is
			// found in a cache.
			i++
			p[0] = int32(300 + i%(vocab-300))
			if _, err := r.Generate(ctx, Request{Prompt: p, MaxTokens: 1}, nil); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*promptLen)/time.Since(start).Seconds(), "tok/s")
	})

	b.Run("generate", func(b *testing.B) {
		var tokens int
		var spent time.Duration
		for b.Loop() {
			var first time.Time
			res, err := r.Generate(ctx, Request{Prompt: prompt[:4], MaxTokens: genLen}, func(Event) error {
				if first.IsZero() {
					first = time.Now()
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
			spent += time.Since(first)
			tokens += res.CompletionTokens - 1
		}
		b.ReportMetric(float64(tokens)/spent.Seconds(), "tok/s")
	})

	for _, n := range concurrency {
		b.Run(fmt.Sprintf("seqs%d", n), func(b *testing.B) {
			var tokens int
			start := time.Now()
			for b.Loop() {
				var (
					wg sync.WaitGroup
					mu sync.Mutex
				)
				for i := range n {
					wg.Go(func() {
						// Different prompts, so the sequences really differ.
						p := []int32{prompt[0], prompt[1+i%3], prompt[2], int32(300 + i)}
						res, err := r.Generate(ctx, Request{Prompt: p, MaxTokens: genLen}, nil)
						if err != nil {
							b.Error(err)
						}
						mu.Lock()
						tokens += res.CompletionTokens
						mu.Unlock()
					})
				}
				wg.Wait()
			}
			b.ReportMetric(float64(tokens)/time.Since(start).Seconds(), "tok/s")
		})
	}
}

func BenchmarkStories260K(b *testing.B) {
	r := openStories(b, Options{Threads: 1, Parallel: 8})
	benchRunner(b, r, 128, 128, []int{1, 4, 8})
}

// BenchmarkQwen25Shape runs a random-weight model with Qwen2.5-0.5B's shape
// and Q8_0 weights (about 530 MB, written to a temporary file first);
// skipped under -short.
func BenchmarkQwen25Shape(b *testing.B) {
	if testing.Short() {
		b.Skip("large synthetic model")
	}
	r := openSynth(b, synth.Spec{
		Arch: "qwen2", Dim: 896, Layers: 24, Heads: 14, KVHeads: 2, FFN: 4864,
		Vocab: 151936, Ctx: 32768, Type: quant.Q8_0, Tied: true, Seed: 1,
	}, Options{Threads: 1, Parallel: 4, ContextLength: 1024})
	benchRunner(b, r, 32, 8, []int{1, 4})
}

// BenchmarkChatTTFT plays a 10-turn chat in which every turn resends the
// whole conversation (30 new user tokens a turn, answers of up to 32
// tokens) and reports the time to the first token of the last turn
// (ms/ttft), with prefix reuse and without. The model is a random-weight
// llama of dim 512, 8 layers and Q8_0 weights; the figure scales with the
// model, the ratio between the two is the point.
func BenchmarkChatTTFT(b *testing.B) {
	path := writeSynth(b, synth.Spec{
		Arch: "llama", Dim: 512, Layers: 8, Heads: 8, KVHeads: 2, FFN: 1536,
		Vocab: 8192, Ctx: 2048, Type: quant.Q8_0, Tied: true, Seed: 3,
	})
	for _, mode := range []struct {
		name string
		off  bool
	}{{"reuse", false}, {"no-reuse", true}} {
		b.Run(mode.name, func(b *testing.B) {
			r, err := Open(path, Options{Threads: 1, Parallel: 4, ContextLength: 2048, NoPrefixReuse: mode.off})
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			ctx := context.Background()
			var ttft time.Duration
			var last Result
			conv := 0
			for b.Loop() {
				conv++
				history := []int32{int32(300 + conv%7000)}
				for turn := range 10 {
					for k := range 30 {
						history = append(history, int32(300+(conv*7919+turn*131+k*17)%7800))
					}
					start := time.Now()
					var first time.Duration
					var answer []int32
					res, err := r.Generate(ctx, Request{Prompt: history, MaxTokens: 32}, func(ev Event) error {
						if first == 0 {
							first = time.Since(start)
						}
						answer = append(answer, ev.Token)
						return nil
					})
					if err != nil {
						b.Fatal(err)
					}
					history = append(history, answer...)
					if turn == 9 {
						ttft += first
						last = res
					}
				}
			}
			b.ReportMetric(float64(ttft.Microseconds())/1000/float64(b.N), "ms/ttft")
			b.ReportMetric(float64(last.PromptTokens), "prompt-tokens")
			b.ReportMetric(float64(last.CachedTokens), "cached-tokens")
		})
	}
}
