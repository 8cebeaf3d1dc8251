package cache

import (
	"bytes"
	"encoding/json"
	"io"
	"sort"

	"github.com/open-autoglm/autoglm/api/sse"
)

// The shapes read and written here are OpenAI's chat.completion(.chunk) and text_completion.

type usage = json.RawMessage

type chunkChoice struct {
	Index int `json:"index"`
	Delta *struct {
		Role             string          `json:"role"`
		Content          *string         `json:"content"`
		ReasoningContent *string         `json:"reasoning_content"`
		ToolCalls        json.RawMessage `json:"tool_calls"`
		FunctionCall     json.RawMessage `json:"function_call"`
	} `json:"delta"`
	Text         *string         `json:"text"`
	FinishReason *string         `json:"finish_reason"`
	Logprobs     json.RawMessage `json:"logprobs"`
}

type chunk struct {
	ID                string          `json:"id"`
	Object            string          `json:"object"`
	Created           int64           `json:"created"`
	Model             string          `json:"model"`
	SystemFingerprint string          `json:"system_fingerprint,omitempty"`
	Choices           []chunkChoice   `json:"choices"`
	Usage             usage           `json:"usage"`
	Error             json.RawMessage `json:"error"`
}

type assembled struct {
	role, content, reasoning, finish string
	hasReasoning                     bool
}

type chatMessage struct {
	Role             string  `json:"role"`
	Content          string  `json:"content"`
	ReasoningContent *string `json:"reasoning_content,omitempty"`
	// Refusal is always null: OpenAI's schema requires the key, and a streamed answer
	// carries no refusal this assembler keeps.
	Refusal *string `json:"refusal"`
}

// chatChoiceDoc and textChoiceDoc carry "logprobs": null, which OpenAI's schema requires;
// streams asked for logprobs are not stored (their logprobs would be lost).
type chatChoiceDoc struct {
	Index        int         `json:"index"`
	Message      chatMessage `json:"message"`
	Logprobs     *struct{}   `json:"logprobs"`
	FinishReason *string     `json:"finish_reason"`
}

type textChoiceDoc struct {
	Index        int       `json:"index"`
	Text         string    `json:"text"`
	Logprobs     *struct{} `json:"logprobs"`
	FinishReason *string   `json:"finish_reason"`
}

type document struct {
	ID                string          `json:"id"`
	Object            string          `json:"object"`
	Created           int64           `json:"created"`
	Model             string          `json:"model"`
	SystemFingerprint string          `json:"system_fingerprint,omitempty"`
	Choices           json.RawMessage `json:"choices"`
	Usage             usage           `json:"usage,omitempty"`
}

