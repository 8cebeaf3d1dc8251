package tokenizer

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The expected splits below were worked out by hand from the regular
// expressions quoted in pretok.go.
func TestPreTokenizers(t *testing.T) {
	type tc struct {
		in   string
		want []string
	}
	llama3 := []tc{
		{"Hello world", []string{"Hello", " world"}},
		{"I'm here", []string{"I", "'m", " here"}},
		{"THEY'RE WE'VE YOU'LL HE'D IT'S DON'T", []string{"THEY", "'RE", " WE", "'VE", " YOU", "'LL", " HE", "'D", " IT", "'S", " DON", "'T"}},
		{"'sup 'x", []string{"'s", "up", " '", "x"}},
		{"'Ll'lL", []string{"'Ll", "'lL"}},
		// ASCII-only case folding, as llama.cpp adapts the pattern; Unicode
		// (?i) would also fold "ſ" (U+017F) to "s" and split "'ſ", "t".
		{"x'ſt", []string{"x", "'ſt"}},
		{"12345 7", []string{"123", "45", " ", "7"}},
		{"abc123def", []string{"abc", "123", "def"}},
		{"x   y", []string{"x", "  ", " y"}},
		{"x   ", []string{"x", "   "}},
		{"a\nb", []string{"a", "\n", "b"}},
		{"a \n\n  b", []string{"a", " \n\n", " ", " b"}},
		{"a\n \n b", []string{"a", "\n \n", " b"}},
		{"hello!!! world...\n\nok", []string{"hello", "!!!", " world", "...\n\n", "ok"}},
		{" (foo)", []string{" (", "foo", ")"}},
		{"\tfoo", []string{"\tfoo"}},
		{"?foo", []string{"?foo"}},
		{"$1.50", []string{"$", "1", ".", "50"}},
		{"naïve café", []string{"naïve", " café"}},
		{"e\u0301t\u00e9", []string{"e", "\u0301t\u00e9"}}, // a mark is not \p{L}, so it prefixes the next word
		{"Ⅻ²½", []string{"Ⅻ²½"}},                           // \p{N}: Nl and No count, up to 3
		{"你好，世界", []string{"你好", "，世界"}},
		{"I ❤️ Go 🎉🎉!", []string{"I", " ❤️", " Go", " 🎉🎉!"}},
		{"x\u3000\u3000y", []string{"x", "\u3000", "\u3000y"}},
		{"a\r\n", []string{"a", "\r\n"}},
		{"\xff\xfeab", []string{"\xff\xfe", "ab"}}, // invalid bytes class as punctuation
		{"", nil},
	}
	qwen2 := []tc{
		{"12345 7", []string{"1", "2", "3", "4", "5", " ", "7"}},
		{"abc123def", []string{"abc", "1", "2", "3", "def"}},
		{"I'M 2x", []string{"I", "'M", " ", "2", "x"}},
		{"²½", []string{"²", "½"}},
	}
	gpt2 := []tc{
		{"Hello world", []string{"Hello", " world"}},
		{"I'm here", []string{"I", "'m", " here"}},
		{"I'M", []string{"I", "'", "M"}},
		{"they're we've you'll he'd it's", []string{"they", "'re", " we", "'ve", " you", "'ll", " he", "'d", " it", "'s"}},
		{"12345 7", []string{"12345", " 7"}},
		{"x   y", []string{"x", "  ", " y"}},
		{"x   ", []string{"x", "   "}},
		{"a \n\n  b", []string{"a", " \n\n ", " b"}},
		{"a\nb", []string{"a", "\n", "b"}},
		{"hello!!! world...\n\nok", []string{"hello", "!!!", " world", "...", "\n", "\n", "ok"}},
		{"\tfoo", []string{"\t", "foo"}},
		{" (foo)", []string{" (", "foo", ")"}},
		{"你好，世界", []string{"你好", "，", "世界"}},
		{"e\u0301", []string{"e", "\u0301"}},
		{"\xff\xfeab", []string{"\xff\xfe", "ab"}},
	}
	run := func(name string, split preTokenizer, cases []tc) {
		for _, c := range cases {
			got := split(c.in, nil)
			if diff := cmp.Diff(c.want, got); diff != "" {
				t.Errorf("%s(%q) mismatch (-want +got):\n%s", name, c.in, diff)
			}
			if strings.Join(got, "") != c.in {
				t.Errorf("%s(%q) pieces do not concatenate back", name, c.in)
			}
		}
	}
	run("llama3", splitLlama3Digits3, llama3)
	run("qwen2", splitQwen2, qwen2)
	run("gpt2", splitGPT2, gpt2)
}
