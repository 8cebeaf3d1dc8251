package model

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/open-autoglm/autoglm/internal/engine/gguf"
)

const storiesPath = "../../../models/stories260K.gguf"

// storiesPrompt is "Once upon a time" as the demo model's tokenizer encodes
// it, BOS included.
var storiesPrompt = []int32{1, 403, 407, 261, 378}

// storiesContinuation is the demo model's documented greedy continuation.
const storiesContinuation = ", there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. She wanted to play with it, but it was too high."

func openStories(tb testing.TB) *gguf.File {
	tb.Helper()
	f, err := gguf.Open(storiesPath)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { f.Close() })
	return f
}

// decodePieces turns SentencePiece ids into text straight from the GGUF
// token list ("▁" is a space, "<0xNN>" a raw byte), independently of the
// tokenizer package.
func decodePieces(t *testing.T, f *gguf.File, ids []int32) string {
	t.Helper()
	tokens, ok := f.Strings("tokenizer.ggml.tokens")
	if !ok {
		t.Fatal("no token list")
	}
	var b strings.Builder
	for _, id := range ids {
		p := tokens[id]
		if len(p) == 6 && strings.HasPrefix(p, "<0x") && p[5] == '>' {
			v, err := strconv.ParseUint(p[3:5], 16, 8)
			if err == nil {
				b.WriteByte(byte(v))
				continue
			}
		}
		b.WriteString(strings.ReplaceAll(p, "▁", " "))
	}
	return b.String()
}

func argmax(v []float32) int32 {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return int32(best)
}

// generate decodes n tokens greedily after prompt, one Forward per token.
func generate(tb testing.TB, m *Model, prompt []int32, n int) []int32 {
	ctx := context.Background()
	s := &Seq{Cache: m.NewCache(), Tokens: prompt}
	var out []int32
	for range n {
		if err := m.Forward(ctx, []*Seq{s}); err != nil {
			tb.Fatal(err)
		}
		next := argmax(s.Logits)
		out = append(out, next)
		s.Tokens = append(s.Tokens[:0], next)
	}
	return out
}

func TestStoriesGreedy(t *testing.T) {
	f := openStories(t)
	m := loadModel(t, f, Options{Threads: 2})
	c := m.Config()
	if c.Arch != "llama" || c.Dim != 64 || c.Layers != 5 || c.Heads != 8 || c.KVHeads != 4 || c.FFN != 172 || c.Vocab != 512 {
		t.Fatalf("unexpected config %+v", c)
	}
	ids := generate(t, m, storiesPrompt, 60)
	text := decodePieces(t, f, ids)
	t.Logf("ids %v\ntext %q", ids, text)
	// The continuation may run past the documented text or stop short of
	// it within 60 tokens; either way one must be a prefix of the other.
	if !strings.HasPrefix(text, storiesContinuation) && !strings.HasPrefix(storiesContinuation, text) {
		t.Errorf("greedy continuation\n got %q\nwant %q", text, storiesContinuation)
	}
	if len(text) < 100 {
		t.Errorf("continuation too short: %q", text)
	}
}