func strp(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// Assemble turns a complete SSE answer of a chat or completion stream into the JSON document a
// non-streamed request would have received. ok is false when the stream cannot be represented
// faithfully (tool calls, logprobs, an error event, no [DONE]) and must not be cached.
func Assemble(chat bool, stream []byte) (doc []byte, ok bool) {
	var (
		head    chunk
		choices = map[int]*assembled{}
		u       usage
		done    bool
	)
	events := sse.NewReader(bytes.NewReader(stream))
	for {
		ev, err := events.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, false
		}
		data := bytes.TrimSpace(ev.Data)
		if bytes.Equal(data, []byte("[DONE]")) {
			done = true
			continue
		}
		var ch chunk
		if json.Unmarshal(data, &ch) != nil || ch.Error != nil {
			return nil, false
		}
		if head.ID == "" {
			head = ch
		}
		if len(ch.Usage) > 0 && string(ch.Usage) != "null" {
			u = ch.Usage
		}
		for _, c := range ch.Choices {
			if len(c.Logprobs) > 0 && string(c.Logprobs) != "null" {
				return nil, false
			}
			a := choices[c.Index]
			if a == nil {
				a = &assembled{role: "assistant"}
				choices[c.Index] = a
			}
			if c.Delta != nil {
				if (len(c.Delta.ToolCalls) > 0 && string(c.Delta.ToolCalls) != "null") ||
					(len(c.Delta.FunctionCall) > 0 && string(c.Delta.FunctionCall) != "null") {
					return nil, false
				}
				if c.Delta.Role != "" {
					a.role = c.Delta.Role
				}
				if c.Delta.Content != nil {
					a.content += *c.Delta.Content
				}
				if c.Delta.ReasoningContent != nil {
					a.reasoning += *c.Delta.ReasoningContent
					a.hasReasoning = true
				}
			}
			if c.Text != nil {
				a.content += *c.Text
			}
			if c.FinishReason != nil {
				a.finish = *c.FinishReason
			}
		}
	}
	if !done || len(choices) == 0 {
		return nil, false
	}
	idx := make([]int, 0, len(choices))
	for i := range choices {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	var raw []byte
	var err error
	if chat {
		out := make([]chatChoiceDoc, len(idx))
		for j, i := range idx {
			a := choices[i]
			m := chatMessage{Role: a.role, Content: a.content}
			if a.hasReasoning {
				m.ReasoningContent = &a.reasoning
			}
			out[j] = chatChoiceDoc{Index: i, Message: m, FinishReason: strp(a.finish)}
		}
		raw, err = json.Marshal(out)
		head.Object = "chat.completion"
	} else {
		out := make([]textChoiceDoc, len(idx))
		for j, i := range idx {
			out[j] = textChoiceDoc{Index: i, Text: choices[i].content, FinishReason: strp(choices[i].finish)}
		}
		raw, err = json.Marshal(out)
		head.Object = "text_completion"
	}
	if err != nil {
		return nil, false
	}
	doc, err = json.Marshal(document{ID: head.ID, Object: head.Object, Created: head.Created, Model: head.Model,
		SystemFingerprint: head.SystemFingerprint, Choices: raw, Usage: u})
	return doc, err == nil
}

// Replay renders a cached chat or completion document as the SSE stream a streamed request
// expects: a role chunk (chat), one content chunk per choice, a finish chunk per choice, the
// usage chunk when includeUsage is set, and [DONE].
func Replay(chat bool, doc []byte, includeUsage bool) ([]byte, bool) {
	var d document
	if json.Unmarshal(doc, &d) != nil {
		return nil, false
	}
	obj := "text_completion"
	if chat {
		obj = "chat.completion.chunk"
	}
	var out bytes.Buffer
	emit := func(choices any, u usage) bool {
		c := struct {
			ID                string `json:"id"`
			Object            string `json:"object"`
			Created           int64  `json:"created"`
			Model             string `json:"model"`
			SystemFingerprint string `json:"system_fingerprint,omitempty"`
			Choices           any    `json:"choices"`
			Usage             usage  `json:"usage,omitempty"`
		}{d.ID, obj, d.Created, d.Model, d.SystemFingerprint, choices, u}
		b, err := json.Marshal(c)
		if err != nil {
			return false
		}
		ev, err := sse.AppendEvent(out.AvailableBuffer(), sse.Event{Data: b})
		out.Write(ev)
		return err == nil
	}
	type delta struct {
		Role             string  `json:"role,omitempty"`
		Content          *string `json:"content,omitempty"`
		ReasoningContent *string `json:"reasoning_content,omitempty"`
	}
	type chatChunkChoice struct {
		Index        int     `json:"index"`
		Delta        delta   `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	}
	if chat {
		var choices []chatChoiceDoc
		if json.Unmarshal(d.Choices, &choices) != nil {
			return nil, false
		}
		for _, c := range choices {
			empty := ""
			ok := emit([]chatChunkChoice{{Index: c.Index, Delta: delta{Role: c.Message.Role, Content: &empty}}}, nil)
			content := c.Message.Content
			ok = ok && emit([]chatChunkChoice{{Index: c.Index, Delta: delta{Content: &content, ReasoningContent: c.Message.ReasoningContent}}}, nil)
			ok = ok && emit([]chatChunkChoice{{Index: c.Index, FinishReason: c.FinishReason}}, nil)
			if !ok {
				return nil, false
			}
		}
	} else {
		var choices []textChoiceDoc
		if json.Unmarshal(d.Choices, &choices) != nil {
			return nil, false
		}
		for _, c := range choices {
			if !emit([]textChoiceDoc{{Index: c.Index, Text: c.Text}}, nil) ||
				!emit([]textChoiceDoc{{Index: c.Index, FinishReason: c.FinishReason}}, nil) {
				return nil, false
			}
		}
	}
	if includeUsage && len(d.Usage) > 0 && string(d.Usage) != "null" {
		if !emit([]struct{}{}, d.Usage) {
			return nil, false
		}
	}
	done, _ := sse.AppendEvent(out.AvailableBuffer(), sse.Event{Data: []byte("[DONE]")})
	out.Write(done)
	return out.Bytes(), true
}
