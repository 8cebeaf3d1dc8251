package grammar

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/open-autoglm/autoglm/internal/engine/gguf"
	"github.com/open-autoglm/autoglm/internal/engine/model"
	"github.com/open-autoglm/autoglm/internal/engine/quant"
	"github.com/open-autoglm/autoglm/internal/engine/synth"
	"github.com/open-autoglm/autoglm/internal/engine/tokenizer"
)

// BenchmarkMaskVsDecodeStep puts the constraint's cost beside a decode step in one run, on a
// random-weight model of Qwen2.5-0.5B's shape (Q8_0, 151,936-token byte-level BPE vocabulary,
// one thread): the mean decode step, the mean mask+accept per token over constrained
// generations of personSchema (fresh mask cache per generation), and the worst single mask
// (a string state seen for the first time). Run with -benchtime 1x; skipped under -short.
func BenchmarkMaskVsDecodeStep(b *testing.B) {
	if testing.Short() {
		b.Skip("large synthetic model")
	}
	path := filepath.Join(b.TempDir(), "qwen-shape.gguf")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := synth.Write(f, synth.Spec{Arch: "qwen2", Dim: 896, Layers: 24, Heads: 14, KVHeads: 2, FFN: 4864,
		Vocab: 151936, Ctx: 4096, Type: quant.Q8_0, Tied: true, Seed: 1}); err != nil {
		b.Fatal(err)
	}
	f.Close()
	gf, err := gguf.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer gf.Close()
	tok, err := tokenizer.FromGGUF(gf)
	if err != nil {
		b.Fatal(err)
	}
	m, err := model.Load(gf, model.Options{ContextLength: 512, Threads: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	pieces := make([]string, tok.VocabSize())
	var eog []int32
	for id := range int32(len(pieces)) {
		switch {
		case tok.IsEOG(id):
			eog = append(eog, id)
		case !tok.IsControl(id):
			pieces[id] = tok.DecodeWith([]int32{id}, tokenizer.DecodeOptions{Continuation: true})
		}
	}
	t0 := time.Now()
	v := NewVocab(pieces, eog)
	vocabBuild := time.Since(t0)
	g, err := Compile([]byte(personSchema))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		// Decode steps.
		seq := &model.Seq{Cache: m.NewCache(), Tokens: tok.Encode("Once upon a time, there was", tokenizer.EncodeOptions{})}
		if err := m.Forward(context.Background(), []*model.Seq{seq}); err != nil {
			b.Fatal(err)
		}
		const steps = 5
		start := time.Now()
		for i := range steps {
			seq.Tokens = []int32{int32(100 + i)}
			if err := m.Forward(context.Background(), []*model.Seq{seq}); err != nil {
				b.Fatal(err)
			}
		}
		step := time.Since(start) / steps

		// Constrained generations with random logits.
		r := rand.New(rand.NewPCG(3, 3))
		logits := make([]float32, len(pieces))
		var maskTime, worst time.Duration
		tokens := 0
		for range 3 {
			c := NewConstraint(g, v)
			st := c.Start()
			for range 150 {
				for i := range logits {
					logits[i] = float32(r.NormFloat64())
				}
				for _, e := range eog {
					logits[e] += 4
				}
				t := time.Now()
				st.Mask(logits)
				d := time.Since(t)
				maskTime += d
				worst = max(worst, d)
				best, bestV := int32(-1), float32(-1e30)
				for i, x := range logits {
					if x > bestV {
						best, bestV = int32(i), x
					}
				}
				tokens++
				if st.Done() && tok.IsEOG(best) {
					break
				}
				t = time.Now()
				st.Accept(best)
				maskTime += time.Since(t)
			}
		}
		perToken := maskTime / time.Duration(tokens)
		b.ReportMetric(float64(step.Microseconds())/1000, "decode-ms/step")
		b.ReportMetric(float64(perToken.Microseconds())/1000, "mask-ms/token")
		b.ReportMetric(float64(worst.Microseconds())/1000, "worst-mask-ms")
		b.ReportMetric(100*float64(perToken)/float64(step), "mask-%-of-step")
		b.ReportMetric(float64(vocabBuild.Milliseconds()), "vocab-build-ms")
	}
}
