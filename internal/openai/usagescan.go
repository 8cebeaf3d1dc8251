package openai

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"

	"github.com/open-autoglm/autoglm/internal/jsonscan"
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
	return jsonscan.EachMember(v, func(key, val []byte) error {
		key = memberName(key)
		ok := true
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
		return typeError(ok)
	}) == nil
}

// errType stops a scan where json.Unmarshal would report a type error.
var errType = errors.New("a member of the wrong type")

func typeError(ok bool) error {
	if ok {
		return nil
	}
	return errType
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
	return jsonscan.EachMember(val, func(key, v []byte) error {
		if nameIs(memberName(key), "cached_tokens") {
			return typeError(scanInt(v, &(*d).CachedTokens))
		}
		return nil
	}) == nil
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
	if data[jsonscan.SkipSpace(data, 0)] != '{' {
		return Usage{}, false, false
	}
	var uj *usageJSON
	choices := 0
	err := jsonscan.EachMember(data, func(key, val []byte) error {
		key = memberName(key)
		switch {
		case nameIs(key, "choices"):
			switch val[0] {
			case 'n':
				choices = 0
			case '[':
				choices = 0
				return jsonscan.EachElement(val, func([]byte) error { choices++; return nil })
			default:
				return errType
			}
		case nameIs(key, "usage"):
			switch val[0] {
			case 'n':
				uj = nil
			case '{':
				if uj == nil {
					uj = &usageJSON{}
				}
				return typeError(uj.scan(val))
			default:
				return errType
			}
		}
		return nil
	})
	if err != nil || uj == nil {
		return Usage{}, false, false
	}
	return uj.usage(), choices == 0, true
}

// memberName is a member's name as encoding/json compares it: the bytes between the quotes,
// or the decoded name when it holds escapes (nil when it does not decode). It is worked out
// once per member, and nameIs compares it with each field.
func memberName(key []byte) []byte {
	raw := key[1 : len(key)-1]
	if bytes.IndexByte(raw, '\\') < 0 {
		return raw
	}
	var s string
	if json.Unmarshal(key, &s) != nil {
		return nil
	}
	return []byte(s)
}

// nameIs reports whether name selects the field as encoding/json selects it: equal, or equal
// under Unicode simple case folding.
func nameIs(name []byte, field string) bool {
	return string(name) == field || bytes.EqualFold(name, []byte(field))
}
