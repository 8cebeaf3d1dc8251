package openai

import (
	"bytes"
	"encoding/json"
	"strconv"
)

// The usage of every answer is read on the request path, after the answer has gone out and
// before the connection reads again. json.Unmarshal costs ~8 µs there on a core that idled
// between requests (reflection, its field cache, its decode state); the scan below reads the
// same few fields in ~1 µs and gives what json.Unmarshal into the same types gives, which
// FuzzUsageFromDocument and FuzzInspectEvent hold it to: syntax is checked by json.Valid
// first, member names match as encoding/json matches them (exactly, else under Unicode case
// folding), a later duplicate member wins, a null leaves a number as it was and a details
// object to nil, and a value of the wrong type, or a number that is not an int64, is an error.

// scanUsage reads the usage object obj (a JSON object, not yet validated).
func scanUsage(obj []byte) (usageJSON, bool) {
	var u usageJSON
	if !json.Valid(obj) {
		return u, false
	}
	return u, u.scan(obj)
}

// scan decodes the valid JSON value v into u, as json.Unmarshal into an existing *usageJSON
// would; false where json.Unmarshal would return an error.
func (u *usageJSON) scan(v []byte) bool {
	if v[0] != '{' {
		return false
	}
	ok := true
	eachMember(v, func(key, val []byte) bool {
		switch {
		case nameIs(key, "prompt_tokens"):
			ok = scanInt(val, &u.PromptTokens)
		case nameIs(key, "completion_tokens"):
			ok = scanInt(val, &u.CompletionTokens)
		case nameIs(key, "input_tokens"):
			ok = scanInt(val, &u.InputTokens)
		case nameIs(key, "output_tokens"):
			ok = scanInt(val, &u.OutputTokens)
		case nameIs(key, "prompt_tokens_details"):
			ok = scanDetails(val, &u.PromptDetails)
		case nameIs(key, "input_tokens_details"):
			ok = scanDetails(val, &u.InputDetails)
		}
		return ok
	})
	return ok
}

// scanDetails decodes a details member into *d: null sets it to nil, an object is decoded
// into the struct *d already points to (a new one when nil), as encoding/json does.
func scanDetails(val []byte, d **struct {
	CachedTokens int64 `json:"cached_tokens"`
}) bool {
	switch val[0] {
	case 'n':
		*d = nil
		return true
	case '{':
	default:
		return false
	}
	if *d == nil {
		*d = &struct {
			CachedTokens int64 `json:"cached_tokens"`
		}{}
	}
	ok := true
	eachMember(val, func(key, v []byte) bool {
		if nameIs(key, "cached_tokens") {
			ok = scanInt(v, &(*d).CachedTokens)
		}
		return ok
	})
	return ok
}

// scanInt decodes a valid JSON value into an int64 field: null leaves it, an integer in
// int64's range sets it, anything else is an error.
func scanInt(val []byte, dst *int64) bool {
	switch c := val[0]; {
	case c == 'n':
		return true
	case c == '-' || c >= '0' && c <= '9':
		n, err := strconv.ParseInt(string(val), 10, 64)
		if err != nil {
			return false
		}
		*dst = n
		return true
	}
	return false
}

// inspectChunk reads a streamed chunk's data as json.Unmarshal into
// struct{Choices []json.RawMessage; Usage *usageJSON} would: the usage, and whether the
// choices array is empty. ok is false where json.Unmarshal would fail or leave no usage.
func inspectChunk(data []byte) (u Usage, usageOnly, ok bool) {
	if !json.Valid(data) {
		return Usage{}, false, false
	}
	data = bytes.TrimLeft(data, " \t\r\n")
	if data[0] != '{' {
		return Usage{}, false, false
	}
	var uj *usageJSON
	choices, valid := 0, true
	eachMember(data, func(key, val []byte) bool {
		switch {
		case nameIs(key, "choices"):
			switch val[0] {
			case 'n':
				choices = 0
			case '[':
				choices = 0
				eachElement(val, func() { choices++ })
			default:
				valid = false
			}
		case nameIs(key, "usage"):
			switch val[0] {
			case 'n':
				uj = nil
			case '{':
				if uj == nil {
					uj = &usageJSON{}
				}
				valid = uj.scan(val)
			default:
				valid = false
			}
		}
		return valid
	})
	if !valid || uj == nil {
		return Usage{}, false, false
	}
	return uj.usage(), choices == 0, true
}

// nameIs reports whether the raw member name key (with its quotes) selects the field name as
// encoding/json selects it: equal after decoding, or equal under Unicode simple case folding.
func nameIs(key []byte, name string) bool {
	raw := key[1 : len(key)-1]
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw) == name || bytes.EqualFold(raw, []byte(name))
	}
	var s string
	if json.Unmarshal(key, &s) != nil {
		return false
	}
	return s == name || bytes.EqualFold([]byte(s), []byte(name))
}

// eachMember calls fn with the raw name (quoted) and raw value of each member of the valid
// JSON object obj, in order, until fn returns false.
func eachMember(obj []byte, fn func(key, val []byte) bool) {
	i := skipSpace(obj, 1)
	if obj[i] == '}' {
		return
	}
	for {
		ks := i
		i = skipString(obj, i)
		key := obj[ks:i]
		i = skipSpace(obj, i)
		i = skipSpace(obj, i+1) // the colon
		vs := i
		i = skipValue(obj, i)
		if !fn(key, obj[vs:i]) {
			return
		}
		i = skipSpace(obj, i)
		if obj[i] == '}' {
			return
		}
		i = skipSpace(obj, i+1) // the comma
	}
}

// eachElement calls fn once for each element of the valid JSON array arr.
func eachElement(arr []byte, fn func()) {
	i := skipSpace(arr, 1)
	if arr[i] == ']' {
		return
	}
	for {
		i = skipValue(arr, i)
		fn()
		i = skipSpace(arr, i)
		if arr[i] == ']' {
			return
		}
		i = skipSpace(arr, i+1)
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n') {
		i++
	}
	return i
}

// skipString returns the index after the string starting at b[i].
func skipString(b []byte, i int) int {
	for i++; ; i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
}

// skipValue returns the index after the valid JSON value starting at b[i].
func skipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for ; ; i++ {
			switch b[i] {
			case '"':
				i = skipString(b, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
	}
	for i < len(b) {
		switch b[i] {
		case ',', '}', ']', ' ', '\t', '\r', '\n':
			return i
		}
		i++
	}
	return i
}
