package tokenizer

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

func TestBPEMergeOrder(t *testing.T) {
	tk := handBPE(t, "gpt2")
	for _, c := range []struct {
		in   string
		want []string
	}{
		{"hello world", []string{"hello", "Ġworld"}},
		{"hell", []string{"hell"}},
		{"ell", []string{"e", "ll"}},           // "l l" outranks "e l" though "e l" is further left
		{"lll", []string{"ll", "l"}},           // equal ranks: leftmost first
		{"hel", []string{"he", "l"}},           // "h e" first, then "e l" has no left side
		{"xy", []string{"x", "y"}},             // the merge result is not a token
		{"123", []string{"123"}},               // GPT-2 keeps digit runs whole
		{"     x", []string{"ĠĠĠĠ", "Ġ", "x"}}, // no "Ġ x" merge
		{"worlds", []string{"w", "or", "ld", "s"}},
		{"é", []string{"Ã", "©"}},
	} {
		got := pieces(tk, tk.Encode(c.in, EncodeOptions{}))
		if diff := cmp.Diff(c.want, got); diff != "" {
			t.Errorf("Encode(%q) (-want +got):\n%s", c.in, diff)
		}
	}
	// With Qwen2's pre-tokenizer digits never merge.
	if got := pieces(handBPE(t, "qwen2"), handBPE(t, "qwen2").Encode("123", EncodeOptions{})); !cmp.Equal(got, []string{"1", "2", "3"}) {
		t.Errorf("qwen2 Encode(123) = %q", got)
	}
}

func TestIgnoreMerges(t *testing.T) {
	// "ab" is a token but no merge makes it: only IgnoreMerges emits it.
	toks := append(byteVocab(), "ab")
	for _, ignore := range []bool{false, true} {
		tk, err := New(Vocab{Model: "gpt2", Pre: "llama3", Tokens: toks, BOS: -1, EOS: -1, UNK: -1, PAD: -1, EOT: -1, IgnoreMerges: ignore})
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"a", "b"}
		if ignore {
			want = []string{"ab"}
		}
		if got := pieces(tk, tk.Encode("ab", EncodeOptions{})); !cmp.Equal(got, want) {
			t.Errorf("IgnoreMerges=%v: got %q, want %q", ignore, got, want)
		}
	}
}

func TestSpecialTokens(t *testing.T) {
	tk := handBPE(t, "llama3")
	text := "<|im_start|>hello<|im_end|><tool><|im x<|endoftext|>"
	parsed := pieces(tk, tk.Encode(text, EncodeOptions{ParseSpecial: true}))
	want := []string{"<|im_start|>", "hello", "<|im_end|>", "<tool>", "<|im", "Ġ", "x", "<|endoftext|>"}
	if diff := cmp.Diff(want, parsed); diff != "" {
		t.Errorf("ParseSpecial (-want +got):\n%s", diff)
	}
	// Without ParseSpecial control tokens are text, user-defined ones are not.
	plain := pieces(tk, tk.Encode(text, EncodeOptions{}))
	if !strings.Contains(strings.Join(plain, " "), "<tool>") || strings.Contains(strings.Join(plain, " "), "<|im_end|>") {
		t.Errorf("plain encoding: %q", plain)
	}
	ids := tk.Encode(text, EncodeOptions{})
	if got := tk.Decode(ids); got != text {
		t.Errorf("round trip without ParseSpecial: %q", got)
	}
	// Control tokens decode to nothing unless asked.
	ids = tk.Encode(text, EncodeOptions{ParseSpecial: true})
	if got, want := tk.Decode(ids), "hello<tool> x"; got != want {
		t.Errorf("Decode = %q, want %q", got, want)
	}
	if got := tk.DecodeWith(ids, DecodeOptions{Special: true}); got != text {
		t.Errorf("DecodeWith(Special) = %q, want %q", got, text)
	}
	eos := tk.EOS()
	if !tk.IsEOG(eos) || tk.Piece(eos) != "<|endoftext|>" {
		t.Errorf("EOS %d %q", eos, tk.Piece(eos))
	}
	if id, _ := tk.Lookup("<|user|>"); tk.IsEOG(id) {
		t.Error("<|user|> ends a generation outside GLM-4")
	}
	for _, s := range []string{"<|endoftext|>", "<|im_end|>"} {
		if id, _ := tk.Lookup(s); !tk.IsEOG(id) {
			t.Errorf("%s is not end-of-generation", s)
		}
	}
	if id, _ := tk.Lookup("<|im_start|>"); tk.IsEOG(id) {
		t.Error("<|im_start|> is end-of-generation")
	}
}

