package tokenizer

import (
	"slices"
	"unicode"
	"unicode/utf8"
)

// A preTokenizer splits text into the pieces ("words") that byte-level BPE
// merges within; no merge ever crosses a piece boundary. The pieces are
// substrings of s, appended to out, and concatenate back to s exactly.
//
// The patterns these functions implement are regular expressions with
// lookahead, which Go's regexp cannot express, so each is written out as a
// small hand-made matcher that follows the regex semantics: at each position
// the alternatives are tried in order and the first that matches wins, each
// alternative being greedy with backtracking where the pattern needs it.
type preTokenizer func(s string, out []string) []string

// Character classes used by the patterns. An invalid UTF-8 byte is classOther,
// as U+FFFD (a symbol) would be, so invalid input still splits and round-trips.
const (
	classOther uint8 = iota
	classLetter
	classNumber
	classSpace
)

var asciiClass = func() (t [utf8.RuneSelf]uint8) {
	for c := range utf8.RuneSelf {
		switch r := rune(c); {
		case unicode.IsLetter(r):
			t[c] = classLetter
		case unicode.IsNumber(r):
			t[c] = classNumber
		case unicode.IsSpace(r):
			t[c] = classSpace
		}
	}
	return t
}()

// classOf classifies r as \p{L}, \p{N}, \s or anything else.
func classOf(r rune) uint8 {
	if r < utf8.RuneSelf {
		return asciiClass[r]
	}
	switch {
	case unicode.IsLetter(r):
		return classLetter
	case unicode.IsNumber(r):
		return classNumber
	case unicode.IsSpace(r):
		return classSpace
	}
	return classOther
}

// next decodes the rune at s[i:] and classifies it. An invalid byte decodes
// as RuneError with width 1.
func next(s string, i int) (r rune, w int, class uint8) {
	if c := s[i]; c < utf8.RuneSelf {
		return rune(c), 1, asciiClass[c]
	}
	r, w = utf8.DecodeRuneInString(s[i:])
	if r == utf8.RuneError {
		return r, w, classOther
	}
	return r, w, classOf(r)
}

// run returns the end of the run of characters of class c starting at i.
func run(s string, i int, c uint8) int {
	for i < len(s) {
		_, w, k := next(s, i)
		if k != c {
			break
		}
		i += w
	}
	return i
}

// contraction returns the length of an English contraction suffix at s[i:]
// ('s 't 're 've 'm 'll 'd), or 0. With fold the letters match either case,
// as (?i:...) does in the Llama-3 pattern; GPT-2's pattern is case-sensitive.
// Folding is ASCII-only, as in llama.cpp's adaptation of the pattern: full
// Unicode folding would also accept "ſ" (U+017F) for "s".
func contraction(s string, i int, fold bool) int {
	if i+1 >= len(s) || s[i] != '\'' {
		return 0
	}
	lower := func(c byte) byte {
		if fold && c >= 'A' && c <= 'Z' {
			return c + ('a' - 'A')
		}
		return c
	}
	switch lower(s[i+1]) {
	case 's', 't', 'm', 'd':
		return 2
	case 'r', 'v':
		if i+2 < len(s) && lower(s[i+2]) == 'e' {
			return 3
		}
	case 'l':
		if i+2 < len(s) && lower(s[i+2]) == 'l' {
			return 3
		}
	}
	return 0
}

// spaces matches the whitespace alternatives shared by every pattern, at a
// position i that holds whitespace, and returns the end of the match:
//
//	\s*[\r\n]+   (only when newlines is set: up to and including the last
//	              newline of the run)
//	\s+(?!\S)    (the run, less its last character when a non-space follows,
//	              so that character can prefix the next word)
//	\s+          (a single whitespace character before a non-space)
func spaces(s string, i int, newlines bool) int {
	j, lastNL, lastStart, n := i, -1, i, 0
	for j < len(s) {
		_, w, k := next(s, j)
		if k != classSpace {
			break
		}
		if s[j] == '\n' || s[j] == '\r' {
			lastNL = j
		}
		lastStart = j
		j += w
		n++
	}
	switch {
	case newlines && lastNL >= 0:
		return lastNL + 1
	case j == len(s) || n == 1:
		return j
	default:
		return lastStart
	}
}

// splitLlama3 implements the Llama-3 pattern, also used by GLM-4
// (chatglm-bpe, glm4) and, with maxDigits 1, by Qwen2:
//
//	(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
//	 ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
func splitLlama3(s string, out []string, maxDigits int) []string {
	for i := 0; i < len(s); {
		end := matchLlama3(s, i, maxDigits)
		out = append(out, s[i:end])
		i = end
	}
	return out
}

