package tokenizer

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The expected splits were worked out by hand from the patterns quoted in
// pretok_seq.go, applying each pattern in turn to the pieces the previous
// ones left.
func TestSequencePreTokenizers(t *testing.T) {
	type tc struct {
		in   string
		want []string
	}
	coder := []tc{
		{"Hello world", []string{"Hello", " world"}},
		{"def f(x):\n    return x+1", []string{"def", " f", "(", "x", "):", "\n", "   ", " return", " x", "+", "1"}},
		{"a, b!", []string{"a", ",", " b", "!"}},
		{"x = 12345", []string{"x", " = ", "1", "2", "3", "4", "5"}}, // '=' is a symbol, not \p{P}
		{"你好世界abc", []string{"你好世界", "abc"}},
		{"  foo.", []string{" ", " foo", "."}},
		{"a\r\nb", []string{"a", "\r", "\n", "b"}},
		{"e\u0301", []string{"e", "\u0301"}},
		{"'hello'", []string{"'", "hello", "'"}},
		{"foo_bar", []string{"foo", "_", "bar"}},
		{"Ⅻ²", []string{"Ⅻ", "²"}},
		{"\xff\xfeab", []string{"\xff\xfe", "ab"}},
		{"", nil},
	}
	llm := []tc{
		{"Hello world", []string{"Hello", " world"}},
		{"x = 12345", []string{"x", " =", " ", "12345"}},
		{"你好，世界", []string{"你好", "，", "世界"}},
		{"abc  ", []string{"abc", "  "}},
		{"1 2  ", []string{"1", " ", "2", "  "}},
		// The punctuation class [!-/:-~…] also holds the ASCII letters, so
		// the third pattern cuts a word at its non-ASCII letters.
		{"naïve", []string{"na", "ï", "ve"}},
		{"αβγ δ", []string{"αβγ", " δ"}},
		{"a\nb", []string{"a", "\n", "b"}},
		{"e\u0301t", []string{"e", "\u0301", "t"}},
		{"ok!?", []string{"ok", "!?"}},
		{"日本語のテキスト", []string{"日本語のテキスト"}},
		{"x_y", []string{"x", "_", "y"}},
		{"“quoted”", []string{"“", "quoted", "”"}},
	}
	starcoder := []tc{
		{"x = 12345", []string{"x", " =", " ", "1", "2", "3", "4", "5"}},
		{"hello world", []string{"hello", " world"}},
		{"var1 = 2", []string{"var", "1", " =", " ", "2"}},
		{"I'm here", []string{"I", "'m", " here"}},
		{"\tfoo(bar)", []string{"\t", "foo", "(", "bar", ")"}},
		{"a  b", []string{"a", " ", " b"}},
	}
	run := func(name string, cases []tc) {
		split := preTokenizers[name]
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
	run("deepseek-coder", coder)
	run("deepseek-llm", llm)
	run("starcoder", starcoder)
	for _, alias := range []string{"refact", "command-r", "smollm", "codeshell", "exaone", "minerva-7b"} {
		run(alias, starcoder)
	}
}

// TestSequencePreTokenizersEncode encodes with vocabularies trained under
// each code pre-tokenizer: the text round-trips, and no token spans two
// pieces of the pre-tokenizer.
func TestSequencePreTokenizersEncode(t *testing.T) {
	text := "def add(x, y):\n    return x+y  # 42\n\nprint(add(1, 23))  你好，世界"
	for _, pre := range []string{"deepseek-coder", "deepseek-llm", "starcoder"} {
		tk := trainedBPE(t, pre)
		ids := tk.Encode(text, EncodeOptions{})
		if got := tk.Decode(ids); got != text {
			t.Errorf("%s: round trip %q", pre, got)
		}
		bounds := map[int]bool{}
		at := 0
		for _, p := range preTokenizers[pre](text, nil) {
			at += len(p)
			bounds[at] = true
		}
		at = 0
		for _, id := range ids {
			start := at
			at += len(tk.Decode([]int32{id}))
			for b := start + 1; b < at; b++ {
				if bounds[b] {
					t.Errorf("%s: token %q spans a piece boundary at byte %d", pre, tk.Decode([]int32{id}), b)
				}
			}
		}
		if len(ids) >= len(text) {
			t.Errorf("%s: %d tokens for %d bytes: no merges applied", pre, len(ids), len(text))
		}
	}
}
