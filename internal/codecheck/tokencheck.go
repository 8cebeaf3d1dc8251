package codecheck

import (
	"context"
	"fmt"
	"strings"
)

// tokenChecker is the check for languages without a Go parser: a tokenizer that knows each
// language's comments and string literals, and reports only what is certainly wrong —
// unbalanced brackets, unterminated strings and comments, and (for Python) indentation that is
// inconsistent. Where the tokenizer cannot be sure (a construct it does not model), it stops and
// reports nothing further rather than risk a false error.
type tokenChecker struct{}

func (tokenChecker) name(string) (string, string) { return "tokenizer", "1" }

// lexRules describes the lexical syntax that matters for balancing.
type lexRules struct {
	line       []string // line comment openers
	blockOpen  string
	blockClose string
	nestBlock  bool     // block comments nest (Rust, Swift, Kotlin, Scala)
	quotes     string   // single-line string quote characters
	multiline  string   // quote characters whose strings may span lines (JS template strings)
	triple     bool     // """ and ''' strings (Python, Kotlin, Java text blocks, Scala, Swift)
	charQuote  bool     // ' starts a character literal only when it closes nearby (Rust lifetimes, C chars)
	indent     bool     // Python: check indentation consistency
	prefixes   string   // letters that may prefix a string (Python r, b, f, u)
	rawStrings rawStyle // raw string forms
}

type rawStyle int

const (
	rawNone   rawStyle = iota
	rawCpp             // R"delim( ... )delim"
	rawRust            // r"..." r#"..."# br"..."
	rawCs              // @"..." (verbatim, "" escapes a quote)
	rawGroovy          // no raw forms modelled
)

var cLike = lexRules{line: []string{"//"}, blockOpen: "/*", blockClose: "*/", quotes: `"`, charQuote: true}

var tokenRules = map[string]lexRules{
	"python": {line: []string{"#"}, quotes: `"'`, triple: true, indent: true, prefixes: "rRbBfFuU"},
	"c":      cLike,
	"cpp":    withRaw(cLike, rawCpp),
	"java":   {line: []string{"//"}, blockOpen: "/*", blockClose: "*/", quotes: `"`, charQuote: true, triple: true},
	"csharp": withRaw(cLike, rawCs),
	"rust":   {line: []string{"//"}, blockOpen: "/*", blockClose: "*/", nestBlock: true, quotes: `"`, charQuote: true, rawStrings: rawRust},
	"kotlin": {line: []string{"//"}, blockOpen: "/*", blockClose: "*/", nestBlock: true, quotes: `"`, charQuote: true, triple: true},
	"swift":  {line: []string{"//"}, blockOpen: "/*", blockClose: "*/", nestBlock: true, quotes: `"`, triple: true},
	"scala":  {line: []string{"//"}, blockOpen: "/*", blockClose: "*/", nestBlock: true, quotes: `"`, charQuote: true, triple: true},
	"dart":   {line: []string{"//"}, blockOpen: "/*", blockClose: "*/", quotes: `"'`, triple: true},
	"php":    {line: []string{"//", "#"}, blockOpen: "/*", blockClose: "*/", quotes: `"'`},
	"lua":    {line: []string{"--"}, quotes: `"'`},
}

func withRaw(r lexRules, s rawStyle) lexRules { r.rawStrings = s; return r }

func tokenLanguages() []string {
	out := make([]string, 0, len(tokenRules))
	for l := range tokenRules {
		out = append(out, l)
	}
	return out
}

var closerOf = map[byte]byte{'(': ')', '[': ']', '{': '}'}

type open struct {
	ch        byte
	line, col int
}

// errUnsure stops the scan: the tokenizer met something it does not model, so nothing after
// that point is reported.
type scan struct {
	src       string
	i         int
	line, col int
	rules     lexRules
	stack     []open
	diags     []Diagnostic
	unsure    bool
}