func matchLlama3(s string, i, maxDigits int) int {
	if n := contraction(s, i, true); n > 0 {
		return i + n
	}
	r, w, c := next(s, i)
	// [^\r\n\p{L}\p{N}]?\p{L}+
	if c == classLetter {
		return run(s, i+w, classLetter)
	}
	if c != classNumber && r != '\r' && r != '\n' && i+w < len(s) {
		if _, w2, c2 := next(s, i+w); c2 == classLetter {
			return run(s, i+w+w2, classLetter)
		}
	}
	// \p{N}{1,maxDigits}
	if c == classNumber {
		j := i + w
		for k := 1; k < maxDigits && j < len(s); k++ {
			_, w2, c2 := next(s, j)
			if c2 != classNumber {
				break
			}
			j += w2
		}
		return j
	}
	// ' ?[^\s\p{L}\p{N}]+[\r\n]*'
	if j := punctStart(s, i, r, c); j >= 0 {
		j = run(s, j, classOther)
		for j < len(s) && (s[j] == '\r' || s[j] == '\n') {
			j++
		}
		return j
	}
	return spaces(s, i, true)
}

// punctStart returns where a ' ?[^\s\p{L}\p{N}]' match begins its punctuation
// run (i, or i+1 after an optional leading space), or -1 if there is none.
func punctStart(s string, i int, r rune, c uint8) int {
	if c == classOther {
		return i
	}
	if r == ' ' && i+1 < len(s) {
		if _, _, c2 := next(s, i+1); c2 == classOther {
			return i + 1
		}
	}
	return -1
}

func splitLlama3Digits3(s string, out []string) []string { return splitLlama3(s, out, 3) }
func splitQwen2(s string, out []string) []string         { return splitLlama3(s, out, 1) }

// splitGPT2 implements the original GPT-2 pattern:
//
//	's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
func splitGPT2(s string, out []string) []string {
	for i := 0; i < len(s); {
		end := matchGPT2(s, i)
		out = append(out, s[i:end])
		i = end
	}
	return out
}

func matchGPT2(s string, i int) int {
	if n := contraction(s, i, false); n > 0 {
		return i + n
	}
	r, w, c := next(s, i)
	j := i // where the letters, digits or punctuation begin
	if r == ' ' && i+w < len(s) {
		if _, _, c2 := next(s, i+w); c2 != classSpace {
			j, c = i+w, c2
		}
	}
	if c != classSpace {
		_, w2, _ := next(s, j)
		return run(s, j+w2, c)
	}
	return spaces(s, i, false)
}

// preTokenizers maps tokenizer.ggml.pre names to their pre-tokenizer, with the
// aliases llama.cpp accepts. "default" and a missing name use GPT-2's pattern.
// GLM-4 ("chatglm-bpe", "glm4") uses the Llama-3 pattern, as llama.cpp does.
var preTokenizers = map[string]preTokenizer{
	"":            splitGPT2,
	"default":     splitGPT2,
	"gpt2":        splitGPT2,
	"gpt-2":       splitGPT2,
	"phi-2":       splitGPT2,
	"mpt":         splitGPT2,
	"olmo":        splitGPT2,
	"jais":        splitGPT2,
	"roberta-bpe": splitGPT2,

	"llama3":      splitLlama3Digits3,
	"llama-v3":    splitLlama3Digits3,
	"llama-bpe":   splitLlama3Digits3,
	"falcon3":     splitLlama3Digits3,
	"dbrx":        splitLlama3Digits3,
	"smaug-bpe":   splitLlama3Digits3,
	"chatglm-bpe": splitLlama3Digits3,
	"glm4":        splitLlama3Digits3,

	"deepseek-coder": splitDeepSeekCoder,
	"deepseek-llm":   splitDeepSeekLLM,

	// StarCoder's pattern, which llama.cpp also uses for these.
	"starcoder":  splitStarCoder,
	"refact":     splitStarCoder,
	"command-r":  splitStarCoder,
	"smollm":     splitStarCoder,
	"codeshell":  splitStarCoder,
	"exaone":     splitStarCoder,
	"minerva-7b": splitStarCoder,

	"qwen2":            splitQwen2,
	"stablelm2":        splitQwen2,
	"megrez":           splitQwen2,
	"deepseek-r1-qwen": splitQwen2,
}

// PreTokenizers lists the supported tokenizer.ggml.pre names, sorted.
func PreTokenizers() []string {
	names := make([]string, 0, len(preTokenizers))
	for name := range preTokenizers {
		if name != "" {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}
