package openai

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync"
	"time"

	tiktoken "github.com/tiktoken-go/tokenizer"

	"github.com/open-autoglm/autoglm/api"
	"github.com/open-autoglm/autoglm/internal/backend"
)

// Usage is what one request consumed.
type Usage struct {
	PromptTokens, CompletionTokens int64
	// Estimated is set when the upstream reported no usage: the counts are then taken with
	// the cl100k_base tokenizer on the request's text and the answer's text (or, if even that
	// fails, from sizes: 4 bytes a token, one token per streamed chunk).
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
	// TTFT is the time from the request's arrival to the first text event of a stream, and
	// TokenGap the mean time between its TextEvents text events after that (measured when
	// there are two or more). All are zero for an answer that is not a stream, a cache hit,
	// or a failed request.
	TTFT, TokenGap time.Duration
	TextEvents     int64
}

// usageJSON is OpenAI's usage object: chat's names, or the Responses API's.
type usageJSON struct {
	PromptTokens     int64 `json:"prompt_tokens"`
	CompletionTokens int64 `json:"completion_tokens"`
	InputTokens      int64 `json:"input_tokens"`
	OutputTokens     int64 `json:"output_tokens"`
}

func (u *usageJSON) usage() Usage {
	if u.PromptTokens == 0 && u.CompletionTokens == 0 {
		return Usage{PromptTokens: u.InputTokens, CompletionTokens: u.OutputTokens}
	}
	return Usage{PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens}
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
	return u.usage(), true
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

// EventData returns the payload of one server-sent event: its "data:" lines, each without
// the field name and one leading space, concatenated (a JSON payload split over several
// data lines parses the same). Comment and other field lines are skipped.
func EventData(ev []byte) []byte {
	var data []byte
	for _, line := range bytes.Split(ev, []byte("\n")) {
		line = bytes.TrimRight(line, "\r")
		if d, ok := bytes.CutPrefix(line, []byte("data:")); ok {
			data = append(data, bytes.TrimPrefix(d, []byte(" "))...)
		}
	}
	return data
}

// inspectEvent looks at one SSE event. It reports the usage the event carries (OpenAI sends it
// in a last chunk with no choices), whether the event is that usage-only chunk, and whether it
// carries generated text.
func inspectEvent(ev []byte) (u Usage, found, usageOnly, hasText bool) {
	hasText = bytes.Contains(ev, contentKey) || bytes.Contains(ev, textKey)
	if !bytes.Contains(ev, usageObj) && !bytes.Contains(ev, usageObjSpace) {
		return Usage{}, false, false, hasText
	}
	data := EventData(ev)
	var chunk struct {
		Choices []json.RawMessage `json:"choices"`
		Usage   *usageJSON        `json:"usage"`
	}
	if json.Unmarshal(data, &chunk) != nil || chunk.Usage == nil {
		return Usage{}, false, false, hasText
	}
	return chunk.Usage.usage(), true, len(chunk.Choices) == 0, hasText
}

// textLimit bounds the streamed events kept to count an answer's tokens when the upstream
// reports no usage.
const textLimit = 64 << 10

// counter counts tokens of text for upstreams that report no usage. It uses the cl100k_base
// encoding (GPT-3.5/GPT-4's), loaded on first use: the model's own tokenizer is unknown for a
// remote upstream, and cl100k is within a few percent of most modern BPE vocabularies on
// English and code. Local models always report exact usage, so they never get here.
type counter struct {
	once  sync.Once
	codec tiktoken.Codec
}

func (c *counter) count(s string) (int64, bool) {
	if s == "" {
		return 0, true
	}
	c.once.Do(func() {
		c.codec, _ = tiktoken.Get(tiktoken.Cl100kBase)
	})
	if c.codec == nil {
		return 0, false
	}
	n, err := c.codec.Count(s)
	if err != nil {
		return 0, false
	}
	return int64(n), true
}

// requestText is the text of a request that the model reads: message contents, a completion
// prompt, or embedding inputs.
func requestText(body []byte) string {
	var req struct {
		Messages []struct {
			Content api.Content `json:"content"`
		} `json:"messages"`
		Prompt api.Input `json:"prompt"`
		Input  api.Input `json:"input"`
	}
	if json.Unmarshal(body, &req) != nil {
		return ""
	}
	var b strings.Builder
	for _, m := range req.Messages {
		b.WriteString(m.Content.String())
		b.WriteByte('\n')
	}
	for _, t := range req.Prompt.Texts {
		b.WriteString(t)
	}
	for _, t := range req.Input.Texts {
		b.WriteString(t)
	}
	return b.String()
}

// answerText is the generated text of a JSON answer or of the SSE events kept from a stream.
func answerText(doc []byte, stream bool) string {
	type choice struct {
		Text    string `json:"text"`
		Message struct {
			Content string `json:"content"`
		} `json:"message"`
		Delta struct {
			Content string `json:"content"`
		} `json:"delta"`
	}
	var b strings.Builder
	add := func(data []byte) {
		var v struct {
			Choices []choice `json:"choices"`
		}
		if json.Unmarshal(data, &v) != nil {
			return
		}
		for _, c := range v.Choices {
			b.WriteString(c.Text)
			b.WriteString(c.Message.Content)
			b.WriteString(c.Delta.Content)
		}
	}
	if !stream {
		add(doc)
		return b.String()
	}
	for _, line := range bytes.Split(doc, []byte("\n")) {
		if d, ok := bytes.CutPrefix(bytes.TrimRight(line, "\r"), []byte("data:")); ok {
			add(bytes.TrimSpace(d))
		}
	}
	return b.String()
}
