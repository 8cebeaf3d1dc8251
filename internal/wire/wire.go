// Package wire reads and edits the few top-level fields of an OpenAI-style JSON request body
// that the gateway needs (model, stream, stream_options.include_usage) without decoding the
// rest. Bodies are passed upstream as bytes; every field the gateway does not know — tools,
// response_format, logprobs, anything a provider adds — goes through untouched.
package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"unicode/utf8"
)

// Fields are the top-level request fields the gateway looks at.
type Fields struct {
	// Model is the decoded "model" string.
	Model string
	// ModelStart and ModelEnd delimit the model value, quotes included, in the body.
	ModelStart, ModelEnd int
	// HasModel reports whether "model" was present as a string.
	HasModel bool
	// Stream is the "stream" flag.
	Stream bool
	// IncludeUsage is "stream_options.include_usage".
	IncludeUsage bool
}

// Errors returned by Peek. They are public-safe messages.
var (
	ErrInvalidJSON  = errors.New("request body is not valid JSON")
	ErrNotObject    = errors.New("request body must be a JSON object")
	ErrModelType    = errors.New(`"model" must be a string`)
	ErrStreamType   = errors.New(`"stream" must be a boolean`)
	ErrStreamOpts   = errors.New(`"stream_options" must be an object`)
	ErrIncludeUsage = errors.New(`"stream_options.include_usage" must be a boolean`)
	ErrInvalidUTF8  = errors.New(`request body is not valid Unicode: invalid UTF-8, or a \u escape of an unpaired surrogate`)
	// ErrDuplicateKey is wrapped in a *DuplicateKeyError naming the key.
	ErrDuplicateKey = errors.New("request body repeats a key")
)

// DuplicateKeyError names a key that an object of the body repeats.
type DuplicateKeyError struct{ Key string }

func (e *DuplicateKeyError) Error() string {
	k := e.Key
	if len(k) > 64 {
		k = k[:64] + "…"
	}
	return "request body repeats the key " + strconv.Quote(k) + " in one object"
}

func (e *DuplicateKeyError) Unwrap() error { return ErrDuplicateKey }

// Peek validates body as JSON and extracts the gateway's fields. Besides syntax it refuses
// what JSON parsers read differently: invalid UTF-8 (replaced by U+FFFD in some, kept or
// refused in others) and an object that repeats a key at any depth (the last occurrence wins
// in some parsers, the first in others). The gateway passes the body upstream as bytes, so
// either would let the gateway (its model allow-list, its response cache) and the upstream
// read two different requests.
func Peek(body []byte) (Fields, error) {
	var f Fields
	if !json.Valid(body) {
		return f, ErrInvalidJSON
	}
	if !utf8.Valid(body) {
		return f, ErrInvalidUTF8
	}
	if err := unambiguous(body); err != nil {
		return f, err
	}
	s := scanner{b: body}
	s.ws()
	if s.peek() != '{' {
		return f, ErrNotObject
	}
	s.i++
	for {
		s.ws()
		if s.peek() == '}' {
			return f, nil
		}
		ks, ke := s.str()
		key := body[ks+1 : ke-1]
		s.ws()
		s.i++ // ':'
		s.ws()
		switch {
		case keyIs(key, "model"):
			if s.peek() != '"' {
				if s.peek() == 'n' { // null: treat as absent
					s.skip()
					f.HasModel = false
					break
				}
				return f, ErrModelType
			}
			vs, ve := s.str()
			f.Model = decodeString(body[vs:ve])
			f.ModelStart, f.ModelEnd, f.HasModel = vs, ve, true
		case keyIs(key, "stream"):
			switch s.peek() {
			case 't':
				f.Stream = true
			case 'f', 'n':
				f.Stream = false
			default:
				return f, ErrStreamType
			}
			s.skip()
		case keyIs(key, "stream_options"):
			switch s.peek() {
			case '{':
				iu, err := s.includeUsage()
				if err != nil {
					return f, err
				}
				f.IncludeUsage = iu
			case 'n':
				s.skip()
				f.IncludeUsage = false
			default:
				return f, ErrStreamOpts
			}
		default:
			s.skip()
		}
		s.ws()
		if s.peek() == ',' {
			s.i++
		}
	}
}

// SetModel returns body with its model value replaced by name. It returns body itself when the
// name is unchanged, and a new slice otherwise; body is never modified.
func SetModel(body []byte, f Fields, name string) []byte {
	if !f.HasModel || f.Model == name {
		return body
	}
	quoted := strconv.AppendQuote(make([]byte, 0, len(name)+2), name)
	if !utf8.ValidString(name) || hasNonASCII(name) {
		// strconv quotes non-ASCII as \u escapes only when not printable; JSON needs neither.
		quoted, _ = json.Marshal(name)
	}
	out := make([]byte, 0, len(body)-(f.ModelEnd-f.ModelStart)+len(quoted))
	out = append(out, body[:f.ModelStart]...)
	out = append(out, quoted...)
	return append(out, body[f.ModelEnd:]...)
}

func hasNonASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 || s[i] < 0x20 {
			return true
		}
	}
	return false
}

// keyIs compares a raw key (between quotes, escapes undecoded) with an ASCII name.
func keyIs(raw []byte, name string) bool {
	if len(raw) == len(name) {
		return string(raw) == name
	}
	for _, c := range raw {
		if c == '\\' {
			return decodeString(append(append([]byte{'"'}, raw...), '"')) == name
		}
	}
	return false
}

func decodeString(quoted []byte) string {
	for _, c := range quoted[1 : len(quoted)-1] {
		if c == '\\' {
			var s string
			_ = json.Unmarshal(quoted, &s) // the body was validated; this cannot fail
			return s
		}
	}
	return string(quoted[1 : len(quoted)-1])
}

// scanner walks JSON that json.Valid has accepted, so it need not check syntax.
type scanner struct {
	b []byte
	i int
	// badText is set by the unambiguity walk when a string is not valid Unicode.
	badText bool
}

func (s *scanner) peek() byte {
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
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

// str consumes a string starting at the opening quote and returns its span, quotes included.
func (s *scanner) str() (start, end int) {
	start = s.i
	s.i++
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case '\\':
			s.i += 2
		case '"':
			s.i++
			return start, s.i
		default:
			s.i++
		}
	}
	return start, s.i
}

// skip consumes one value of any type.
func (s *scanner) skip() {
	switch s.peek() {
	case '"':
		s.str()
	case '{', '[':
		depth := 0
		for s.i < len(s.b) {
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
	default: // number, true, false, null
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return
			}
			s.i++
		}
	}
}

// pairedSurrogates reports whether every \u escape of a UTF-16 surrogate in body (valid
// JSON, or one string token of it) is a high surrogate followed by an escaped low one. Parsers differ on unpaired ones
// (encoding/json makes them U+FFFD, so two different escapes would read alike).
func pairedSurrogates(body []byte) bool {
	in := false
	for i := 0; i < len(body); i++ {
		switch c := body[i]; {
		case c == '"':
			in = !in
		case c == '\\' && in:
			if body[i+1] != 'u' {
				i++
				continue
			}
			r := hex4(body[i+2 : i+6])
			i += 5
			switch {
			case r >= 0xdc00 && r <= 0xdfff:
				return false
			case r >= 0xd800 && r <= 0xdbff:
				if i+6 >= len(body) || body[i+1] != '\\' || body[i+2] != 'u' {
					return false
				}
				if lo := hex4(body[i+3 : i+7]); lo < 0xdc00 || lo > 0xdfff {
					return false
				}
				i += 6
			}
		}
	}
	return true
}

// hex4 decodes four hex digits (valid JSON has them after \u).
func hex4(b []byte) rune {
	var r rune
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		default:
			c = c - 'A' + 10
		}
		r = r<<4 | rune(c)
	}
	return r
}

// unambiguous walks body (valid JSON and valid UTF-8) once and refuses what parsers read
// differently: a \u escape of an unpaired surrogate (ErrInvalidUTF8, which takes precedence)
// or an object that repeats a key (*DuplicateKeyError). Only strings with a backslash are
// looked at for escapes.
func unambiguous(body []byte) error {
	s := scanner{b: body}
	s.ws()
	k, found := s.dupValue()
	switch {
	case s.badText:
		return ErrInvalidUTF8
	case found:
		// The walk stopped at the repeated key: the rest may still hold a bad escape.
		if !pairedSurrogates(body[s.i:]) {
			return ErrInvalidUTF8
		}
		return &DuplicateKeyError{Key: k}
	}
	return nil
}

// validText reports whether every \u escape of a surrogate in the string token b (with its
// quotes) is part of a pair.
func validText(b []byte) bool {
	return bytes.IndexByte(b, '\\') < 0 || pairedSurrogates(b)
}

// dupValue consumes one value and reports a key repeated in an object within it; it stops
// early, reporting found with s.badText set, at a string that is not valid Unicode.
func (s *scanner) dupValue() (string, bool) {
	switch s.peek() {
	case '"':
		start, end := s.str()
		if !validText(s.b[start:end]) {
			s.badText = true
			return "", true
		}
		return "", false
	case '{':
		return s.dupObject()
	case '[':
		s.i++
		for {
			s.ws()
			if s.peek() == ']' {
				s.i++
				return "", false
			}
			if k, ok := s.dupValue(); ok {
				return k, true
			}
			s.ws()
			if s.peek() == ',' {
				s.i++
			}
		}
	default:
		s.skip()
		return "", false
	}
}

// rawKey is an object key as written: its span without the quotes, and whether it has
// escapes (then two spellings of one key must be decoded to compare).
type rawKey struct {
	start, end int
	escaped    bool
}