func (tokenChecker) check(_ context.Context, lang, src string) []Diagnostic {
	s := &scan{src: src, line: 1, col: 1, rules: tokenRules[lang]}
	s.run()
	if !s.unsure {
		for _, o := range s.stack {
			s.diags = append(s.diags, Diagnostic{Line: o.line, Column: o.col, Severity: SeverityError,
				Message: fmt.Sprintf("%q is never closed", o.ch)})
		}
	}
	if s.rules.indent && len(s.diags) == 0 && !s.unsure {
		s.diags = append(s.diags, pythonIndent(src)...)
	}
	return s.diags
}

func (s *scan) errorf(line, col int, format string, args ...any) {
	s.diags = append(s.diags, Diagnostic{Line: line, Column: col, Severity: SeverityError, Message: fmt.Sprintf(format, args...)})
}

// advance moves past n bytes, keeping line and column.
func (s *scan) advance(n int) {
	for k := 0; k < n && s.i < len(s.src); k++ {
		if s.src[s.i] == '\n' {
			s.line, s.col = s.line+1, 1
		} else {
			s.col++
		}
		s.i++
	}
}

func (s *scan) has(prefix string) bool { return strings.HasPrefix(s.src[s.i:], prefix) }

func (s *scan) run() {
	r := s.rules
	for s.i < len(s.src) && !s.unsure {
		c := s.src[s.i]
		switch {
		case s.lineComment():
			for s.i < len(s.src) && s.src[s.i] != '\n' {
				s.advance(1)
			}
		case r.blockOpen != "" && s.has(r.blockOpen):
			s.blockComment()
		case s.rawString():
		case r.triple && (s.has(`"""`) || (strings.IndexByte(r.quotes, '\'') >= 0 && s.has(`'''`))):
			s.tripleString()
		case strings.IndexByte(r.quotes, c) >= 0 || strings.IndexByte(r.multiline, c) >= 0:
			s.quoted(c, strings.IndexByte(r.multiline, c) >= 0)
		case c == '\'' && r.charQuote:
			s.charLiteral()
		case c == '(' || c == '[' || c == '{':
			s.stack = append(s.stack, open{c, s.line, s.col})
			s.advance(1)
		case c == ')' || c == ']' || c == '}':
			if n := len(s.stack); n == 0 {
				s.errorf(s.line, s.col, "unexpected %q: nothing is open", c)
				s.unsure = true // every later report would be a consequence
			} else if top := s.stack[n-1]; closerOf[top.ch] != c {
				s.errorf(s.line, s.col, "unexpected %q: %q opened at %d:%d is not closed", c, top.ch, top.line, top.col)
				s.unsure = true
			} else {
				s.stack = s.stack[:n-1]
			}
			s.advance(1)
		default:
			s.advance(1)
		}
	}
}

func (s *scan) lineComment() bool {
	for _, p := range s.rules.line {
		if s.has(p) {
			return true
		}
	}
	return false
}

func (s *scan) blockComment() {
	line, col := s.line, s.col
	depth := 0
	for s.i < len(s.src) {
		switch {
		case s.has(s.rules.blockOpen) && (depth == 0 || s.rules.nestBlock):
			depth++
			s.advance(len(s.rules.blockOpen))
		case s.has(s.rules.blockClose):
			depth--
			s.advance(len(s.rules.blockClose))
			if depth == 0 {
				return
			}
		default:
			s.advance(1)
		}
	}
	s.errorf(line, col, "comment opened here is never closed")
	s.unsure = true
}

// quoted scans a string literal opened by q. Single-line strings end at the line's end: an
// unterminated one is reported there.
func (s *scan) quoted(q byte, multiline bool) {
	line, col := s.line, s.col
	s.advance(1)
	for s.i < len(s.src) {
		c := s.src[s.i]
		switch {
		case c == '\\':
			s.advance(2)
		case c == q:
			s.advance(1)
			return
		case c == '\n' && !multiline:
			if s.prevIsContinuation() {
				s.advance(1)
				continue
			}
			s.errorf(line, col, "string opened here is not terminated on its line")
			s.unsure = true
			return
		default:
			if multiline && q == '`' && s.has("${") {
				// Template substitutions hold arbitrary expressions: not modelled.
				s.unsure = true
				return
			}
			s.advance(1)
		}
	}
	s.errorf(line, col, "string opened here is never terminated")
	s.unsure = true
}

