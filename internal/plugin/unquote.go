package plugin

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
)

// The request body is split into its members with internal/jsonscan instead of decoding it
// into maps: a request passes here on every call, and the maps and reflection of
// encoding/json cost more than the plugins themselves. The body has been checked to be valid
// JSON (Peek on the HTTP path, json.Marshal on the task path, json.Valid here otherwise), so
// the scanner only finds where each value begins and ends.

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