// dupObject consumes an object; keys are compared pairwise while few, through a set beyond.
func (s *scanner) dupObject() (string, bool) {
	var buf [16]rawKey
	keys := buf[:0]
	var set map[string]struct{}
	s.i++ // '{'
	for {
		s.ws()
		if s.peek() == '}' {
			s.i++
			return "", false
		}
		ks, ke := s.str()
		if !validText(s.b[ks:ke]) {
			s.badText = true
			return "", true
		}
		k := rawKey{start: ks + 1, end: ke - 1}
		for _, c := range s.b[k.start:k.end] {
			if c == '\\' {
				k.escaped = true
				break
			}
		}
		if set != nil {
			name := s.keyString(k)
			if _, ok := set[name]; ok {
				return name, true
			}
			set[name] = struct{}{}
		} else {
			for _, o := range keys {
				if s.sameKey(o, k) {
					return s.keyString(k), true
				}
			}
			keys = append(keys, k)
			if len(keys) == len(buf) {
				set = make(map[string]struct{}, 2*len(buf))
				for _, o := range keys {
					set[s.keyString(o)] = struct{}{}
				}
			}
		}
		s.ws()
		s.i++ // ':'
		s.ws()
		if name, ok := s.dupValue(); ok {
			return name, true
		}
		s.ws()
		if s.peek() == ',' {
			s.i++
		}
	}
}

func (s *scanner) keyString(k rawKey) string {
	if !k.escaped {
		return string(s.b[k.start:k.end])
	}
	return decodeString(s.b[k.start-1 : k.end+1])
}

func (s *scanner) sameKey(a, b rawKey) bool {
	if !a.escaped && !b.escaped {
		return string(s.b[a.start:a.end]) == string(s.b[b.start:b.end])
	}
	return s.keyString(a) == s.keyString(b)
}

// includeUsage consumes a stream_options object and returns its include_usage flag.
func (s *scanner) includeUsage() (bool, error) {
	v := false
	s.i++ // '{'
	for {
		s.ws()
		if s.peek() == '}' {
			s.i++
			return v, nil
		}
		ks, ke := s.str()
		key := s.b[ks+1 : ke-1]
		s.ws()
		s.i++
		s.ws()
		if keyIs(key, "include_usage") {
			switch s.peek() {
			case 't':
				v = true
			case 'f', 'n':
				v = false
			default:
				return false, ErrIncludeUsage
			}
		}
		s.skip()
		s.ws()
		if s.peek() == ',' {
			s.i++
		}
	}
}

// WithIncludeUsage returns body with stream_options.include_usage set to true, so that an
// upstream sends the final usage chunk of a stream, and the Fields of the new body. f must be
// what Peek returned for body; body is never modified. When the body has no stream_options the
// field is inserted as the first key and f's offsets are shifted (no second parse); otherwise
// the top level is re-encoded and peeked again (rare: clients that send stream_options usually
// ask for usage already).
func WithIncludeUsage(body []byte, f Fields) ([]byte, Fields, error) {
	if f.IncludeUsage {
		return body, f, nil
	}
	s := scanner{b: body}
	s.ws()
	open := s.i // '{'
	s.i++
	s.ws()
	empty := s.peek() == '}'
	if !hasTopLevelKey(body, "stream_options") {
		const field = `"stream_options":{"include_usage":true}`
		out := make([]byte, 0, len(body)+len(field)+1)
		out = append(out, body[:open+1]...)
		out = append(out, field...)
		if !empty {
			out = append(out, ',')
		}
		shift := len(out) - (open + 1)
		out = append(out, body[open+1:]...)
		nf := f
		nf.IncludeUsage = true
		if nf.HasModel {
			nf.ModelStart += shift
			nf.ModelEnd += shift
		}
		return out, nf, nil
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		return nil, f, err
	}
	var so map[string]json.RawMessage
	if raw, ok := top["stream_options"]; ok && string(raw) != "null" {
		if err := json.Unmarshal(raw, &so); err != nil {
			return nil, f, ErrStreamOpts
		}
	}
	if so == nil {
		so = map[string]json.RawMessage{}
	}
	so["include_usage"] = json.RawMessage("true")
	enc, err := json.Marshal(so)
	if err != nil {
		return nil, f, err
	}
	top["stream_options"] = enc
	out, err := json.Marshal(top)
	if err != nil {
		return nil, f, err
	}
	nf, err := Peek(out)
	return out, nf, err
}

// hasTopLevelKey reports whether a valid JSON object has key at its top level.
func hasTopLevelKey(body []byte, key string) bool {
	s := scanner{b: body}
	s.ws()
	s.i++
	for {
		s.ws()
		if s.peek() != '"' {
			return false
		}
		ks, ke := s.str()
		if keyIs(body[ks+1:ke-1], key) {
			return true
		}
		s.ws()
		s.i++
		s.ws()
		s.skip()
		s.ws()
		if s.peek() == ',' {
			s.i++
		}
	}
}
