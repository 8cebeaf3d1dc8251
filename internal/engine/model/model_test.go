package model

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/open-autoglm/autoglm/internal/engine/gguf"
	"github.com/open-autoglm/autoglm/internal/engine/hugepage"
	"github.com/open-autoglm/autoglm/internal/engine/quant"
	"github.com/open-autoglm/autoglm/internal/engine/synth"
)

// synthFile writes a synthetic model to a temporary file and opens it.
func synthFile(tb testing.TB, s synth.Spec) *gguf.File {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "model.gguf")
	out, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	if err := synth.Write(out, s); err != nil {
		tb.Fatal(err)
	}
	if err := out.Close(); err != nil {
		tb.Fatal(err)
	}
	f, err := gguf.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { f.Close() })
	return f
}

func loadModel(tb testing.TB, f *gguf.File, opt Options) *Model {
	tb.Helper()
	m, err := Load(f, opt)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { m.Close() })
	return m
}

// smallSpec is a model small enough for the float64 reference: GQA with
// two query heads per kv head, and for K-quants rows of 256.
func smallSpec(arch string, typ quant.Type) synth.Spec {
	s := synth.Spec{Arch: arch, Dim: 64, Layers: 2, Heads: 4, KVHeads: 2, FFN: 96, Vocab: 320, Ctx: 64, Type: typ, Seed: 7}
	if typ.BlockSize() == 256 {
		s.Dim, s.Heads, s.KVHeads, s.FFN = 256, 4, 2, 256
	}
	return s
}

var testTokens = []int32{3, 17, 250, 101, 99, 5, 300, 42, 7, 8, 64, 200}

// relErr is max|got-want| / max|want| over all values.
func relErr(got []float32, want []float64) float64 {
	var diff, scale float64
	for i, w := range want {
		diff = math.Max(diff, math.Abs(float64(got[i])-w))
		scale = math.Max(scale, math.Abs(w))
	}
	return diff / scale
}

func TestMatchesReference(t *testing.T) {
	cases := []struct {
		arch string
		typ  quant.Type
		tol  float64
		tied bool
	}{
		{"llama", quant.F32, 1e-4, false},
		{"qwen2", quant.F32, 1e-4, true},
		{"chatglm", quant.F32, 1e-4, false},
		{"glm4", quant.F32, 1e-4, false},
		// Quantised weights: the reference uses the dequantised values, so
		// only float32 rounding separates them.
		{"llama", quant.Q8_0, 1e-4, false},
		{"qwen2", quant.Q8_0, 1e-4, false},
		{"glm4", quant.Q8_0, 1e-4, false},
		{"llama", quant.Q4_K, 1e-4, false},
		{"chatglm", quant.Q4_K, 1e-4, false},
		{"qwen2", quant.Q6_K, 1e-4, true},
		// Q4_0 and F16 go through the packed tiles where the CPU has
		// them, Q8_0 (above) through its copy in huge pages.
		{"llama", quant.Q4_0, 1e-4, false},
		{"qwen2", quant.F16, 1e-4, false},
	}
	for _, tc := range cases {
		t.Run(tc.arch+"/"+tc.typ.String(), func(t *testing.T) {
			s := smallSpec(tc.arch, tc.typ)
			s.Tied = tc.tied
			f := synthFile(t, s)
			m := loadModel(t, f, Options{Threads: 2})
			copied := tc.typ == quant.Q4_0 || tc.typ == quant.F16 || tc.typ == quant.Q8_0 && hugepage.Available()
			if copied && quant.Kernels() == "avx512vnni" && m.PackedBytes() == 0 {
				t.Errorf("no %v weights packed on an AVX-512 VNNI CPU", tc.typ)
			}
			// The mapped pages of what was copied are given back: the
			// logits below are computed from the copies alone.
			if (m.PackedBytes() == 0) != (m.ReleasedBytes() == 0) {
				t.Errorf("%d bytes packed, %d mapped bytes released", m.PackedBytes(), m.ReleasedBytes())
			}
			ref := loadRef(t, f)
			want, _ := ref.forward(testTokens)

			seq := &Seq{Cache: m.NewCache(), Tokens: testTokens, AllLogits: true}
			if err := m.Forward(context.Background(), []*Seq{seq}); err != nil {
				t.Fatal(err)
			}
			v := m.Config().Vocab
			worst := 0.0
			for i := range testTokens {
				worst = math.Max(worst, relErr(seq.Logits[i*v:(i+1)*v], want[i]))
			}
			if worst > tc.tol {
				t.Errorf("prompt pass: relative error %.3g > %g", worst, tc.tol)
			}

			// Token by token through the cache: the single-row kernels.
			c := m.NewCache()
			worst = 0
			for i, tok := range testTokens {
				s := &Seq{Cache: c, Tokens: []int32{tok}}
				if err := m.Forward(context.Background(), []*Seq{s}); err != nil {
					t.Fatal(err)
				}
				worst = math.Max(worst, relErr(s.Logits, want[i]))
			}
			if worst > tc.tol {
				t.Errorf("incremental: relative error %.3g > %g", worst, tc.tol)
			}
			t.Logf("relative error %.2g", worst)
		})
	}
}

