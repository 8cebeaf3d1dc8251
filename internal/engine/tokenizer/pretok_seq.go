package tokenizer

import (
	"unicode"
	"unicode/utf8"
)

// Some pre-tokenizers are not one pattern but a sequence of them (Hugging
// Face's Sequence of Split pre-tokenizers with behavior "Isolated"; llama.cpp
// runs them one after another). Each pattern refines every piece the previous
// ones left: within a piece, every match becomes a piece of its own, and so
// does each stretch between matches. A matcher returns the end of the
// pattern's match at s[i:] (s being the piece), or i when there is none; none
// of these patterns matches the empty string.
type matcher func(s string, i int) int

// splitSeq applies the matchers in order, starting from s as one piece.
func splitSeq(s string, out []string, ms ...matcher) []string {
	if s == "" {
		return out
	}
	pieces := []string{s}
	var next []string
	for _, m := range ms {
		next = next[:0]
		for _, p := range pieces {
			next = refine(p, m, next)
		}
		pieces, next = next, pieces
	}
	return append(out, pieces...)
}

// refine splits p at the leftmost-first matches of m.
func refine(p string, m matcher, out []string) []string {
	gap := 0
	for i := 0; i < len(p); {
		if end := m(p, i); end > i {
			if gap < i {
				out = append(out, p[gap:i])
			}
			out = append(out, p[i:end])
			i, gap = end, end
			continue
		}
		_, w, _ := next(p, i)
		i += w
	}
	if gap < len(p) {
		out = append(out, p[gap:])
	}
	return out
}

// runOf returns the end of the run of runes satisfying in from i.
func runOf(s string, i int, in func(rune) bool) int {
	for i < len(s) {
		r, w := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && w <= 1) || !in(r) {
			break
		}
		i += w
	}
	return i
}

// optSpaceRun matches \s?C+ where C is the class in: one optional whitespace
// character, then a non-empty run of C.
func optSpaceRun(in func(rune) bool) matcher {
	return func(s string, i int) int {
		if j := runOf(s, i, in); j > i {
			return j
		}
		if _, w, c := next(s, i); c == classSpace {
			if j := runOf(s, i+w, in); j > i+w {
				return j
			}
		}
		return i
	}
}

// oneOf matches a single rune satisfying in.
func oneOf(in func(rune) bool) matcher {
	return func(s string, i int) int {
		r, w := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && w <= 1) || !in(r) {
			return i
		}
		return i + w
	}
}

// runMatcher matches a non-empty run of runes satisfying in.
func runMatcher(in func(rune) bool) matcher {
	return func(s string, i int) int { return runOf(s, i, in) }
}

func isNewline(r rune) bool { return r == '\r' || r == '\n' }
func isLetter(r rune) bool  { return classOf(r) == classLetter }
func isNumber(r rune) bool  { return classOf(r) == classNumber }
func isPunct(r rune) bool   { return unicode.IsPunct(r) }

// isCJK is the class [一-龥ࠀ-一가-퟿] of the DeepSeek patterns: U+0800–U+9FA5
// (most scripts from Samaritan through the CJK ideographs, kana included)
// and the Hangul syllables block U+AC00–U+D7FF.
func isCJK(r rune) bool {
	return (r >= 0x0800 && r <= 0x9FA5) || (r >= 0xAC00 && r <= 0xD7FF)
}

// isCased is the letter class of the DeepSeek-LLM pattern, which lists the
// ranges of the cased letters (Unicode's Lu, Ll and Lt): Latin, Greek,
// Cyrillic, Armenian, Georgian, Cherokee, Glagolitic, Coptic, Deseret, …
// Letters without case (CJK, kana, Arabic, Hebrew, Thai, …) are not in it.
// The pattern spells out the ranges of an older Unicode version; the few
// cased letters added since are taken as cased here.
func isCased(r rune) bool {
	if r < utf8.RuneSelf {
		return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
	}
	return unicode.In(r, unicode.Lu, unicode.Ll, unicode.Lt)
}

// isDeepSeekPunct is [!-/:-~！-／：-～‘-‟　-。]: ASCII punctuation and symbols
// (with the letters, which earlier patterns have already split off), their
// fullwidth forms, the curly quotes and the ideographic space, comma and full
// stop.
func isDeepSeekPunct(r rune) bool {
	switch {
	case r >= '!' && r <= '/', r >= ':' && r <= '~':
		return true
	case r >= 0xFF01 && r <= 0xFF0F, r >= 0xFF1A && r <= 0xFF5E:
		return true
	case r >= 0x2018 && r <= 0x201F, r >= 0x3000 && r <= 0x3002:
		return true
	}
	return false
}

// trailingSpace matches \s+$: the whitespace that runs to the end of the
// piece.
func trailingSpace(s string, i int) int {
	j := i
	for j < len(s) {
		_, w, c := next(s, j)
		if c != classSpace {
			return i
		}
		j += w
	}
	return j
}

var (
	deepseekCoderSeq = []matcher{
		oneOf(isNewline),      // [\r\n]
		optSpaceRun(isLetter), // \s?\p{L}+
		optSpaceRun(isPunct),  // \s?\p{P}+
		runMatcher(isCJK),     // [一-龥ࠀ-一가-퟿]+
		oneOf(isNumber),       // \p{N}
	}
	deepseekLLMSeq = []matcher{
		oneOf(isNewline),             // [\r\n]
		optSpaceRun(isCased),         // \s?[A-Za-zµÀ-ÖØ-ö…]+
		optSpaceRun(isDeepSeekPunct), // \s?[!-/:-~！-／：-～‘-‟　-。]+
		trailingSpace,                // \s+$
		runMatcher(isCJK),            // [一-龥ࠀ-一가-퟿]+
		runMatcher(isNumber),         // \p{N}+
	}
)

// splitDeepSeekCoder implements DeepSeek-Coder's sequence of patterns:
//
//	[\r\n]  \s?\p{L}+  \s?\p{P}+  [一-龥ࠀ-一가-퟿]+  \p{N}
func splitDeepSeekCoder(s string, out []string) []string {
	return splitSeq(s, out, deepseekCoderSeq...)
}

// splitDeepSeekLLM implements DeepSeek-LLM's sequence of patterns:
//
//	[\r\n]  \s?[cased letters]+  \s?[!-/:-~！-／：-～‘-‟　-。]+  \s+$
//	[一-龥ࠀ-一가-퟿]+  \p{N}+
func splitDeepSeekLLM(s string, out []string) []string {
	return splitSeq(s, out, deepseekLLMSeq...)
}

// splitStarCoder implements StarCoder's (and StarCoder2's) two patterns:
// every digit on its own (\p{N}), then GPT-2's pattern within the rest.
// GPT-2's last alternative (\s+) is absent from StarCoder's second pattern,
// but it would only ever match a single whitespace character before a
// non-space, which the stretch between matches then becomes anyway.
func splitStarCoder(s string, out []string) []string {
	for _, p := range refine(s, oneOf(isNumber), nil) {
		out = splitGPT2(p, out)
	}
	return out
}
