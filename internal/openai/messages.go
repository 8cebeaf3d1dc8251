package openai

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/open-autoglm/autoglm/internal/apierr"
	"github.com/open-autoglm/autoglm/internal/telemetry"
)

// The Anthropic Messages API (POST /v1/messages, POST /v1/messages/count_tokens),
// translated into chat completions and back. It lives in this package because it runs
// through the same in-process chat call as the Responses API. Its routes answer errors in
// Anthropic's shape (apierr.ShapeAnthropic); x-api-key authenticates as well as
// Authorization, and anthropic-version is accepted whatever its value.

// messagesRequest is the body of POST /v1/messages.
type messagesRequest struct {
	Model         string            `json:"model"`
	MaxTokens     *int              `json:"max_tokens"`
	System        json.RawMessage   `json:"system"`
	Messages      []anthropicMsg    `json:"messages"`
	Tools         []anthropicTool   `json:"tools"`
	ToolChoice    *anthropicChoice  `json:"tool_choice"`
	Stream        bool              `json:"stream"`
	Temperature   *float64          `json:"temperature"`
	TopP          *float64          `json:"top_p"`
	StopSequences []string          `json:"stop_sequences"`
	Metadata      map[string]string `json:"metadata"`
}

type anthropicMsg struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

type anthropicTool struct {
	Type        string          `json:"type"`
	Name        string          `json:"name"`
	Description *string         `json:"description"`
	InputSchema json.RawMessage `json:"input_schema"`
}

type anthropicChoice struct {
	Type                   string `json:"type"`
	Name                   string `json:"name"`
	DisableParallelToolUse bool   `json:"disable_parallel_tool_use"`
}

// block is a content block of a message.
type block struct {
	Type      string          `json:"type"`
	Text      string          `json:"text"`
	ID        string          `json:"id"`
	Name      string          `json:"name"`
	Input     json.RawMessage `json:"input"`
	ToolUseID string          `json:"tool_use_id"`
	Content   json.RawMessage `json:"content"`
	IsError   bool            `json:"is_error"`
	Source    *struct {
		Type      string `json:"type"`
		MediaType string `json:"media_type"`
		Data      string `json:"data"`
		URL       string `json:"url"`
	} `json:"source"`
}

func anthropicInvalid(format string, args ...any) *apierr.Error {
	return &apierr.Error{Kind: apierr.Invalid, Code: apierr.CodeInvalidRequest, Message: fmt.Sprintf(format, args...)}
}

// blocks reads content: a string (one text block) or a list of blocks.
func blocks(raw json.RawMessage, where string) ([]block, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, anthropicInvalid("%s: invalid string", where)
		}
		return []block{{Type: "text", Text: s}}, nil
	}
	var bs []block
	if err := json.Unmarshal(raw, &bs); err != nil {
		return nil, anthropicInvalid("%s: content must be a string or a list of content blocks", where)
	}
	return bs, nil
}

