package tokenizer

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

// englishText is sample prose for round trips and benchmarks.
const englishText = `The old lighthouse keeper climbed the spiral stairs every evening at dusk.
He counted them out loud: one hundred and twelve steps, no more and no less.
"You'll wear them out," his daughter said, laughing, when she visited in June.
He didn't answer; he'd heard it before. The lamp had to be lit, and it wasn't
going to light itself. Ships passed at 9:45 and again at 11:30, their horns low
and patient across the water. In 1987 a storm broke three windows and he'd
fixed them himself with putty, glass and a borrowed ladder. Nobody thanked him.
That was fine. The sea doesn't thank anyone, and the gulls certainly don't.
On Sundays he wrote letters -- long ones, with drawings of clouds in the margins --
to a friend in Lisbon who answered every third letter, more or less.
`

// bigEnglish is about 4 KB of English for benchmarks.
var bigEnglish = strings.Repeat(englishText, 4096/len(englishText)+1)[:4096]

// roundTripStrings exercise spacing, newlines, punctuation, numbers,
// contractions, non-Latin scripts, combining marks, emoji and bytes that are
// not valid UTF-8.
var roundTripStrings = []string{
	"",
	" ",
	"  ",
	"a",
	"Hello world",
	" leading space",
	"trailing space ",
	"many     spaces   here",
	"tabs\tand\nnewlines\r\n\n\nend",
	"I'm sure they'll say we've done it, didn't we? IT'S FINE.",
	"Numbers: 0 12 345 6789 3.14159 1,000,000 -42",
	"punctuation!!! ... ??? (a) [b] {c} <d> @#$%^&*",
	"naïve café façade résumé",
	"e\u0301 combining accents a\u0308",
	"日本語のテキストと中文文本",
	"한국어 텍스트",
	"Русский текст и ελληνικά",
	"emoji 🎉🚀👩‍💻 flags 🇫🇷 ❤️",
	"\x00\x01\x02 control bytes \x7f",
	"invalid \xff\xfe\xfd utf-8 \xc3\x28 \xe2\x82 \xf0\x9f\x98",
	"\xe2 \xe2\x96",
	"<|endoftext|> looks special but is text",
	englishText,
}

// byteVocab returns the 256 GPT-2 byte characters, in byte order.
func byteVocab() []string {
	toks := make([]string, 256)
	for b := range 256 {
		toks[b] = byteLevelChars.char[b]
	}
	return toks
}

