//go:build wasip1

package main

import (
	"bytes"
	"unicode/utf8"
)

// A small JSON reader and writer that work on the bytes in place. A hook that uses them
// allocates nothing, so the Go garbage collector never runs inside a call: with
// encoding/json (reflection, maps, a string per field) the same hook cost ten times as much.
// The host only ever sends valid JSON, so the reader does not validate.

// member finds member name of the object that v starts with, and returns the document from
// that member's value on: enough to read the value, without the cost of finding where it
// ends (a request's messages are most of its bytes).
func member(v []byte, name string) []byte {
	i := skipSpace(v, 0)
	if i >= len(v) || v[i] != '{' {
		return nil
	}
	for i++; ; {
		i = skipSpace(v, i)
		if i < len(v) && v[i] == ',' {
			i = skipSpace(v, i+1)
		}
		if i >= len(v) || v[i] != '"' {
			return nil
		}
		end := skipString(v, i)
		key := v[i+1 : end-1]
		i = skipSpace(v, skipSpace(v, end)+1) // past ':'
		if string(key) == name {              // compared without a copy
			return v[i:]
		}
		i = skipValue(v, i)
	}
}

// str returns the JSON string v starts with (nil when v starts with something else).
func str(v []byte) []byte {
	if len(v) == 0 || v[0] != '"' {
		return nil
	}
	return v[:skipString(v, 0)]
}

// array walks the elements of a JSON array.
type array struct {
	b []byte
	i int
}

func arrayAt(v []byte) array {
	i := skipSpace(v, 0)
	if i >= len(v) || v[i] != '[' {
		return array{}
	}
	return array{b: v, i: i + 1}
}

// next returns the next element. At the end, a.i is the index of the closing bracket.
func (a *array) next() (val []byte, ok bool) {
	i := skipSpace(a.b, a.i)
	if i >= len(a.b) || a.b[i] == ']' {
		a.i = i
		return nil, false
	}
	if a.b[i] == ',' {
		i = skipSpace(a.b, i+1)
	}
	end := skipValue(a.b, i)
	a.i = end
	return a.b[i:end], true
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipValue returns the end of the value that starts at b[i]. Strings, which hold most of a
// request's bytes, are skipped with bytes.IndexByte: Go compiles it for wasm to a tight
// loop, many times faster than a loop written in Go over each byte.
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return i
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = skipString(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	}
	for i < len(b) && b[i] != ',' && b[i] != '}' && b[i] != ']' && b[i] != ' ' && b[i] != '\n' && b[i] != '\r' && b[i] != '\t' {
		i++
	}
	return i
}

// skipString returns the end of the string that starts at b[i].
func skipString(b []byte, i int) int {
	for j := i + 1; ; j++ {
		k := bytes.IndexByte(b[j:], '"')
		if k < 0 {
			return len(b)
		}
		j += k
		escaped := false
		for m := j - 1; m > i && b[m] == '\\'; m-- {
			escaped = !escaped
		}
		if !escaped {
			return j + 1
		}
	}
}

// inner is a JSON string's content as it stands in the document: escaped, without quotes.
func inner(v []byte) []byte { return v[1 : len(v)-1] }

// appendUnquoted appends the text of the JSON string v to dst.
func appendUnquoted(dst, v []byte) []byte {
	s := inner(v)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 >= len(s) {
			dst = append(dst, c)
			continue
		}
		i++
		switch s[i] {
		case 'n':
			dst = append(dst, '\n')
		case 't':
			dst = append(dst, '\t')
		case 'r':
			dst = append(dst, '\r')
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'u':
			r := hex4(s[i+1:])
			i += 4
			if r >= 0xd800 && r < 0xdc00 && i+6 < len(s) && s[i+1] == '\\' && s[i+2] == 'u' {
				if lo := hex4(s[i+3:]); lo >= 0xdc00 && lo < 0xe000 {
					r = 0x10000 + (r-0xd800)<<10 + (lo - 0xdc00)
					i += 6
				}
			}
			dst = utf8.AppendRune(dst, r)
		default: // \" \\ \/
			dst = append(dst, s[i])
		}
	}
	return dst
}

func hex4(s []byte) rune {
	var r rune
	for j := 0; j < 4 && j < len(s); j++ {
		c := s[j]
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		}
		r = r<<4 | rune(c)
	}
	return r
}

// appendEscaped appends s escaped for the inside of a JSON string.
func appendEscaped(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c == '\n':
			dst = append(dst, '\\', 'n')
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

// appendString appends s as a JSON string.
func appendString(dst []byte, s string) []byte {
	return append(appendEscaped(append(dst, '"'), s), '"')
}