func (s *scan) prevIsContinuation() bool { return s.i > 0 && s.src[s.i-1] == '\\' }

func (s *scan) tripleString() {
	line, col := s.line, s.col
	delim := s.src[s.i : s.i+3]
	s.advance(3)
	for s.i < len(s.src) {
		if s.src[s.i] == '\\' {
			s.advance(2)
			continue
		}
		if s.has(delim) {
			s.advance(3)
			for s.i < len(s.src) && s.src[s.i] == delim[0] { // """" ends with a quote inside
				s.advance(1)
			}
			return
		}
		s.advance(1)
	}
	s.errorf(line, col, "string opened here is never terminated")
	s.unsure = true
}

// charLiteral handles ' in languages where it is a character literal ('a', '\n', '\u{1F600}')
// or something else (a Rust lifetime 'a, a digit separator 1'000 in C++14). It is a literal only
// when a closing quote follows within a short escape; otherwise it is skipped as one character.
func (s *scan) charLiteral() {
	rest := s.src[s.i+1:]
	if s.i > 0 && isWord(s.src[s.i-1]) {
		s.advance(1) // digit separator or suffix: not a literal
		return
	}
	end := -1
	if strings.HasPrefix(rest, `\`) {
		for k := 2; k < len(rest) && k < 12; k++ {
			if rest[k] == '\'' {
				end = k
				break
			}
			if rest[k] == '\n' {
				break
			}
		}
	} else if j := strings.IndexByte(rest, '\''); j > 0 && j <= 4 && !strings.ContainsRune(rest[:j], '\n') {
		end = j // up to 4 bytes: one UTF-8 character
	}
	if end < 0 {
		s.advance(1)
		return
	}
	s.advance(end + 2)
}

func isWord(c byte) bool {
	return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// rawString scans a raw string literal when one starts here, reporting whether it did.
func (s *scan) rawString() bool {
	prevWord := s.i > 0 && isWord(s.src[s.i-1])
	switch s.rules.rawStrings {
	case rawCpp:
		k := s.i
		for k < len(s.src) && k-s.i < 3 && strings.IndexByte("uU8L", s.src[k]) >= 0 {
			k++
		}
		if prevWord || !strings.HasPrefix(s.src[k:], `R"`) {
			return false
		}
		open := strings.IndexByte(s.src[k+2:], '(')
		if open < 0 || open > 16 {
			return false
		}
		delim := ")" + s.src[k+2:k+2+open] + `"`
		line, col := s.line, s.col
		s.advance(k + 2 + open + 1 - s.i)
		if j := strings.Index(s.src[s.i:], delim); j >= 0 {
			s.advance(j + len(delim))
		} else {
			s.errorf(line, col, "raw string opened here is never terminated")
			s.unsure = true
		}
		return true
	case rawRust:
		k := s.i
		if k < len(s.src) && s.src[k] == 'b' {
			k++
		}
		if prevWord || k >= len(s.src) || s.src[k] != 'r' {
			if !prevWord && k > s.i && k < len(s.src) && s.src[k] == '\'' { // b'x'
				s.advance(1)
				s.charLiteral()
				return true
			}
			return false
		}
		k++
		hashes := 0
		for k < len(s.src) && s.src[k] == '#' {
			hashes++
			k++
		}
		if k >= len(s.src) || s.src[k] != '"' {
			return false
		}
		delim := `"` + strings.Repeat("#", hashes)
		line, col := s.line, s.col
		s.advance(k + 1 - s.i)
		if j := strings.Index(s.src[s.i:], delim); j >= 0 {
			s.advance(j + len(delim))
		} else {
			s.errorf(line, col, "raw string opened here is never terminated")
			s.unsure = true
		}
		return true
	case rawCs:
		if !s.has(`@"`) && !s.has(`$@"`) && !s.has(`@$"`) {
			if s.has(`$"`) || s.has(`"""`) {
				s.unsure = true // interpolated and raw string literals: not modelled
				return true
			}
			return false
		}
		line, col := s.line, s.col
		s.advance(strings.IndexByte(s.src[s.i:], '"') + 1)
		for s.i < len(s.src) {
			if s.has(`""`) {
				s.advance(2)
				continue
			}
			if s.src[s.i] == '"' {
				s.advance(1)
				return true
			}
			s.advance(1)
		}
		s.errorf(line, col, "string opened here is never terminated")
		s.unsure = true
		return true
	}
	if s.rules.prefixes != "" && !prevWord {
		// Python string prefixes: rb"...", f'...'. Raw strings keep backslashes but still
		// cannot end in an odd one, so the plain scan is right for them too.
		k := s.i
		for k < len(s.src) && k-s.i < 2 && strings.IndexByte(s.rules.prefixes, s.src[k]) >= 0 {
			k++
		}
		if k > s.i && k < len(s.src) && (s.src[k] == '"' || s.src[k] == '\'') {
			s.advance(k - s.i)
			if s.has(`"""`) || s.has(`'''`) {
				s.tripleString()
			} else {
				s.quoted(s.src[s.i], false)
			}
			return true
		}
	}
	return false
}

