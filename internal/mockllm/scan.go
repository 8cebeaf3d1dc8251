package mockllm

import (
	"unicode/utf16"
	"unicode/utf8"
)

// scanner walks a JSON document that [encoding/json.Valid] has already
// accepted. Because the input is known to be well formed, it checks only the
// types of the values it reads, and never allocates: strings come back as
// raw slices of the input (still escaped), which is also the form in which
// they can be echoed into a response.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// peek returns the next non-space byte, or 0 at the end.
func (s *scanner) peek() byte {
	s.ws()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// str consumes the string at the cursor and returns its raw contents and
// whether they contain escapes.
func (s *scanner) str() (raw []byte, esc bool) {
	s.i++ // opening quote
	start := s.i
	for {
		switch s.b[s.i] {
		case '"':
			raw = s.b[start:s.i]
			s.i++
			return raw, esc
		case '\\':
			esc = true
			s.i += 2
		default:
			s.i++
		}
	}
}

// literal consumes a number, true, false or null and returns its bytes.
func (s *scanner) literal() []byte {
	start := s.i
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return s.b[start:s.i]
		}
		s.i++
	}
	return s.b[start:s.i]
}

// skip consumes one value of any kind.
func (s *scanner) skip() {
	switch s.peek() {
	case '"':
		s.str()
	case '{', '[':
		depth := 0
		for {
			switch s.b[s.i] {
			case '"':
				s.str()
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					s.i++
					return
				}
			}
			s.i++
		}
	default:
		s.literal()
	}
}

// enter consumes the opening byte c ('{' or '[') if it is next.
func (s *scanner) enter(c byte) bool {
	if s.peek() != c {
		return false
	}
	s.i++
	return true
}

// key returns the next key of the object being walked, leaving the cursor on
// its value, or ok=false after consuming the closing brace.
func (s *scanner) key() (k []byte, ok bool) {
	c := s.peek()
	if c == ',' {
		s.i++
		c = s.peek()
	}
	if c == '}' {
		s.i++
		return nil, false
	}
	k, _ = s.str()
	s.ws()
	s.i++ // colon
	return k, true
}

// elem reports whether the array being walked has another element, leaving
// the cursor on it, or consumes the closing bracket and returns false.
func (s *scanner) elem() bool {
	c := s.peek()
	if c == ',' {
		s.i++
		c = s.peek()
	}
	if c == ']' {
		s.i++
		return false
	}
	return true
}

// isNull consumes a null if it is next.
func (s *scanner) isNull() bool {
	if s.peek() == 'n' {
		s.i += 4
		return true
	}
	return false
}

// boolean reads true or false; ok is false for any other kind of value,
// which is then skipped.
func (s *scanner) boolean() (v, ok bool) {
	switch s.peek() {
	case 't':
		s.i += 4
		return true, true
	case 'f':
		s.i += 5
		return false, true
	}
	s.skip()
	return false, false
}

// integer reads a JSON number that has no fraction or exponent, clamping
// its magnitude to 1<<53. ok is false for any other value, which is skipped.
func (s *scanner) integer() (v int64, ok bool) {
	c := s.peek()
	if c != '-' && (c < '0' || c > '9') {
		s.skip()
		return 0, false
	}
	lit := s.literal()
	neg := lit[0] == '-'
	if neg {
		lit = lit[1:]
	}
	for _, d := range lit {
		if d < '0' || d > '9' {
			return 0, false
		}
		if v < 1<<53 {
			v = v*10 + int64(d-'0')
		}
	}
	v = min(v, 1<<53)
	if neg {
		v = -v
	}
	return v, true
}

// unescape appends the decoded form of the raw (escaped) contents of a JSON
// string to dst. Invalid surrogates become U+FFFD, as encoding/json does.
func unescape(dst, raw []byte) []byte {
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c != '\\' {
			dst = append(dst, c)
			continue
		}
		i++
		switch raw[i] {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r := hex4(raw[i+1:])
			i += 4
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if i+6 < len(raw) && raw[i+1] == '\\' && raw[i+2] == 'u' {
					r2 = hex4(raw[i+3:])
				}
				if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
					r = d
					i += 6
				} else {
					r = utf8.RuneError
				}
			}
			dst = utf8.AppendRune(dst, r)
		default: // '"', '\\', '/'
			dst = append(dst, raw[i])
		}
	}
	return dst
}

func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		}
	}
	return r
}