// messagesChat translates a Messages request into a chat completion request.
func messagesChat(q *messagesRequest) (*chatRequest, error) {
	if q.Model == "" {
		return nil, anthropicInvalid("model: Field required")
	}
	if q.MaxTokens == nil {
		return nil, anthropicInvalid("max_tokens: Field required")
	}
	if *q.MaxTokens < 1 {
		return nil, anthropicInvalid("max_tokens: must be at least 1")
	}
	if len(q.Messages) == 0 {
		return nil, anthropicInvalid("messages: at least one message is required")
	}
	chat := &chatRequest{Model: q.Model, Stream: q.Stream, MaxTokens: q.MaxTokens, Temperature: q.Temperature, TopP: q.TopP,
		Stop: q.StopSequences}
	if q.Stream {
		chat.StreamOptions = &streamOptions{IncludeUsage: true}
	}
	if q.Metadata != nil {
		chat.User = q.Metadata["user_id"]
	}
	if sys := bytes.TrimSpace(q.System); len(sys) > 0 && string(sys) != "null" {
		bs, err := blocks(sys, "system")
		if err != nil {
			return nil, err
		}
		var text strings.Builder
		for _, b := range bs {
			text.WriteString(b.Text)
		}
		chat.Messages = append(chat.Messages, chatMessage{Role: "system", Content: jsonString(text.String())})
	}
	for i, m := range q.Messages {
		where := "messages." + strconv.Itoa(i)
		bs, err := blocks(m.Content, where+".content")
		if err != nil {
			return nil, err
		}
		switch m.Role {
		case "user":
			var parts []contentPart
			for _, b := range bs {
				switch b.Type {
				case "tool_result":
					bs2, err := blocks(orEmpty(b.Content), where+".content.tool_result")
					if err != nil {
						return nil, err
					}
					var text strings.Builder
					for _, x := range bs2 {
						text.WriteString(x.Text)
					}
					out := text.String()
					if b.IsError {
						out = "Error: " + out
					}
					chat.Messages = append(chat.Messages, chatMessage{Role: "tool", ToolCallID: b.ToolUseID, Content: jsonString(out)})
				case "text":
					parts = append(parts, contentPart{Type: "input_text", Text: b.Text})
				case "image":
					if b.Source == nil {
						return nil, anthropicInvalid("%s: an image block needs a source", where)
					}
					url := b.Source.URL
					if b.Source.Type == "base64" {
						url = "data:" + b.Source.MediaType + ";base64," + b.Source.Data
					}
					parts = append(parts, contentPart{Type: "input_image", ImageURL: url})
				case "thinking", "redacted_thinking":
				default:
					return nil, anthropicInvalid("%s: content blocks of type %q are not supported", where, b.Type)
				}
			}
			if len(parts) > 0 {
				chat.Messages = append(chat.Messages, chatMessage{Role: "user", Content: chatContent(parts)})
			}
		case "assistant":
			var text strings.Builder
			var calls []block
			for _, b := range bs {
				switch b.Type {
				case "text":
					text.WriteString(b.Text)
				case "tool_use":
					calls = append(calls, b)
				case "thinking", "redacted_thinking":
				default:
					return nil, anthropicInvalid("%s: content blocks of type %q are not supported in assistant messages", where, b.Type)
				}
			}
			msg := chatMessage{Role: "assistant", Content: jsonString(text.String())}
			if text.Len() == 0 && len(calls) > 0 {
				msg.Content = json.RawMessage("null")
			}
			chat.Messages = append(chat.Messages, msg)
			for _, c := range calls {
				args := string(orEmpty(c.Input))
				if args == "" || args == "null" {
					args = "{}"
				}
				chat.Messages = addToolCall(chat.Messages, c.ID, c.Name, args)
			}
		default:
			return nil, anthropicInvalid("%s.role: must be user or assistant, not %q", where, m.Role)
		}
	}
	for i, t := range q.Tools {
		if t.Type != "" && t.Type != "custom" {
			return nil, anthropicInvalid("tools.%d: only custom (client) tools are supported, not %q", i, t.Type)
		}
		if t.Name == "" {
			return nil, anthropicInvalid("tools.%d.name: Field required", i)
		}
		params := t.InputSchema
		if len(params) == 0 || string(params) == "null" {
			params = json.RawMessage(`{"type":"object","properties":{}}`)
		}
		chat.Tools = append(chat.Tools, chatTool{Type: "function", Function: chatFunction{Name: t.Name, Description: t.Description, Parameters: params}})
	}
	if tc := q.ToolChoice; tc != nil {
		switch tc.Type {
		case "auto":
			chat.ToolChoice = json.RawMessage(`"auto"`)
		case "any":
			chat.ToolChoice = json.RawMessage(`"required"`)
		case "none":
			chat.ToolChoice = json.RawMessage(`"none"`)
		case "tool":
			chat.ToolChoice, _ = json.Marshal(map[string]any{"type": "function", "function": map[string]string{"name": tc.Name}})
		default:
			return nil, anthropicInvalid("tool_choice.type: must be auto, any, tool or none")
		}
		if tc.DisableParallelToolUse && len(chat.Tools) > 0 {
			no := false
			chat.ParallelToolCalls = &no
		}
	}
	return chat, nil
}

func orEmpty(raw json.RawMessage) json.RawMessage {
	if len(bytes.TrimSpace(raw)) == 0 {
		return json.RawMessage(`""`)
	}
	return raw
}

// messageObject is Anthropic's message object.
type messageObject struct {
	ID           string          `json:"id"`
	Type         string          `json:"type"`
	Role         string          `json:"role"`
	Model        string          `json:"model"`
	Content      []any           `json:"content"`
	StopReason   *string         `json:"stop_reason"`
	StopSequence *string         `json:"stop_sequence"`
	Usage        anthropicUsage  `json:"usage"`
	Container    json.RawMessage `json:"container,omitempty"`
}

