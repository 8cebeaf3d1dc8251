package openai

import (
	"encoding/json"
)

// chatRequest is the chat completion a Responses or Messages request is translated into.
type chatRequest struct {
	Model             string          `json:"model"`
	Messages          []chatMessage   `json:"messages"`
	Stream            bool            `json:"stream,omitempty"`
	StreamOptions     *streamOptions  `json:"stream_options,omitempty"`
	MaxTokens         *int            `json:"max_tokens,omitempty"`
	Temperature       *float64        `json:"temperature,omitempty"`
	TopP              *float64        `json:"top_p,omitempty"`
	Stop              []string        `json:"stop,omitempty"`
	Tools             []chatTool      `json:"tools,omitempty"`
	ToolChoice        json.RawMessage `json:"tool_choice,omitempty"`
	ParallelToolCalls *bool           `json:"parallel_tool_calls,omitempty"`
	ResponseFormat    json.RawMessage `json:"response_format,omitempty"`
	User              string          `json:"user,omitempty"`
}

type streamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

// chatMessage is one chat message. Content is a JSON string, a list of parts, or null (an
// assistant message with only tool calls).
type chatMessage struct {
	Role       string           `json:"role"`
	Content    json.RawMessage  `json:"content"`
	ToolCalls  []chatToolCallJS `json:"tool_calls,omitempty"`
	ToolCallID string           `json:"tool_call_id,omitempty"`
}

type chatToolCallJS struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	Function struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

type chatTool struct {
	Type     string       `json:"type"`
	Function chatFunction `json:"function"`
}

type chatFunction struct {
	Name        string          `json:"name"`
	Description *string         `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters,omitempty"`
	Strict      *bool           `json:"strict,omitempty"`
}

func jsonString(s string) json.RawMessage {
	b, _ := json.Marshal(s)
	return b
}

// addToolCall appends a tool call to the last message when it is an assistant's, or as a
// new assistant message: consecutive calls form one assistant turn, as chat expects.
func addToolCall(msgs []chatMessage, id, name, args string) []chatMessage {
	tc := chatToolCallJS{ID: id, Type: "function"}
	tc.Function.Name, tc.Function.Arguments = name, args
	if tc.Function.Arguments == "" {
		tc.Function.Arguments = "{}"
	}
	if n := len(msgs); n > 0 && msgs[n-1].Role == "assistant" {
		msgs[n-1].ToolCalls = append(msgs[n-1].ToolCalls, tc)
		return msgs
	}
	return append(msgs, chatMessage{Role: "assistant", Content: json.RawMessage("null"), ToolCalls: []chatToolCallJS{tc}})
}

// chatMessagesOf translates Responses items into chat messages.
func chatMessagesOf(items []item) []chatMessage {
	var msgs []chatMessage
	for _, it := range items {
		switch it.Type {
		case "function_call":
			msgs = addToolCall(msgs, it.CallID, it.Name, it.Arguments)
		case "function_call_output":
			msgs = append(msgs, chatMessage{Role: "tool", ToolCallID: it.CallID, Content: jsonString(outputText(it.Output))})
		default:
			role := it.Role
			if role == "developer" {
				role = "system"
			}
			msgs = append(msgs, chatMessage{Role: role, Content: chatContent(it.Content)})
		}
	}
	return msgs
}

// chatContent is a message's content for chat: a string when it is only text, else parts.
func chatContent(parts []contentPart) json.RawMessage {
	text := ""
	onlyText := true
	for _, p := range parts {
		if p.Type == "input_image" {
			onlyText = false
			continue
		}
		text += p.Text
	}
	if onlyText {
		return jsonString(text)
	}
	type imageURL struct {
		URL    string `json:"url"`
		Detail string `json:"detail,omitempty"`
	}
	type part struct {
		Type     string    `json:"type"`
		Text     string    `json:"text,omitempty"`
		ImageURL *imageURL `json:"image_url,omitempty"`
	}
	out := make([]part, 0, len(parts))
	for _, p := range parts {
		if p.Type == "input_image" {
			out = append(out, part{Type: "image_url", ImageURL: &imageURL{URL: p.ImageURL, Detail: p.Detail}})
		} else {
			out = append(out, part{Type: "text", Text: p.Text})
		}
	}
	b, _ := json.Marshal(out)
	return b
}
