// Package httphead holds the pieces of an HTTP/1.1 message head that a request and an answer
// share: reading a line under a byte limit, checking and splitting a header field line, naming
// a field by its canonical key, and looking for a token in a comma-separated list.
//
// The lean server's request parser (internal/h1) and the direct upstream path's answer reader
// (internal/backend/openai) are both built on it; what differs between them — the request line
// and the status line, the limits, the rules that frame a body — stays with each.
//
// Apart from AppendLine growing the buffer it is given, NewNames building a table and AddVary
// writing a header, nothing here allocates.
package httphead

import (
	"bufio"
	"bytes"
	"errors"
	"net/http"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// ErrTooLong is AppendLine's error for a line that would take its buffer past the limit.
var ErrTooLong = errors.New("httphead: line past the limit")

// AppendLine appends the next line of br, its line end (LF) included, to dst, and returns the
// extended buffer. It reads the line a buffer's worth at a time, and stops with ErrTooLong
// before appending a piece that would make dst longer than max bytes (the pieces before it
// stay appended), so that a peer cannot make it hold more than max. Any other read error
// (io.EOF for a line cut short included) comes back with what was read of the line appended.
func AppendLine(dst []byte, br *bufio.Reader, max int) ([]byte, error) {
	for {
		frag, err := br.ReadSlice('\n')
		if len(dst)+len(frag) > max {
			return dst, ErrTooLong
		}
		dst = append(dst, frag...)
		if err != bufio.ErrBufferFull {
			return dst, err
		}
	}
}

// TrimLineEnd returns line, as AppendLine read it, without its line end: the LF and a CR just
// before it. HTTP/1.1 ends a line with CRLF, and a recipient may take a bare LF as well
// (RFC 9112, section 2.2); both parsers do.
func TrimLineEnd(line []byte) []byte {
	if n := len(line); n > 0 && line[n-1] == '\n' {
		line = line[:n-1]
	}
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line
}

// IsToken reports whether b is a token (RFC 9110, section 5.6.2): one or more of the bytes a
// field name or a method may hold. It uses net/http's own table.
func IsToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !httpguts.IsTokenRune(rune(c)) {
			return false
		}
	}
	return true
}

// SplitField checks one header or trailer field line, without its line end, and returns where
// its name ends (the colon) and where its value, without the blanks (spaces and tabs) around
// it, starts and ends: the name is line[:colon] and the value line[v:e]. ok is false for a
// line that is not a well-formed field: one with no colon, a name that is not a token (so an
// empty name, a blank before the colon and a line folded onto the one before, which starts
// with a blank, are all refused), or a value with a control byte other than tab. What it
// accepts, net/http's reader accepts as the same name and value.
func SplitField(line []byte) (colon, v, e int, ok bool) {
	colon = bytes.IndexByte(line, ':')
	if colon <= 0 || !IsToken(line[:colon]) {
		return 0, 0, 0, false
	}
	v, e = colon+1, len(line)
	for v < e && (line[v] == ' ' || line[v] == '\t') {
		v++
	}
	for e > v && (line[e-1] == ' ' || line[e-1] == '\t') {
		e--
	}
	for _, c := range line[v:e] {
		if c < ' ' && c != '\t' || c == 0x7f {
			return 0, 0, 0, false
		}
	}
	return colon, v, e, true
}

// EqualFold reports whether a and b are the same but for the case of ASCII letters. Unlike
// strings.EqualFold it folds no other character, as HTTP's case-insensitive tokens want. a may
// be bytes read from a head, compared where they lie.
func EqualFold[A ~string | ~[]byte](a A, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if a[i] != b[i] && lower(a[i]) != lower(b[i]) {
			return false
		}
	}
	return true
}

// HasToken reports whether token is one of the elements of the comma-separated lists in vs
// (each element without the blanks around it), ignoring ASCII case: how the Connection field
// says "close" or "keep-alive". token must be ASCII; an element with any other byte matches no
// such token, as in net/http.
func HasToken(vs []string, token string) bool {
	for _, v := range vs {
		for more := true; more; {
			var elem string
			elem, v, more = strings.Cut(v, ",")
			if EqualFold(trimBlanks(elem), token) {
				return true
			}
		}
	}
	return false
}

// AddVary adds the request header names to h's Vary field, each once: the names already
// listed (in any of its lines, in any case) are not repeated, and the field is left as one
// line. Two stages that each vary on Accept-Encoding (compression, and a handler that serves
// precompressed files) so answer with one "Vary: Accept-Encoding, ..." rather than two lines
// naming it twice.
func AddVary(h http.Header, names ...string) {
	vs := h.Values("Vary")
	if HasToken(vs, "*") {
		return // varies on everything already
	}
	var add []string
	for _, n := range names {
		if !HasToken(vs, n) && !HasToken(add, n) {
			add = append(add, n)
		}
	}
	if len(add) == 0 && len(vs) <= 1 {
		return
	}
	var all []string
	for _, v := range vs {
		for more := true; more; {
			var elem string
			elem, v, more = strings.Cut(v, ",")
			if elem = trimBlanks(elem); elem != "" && !HasToken(all, elem) {
				all = append(all, elem)
			}
		}
	}
	h.Set("Vary", strings.Join(append(all, add...), ", "))
}

// trimBlanks returns s without the spaces and tabs at its start and end.
func trimBlanks(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// lower is c in lower case if it is an ASCII capital letter, else c.
func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// upper is c in upper case if it is an ASCII small letter, else c.
func upper(c byte) byte {
	if 'a' <= c && c <= 'z' {
		return c - ('a' - 'A')
	}
	return c
}

// Get is h.Get(key) for a key written in canonical form, as the keys of every header a parser
// made are: the map is read directly, and key is not put in canonical form again on each call
// (the request path reads a handful of fields per request).
func Get(h http.Header, key string) string {
	if vs := h[key]; len(vs) > 0 {
		return vs[0]
	}
	return ""
}