func TestConfig(t *testing.T) {
	for _, tc := range []struct {
		arch    string
		rope    RopeStyle
		ropeDim int
	}{
		{"llama", RopeAdjacent, 16},
		{"qwen2", RopeHalves, 16},
		{"chatglm", RopeAdjacent, 8},
		{"glm4", RopeAdjacent, 8},
	} {
		s := smallSpec(tc.arch, quant.F32)
		s.Tied = true
		m := loadModel(t, synthFile(t, s), Options{ContextLength: 32, Threads: 1})
		c := m.Config()
		if c.Arch != tc.arch || c.Dim != 64 || c.Layers != 2 || c.Heads != 4 || c.KVHeads != 2 || c.HeadDim != 16 ||
			c.FFN != 96 || c.Vocab != 320 || c.ContextLength != 32 || c.TrainContext != 64 || !c.TiedOutput ||
			c.RopeStyle != tc.rope || c.RopeDim != tc.ropeDim || c.Threads != 1 || c.WeightType != quant.F32 {
			t.Errorf("%s: config %+v", tc.arch, c)
		}
	}
}

func TestBatchMatchesSingle(t *testing.T) {
	for _, arch := range []string{"llama", "qwen2", "chatglm", "glm4"} {
		t.Run(arch, func(t *testing.T) {
			m := loadModel(t, synthFile(t, smallSpec(arch, quant.Q8_0)), Options{Threads: 3})
			ctx := context.Background()
			histories := [][]int32{testTokens[:5], testTokens[:9], nil}
			steps := [][]int32{{11, 12, 13}, {14}, {15, 16, 17, 18}}

			// Alone: each sequence's history, then its step.
			var want [][]float32
			for i := range histories {
				c := m.NewCache()
				if len(histories[i]) > 0 {
					if err := m.Forward(ctx, []*Seq{{Cache: c, Tokens: histories[i]}}); err != nil {
						t.Fatal(err)
					}
				}
				s := &Seq{Cache: c, Tokens: steps[i], AllLogits: true}
				if err := m.Forward(ctx, []*Seq{s}); err != nil {
					t.Fatal(err)
				}
				want = append(want, s.Logits)
			}

			// Together: histories batched, then the steps batched.
			var seqs []*Seq
			var prefill []*Seq
			for i := range histories {
				s := &Seq{Cache: m.NewCache(), AllLogits: true}
				if len(histories[i]) > 0 {
					prefill = append(prefill, &Seq{Cache: s.Cache, Tokens: histories[i]})
				}
				seqs = append(seqs, s)
			}
			if err := m.Forward(ctx, prefill); err != nil {
				t.Fatal(err)
			}
			for i, s := range seqs {
				s.Tokens = steps[i]
			}
			if err := m.Forward(ctx, seqs); err != nil {
				t.Fatal(err)
			}
			for i, s := range seqs {
				if s.Cache.Len() != len(histories[i])+len(steps[i]) {
					t.Errorf("seq %d: cache length %d", i, s.Cache.Len())
				}
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

func TestThreadsBitIdentical(t *testing.T) {
	f := synthFile(t, smallSpec("qwen2", quant.Q8_0))
	var results [][]float32
	for _, threads := range []int{1, 2, 5} {
		m := loadModel(t, f, Options{Threads: threads})
		s := &Seq{Cache: m.NewCache(), Tokens: testTokens, AllLogits: true}
		if err := m.Forward(context.Background(), []*Seq{s}); err != nil {
			t.Fatal(err)
		}
		results = append(results, s.Logits)
	}
	for i := 1; i < len(results); i++ {
		for j := range results[0] {
			if results[i][j] != results[0][j] {
				t.Fatalf("thread count changed logit %d: %v vs %v", j, results[i][j], results[0][j])
			}
		}
	}
}

func TestEmbedding(t *testing.T) {
	f := synthFile(t, smallSpec("llama", quant.F32))
	m := loadModel(t, f, Options{Threads: 2})
	ref := loadRef(t, f)
	_, hidden := ref.forward(testTokens)
	want := make([]float64, len(hidden[0]))
	for _, h := range hidden {
		for i, v := range h {
			want[i] += v
		}
	}
	var norm float64
	for _, v := range want {
		norm += v * v
	}
	for i := range want {
		want[i] /= math.Sqrt(norm)
	}
	s := &Seq{Cache: m.NewCache(), Tokens: testTokens, Embed: true}
	if err := m.Forward(context.Background(), []*Seq{s}); err != nil {
		t.Fatal(err)
	}
	if len(s.Embedding) != m.Config().Dim || len(s.Logits) != m.Config().Vocab {
		t.Fatalf("embedding %d values, logits %d", len(s.Embedding), len(s.Logits))
	}
	if e := relErr(s.Embedding, want); e > 1e-4 {
		t.Errorf("embedding relative error %.3g", e)
	}
}

func TestForwardErrors(t *testing.T) {
	m := loadModel(t, synthFile(t, smallSpec("llama", quant.F32)), Options{ContextLength: 8, Threads: 2})
	other := loadModel(t, synthFile(t, smallSpec("llama", quant.F32)), Options{Threads: 1})
	ctx := context.Background()
	c := m.NewCache()
	if err := m.Forward(ctx, []*Seq{{Cache: c, Tokens: []int32{1, 2, 3, 4, 5, 6}}}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		seqs []*Seq
		is   error
	}{
		{"overflow", []*Seq{{Cache: c, Tokens: []int32{1, 2, 3}}}, ErrContextFull},
		{"overflow in second seq", []*Seq{{Cache: m.NewCache(), Tokens: []int32{1}}, {Cache: c, Tokens: []int32{1, 2, 3}}}, ErrContextFull},
		{"token too large", []*Seq{{Cache: m.NewCache(), Tokens: []int32{320}}}, nil},
		{"negative token", []*Seq{{Cache: m.NewCache(), Tokens: []int32{-1}}}, nil},
		{"no cache", []*Seq{{Tokens: []int32{1}}}, nil},
		{"nil seq", []*Seq{nil}, nil},
		{"no tokens", []*Seq{{Cache: m.NewCache()}}, nil},
		{"shared cache", []*Seq{{Cache: c, Tokens: []int32{1}}, {Cache: c, Tokens: []int32{2}}}, nil},
		{"foreign cache", []*Seq{{Cache: other.NewCache(), Tokens: []int32{1}}}, nil},
	}
	for _, tc := range tests {
		err := m.Forward(ctx, tc.seqs)
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		if tc.is != nil && !errors.Is(err, tc.is) {
			t.Errorf("%s: error %v is not %v", tc.name, err, tc.is)
		}
	}
	if c.Len() != 6 {
		t.Errorf("failed calls changed the cache length to %d", c.Len())
	}
	// Exactly full is fine.
	if err := m.Forward(ctx, []*Seq{{Cache: c, Tokens: []int32{1, 2}}}); err != nil || c.Len() != 8 {
		t.Errorf("filling the context: %v, len %d", err, c.Len())
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	c2 := m.NewCache()
	if err := m.Forward(cancelled, []*Seq{{Cache: c2, Tokens: []int32{1}}}); !errors.Is(err, context.Canceled) || c2.Len() != 0 {
		t.Errorf("cancelled: %v, len %d", err, c2.Len())
	}
	if err := m.Forward(ctx, nil); err != nil {
		t.Errorf("empty batch: %v", err)
	}
}

func TestTruncateReplays(t *testing.T) {
	m := loadModel(t, synthFile(t, smallSpec("glm4", quant.F32)), Options{Threads: 2})
	ctx := context.Background()
	c := m.NewCache()
	if err := m.Forward(ctx, []*Seq{{Cache: c, Tokens: testTokens}}); err != nil {
		t.Fatal(err)
	}
	a := &Seq{Cache: c, Tokens: []int32{9}}
	if err := m.Forward(ctx, []*Seq{a}); err != nil {
		t.Fatal(err)
	}
	first := append([]float32(nil), a.Logits...)
	// Rewind past the prompt's end and replay: same logits.
	c.Truncate(len(testTokens) - 2)
	b := &Seq{Cache: c, Tokens: []int32{testTokens[len(testTokens)-2], testTokens[len(testTokens)-1], 9}}
	if err := m.Forward(ctx, []*Seq{b}); err != nil {
		t.Fatal(err)
	}
	w := make([]float64, len(first))
	for i, v := range first {
		w[i] = float64(v)
	}
	if e := relErr(b.Logits, w); e > 1e-5 {
		t.Errorf("replay after Truncate: relative error %.3g", e)
	}
	c.Truncate(-1)
	if c.Len() != 0 {
		t.Errorf("Truncate(-1) left %d", c.Len())
	}
}

func TestLoadErrors(t *testing.T) {
	f := synthFile(t, smallSpec("llama", quant.F32))
	if _, err := Load(f, Options{Threads: -1}); err == nil {
		t.Error("negative threads accepted")
	}
	// A file whose metadata disagrees with its tensors.
	bf := rewrite(t, f, map[string]any{"llama.feed_forward_length": uint32(100)}, nil)
	if _, err := Load(bf, Options{}); err == nil {
		t.Error("mismatched ffn length accepted")
	} else {
		t.Log(err)
	}
}

// rewrite copies f with some metadata values replaced and extra F32
// tensors added, and opens the copy.
func rewrite(t *testing.T, f *gguf.File, kv map[string]any, extra map[string][]float32) *gguf.File {
	t.Helper()
	w := gguf.NewWriter()
	for _, e := range f.KV {
		if v, ok := kv[e.Key]; ok {
			w.Add(e.Key, v)
			continue
		}
		w.Add(e.Key, e.Value.Any())
	}
	for i := range f.Tensors {
		ti := &f.Tensors[i]
		data, err := f.TensorData(ti)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.AddTensor(ti.Name, ti.Type, ti.Dims, data); err != nil {
			t.Fatal(err)
		}
	}
	for name, v := range extra {
		data, _ := quant.Quantize(quant.F32, v)
		if err := w.AddTensor(name, quant.F32, []uint64{uint64(len(v))}, data); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "rewritten.gguf")
	out, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteTo(out); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	nf, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nf.Close() })
	return nf
}

func TestRopeFreqs(t *testing.T) {
	f := synthFile(t, smallSpec("llama", quant.F32))
	factors := []float32{1, 1, 1.5, 2, 3, 4, 8, 16} // rope dim 16: 8 pairs
	rf := rewrite(t, f, nil, map[string][]float32{"rope_freqs.weight": factors})
	m := loadModel(t, rf, Options{Threads: 2})
	want, _ := loadRef(t, rf).forward(testTokens)
	s := &Seq{Cache: m.NewCache(), Tokens: testTokens, AllLogits: true}
	if err := m.Forward(context.Background(), []*Seq{s}); err != nil {
		t.Fatal(err)
	}
	v := m.Config().Vocab
	for i := range testTokens {
		if e := relErr(s.Logits[i*v:(i+1)*v], want[i]); e > 1e-4 {
			t.Fatalf("position %d: relative error %.3g", i, e)
		}
	}
	// And they matter: without them the logits differ.
	plain, _ := loadRef(t, f).forward(testTokens)
	if e := relErr(s.Logits[(len(testTokens)-1)*v:], plain[len(testTokens)-1]); e < 1e-3 {
		t.Errorf("rope_freqs had no effect (relative difference %.3g)", e)
	}
}
