package mockllm

import (
	"encoding/json"
	"strings"
	"testing"
)

const toolsJSON = `"tools":[{"type":"function","function":{"name":"first","parameters":{"type":"object"}}},
	{"type":"function","function":{"name":"lookup","parameters":{"type":"object","properties":{
	"q":{"type":"string"},"n":{"type":"integer"},"mode":{"enum":["fast","slow"]},"opt":{"type":"string"}},"required":["q","n","mode"]}}}]`

func TestToolCalls(t *testing.T) {
	if a := decodeTools(t, New(Options{Tokens: 3}), `{"model":"m",`+toolsJSON+`,"messages":[{"role":"user","content":"x"}]}`); len(a) != 0 {
		t.Errorf("tools answered without Options.ToolCalls: %s", a)
	}
	s := New(Options{Tokens: 3, ToolCalls: true})
	type answer struct {
		Choices []struct {
			Message struct {
				Content   *string `json:"content"`
				ToolCalls []struct {
					ID       string `json:"id"`
					Type     string `json:"type"`
					Function struct {
						Name      string `json:"name"`
						Arguments string `json:"arguments"`
					} `json:"function"`
				} `json:"tool_calls"`
			} `json:"message"`
			FinishReason string `json:"finish_reason"`
		} `json:"choices"`
	}
	call := func(body string) answer {
		t.Helper()
		var a answer
		b := do(t, s, "POST", "/v1/chat/completions", body).Body.Bytes()
		if err := json.Unmarshal(b, &a); err != nil || len(a.Choices) != 1 {
			t.Fatalf("%v: %s", err, b)
		}
		return a
	}
	a := call(`{"model":"m",` + toolsJSON + `,"tool_choice":{"type":"function","function":{"name":"lookup"}},"messages":[{"role":"user","content":"x"}]}`)
	c := a.Choices[0]
	if c.FinishReason != "tool_calls" || c.Message.Content != nil || len(c.Message.ToolCalls) != 1 || c.Message.ToolCalls[0].Type != "function" ||
		c.Message.ToolCalls[0].Function.Name != "lookup" || c.Message.ToolCalls[0].Function.Arguments != `{"mode":"fast","n":1,"q":"mock"}` ||
		!strings.HasPrefix(c.Message.ToolCalls[0].ID, "call_") {
		t.Errorf("named tool: %+v", c)
	}
	if a := call(`{"model":"m",` + toolsJSON + `,"messages":[{"role":"user","content":"x"}]}`); a.Choices[0].Message.ToolCalls[0].Function.Name != "first" {
		t.Errorf("default tool: %+v", a)
	}
	for _, body := range []string{
		`{"model":"m",` + toolsJSON + `,"tool_choice":"none","messages":[{"role":"user","content":"x"}]}`,
		`{"model":"m",` + toolsJSON + `,"messages":[{"role":"user","content":"x"},{"role":"assistant","content":null,"tool_calls":[{"id":"c","type":"function","function":{"name":"first","arguments":"{}"}}]},{"role":"tool","tool_call_id":"c","content":"r"},{"role":"user","content":"and?"}]}`,
	} {
		if a := call(body); a.Choices[0].FinishReason != "stop" || len(a.Choices[0].Message.ToolCalls) != 0 {
			t.Errorf("%s: answered %+v", body, a)
		}
	}

	// Streamed: the call's id and name first, then its arguments, then finish_reason.
	w := do(t, s, "POST", "/v1/chat/completions", `{"model":"m","stream":true,"stream_options":{"include_usage":true},`+toolsJSON+`,"messages":[{"role":"user","content":"x"}]}`)
	var args, name, finish string
	var usage bool
	for _, line := range strings.Split(w.Body.String(), "\n") {
		d, ok := strings.CutPrefix(line, "data: ")
		if !ok || d == "[DONE]" {
			continue
		}
		var ch struct {
			Choices []struct {
				Delta struct {
					ToolCalls []struct {
						Index    int `json:"index"`
						Function struct {
							Name      string `json:"name"`
							Arguments string `json:"arguments"`
						} `json:"function"`
					} `json:"tool_calls"`
				} `json:"delta"`
				FinishReason *string `json:"finish_reason"`
			} `json:"choices"`
			Usage *struct {
				CompletionTokens int `json:"completion_tokens"`
			} `json:"usage"`
		}
		if err := json.Unmarshal([]byte(d), &ch); err != nil {
			t.Fatalf("%v: %s", err, d)
		}
		usage = usage || ch.Usage != nil
		for _, c := range ch.Choices {
			for _, tc := range c.Delta.ToolCalls {
				name += tc.Function.Name
				args += tc.Function.Arguments
			}
			if c.FinishReason != nil {
				finish = *c.FinishReason
			}
		}
	}
	if name != "first" || args != `{}` || finish != "tool_calls" || !usage || !strings.HasSuffix(w.Body.String(), "data: [DONE]\n\n") {
		t.Errorf("stream: name %q args %q finish %q usage %v\n%s", name, args, finish, usage, w.Body.String())
	}
}

func FuzzToolCallFor(f *testing.F) {
	f.Add([]byte(`{"model":"m",` + toolsJSON + `,"messages":[{"role":"user","content":"x"}]}`))
	f.Add([]byte(`{"tools":[{"function":{"name":"a","parameters":{"type":["string","null"]}}}],"tool_choice":{"function":{"name":"a"}}}`))
	f.Add([]byte(`{"tools":[]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		name, args, ok := toolCallFor(body)
		if ok && (name == "" || !json.Valid([]byte(args))) {
			t.Errorf("call %q with arguments %q", name, args)
		}
	})
}

func decodeTools(t *testing.T, s *Server, body string) string {
	t.Helper()
	var a struct {
		Choices []struct {
			Message struct {
				ToolCalls json.RawMessage `json:"tool_calls"`
			} `json:"message"`
		} `json:"choices"`
	}
	b := do(t, s, "POST", "/v1/chat/completions", body).Body.Bytes()
	if err := json.Unmarshal(b, &a); err != nil || len(a.Choices) != 1 {
		t.Fatalf("%v: %s", err, b)
	}
	return string(a.Choices[0].Message.ToolCalls)
}
