package openai

import (
	"context"
	"encoding/json"
	"testing"
)

// FuzzResponsesRequest: any body either is refused with an error or translates into a chat
// request that encodes as JSON, whose messages the chat path can read.
func FuzzResponsesRequest(f *testing.F) {
	for _, s := range []string{
		`{"model":"m","input":"hi","instructions":"be brief"}`,
		`{"model":"m","input":[{"role":"user","content":[{"type":"input_text","text":"a"},{"type":"input_image","image_url":"data:x"}]},
			{"type":"function_call","call_id":"c","name":"f","arguments":"{}"},{"type":"function_call_output","call_id":"c","output":"r"}],
			"tools":[{"type":"function","name":"f","parameters":{"type":"object"}}],"tool_choice":{"type":"function","name":"f"},
			"text":{"format":{"type":"json_schema","name":"x","schema":{}}}}`,
		`{"model":"m","input":[{"type":"reasoning"},{"role":"assistant","content":"x"}],"tool_choice":"required","stream":true}`,
		`{"model":"m","input":[{"type":"item_reference","id":"msg_1"}]}`,
		`{"model":"m","input":[1]}`,
		`{"input":null}`,
	} {
		f.Add([]byte(s))
	}
	h := &Handler{memResponses: NewMemoryResponses(1)}
	f.Fuzz(func(t *testing.T, body []byte) {
		c := &responseCall{}
		if json.Unmarshal(body, &c.req) != nil {
			return
		}
		var err error
		if c.input, err = parseInput(c.req.Input); err != nil {
			return
		}
		c.req.PreviousResponseID = nil
		if h.resolveReferences(context.Background(), c) != nil {
			return
		}
		chat, err := h.responsesChat(context.Background(), c)
		if err != nil {
			return
		}
		b, err := json.Marshal(chat)
		if err != nil {
			t.Fatalf("chat request does not encode: %v", err)
		}
		var back struct {
			Messages []struct {
				Role string `json:"role"`
			} `json:"messages"`
		}
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("chat request does not decode: %v\n%s", err, b)
		}
		if _, err := json.Marshal(c.input); err != nil {
			t.Fatalf("input items do not encode: %v", err)
		}
	})
}

// FuzzMessagesRequest: any Messages body is refused or translates into an encodable chat
// request with a known role on every message.
func FuzzMessagesRequest(f *testing.F) {
	for _, s := range []string{
		`{"model":"m","max_tokens":5,"system":"s","messages":[{"role":"user","content":"hi"}]}`,
		`{"model":"m","max_tokens":5,"system":[{"type":"text","text":"s"}],"messages":[{"role":"user","content":[{"type":"text","text":"a"},
			{"type":"image","source":{"type":"base64","media_type":"image/png","data":"AA=="}}]},
			{"role":"assistant","content":[{"type":"tool_use","id":"t","name":"f","input":{"a":1}}]},
			{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":"r","is_error":true}]}],
			"tools":[{"name":"f","input_schema":{"type":"object"}}],"tool_choice":{"type":"tool","name":"f","disable_parallel_tool_use":true}}`,
		`{"model":"m","max_tokens":0,"messages":[]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var q messagesRequest
		if json.Unmarshal(body, &q) != nil {
			return
		}
		chat, err := messagesChat(&q)
		if err != nil {
			return
		}
		for _, m := range chat.Messages {
			switch m.Role {
			case "system", "user", "assistant", "tool":
			default:
				t.Fatalf("message role %q", m.Role)
			}
		}
		if _, err := json.Marshal(chat); err != nil {
			t.Fatalf("chat request does not encode: %v", err)
		}
	})
}
