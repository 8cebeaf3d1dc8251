package plugin

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
)

// The request body is split into its members with a small scanner instead of decoding it into
// maps: a request passes here on every call, and the maps and reflection of encoding/json
// cost more than the plugins themselves. The body has been checked to be valid JSON (Peek
// on the HTTP path, json.Marshal on the task path, json.Valid here otherwise), so the
// scanner only finds where each value begins and ends.

// skipValue returns the end of the JSON value starting at b[i] (after white space).
func skipValue(b []byte, i int) int {
	i = skipWS(b, i)
	if i >= len(b) {
		return -1
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
				if i < 0 {
					return -1
				}
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
		return -1
	default:
		for i < len(b) {
			switch b[i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return i
			}
			i++
		}
		return i
	}
}

// skipString returns the end of the string starting at b[i] == '"'.
func skipString(b []byte, i int) int {
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

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// eachMember calls fn with each member of the object b (the key still quoted).
func eachMember(b []byte, fn func(key, val []byte) error) error {
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		return errNotObject
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return nil
	}
	for i < len(b) {
		ks := skipWS(b, i)
		ke := skipString(b, ks)
		if ks >= len(b) || b[ks] != '"' || ke < 0 {
			return errNotObject
		}
		i = skipWS(b, ke)
		if i >= len(b) || b[i] != ':' {
			return errNotObject
		}
		vs := skipWS(b, i+1)
		ve := skipValue(b, vs)
		if ve < 0 {
			return errNotObject
		}
		if err := fn(b[ks:ke], b[vs:ve]); err != nil {
			return err
		}
		i = skipWS(b, ve)
		if i < len(b) && b[i] == ',' {
			i++
			continue
		}
		if i < len(b) && b[i] == '}' {
			return nil
		}
		return errNotObject
	}
	return errNotObject
}

// eachElement calls fn with each element of the array b.
func eachElement(b []byte, fn func(val []byte) error) error {
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '[' {
		return errNotArray
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == ']' {
		return nil
	}
	for i < len(b) {
		vs := skipWS(b, i)
		ve := skipValue(b, vs)
		if ve < 0 {
			return errNotArray
		}
		if err := fn(b[vs:ve]); err != nil {
			return err
		}
		i = skipWS(b, ve)
		if i < len(b) && b[i] == ',' {
			i++
			continue
		}
		if i < len(b) && b[i] == ']' {
			return nil
		}
		return errNotArray
	}
	return errNotArray
}

// unquote decodes a JSON string; plain ones (no escapes, valid UTF-8) without encoding/json.
func unquote(raw []byte) (string, error) {
	if len(raw) >= 2 && raw[0] == '"' && bytes.IndexByte(raw, '\\') < 0 && utf8.Valid(raw) {
		if s, ok := common(raw[1 : len(raw)-1]); ok {
			return s, nil
		}
		return string(raw[1 : len(raw)-1]), nil
	}
	var s string
	err := json.Unmarshal(raw, &s)
	return s, err
}

type scanError string

func (e scanError) Error() string { return string(e) }

const (
	errNotObject = scanError("plugin: not a JSON object")
	errNotArray  = scanError("plugin: not a JSON array")
)

// common returns the names and values that nearly every request repeats (body keys, roles)
// as constants, so decoding them allocates nothing.
func common(b []byte) (string, bool) {
	switch string(b) { // compared without a copy
	case "model":
		return "model", true
	case "messages":
		return "messages", true
	case "role":
		return "role", true
	case "content":
		return "content", true
	case "system":
		return "system", true
	case "user":
		return "user", true
	case "assistant":
		return "assistant", true
	case "tool":
		return "tool", true
	case "stream":
		return "stream", true
	case "stream_options":
		return "stream_options", true
	case "temperature":
		return "temperature", true
	case "top_p":
		return "top_p", true
	case "max_tokens":
		return "max_tokens", true
	case "max_completion_tokens":
		return "max_completion_tokens", true
	case "metadata":
		return "metadata", true
	case "prompt":
		return "prompt", true
	case "tools":
		return "tools", true
	case "tool_choice":
		return "tool_choice", true
	case "stop":
		return "stop", true
	case "n":
		return "n", true
	case "seed":
		return "seed", true
	case "name":
		return "name", true
	}
	return "", false
}
