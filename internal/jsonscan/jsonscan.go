// Package jsonscan finds where the members and values of a JSON text begin and end, without
// decoding them. It is for the request path's few fields (a plugin's view of a body, the
// limits' token counts, an answer's usage), where encoding/json's maps, reflection and
// decode state cost more than the work itself. It does not validate: callers that need
// valid JSON check it first (json.Valid, or a parse that already did), and on malformed
// input the functions stop at the fault instead of reading past the end.
package jsonscan

import "errors"

// Errors of EachMember and EachElement.
var (
	ErrNotObject = errors.New("not a JSON object")
	ErrNotArray  = errors.New("not a JSON array")
)

// SkipSpace returns the index of the first byte at or after i that is not JSON white space.
func SkipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// SkipString returns the index after the string starting at b[i] == '"', or -1 when it is
// cut short.
func SkipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return -1
}

// SkipValue returns the index after the value starting at b[i] (white space before it is
// skipped), or -1 when it is cut short. Arrays and objects are skipped by depth; a number or
// literal ends at the first delimiter.
func SkipValue(b []byte, i int) int {
	i = SkipSpace(b, i)
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return SkipString(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				j := SkipString(b, i)
				if j < 0 {
					return -1
				}
				i = j - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
		return -1
	}
	for ; i < len(b); i++ {
		switch b[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return i
		}
	}
	return i
}

// EachMember calls fn with each member of the object b (the name still quoted, the value
// raw), in order, and stops at fn's first error, which it returns. ErrNotObject when b is not
// an object or is malformed where it was read.
func EachMember(b []byte, fn func(key, val []byte) error) error {
	i := SkipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return ErrNotObject
	}
	i = SkipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return nil
	}
	for i < len(b) {
		ks := SkipSpace(b, i)
		if ks >= len(b) || b[ks] != '"' {
			return ErrNotObject
		}
		ke := SkipString(b, ks)
		if ke < 0 {
			return ErrNotObject
		}
		i = SkipSpace(b, ke)
		if i >= len(b) || b[i] != ':' {
			return ErrNotObject
		}
		vs := SkipSpace(b, i+1)
		ve := SkipValue(b, vs)
		if ve < 0 {
			return ErrNotObject
		}
		if err := fn(b[ks:ke], b[vs:ve]); err != nil {
			return err
		}
		i = SkipSpace(b, ve)
		if i < len(b) && b[i] == ',' {
			i++
			continue
		}
		if i < len(b) && b[i] == '}' {
			return nil
		}
		return ErrNotObject
	}
	return ErrNotObject
}

// EachElement calls fn with each element of the array b, in order, and stops at fn's first
// error, which it returns. ErrNotArray when b is not an array or is malformed where it was
// read.
func EachElement(b []byte, fn func(val []byte) error) error {
	i := SkipSpace(b, 0)
	if i >= len(b) || b[i] != '[' {
		return ErrNotArray
	}
	i = SkipSpace(b, i+1)
	if i < len(b) && b[i] == ']' {
		return nil
	}
	for i < len(b) {
		vs := SkipSpace(b, i)
		ve := SkipValue(b, vs)
		if ve < 0 {
			return ErrNotArray
		}
		if err := fn(b[vs:ve]); err != nil {
			return err
		}
		i = SkipSpace(b, ve)
		if i < len(b) && b[i] == ',' {
			i++
			continue
		}
		if i < len(b) && b[i] == ']' {
			return nil
		}
		return ErrNotArray
	}
	return ErrNotArray
}
