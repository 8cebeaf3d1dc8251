package tokenizer

import (
	"bytes"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/open-autoglm/autoglm/internal/engine/gguf"
)

const storiesPath = "../../../models/stories260K.gguf"

func stories(t testing.TB) *Tokenizer {
	t.Helper()
	f, err := gguf.Open(storiesPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tk, err := FromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

func TestStoriesEncode(t *testing.T) {
	tk := stories(t)
	if tk.VocabSize() != 512 || tk.BOS() != 1 || tk.EOS() != 2 || tk.UNK() != 0 || tk.PAD() != -1 || tk.Model() != "llama" || !tk.AddBOS() {
		t.Fatalf("vocab %d bos %d eos %d unk %d pad %d", tk.VocabSize(), tk.BOS(), tk.EOS(), tk.UNK(), tk.PAD())
	}
	ids := tk.Encode("Once upon a time", EncodeOptions{AddSpecial: true})
	if want := []int32{1, 403, 407, 261, 378}; !cmp.Equal(ids, want) {
		t.Fatalf("Encode = %v, want %v", ids, want)
	}
	if got := tk.Decode(ids); got != "Once upon a time" {
		t.Errorf("Decode = %q", got)
	}
	if got := tk.DecodeWith(ids[1:], DecodeOptions{Continuation: true}); got != " Once upon a time" {
		t.Errorf("continuation Decode = %q", got)
	}
	if !tk.IsEOG(2) || tk.IsEOG(1) {
		t.Error("EOG")
	}
	if got := tk.Encode("<s>hi</s>", EncodeOptions{ParseSpecial: true}); got[0] != 1 || got[len(got)-1] != 2 {
		t.Errorf("ParseSpecial: %v", pieces(tk, got))
	}
}

func TestStoriesRoundTrip(t *testing.T) {
	tk := stories(t)
	for _, s := range roundTripStrings {
		ids := tk.Encode(s, EncodeOptions{AddSpecial: true})
		if got := tk.Decode(ids); got != s {
			t.Errorf("Decode(Encode(%q)) = %q", s, got)
		}
	}
	// Characters outside the 512-token vocabulary fall back to bytes.
	ids := tk.Encode("世界", EncodeOptions{})
	if got := pieces(tk, ids); !cmp.Equal(got, []string{"▁", "<0xE4>", "<0xB8>", "<0x96>", "<0xE7>", "<0x95>", "<0x8C>"}) {
		t.Errorf("byte fallback: %q", got)
	}
}

func TestStoriesStreaming(t *testing.T) {
	tk := stories(t)
	text := "Lily saw 一只猫 🐈 and said \"你好\"."
	ids := tk.Encode(text, EncodeOptions{AddSpecial: true})
	d := tk.NewDecoder()
	var chunks []string
	for _, id := range ids {
		if c := d.Add(id); c != "" {
			chunks = append(chunks, c)
		}
	}
	if rest := d.Flush(); rest != "" {
		t.Errorf("Flush left %q", rest)
	}
	if got := strings.Join(chunks, ""); got != text {
		t.Errorf("streamed %q", got)
	}
	for _, c := range chunks {
		if !utf8Valid(c) {
			t.Errorf("chunk %q is not valid UTF-8", c)
		}
	}
}

func BenchmarkEncodeSPMStories(b *testing.B) { benchmarkEncode(b, stories(b), bigEnglish) }

func TestStoriesWordsAgree(t *testing.T) { spmWordsAgree(t, stories(t)) }

// writeGGUF encodes metadata into an in-memory GGUF file and parses it back.
func writeGGUF(t *testing.T, kv map[string]any) *gguf.File {
	t.Helper()
	w := gguf.NewWriter()
	for _, k := range slices.Sorted(maps.Keys(kv)) {
		w.Add(k, kv[k])
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Read(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// bpeMetadata is a byte-level vocabulary with hand-written merges and the
// special tokens of a Llama-3 and a GLM-4 style chat model.
func bpeMetadata(pre string) map[string]any {
	toks := byteVocab()
	merges := []string{"h e", "l l", "he ll", "hell o", "Ġ w", "o r", "Ġw or", "l d", "Ġwor ld"}
	for _, m := range merges {
		toks = append(toks, strings.Replace(m, " ", "", 1))
	}
	toks = append(toks, "Ġworldwide") // no merge makes it: only IgnoreMerges does
	types := slices.Repeat([]int32{TypeNormal}, len(toks))
	for _, s := range []string{"<|begin_of_text|>", "<|eot_id|>", "<|user|>", "[gMASK]"} {
		toks = append(toks, s)
		types = append(types, TypeControl)
	}
	types[len(types)-3] = TypeNormal // <|eot_id|> mislabelled, as some converters do
	return map[string]any{
		"tokenizer.ggml.model":            "gpt2",
		"tokenizer.ggml.pre":              pre,
		"tokenizer.ggml.tokens":           toks,
		"tokenizer.ggml.token_type":       types,
		"tokenizer.ggml.merges":           merges,
		"tokenizer.ggml.eos_token_id":     uint32(len(toks) - 3),
		"tokenizer.ggml.padding_token_id": uint32(0xFFFFFFFF),
	}
}

func TestFromGGUFLlama3(t *testing.T) {
	kv := bpeMetadata("llama-bpe")
	kv["tokenizer.ggml.bos_token_id"] = uint32(len(kv["tokenizer.ggml.tokens"].([]string)) - 4)
	tk, err := FromGGUF(writeGGUF(t, kv))
	if err != nil {
		t.Fatal(err)
	}
	bos, _ := tk.Lookup("<|begin_of_text|>")
	eot, _ := tk.Lookup("<|eot_id|>")
	if tk.BOS() != bos || !tk.AddBOS() || tk.PAD() != -1 || tk.EOT() != eot || !tk.IsEOG(eot) || !tk.IsControl(eot) {
		t.Errorf("bos %d addbos %v pad %d eot %d", tk.BOS(), tk.AddBOS(), tk.PAD(), tk.EOT())
	}
	ids := tk.Encode("hello world worldwide<|eot_id|>", EncodeOptions{AddSpecial: true, ParseSpecial: true})
	want := []string{"<|begin_of_text|>", "hello", "Ġworld", "Ġworldwide", "<|eot_id|>"}
	if got := pieces(tk, ids); !cmp.Equal(got, want) {
		t.Errorf("Encode = %q, want %q", got, want)
	}
	if got := tk.Decode(ids); got != "hello world worldwide" {
		t.Errorf("Decode = %q", got)
	}
	if user, _ := tk.Lookup("<|user|>"); tk.IsEOG(user) {
		t.Error("<|user|> ends a Llama-3 generation")
	}
}

func TestFromGGUFGLM4(t *testing.T) {
	for _, pre := range []string{"glm4", "chatglm-bpe"} {
		kv := bpeMetadata(pre)
		kv["tokenizer.ggml.add_bos_token"] = true // no BOS to add: ignored
		tk, err := FromGGUF(writeGGUF(t, kv))
		if err != nil {
			t.Fatal(err)
		}
		user, _ := tk.Lookup("<|user|>")
		if tk.BOS() != -1 || tk.AddBOS() || !tk.IsEOG(user) || !tk.IsEOG(tk.EOS()) {
			t.Errorf("%s: bos %d addbos %v", pre, tk.BOS(), tk.AddBOS())
		}
		// No IgnoreMerges for GLM-4: "Ġworldwide" is a token but no merge makes it.
		ids := tk.Encode("[gMASK]12345 worldwide", EncodeOptions{AddSpecial: true, ParseSpecial: true})
		want := []string{"[gMASK]", "1", "2", "3", "4", "5", "Ġworld", "w", "i", "d", "e"}
		if got := pieces(tk, ids); !cmp.Equal(got, want) {
			t.Errorf("%s: Encode = %q, want %q", pre, got, want)
		}
	}
}

func TestFromGGUFErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		edit func(map[string]any)
		want string
	}{
		{"no model", func(kv map[string]any) { delete(kv, "tokenizer.ggml.model") }, "no tokenizer.ggml.model"},
		{"no tokens", func(kv map[string]any) { delete(kv, "tokenizer.ggml.tokens") }, "no tokenizer.ggml.tokens"},
		{"no merges", func(kv map[string]any) { delete(kv, "tokenizer.ggml.merges") }, "no tokenizer.ggml.merges"},
		{"bad model", func(kv map[string]any) { kv["tokenizer.ggml.model"] = "bert" }, `unsupported tokenizer model "bert"`},
		{"bad pre", func(kv map[string]any) { kv["tokenizer.ggml.pre"] = "tekken" }, `unknown BPE pre-tokenizer "tekken"`},
		{"bad scores", func(kv map[string]any) { kv["tokenizer.ggml.scores"] = "x" }, "not a float array"},
		{"short types", func(kv map[string]any) { kv["tokenizer.ggml.token_type"] = []int32{1} }, "1 token types"},
	} {
		kv := bpeMetadata("llama3")
		c.edit(kv)
		_, err := FromGGUF(writeGGUF(t, kv))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", c.name, err, c.want)
		}
	}
}
