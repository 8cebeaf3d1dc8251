package openai

import (
	"bytes"
	"encoding/json"
	"time"

	"github.com/open-autoglm/autoglm/internal/backend"
)

// Usage is what one request consumed.
type Usage struct {
	PromptTokens, CompletionTokens int64
	// Estimated is set when the upstream reported no usage and the counts are estimates:
	// prompt tokens from the request's size (4 bytes a token), completion tokens from the
	// number of content chunks streamed (one token each, as servers send them) or the
	// answer's size.
	Estimated bool
}

// Total is prompt plus completion tokens.
func (u Usage) Total() int64 { return u.PromptTokens + u.CompletionTokens }

// Outcome describes one finished request of an OpenAI-compatible route, for accounting.
type Outcome struct {
	Model   string // public model name
	Backend string // backend that answered; "" for a cache hit
	Op      backend.Op
	Stream  bool
	// Status is the HTTP status the client got (499 when it went away).
	Status  int
	Usage   Usage
	Latency time.Duration
	// Cache is the X-AutoGLM-Cache value: "", "hit", "miss" or "bypass". A hit consumed no
	// upstream tokens; its Usage is zero.
	Cache string
}

// usageJSON is OpenAI's usage object.
type usageJSON struct {
	PromptTokens     int64 `json:"prompt_tokens"`
	CompletionTokens int64 `json:"completion_tokens"`
}

var usageKey = []byte(`"usage"`)

// usageFromDocument finds the top-level usage object of a JSON answer. It decodes only from
// the last "usage" key on, which is where OpenAI-compatible servers put it.
func usageFromDocument(doc []byte) (Usage, bool) {
	i := bytes.LastIndex(doc, usageKey)
	if i < 0 {
		return Usage{}, false
	}
	rest := bytes.TrimLeft(doc[i+len(usageKey):], " \t\r\n")
	if len(rest) == 0 || rest[0] != ':' {
		return Usage{}, false
	}
	var u *usageJSON
	if err := json.NewDecoder(bytes.NewReader(rest[1:])).Decode(&u); err != nil || u == nil {
		return Usage{}, false
	}
	return Usage{PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens}, true
}

// eventEnd returns the length of the first complete SSE event in b (terminator included),
// or -1. Events end with a blank line: "\n\n", or "\r\n\r\n" from CRLF servers.
func eventEnd(b []byte) int {
	for i := 0; i+1 < len(b); i++ {
		if b[i] != '\n' {
			continue
		}
		if b[i+1] == '\n' {
			return i + 2
		}
		if i+2 < len(b) && b[i+1] == '\r' && b[i+2] == '\n' {
			return i + 3
		}
	}
	return -1
}

var (
	usageObj      = []byte(`"usage":{`)
	usageObjSpace = []byte(`"usage": {`)
	contentKey    = []byte(`"content":"`)
	textKey       = []byte(`"text":"`)
)

// inspectEvent looks at one SSE event. It reports the usage the event carries (OpenAI sends it
// in a last chunk with no choices), whether the event is that usage-only chunk, and whether it
// carries generated text.
func inspectEvent(ev []byte) (u Usage, found, usageOnly, hasText bool) {
	hasText = bytes.Contains(ev, contentKey) || bytes.Contains(ev, textKey)
	if !bytes.Contains(ev, usageObj) && !bytes.Contains(ev, usageObjSpace) {
		return Usage{}, false, false, hasText
	}
	var data []byte
	for _, line := range bytes.Split(ev, []byte("\n")) {
		line = bytes.TrimRight(line, "\r")
		if d, ok := bytes.CutPrefix(line, []byte("data:")); ok {
			data = append(data, bytes.TrimPrefix(d, []byte(" "))...)
		}
	}
	var chunk struct {
		Choices []json.RawMessage `json:"choices"`
		Usage   *usageJSON        `json:"usage"`
	}
	if json.Unmarshal(data, &chunk) != nil || chunk.Usage == nil {
		return Usage{}, false, false, hasText
	}
	return Usage{PromptTokens: chunk.Usage.PromptTokens, CompletionTokens: chunk.Usage.CompletionTokens},
		true, len(chunk.Choices) == 0, hasText
}
