package openai

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/open-autoglm/autoglm/api/sse"
	"github.com/open-autoglm/autoglm/internal/usage"
)

// Usage is what one request consumed, and Outcome one finished request of an
// OpenAI-compatible route: the accounting types every model call shares (package usage).
type (
	Usage   = usage.Tokens
	Outcome = usage.Outcome
)

// usageJSON is OpenAI's usage object: chat's names, or the Responses API's.
type usageJSON struct {
	PromptTokens     int64 `json:"prompt_tokens"`
	CompletionTokens int64 `json:"completion_tokens"`
	InputTokens      int64 `json:"input_tokens"`
	OutputTokens     int64 `json:"output_tokens"`
	PromptDetails    *struct {
		CachedTokens int64 `json:"cached_tokens"`
	} `json:"prompt_tokens_details"`
	InputDetails *struct {
		CachedTokens int64 `json:"cached_tokens"`
	} `json:"input_tokens_details"`
}

func (u *usageJSON) usage() Usage {
	if u.PromptTokens == 0 && u.CompletionTokens == 0 {
		t := Usage{PromptTokens: u.InputTokens, CompletionTokens: u.OutputTokens}
		if u.InputDetails != nil {
			t.CachedTokens = u.InputDetails.CachedTokens
		}
		return t
	}
	t := Usage{PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens}
	if u.PromptDetails != nil {
		t.CachedTokens = u.PromptDetails.CachedTokens
	}
	return t
}

var usageKey = []byte(`"usage"`)

// usageFromDocument finds the top-level usage object of a JSON answer. It reads only from the
// last "usage" key on, which is where OpenAI-compatible servers put it.
func usageFromDocument(doc []byte) (Usage, bool) {
	obj := leadingObject(usageValue(doc))
	if obj == nil {
		return Usage{}, false
	}
	u, ok := scanUsage(obj)
	if !ok {
		return Usage{}, false
	}
	return u.usage(), true
}

// usageValue returns what follows the last "usage" key and its colon, or nil.
func usageValue(doc []byte) []byte {
	i := bytes.LastIndex(doc, usageKey)
	if i < 0 {
		return nil
	}
	rest := bytes.TrimLeft(doc[i+len(usageKey):], " \t\r\n")
	if len(rest) == 0 || rest[0] != ':' {
		return nil
	}
	return bytes.TrimLeft(rest[1:], " \t\r\n")
}

// leadingObject returns the JSON object at the start of b, through the brace that closes it,
// found by counting brackets outside strings; nil when b does not start with '{' or ends
// first. Anything else a usage key could hold (null, a number, an array) is no usage. The
// object is checked by scanUsage; cutting it out first spares decoding the rest of the
// answer (a json.Decoder read and buffered all of it: 6% of the gateway's CPU at 2,000
// requests/s).
func leadingObject(b []byte) []byte {
	if len(b) == 0 || b[0] != '{' {
		return nil
	}
	depth, inString := 0, false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if inString {
			switch c {
			case '\\':
				i++
			case '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return b[:i+1]
			}
		}
	}
	return nil
}

// inspectEvent looks at one SSE event. It reports the usage the event carries (OpenAI sends it
// in a last chunk with no choices), whether the event is that usage-only chunk, and whether it
// carries generated text.
func inspectEvent(ev []byte) (u Usage, found, usageOnly, hasText bool) {
	hasText, hasUsage := scanKeys(ev)
	if !hasUsage {
		return Usage{}, false, false, hasText
	}
	u, usageOnly, found = inspectChunk(sse.Data(ev))
	return u, found, usageOnly, hasText
}

// scanKeys reports whether ev holds `"content":"` or `"text":"` (generated text), and whether it
// holds `"usage":{` or `"usage": {`. Each of these has one colon, so it visits the colons
// and looks around each: searching for the patterns themselves, each starting with a quote,
// stops at every quote of the JSON and cost four times as much (BenchmarkInspectStream).
func scanKeys(ev []byte) (hasText, hasUsage bool) {
	for i := 0; ; {
		j := bytes.IndexByte(ev[i:], ':')
		if j < 0 {
			return hasText, hasUsage
		}
		c := i + j
		before, after := ev[:c], ev[c+1:]
		switch {
		case len(after) > 0 && after[0] == '"':
			if bytes.HasSuffix(before, contentKey) || bytes.HasSuffix(before, textKey) {
				hasText = true
			}
		case bytes.HasSuffix(before, usageKey):
			if bytes.HasPrefix(after, openObj) || bytes.HasPrefix(after, spaceOpenObj) {
				hasUsage = true
			}
		}
		i = c + 1
	}
}

var (
	contentKey   = []byte(`"content"`)
	textKey      = []byte(`"text"`)
	openObj      = []byte(`{`)
	spaceOpenObj = []byte(` {`)
)

// textLimit bounds the streamed events kept to count an answer's tokens when the upstream
// reports no usage.
const textLimit = 64 << 10

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
	var sp sse.Splitter
	for len(doc) > 0 {
		end := sp.Cut(doc)
		if end < 0 {
			end = len(doc)
		}
		add(sse.Data(doc[:end]))
		doc = doc[end:]
	}
	return b.String()
}
