package model

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/open-autoglm/autoglm/internal/engine/gguf"
	"github.com/open-autoglm/autoglm/internal/engine/quant"
	"github.com/open-autoglm/autoglm/internal/engine/synth"
)

// benchModel measures one model on one thread:
//   - prompt: a promptLen-token prompt in one Forward (tokens/s);
//   - generate: single-token decode steps at positions genStart to
//     genStart+genSpan, then again from genStart;
//   - batchN: one decode step for N sequences at once (tokens/s over all).
func benchModel(b *testing.B, f *gguf.File, promptLen, genStart int) {
	const genSpan = 128
	m := loadModel(b, f, Options{Threads: 1, ContextLength: max(promptLen, genStart+genSpan+8)})
	ctx := context.Background()
	vocab := m.Config().Vocab
	prompt := make([]int32, promptLen)
	for i := range prompt {
		prompt[i] = int32((i*7919 + 13) % vocab)
	}
	report := func(b *testing.B, tokens int, start time.Time) {
		b.ReportMetric(float64(tokens)/time.Since(start).Seconds(), "tok/s")
	}

	b.Run("prompt", func(b *testing.B) {
		s := &Seq{Tokens: prompt}
		c := m.NewCache()
		start := time.Now()
		for b.Loop() {
			c.Reset()
			s.Cache = c
			if err := m.Forward(ctx, []*Seq{s}); err != nil {
				b.Fatal(err)
			}
		}
		report(b, b.N*promptLen, start)
	})

	b.Run("generate", func(b *testing.B) {
		c := m.NewCache()
		if err := m.Forward(ctx, []*Seq{{Cache: c, Tokens: prompt[:genStart]}}); err != nil {
			b.Fatal(err)
		}
		s := &Seq{Cache: c, Tokens: []int32{1}}
		start := time.Now()
		for b.Loop() {
			if c.Len() == genStart+genSpan {
				c.Truncate(genStart)
			}
			if err := m.Forward(ctx, []*Seq{s}); err != nil {
				b.Fatal(err)
			}
		}
		report(b, b.N, start)
	})

	for _, n := range []int{4, 8} {
		b.Run("batch"+string(rune('0'+n)), func(b *testing.B) {
			seqs := make([]*Seq, n)
			for i := range seqs {
				c := m.NewCache()
				if err := m.Forward(ctx, []*Seq{{Cache: c, Tokens: prompt[:genStart+i]}}); err != nil {
					b.Fatal(err)
				}
				seqs[i] = &Seq{Cache: c, Tokens: []int32{int32(i + 1)}}
			}
			start := time.Now()
			for b.Loop() {
				for i, s := range seqs {
					if s.Cache.Len() >= genStart+genSpan {
						s.Cache.Truncate(genStart + i)
					}
				}
				if err := m.Forward(ctx, seqs); err != nil {
					b.Fatal(err)
				}
			}
			report(b, b.N*n, start)
		})
	}
}

func BenchmarkStories260K(b *testing.B) {
	benchModel(b, openStories(b), 64, 16)
}

// BenchmarkQwen25Shape runs a random-weight model with Qwen2.5-0.5B's
// shape and Q8_0 weights (about 530 MB); skipped under -short.
func BenchmarkQwen25Shape(b *testing.B) {
	if testing.Short() {
		b.Skip("large synthetic model")
	}
	f := synthFile(b, synth.Spec{
		Arch: "qwen2", Dim: 896, Layers: 24, Heads: 14, KVHeads: 2, FFN: 4864,
		Vocab: 151936, Ctx: 32768, Type: quant.Q8_0, Tied: true, Seed: 1,
	})
	benchModel(b, f, 32, 16)
}

// BenchmarkFiles measures the GGUF files listed in AUTOGLM_BENCH_MODELS
// (comma-separated; skipped when unset) the way llama-bench does: pp128 is
// one 128-token prompt from an empty cache, tg32 is 32 single-token steps
// from an empty cache. AUTOGLM_BENCH_THREADS sets the thread count
// (default 1). Compare with llama-bench -p 128 -n 32 -t N in the same run.
func BenchmarkFiles(b *testing.B) {
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
		m := loadModel(b, f, Options{Threads: threads, ContextLength: 256})
		b.Cleanup(func() { f.Close() })
		vocab := m.Config().Vocab
		prompt := make([]int32, 128)
		for i := range prompt {
			prompt[i] = int32((i*7919 + 13) % vocab)
		}
		name := filepath.Base(path)
		b.Run(name+"/pp128", func(b *testing.B) {
			c := m.NewCache()
			cpu := cpuTime()
			for b.Loop() {
				c.Reset()
				if err := m.Forward(ctx, []*Seq{{Cache: c, Tokens: prompt}}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(128*b.N)/b.Elapsed().Seconds(), "tok/s")
			b.ReportMetric(float64(128*b.N)/(cpuTime()-cpu).Seconds(), "tok/cpu-s")
		})
		b.Run(name+"/tg32", func(b *testing.B) {
			c := m.NewCache()
			cpu := cpuTime()
			defer func() {
				b.ReportMetric(float64(32*b.N)/(cpuTime()-cpu).Seconds(), "tok/cpu-s")
			}()
			for b.Loop() {
				c.Reset()
				for i := range 32 {
					if err := m.Forward(ctx, []*Seq{{Cache: c, Tokens: prompt[i : i+1]}}); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(32*b.N)/b.Elapsed().Seconds(), "tok/s")
		})
	}
}