func TestGLMEndOfGeneration(t *testing.T) {
	toks := append(byteVocab(), "<|user|>", "<|assistant|>")
	types := make([]int32, len(toks))
	for i := range types {
		types[i] = TypeControl
	}
	for _, pre := range []string{"glm4", "chatglm-bpe", "llama3"} {
		tk, err := New(Vocab{Model: "gpt2", Pre: pre, Tokens: toks, Types: types, BOS: -1, EOS: -1, UNK: -1, PAD: -1, EOT: -1})
		if err != nil {
			t.Fatal(err)
		}
		user, _ := tk.Lookup("<|user|>")
		asst, _ := tk.Lookup("<|assistant|>")
		if got, want := tk.IsEOG(user), pre != "llama3"; got != want {
			t.Errorf("%s: IsEOG(<|user|>) = %v", pre, got)
		}
		if tk.IsEOG(asst) {
			t.Errorf("%s: IsEOG(<|assistant|>)", pre)
		}
	}
}

func TestSPMMergeOrder(t *testing.T) {
	tk := synthSPM(t, true)
	for _, c := range []struct {
		in   string
		want []string
	}{
		{"abcd", []string{"▁a", "bc", "d"}}, // bc (-1.5) first, then ab and cd are stale and ▁a (-4) is left
		{"eee", []string{"▁", "ee", "e"}},   // ties go to the leftmost pair
		{"ab", []string{"▁ab"}},             // ▁a (-4) < ab (-2) but ▁ab (-0.5) needs ▁+ab
		{"hi hi", []string{"▁hi", "▁hi"}},
		{"z", []string{"▁", "<0x7A>"}},
		{"é", []string{"▁", "<0xC3>", "<0xA9>"}},
		{"a<tag>b", []string{"▁a", "<tag>", "▁", "b"}}, // user-defined token; text after it gets a space prefix
	} {
		got := pieces(tk, tk.Encode(c.in, EncodeOptions{}))
		if diff := cmp.Diff(c.want, got); diff != "" {
			t.Errorf("Encode(%q) (-want +got):\n%s", c.in, diff)
		}
	}
	ids := tk.Encode("ab", EncodeOptions{AddSpecial: true})
	if got := pieces(tk, ids); !cmp.Equal(got, []string{"<s>", "▁ab"}) {
		t.Errorf("AddSpecial: %q", got)
	}
	if got := tk.Decode(ids); got != "ab" {
		t.Errorf("Decode strips the prefix space after BOS: got %q", got)
	}
	if got := tk.DecodeWith(ids, DecodeOptions{Continuation: true}); got != " ab" {
		t.Errorf("Continuation keeps the space: got %q", got)
	}
	if got := tk.DecodeWith(ids, DecodeOptions{Special: true}); got != "<s> ab" {
		t.Errorf("Special: got %q", got)
	}
}