// pythonIndent applies the indentation rule of Python's tokenizer to the logical lines of src:
// each indentation is measured with tabs as 8 columns and as 1 column, and the two measures
// must order the lines the same way (otherwise Python raises TabError); a dedent must return to
// a level that was opened before. Lines inside brackets, triple-quoted strings or after a
// backslash continuation are not logical lines and are skipped.
func pythonIndent(src string) []Diagnostic {
	type level struct{ col, alt int }
	stack := []level{{0, 0}}
	depth, inTriple, continued := 0, "", false
	for n, line := range strings.Split(src, "\n") {
		trimmed := strings.TrimLeft(line, " \t\f")
		logical := depth == 0 && inTriple == "" && !continued
		if logical && trimmed != "" && trimmed != "\r" && !strings.HasPrefix(trimmed, "#") {
			col, alt := 0, 0
			for _, c := range line[:len(line)-len(trimmed)] {
				switch c {
				case ' ':
					col, alt = col+1, alt+1
				case '\t':
					col, alt = (col/8+1)*8, alt+1
				case '\f':
					col, alt = 0, 0
				}
			}
			bad := func(msg string) []Diagnostic {
				return []Diagnostic{{Line: n + 1, Column: 1, Severity: SeverityError, Message: msg}}
			}
			top := stack[len(stack)-1]
			switch {
			case col == top.col:
				if alt != top.alt {
					return bad("inconsistent use of tabs and spaces in indentation")
				}
			case col > top.col:
				if alt <= top.alt {
					return bad("inconsistent use of tabs and spaces in indentation")
				}
				stack = append(stack, level{col, alt})
			default:
				for len(stack) > 1 && col < stack[len(stack)-1].col {
					stack = stack[:len(stack)-1]
				}
				if top = stack[len(stack)-1]; col != top.col {
					return bad("unindent does not match any outer indentation level")
				}
				if alt != top.alt {
					return bad("inconsistent use of tabs and spaces in indentation")
				}
			}
		}
		depth, inTriple, continued = pyLineState(line, depth, inTriple)
	}
	return nil
}

// pyLineState scans one line for bracket depth and open triple-quoted strings.
func pyLineState(line string, depth int, inTriple string) (int, string, bool) {
	i := 0
	for i < len(line) {
		if inTriple != "" {
			j := strings.Index(line[i:], inTriple)
			if j < 0 {
				return depth, inTriple, false
			}
			i += j + 3
			inTriple = ""
			continue
		}
		c := line[i]
		switch {
		case c == '#':
			return depth, "", false
		case strings.HasPrefix(line[i:], `"""`) || strings.HasPrefix(line[i:], `'''`):
			inTriple = line[i : i+3]
			i += 3
		case c == '"' || c == '\'':
			i++
			for i < len(line) && line[i] != c {
				if line[i] == '\\' {
					i++
				}
				i++
			}
			i++
		case c == '(' || c == '[' || c == '{':
			depth++
			i++
		case c == ')' || c == ']' || c == '}':
			if depth > 0 {
				depth--
			}
			i++
		case c == '\\' && i == len(line)-1:
			return depth, "", true
		default:
			i++
		}
	}
	return depth, inTriple, false
}