// handBPE is a small byte-level BPE vocabulary whose merge ranks are chosen
// so that the order of merging shows in the result. Ids 0-255 are the bytes.
func handBPE(t testing.TB, pre string) *Tokenizer {
	t.Helper()
	toks := byteVocab()
	merges := []string{
		"h e",     // he
		"l l",     // ll
		"he ll",   // hell
		"hell o",  // hello
		"Ġ w",     // Ġw
		"o r",     // or
		"Ġw or",   // Ġwor
		"l d",     // ld
		"Ġwor ld", // Ġworld
		"e l",     // el: ranks after "l l"
		"Ġ Ġ",     // ĠĠ
		"ĠĠ ĠĠ",   // ĠĠĠĠ
		"1 2",     // 12
		"12 3",    // 123
		"x y",     // xy: a merge whose result is not a token is ignored
	}
	for _, m := range merges {
		if m == "x y" {
			continue
		}
		toks = append(toks, strings.Replace(m, " ", "", 1))
	}
	types := make([]int32, len(toks))
	for i := range types {
		types[i] = TypeNormal
	}
	add := func(s string, typ int32) {
		toks = append(toks, s)
		types = append(types, typ)
	}
	add("<|endoftext|>", TypeControl)
	add("<|im_start|>", TypeControl)
	add("<|im_end|>", TypeControl)
	add("<|im", TypeControl) // a shorter special sharing a prefix
	add("<tool>", TypeUserDefined)
	add("<|user|>", TypeControl)
	tk, err := New(Vocab{
		Model: "gpt2", Pre: pre, Tokens: toks, Types: types, Merges: merges,
		BOS: -1, EOS: int32(len(toks) - 6), UNK: -1, PAD: -1, EOT: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

// trainBPE learns n byte-level merges from corpus the way GPT-2-style
// trainers do (most frequent adjacent pair first, within pre-tokenized
// words), giving test vocabularies whose merges behave like real ones.
func trainBPE(corpus string, split preTokenizer, n int) (tokens, merges []string) {
	freq := map[string]int{}
	for _, w := range split(corpus, nil) {
		freq[w]++
	}
	type word struct {
		syms []string
		n    int
	}
	words := make([]word, 0, len(freq))
	for _, w := range slices.Sorted(maps.Keys(freq)) {
		syms := make([]string, len(w))
		for i := range len(w) {
			syms[i] = byteLevelChars.char[w[i]]
		}
		words = append(words, word{syms, freq[w]})
	}
	tokens = byteVocab()
	for range n {
		pairs := map[[2]string]int{}
		for _, w := range words {
			for i := 1; i < len(w.syms); i++ {
				pairs[[2]string{w.syms[i-1], w.syms[i]}] += w.n
			}
		}
		if len(pairs) == 0 {
			break
		}
		best := slices.MaxFunc(slices.Collect(maps.Keys(pairs)), func(a, b [2]string) int {
			if c := cmp.Compare(pairs[a], pairs[b]); c != 0 {
				return c
			}
			return -cmp.Compare(a[0]+" "+a[1], b[0]+" "+b[1])
		})
		merged := best[0] + best[1]
		merges = append(merges, best[0]+" "+best[1])
		tokens = append(tokens, merged)
		for wi := range words {
			s := words[wi].syms
			out := s[:0]
			for i := 0; i < len(s); i++ {
				if i+1 < len(s) && s[i] == best[0] && s[i+1] == best[1] {
					out = append(out, merged)
					i++
				} else {
					out = append(out, s[i])
				}
			}
			words[wi].syms = out
		}
	}
	return tokens, merges
}

// trainedMerges caches the (slow-ish) training per pre-tokenizer.
var trainedMerges = func() map[string]func() ([]string, []string) {
	m := map[string]func() ([]string, []string){}
	for _, pre := range []string{"gpt2", "llama3", "qwen2", "deepseek-coder", "deepseek-llm", "starcoder"} {
		m[pre] = sync.OnceValues(func() ([]string, []string) {
			return trainBPE(englishText+"日本語のテキスト", preTokenizers[pre], 400)
		})
	}
	return m
}()

// trainedBPE is a byte-level BPE tokenizer with 400 merges learned from
// englishText using the named pre-tokenizer, plus
// ChatML control tokens.
func trainedBPE(t testing.TB, pre string) *Tokenizer {
	t.Helper()
	toks, merges := trainedMerges[pre]()
	toks = slices.Clip(toks)
	types := make([]int32, len(toks), len(toks)+3)
	for i := range types {
		types[i] = TypeNormal
	}
	toks = append(toks, "<|endoftext|>", "<|im_start|>", "<|im_end|>")
	types = append(types, TypeControl, TypeControl, TypeControl)
	tk, err := New(Vocab{
		Model: "gpt2", Pre: pre, Tokens: toks, Types: types, Merges: merges,
		BOS: -1, EOS: int32(len(toks) - 3), UNK: -1, PAD: -1, EOT: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

// synthSPM is a small SentencePiece vocabulary with byte fallback whose
// scores make the merge order visible.
func synthSPM(t testing.TB, withBytes bool) *Tokenizer {
	t.Helper()
	toks := []string{"<unk>", "<s>", "</s>"}
	types := []int32{TypeUnknown, TypeControl, TypeControl}
	scores := []float32{0, 0, 0}
	if withBytes {
		for b := range 256 {
			toks = append(toks, fmt.Sprintf("<0x%02X>", b))
			types = append(types, TypeByte)
			scores = append(scores, 0)
		}
	}
	for _, p := range []struct {
		s     string
		score float32
	}{
		{"▁", -1}, {"a", -1}, {"b", -1}, {"c", -1}, {"d", -1}, {"e", -1},
		{"ab", -2}, {"bc", -1.5}, {"cd", -3}, {"ee", -1},
		{"▁a", -4}, {"▁ab", -0.5}, {"h", -1}, {"i", -1}, {"hi", -2}, {"▁hi", -2},
		{"<tag>", 0},
	} {
		toks = append(toks, p.s)
		types = append(types, TypeNormal)
		scores = append(scores, p.score)
	}
	types[len(types)-1] = TypeUserDefined
	tk, err := New(Vocab{
		Model: "llama", Tokens: toks, Scores: scores, Types: types,
		BOS: 1, EOS: 2, UNK: 0, PAD: -1, EOT: -1, AddBOS: true, AddSpacePrefix: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

// pieces renders ids as vocabulary texts, for readable failures.
func pieces(tk *Tokenizer, ids []int32) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = tk.Piece(id)
	}
	return out
}

func utf8Valid(s string) bool { return utf8.ValidString(s) }