type anthropicUsage struct {
	InputTokens              int64 `json:"input_tokens"`
	OutputTokens             int64 `json:"output_tokens"`
	CacheCreationInputTokens int64 `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int64 `json:"cache_read_input_tokens"`
}

type textBlock struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

type toolUseBlock struct {
	Type  string          `json:"type"`
	ID    string          `json:"id"`
	Name  string          `json:"name"`
	Input json.RawMessage `json:"input"`
}

func anthropicUsageOf(u chatUsage) anthropicUsage {
	return anthropicUsage{InputTokens: u.PromptTokens - u.cached(), OutputTokens: u.CompletionTokens, CacheReadInputTokens: u.cached()}
}

func stopReason(finish string) string {
	switch finish {
	case "length":
		return "max_tokens"
	case "tool_calls", "function_call":
		return "tool_use"
	}
	return "end_turn"
}

// toolInput is a tool call's arguments as the input object of a tool_use block.
func toolInput(args string) json.RawMessage {
	b := bytes.TrimSpace([]byte(args))
	if len(b) > 0 && b[0] == '{' && json.Valid(b) {
		return b
	}
	return json.RawMessage(`{}`)
}

func toolUseID(id string) string {
	if id == "" {
		return newID("toolu")
	}
	return id
}

// Messages serves POST /v1/messages.
func (h *Handler) Messages(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Request-Id", telemetry.TraceID(r.Context()))
	body, err := readBody(r)
	if err != nil {
		return readError(err)
	}
	var q messagesRequest
	if err := json.Unmarshal(body, &q); err != nil {
		return anthropicInvalid("could not decode the request: %s", jsonProblem(err))
	}
	chat, err := messagesChat(&q)
	if err != nil {
		return err
	}
	chatBody, err := json.Marshal(chat)
	if err != nil {
		return err
	}
	id := newID("msg")
	if !q.Stream {
		out, err := h.innerChat(w, r, chatBody, nil)
		if err != nil {
			return err
		}
		msg := messageObject{ID: id, Type: "message", Role: "assistant", Model: q.Model, Content: []any{},
			Usage: anthropicUsageOf(out.Usage)}
		if out.Text != "" {
			msg.Content = append(msg.Content, textBlock{Type: "text", Text: out.Text})
		}
		for _, tc := range out.ToolCalls {
			msg.Content = append(msg.Content, toolUseBlock{Type: "tool_use", ID: toolUseID(tc.ID), Name: tc.Name, Input: toolInput(tc.Arguments)})
		}
		reason := stopReason(out.Finish)
		msg.StopReason = &reason
		b, err := json.Marshal(&msg)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, b)
		return nil
	}
	sink := &messageStream{w: w, id: id, model: q.Model, writeTimeout: h.opt.StreamWriteTimeout, block: -1}
	_, err = h.innerChat(w, r, chatBody, sink)
	return err
}

// messageStream writes a streamed chat completion as Anthropic's events: message_start and
// a ping, then per content block content_block_start, content_block_delta (text_delta or
// input_json_delta) and content_block_stop, and last message_delta (stop_reason, usage) and
// message_stop. An upstream failure mid-stream is an error event.
type messageStream struct {
	w            http.ResponseWriter
	id, model    string
	writeTimeout time.Duration

	started bool
	blocks  int // content blocks started
	block   int // index of the open block, -1 when none
	tools   map[int]int
}

func (s *messageStream) event(typ string, v any) error {
	return writeNamedEvent(s.w, s.writeTimeout, typ, v)
}

func (s *messageStream) start() error {
	if s.started {
		return nil
	}
	s.started = true
	startEventStream(s.w)
	msg := messageObject{ID: s.id, Type: "message", Role: "assistant", Model: s.model, Content: []any{}}
	if err := s.event("message_start", map[string]any{"type": "message_start", "message": &msg}); err != nil {
		return err
	}
	return s.event("ping", map[string]any{"type": "ping"})
}

func (s *messageStream) closeBlock() error {
	if s.block < 0 {
		return nil
	}
	i := s.block
	s.block = -1
	return s.event("content_block_stop", map[string]any{"type": "content_block_stop", "index": i})
}

func (s *messageStream) text(delta string) error {
	if err := s.start(); err != nil {
		return err
	}
	if s.block < 0 || s.isTool(s.block) {
		if err := s.closeBlock(); err != nil {
			return err
		}
		s.block = s.blocks
		s.blocks++
		if err := s.event("content_block_start", map[string]any{"type": "content_block_start", "index": s.block,
			"content_block": textBlock{Type: "text"}}); err != nil {
			return err
		}
	}
	return s.event("content_block_delta", map[string]any{"type": "content_block_delta", "index": s.block,
		"delta": map[string]string{"type": "text_delta", "text": delta}})
}

func (s *messageStream) isTool(block int) bool {
	for _, b := range s.tools {
		if b == block {
			return true
		}
	}
	return false
}

func (s *messageStream) toolStart(n int, id, name string) error {
	if err := s.start(); err != nil {
		return err
	}
	if err := s.closeBlock(); err != nil {
		return err
	}
	if s.tools == nil {
		s.tools = make(map[int]int)
	}
	s.block = s.blocks
	s.blocks++
	s.tools[n] = s.block
	return s.event("content_block_start", map[string]any{"type": "content_block_start", "index": s.block,
		"content_block": toolUseBlock{Type: "tool_use", ID: toolUseID(id), Name: name, Input: json.RawMessage(`{}`)}})
}

func (s *messageStream) toolArgs(n int, delta string) error {
	i, ok := s.tools[n]
	if !ok || i != s.block {
		return nil // arguments of an earlier call after a later one began: chat servers do not do that
	}
	return s.event("content_block_delta", map[string]any{"type": "content_block_delta", "index": i,
		"delta": map[string]string{"type": "input_json_delta", "partial_json": delta}})
}

func (s *messageStream) done(out *chatOutcome) error {
	if err := s.start(); err != nil {
		return err
	}
	if err := s.closeBlock(); err != nil {
		return err
	}
	reason := stopReason(out.Finish)
	u := anthropicUsageOf(out.Usage)
	if err := s.event("message_delta", map[string]any{"type": "message_delta",
		"delta": map[string]any{"stop_reason": reason, "stop_sequence": nil}, "usage": u}); err != nil {
		return err
	}
	return s.event("message_stop", map[string]any{"type": "message_stop"})
}

func (s *messageStream) fail(e *apierr.Error) error {
	if err := s.start(); err != nil {
		return err
	}
	return s.event("error", map[string]any{"type": "error", "error": map[string]string{"type": apierr.AnthropicType(e), "message": e.PublicMessage()}})
}

var _ chatSink = (*messageStream)(nil)

// CountMessageTokens serves POST /v1/messages/count_tokens: the input tokens of a Messages
// request, counted with the cl100k_base encoding over its system prompt, messages and
// tools (an estimate for models with another tokenizer).
func (h *Handler) CountMessageTokens(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Request-Id", telemetry.TraceID(r.Context()))
	body, err := readBody(r)
	if err != nil {
		return readError(err)
	}
	var q messagesRequest
	if err := json.Unmarshal(body, &q); err != nil {
		return anthropicInvalid("could not decode the request: %s", jsonProblem(err))
	}
	one := 1
	q.MaxTokens, q.Stream = &one, false
	chat, err := messagesChat(&q)
	if err != nil {
		return err
	}
	if _, ok := h.reg.Lookup(q.Model); !ok {
		return &apierr.Error{Kind: apierr.NotFound, Code: apierr.CodeModelNotFound, Message: "model: " + q.Model}
	}
	var text strings.Builder
	for _, m := range chat.Messages {
		text.WriteString(m.Role)
		text.WriteByte('\n')
		var s string
		if json.Unmarshal(m.Content, &s) == nil {
			text.WriteString(s)
		} else {
			text.Write(m.Content)
		}
		for _, tc := range m.ToolCalls {
			text.WriteString(tc.Function.Name)
			text.WriteString(tc.Function.Arguments)
		}
		text.WriteByte('\n')
	}
	if len(chat.Tools) > 0 {
		tools, _ := json.Marshal(chat.Tools)
		text.Write(tools)
	}
	n, ok := h.count.Count(text.String())
	if !ok {
		n = int64(text.Len()+3) / 4
	}
	b, _ := json.Marshal(map[string]int64{"input_tokens": n})
	writeJSON(w, http.StatusOK, b)
	return nil
}
