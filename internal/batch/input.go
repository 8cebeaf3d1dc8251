package batch

import (
	"bytes"
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// Endpoints are the URLs a batch line may call.
var endpoints = map[string]bool{
	"/v1/chat/completions": true,
	"/v1/embeddings":       true,
	"/v1/completions":      true,
}

// maxLines caps the lines of one input file, as OpenAI does.
const maxLines = 50000

// Line is one request of a batch input file.
type Line struct {
	CustomID string
	URL      string
	Body     json.RawMessage
}

// ParseInput checks a batch input file, one JSON request a line:
// {"custom_id":"…","method":"POST","url":"/v1/chat/completions","body":{…}}. Blank lines
// are skipped; custom ids must be unique; url is one of the batch endpoints; a streamed
// request is refused. The error names the line (from 1).
func ParseInput(data []byte) ([]Line, error) {
	if !utf8.Valid(data) {
		return nil, fmt.Errorf("the file is not UTF-8 text")
	}
	var lines []Line
	seen := map[string]int{}
	n := 0
	for len(data) > 0 {
		n++
		raw := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			raw, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		raw = bytes.TrimSpace(raw)
		if len(raw) == 0 {
			continue
		}
		if len(lines) == maxLines {
			return nil, fmt.Errorf("the file has more than %d requests", maxLines)
		}
		var req struct {
			CustomID *string        `json:"custom_id"`
			Method   string         `json:"method"`
			URL      string         `json:"url"`
			Body     map[string]any `json:"body"`
		}
		if err := json.Unmarshal(raw, &req); err != nil {
			return nil, fmt.Errorf("line %d is not a JSON object with custom_id, method, url and body", n)
		}
		var body struct {
			Body json.RawMessage `json:"body"`
		}
		_ = json.Unmarshal(raw, &body)
		switch {
		case req.CustomID == nil || *req.CustomID == "":
			return nil, fmt.Errorf("line %d: custom_id is missing", n)
		case len(*req.CustomID) > 512:
			return nil, fmt.Errorf("line %d: custom_id is longer than 512 bytes", n)
		case req.Method != "POST":
			return nil, fmt.Errorf("line %d: method must be POST", n)
		case !endpoints[req.URL]:
			return nil, fmt.Errorf("line %d: url must be /v1/chat/completions, /v1/embeddings or /v1/completions", n)
		case req.Body == nil:
			return nil, fmt.Errorf("line %d: body must be a JSON object", n)
		}
		if s, ok := req.Body["stream"].(bool); ok && s {
			return nil, fmt.Errorf("line %d: streamed requests are not supported in a batch", n)
		}
		if first, dup := seen[*req.CustomID]; dup {
			return nil, fmt.Errorf("line %d: custom_id %q is already used on line %d", n, *req.CustomID, first)
		}
		seen[*req.CustomID] = n
		lines = append(lines, Line{CustomID: *req.CustomID, URL: req.URL, Body: body.Body})
	}
	if len(lines) == 0 {
		return nil, fmt.Errorf("the file has no requests")
	}
	return lines, nil
}