func TestSPMWithoutByteFallback(t *testing.T) {
	tk := synthSPM(t, false)
	got := pieces(tk, tk.Encode("az€b", EncodeOptions{}))
	want := []string{"▁a", "<unk>", "<unk>", "b"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestRoundTrip(t *testing.T) {
	type named struct {
		name string
		tk   *Tokenizer
	}
	tks := []named{
		{"spm", synthSPM(t, true)},
		{"bpe-gpt2", trainedBPE(t, "gpt2")},
		{"bpe-llama3", trainedBPE(t, "llama3")},
		{"bpe-qwen2", trainedBPE(t, "qwen2")},
		{"hand-glm4", handBPE(t, "glm4")},
	}
	rng := rand.New(rand.NewPCG(1, 2))
	inputs := append([]string{}, roundTripStrings...)
	for range 200 {
		b := make([]byte, rng.IntN(40))
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		inputs = append(inputs, string(b))
	}
	for _, n := range tks {
		for _, s := range inputs {
			if !n.tk.bpe && strings.Contains(s, "▁") {
				continue // SentencePiece cannot tell "▁" from an escaped space
			}
			for _, special := range []bool{false, true} {
				ids := n.tk.Encode(s, EncodeOptions{AddSpecial: special})
				if got := n.tk.Decode(ids); got != s {
					t.Errorf("%s: Decode(Encode(%q)) = %q (ids %v)", n.name, s, got, ids)
				}
			}
		}
	}
}

func TestTrainedBPECompresses(t *testing.T) {
	tk := trainedBPE(t, "llama3")
	ids := tk.Encode(englishText, EncodeOptions{})
	if ratio := float64(len(englishText)) / float64(len(ids)); ratio < 2.5 {
		t.Errorf("only %.2f bytes per token: merges are not being applied", ratio)
	}
}

func TestStreamingDecoder(t *testing.T) {
	texts := []string{
		"日本語のテキストと中文文本, emoji 🎉🚀👩‍💻 and more 世界",
		"invalid \xff then \xe4\xb8 cut and \xf0\x9f\x98 more",
		englishText,
	}
	for _, tk := range []*Tokenizer{synthSPM(t, true), trainedBPE(t, "qwen2"), handBPE(t, "llama3")} {
		for _, s := range texts {
			for _, opts := range []DecodeOptions{{}, {Continuation: true}, {Special: true}} {
				ids := tk.Encode(s, EncodeOptions{AddSpecial: true})
				want := tk.DecodeWith(ids, opts)
				d := tk.NewDecoderWith(opts)
				var sb strings.Builder
				for _, id := range ids {
					chunk := d.Add(id)
					if utf8.ValidString(s) && !utf8.ValidString(chunk) {
						t.Errorf("chunk %q splits a UTF-8 sequence", chunk)
					}
					sb.WriteString(chunk)
				}
				sb.WriteString(d.Flush())
				if sb.String() != want {
					t.Errorf("streamed %q, Decode gives %q", sb.String(), want)
				}
			}
		}
	}
}

func TestDecoderHoldsBack(t *testing.T) {
	tk := synthSPM(t, true)
	ids := tk.Encode("世", EncodeOptions{}) // ▁ then three byte tokens
	if len(ids) != 4 {
		t.Fatalf("ids %q", pieces(tk, ids))
	}
	d := tk.NewDecoderWith(DecodeOptions{Continuation: true})
	var got []string
	for _, id := range ids {
		got = append(got, d.Add(id))
	}
	if want := []string{" ", "", "", "世"}; !cmp.Equal(got, want) {
		t.Errorf("chunks %q, want %q", got, want)
	}
	// An incomplete sequence at the end comes out on Flush.
	d = tk.NewDecoder()
	d.Add(ids[1])
	if s := d.Flush(); s != "\xe4" {
		t.Errorf("Flush = %q", s)
	}
}

func TestNewValidates(t *testing.T) {
	base := func() Vocab {
		return Vocab{Model: "llama", Tokens: []string{"<unk>", "<s>", "</s>", "a"}, BOS: 1, EOS: 2, UNK: 0, PAD: -1, EOT: -1}
	}
	for _, c := range []struct {
		name string
		edit func(*Vocab)
		want string
	}{
		{"empty", func(v *Vocab) { v.Tokens = nil }, "empty vocabulary"},
		{"scores", func(v *Vocab) { v.Scores = []float32{0} }, "1 scores for 4 tokens"},
		{"types", func(v *Vocab) { v.Types = []int32{0, 1} }, "2 token types for 4 tokens"},
		{"bos", func(v *Vocab) { v.BOS = 4 }, "BOS id 4 out of range"},
		{"eot", func(v *Vocab) { v.EOT = -2 }, "EOT id -2 out of range"},
		{"eog", func(v *Vocab) { v.EOG = []int32{9} }, "end-of-generation id 9"},
		{"addbos", func(v *Vocab) { v.BOS, v.AddBOS = -1, true }, "no BOS token"},
		{"model", func(v *Vocab) { v.Model = "t5" }, `unsupported tokenizer model "t5"`},
		{"pre", func(v *Vocab) { v.Model, v.Pre = "gpt2", "tekken" }, `unknown BPE pre-tokenizer "tekken"`},
		{"merge", func(v *Vocab) { v.Model, v.Merges = "gpt2", []string{"ab"} }, `merge 0 ("ab")`},
	} {
		v := base()
		c.edit(&v)
		_, err := New(v)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", c.name, err, c.want)
		}
	}
	if _, err := New(base()); err != nil {
		t.Fatal(err)
	}
	// Empty token texts are renamed, without touching the caller's slice.
	v := base()
	v.Tokens = []string{"<unk>", "<s>", "</s>", ""}
	tk, err := New(v)
	if err != nil {
		t.Fatal(err)
	}
	if v.Tokens[3] != "" || tk.Piece(3) != "[EMPTY_3]" {
		t.Errorf("empty token: caller %q, tokenizer %q", v.Tokens[3], tk.Piece(3))
	}
}

func TestAccessors(t *testing.T) {
	tk := synthSPM(t, true)
	if tk.VocabSize() != 259+17 || tk.BOS() != 1 || tk.EOS() != 2 || tk.UNK() != 0 || tk.PAD() != -1 {
		t.Errorf("size %d bos %d eos %d", tk.VocabSize(), tk.BOS(), tk.EOS())
	}
	if !tk.IsEOG(2) || tk.IsEOG(1) || !tk.IsControl(1) || tk.IsControl(3) {
		t.Error("token classes")
	}
	if id, ok := tk.Lookup("▁ab"); !ok || tk.Piece(id) != "▁ab" || tk.Score(id) != -0.5 || tk.TokenType(id) != TypeNormal {
		t.Errorf("Lookup ▁ab = %d %v", id, ok)
	}
	if tk.Piece(-1) != "" || tk.Piece(1<<20) != "" || tk.Decode([]int32{-5, 1 << 20}) != "" {
		t.Error("out-of-range ids")
	}
}

// spmWordsAgree checks that merging word by word, the fast path, gives the
// same ids as merging the whole text at once, as llama.cpp does.
func spmWordsAgree(t *testing.T, tk *Tokenizer) {
	t.Helper()
	if !tk.spmWords {
		t.Fatal("vocabulary unexpectedly has tokens spanning a word start")
	}
	whole, err := New(tk.v)
	if err != nil {
		t.Fatal(err)
	}
	whole.spmWords = false
	rng := rand.New(rand.NewPCG(3, 4))
	inputs := append([]string{}, roundTripStrings...)
	for range 300 {
		b := make([]rune, rng.IntN(30))
		for i := range b {
			b[i] = []rune("abcdehi ▁  zé世\n")[rng.IntN(15)]
		}
		inputs = append(inputs, string(b))
	}
	for _, s := range inputs {
		a := tk.Encode(s, EncodeOptions{})
		b := whole.Encode(s, EncodeOptions{})
		if !cmp.Equal(a, b) {
			t.Errorf("Encode(%q): by word %q, whole %q", s, pieces(tk, a), pieces(tk, b))
		}
	}
}

func TestSPMWordsAgree(t *testing.T) { spmWordsAgree(t, synthSPM(t, true)) }

func TestSpanWordStart(t *testing.T) {
	for _, c := range []struct {
		toks []string
		want bool
	}{
		{[]string{"▁a", "▁▁", "▁▁▁b", "ab"}, false},
		{[]string{"▁a", "a▁"}, true},
		{[]string{"x▁▁y"}, true},
	} {
		if got := spanWordStart(c.toks); got != c.want {
			t.Errorf("spanWordStart(%q) = %v", c.toks, got)
		}
	}
	// A vocabulary whose tokens span words still encodes as one piece.
	tk, err := New(Vocab{Model: "llama", Tokens: []string{"<unk>", "▁", "a", "b", "a▁", "a▁b"}, BOS: -1, EOS: -1, UNK: 0, PAD: -1, EOT: -1, AddSpacePrefix: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := pieces(tk, tk.Encode("a b", EncodeOptions{})); !cmp.Equal(got, []string{"▁", "a▁b"}) {
		t.Errorf("got %q", got)
	}
}

func TestConcurrentEncode(t *testing.T) {
	tks := []*Tokenizer{synthSPM(t, true), trainedBPE(t, "llama3")}
	want := make([][]int32, len(tks))
	for i, tk := range tks {
		want[i] = tk.Encode(englishText, EncodeOptions{AddSpecial: true})
	}
	done := make(chan error)
	for g := range 8 {
		go func() {
			var err error
			for n := range 20 {
				i := (g + n) % len(tks)
				if got := tks[i].Encode(englishText, EncodeOptions{AddSpecial: true}); !cmp.Equal(got, want[i]) {
					err = fmt.Errorf("goroutine %d: tokenizer %d gave different ids", g, i)
				}
			}
			done <- err
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}
