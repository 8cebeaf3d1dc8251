package mockllm

import (
	"bytes"
	"encoding/json"
	"net/http"
	"sort"
	"time"
)

// Tool calls, with Options.ToolCalls. A chat request that offers function tools is answered with a call of one of
// them, unless tool_choice is "none" or a tool result follows the conversation's last
// assistant message (then the model "read" the result and answers with text, as usual). The tool called is the
// one tool_choice names, else the first; its arguments fill the required properties of the
// tool's parameters schema with fixed values (a string "mock", or the first enum value; 1;
// true; []; {}), so clients that validate arguments against the schema accept them.
// Requests without "tools" never take this path, so the fast path is unchanged.

// toolCallFor returns the tool call a chat body asks for, if any.
func toolCallFor(body []byte) (name, args string, ok bool) {
	if !bytes.Contains(body, []byte(`"tools"`)) {
		return "", "", false
	}
	var req struct {
		Messages []struct {
			Role string `json:"role"`
		} `json:"messages"`
		Tools []struct {
			Type     string `json:"type"`
			Function struct {
				Name       string          `json:"name"`
				Parameters json.RawMessage `json:"parameters"`
			} `json:"function"`
		} `json:"tools"`
		ToolChoice json.RawMessage `json:"tool_choice"`
	}
	if json.Unmarshal(body, &req) != nil || len(req.Tools) == 0 {
		return "", "", false
	}
	for i := len(req.Messages) - 1; i >= 0 && req.Messages[i].Role != "assistant"; i-- {
		if req.Messages[i].Role == "tool" {
			return "", "", false
		}
	}
	pick := 0
	var choice string
	if json.Unmarshal(req.ToolChoice, &choice) == nil && choice == "none" {
		return "", "", false
	}
	var named struct {
		Function struct {
			Name string `json:"name"`
		} `json:"function"`
	}
	if json.Unmarshal(req.ToolChoice, &named) == nil && named.Function.Name != "" {
		for i, t := range req.Tools {
			if t.Function.Name == named.Function.Name {
				pick = i
			}
		}
	}
	t := req.Tools[pick].Function
	a, _ := json.Marshal(argumentsFor(t.Parameters))
	return t.Name, string(a), t.Name != ""
}

// argumentsFor builds a value for a JSON schema: every required property of an object.
func argumentsFor(schema json.RawMessage) any {
	var s struct {
		Type       any                        `json:"type"`
		Enum       []any                      `json:"enum"`
		Properties map[string]json.RawMessage `json:"properties"`
		Required   []string                   `json:"required"`
	}
	_ = json.Unmarshal(schema, &s)
	if len(s.Enum) > 0 {
		return s.Enum[0]
	}
	typ, _ := s.Type.(string)
	if list, ok := s.Type.([]any); ok && len(list) > 0 {
		typ, _ = list[0].(string)
	}
	switch typ {
	case "string":
		return "mock"
	case "number", "integer":
		return 1
	case "boolean":
		return true
	case "array":
		return []any{}
	case "null":
		return nil
	}
	out := map[string]any{}
	req := append([]string(nil), s.Required...)
	sort.Strings(req)
	for _, k := range req {
		out[k] = argumentsFor(s.Properties[k])
	}
	return out
}

// toolAnswer answers st's chat request with a call of name(args).
func (s *Server) toolAnswer(w http.ResponseWriter, st *state, name, args string) {
	req := &st.req
	var u usage
	for _, in := range req.inputs {
		u.prompt += in.tokens
	}
	u.completion = 1 + len(args)/4
	id, created := s.seq.Add(1), time.Now().Unix()
	callID := "call_" + string(appendHex(nil, mix(id^0x5eed)))
	type fn struct {
		Name      string `json:"name,omitempty"`
		Arguments string `json:"arguments"`
	}
	type call struct {
		Index    *int   `json:"index,omitempty"`
		ID       string `json:"id,omitempty"`
		Type     string `json:"type,omitempty"`
		Function fn     `json:"function"`
	}
	if !req.stream {
		msg, _ := json.Marshal(map[string]any{"role": "assistant", "content": nil, "refusal": nil,
			"tool_calls": []call{{ID: callID, Type: "function", Function: fn{Name: name, Arguments: args}}}})
		b := appendHead(nil, kindChat, false, id, created, req.model)
		b = append(b, `{"index":0,"message":`...)
		b = append(b, msg...)
		b = append(b, `,"logprobs":null,"finish_reason":"tool_calls"}],"usage":`...)
		b = appendUsage(b, u)
		b = append(b, "}\n"...)
		w.Header()["Content-Type"] = hdrJSON
		s.writeStatus(w, http.StatusOK)
		_, _ = w.Write(b)
		return
	}
	h := w.Header()
	h["Content-Type"] = hdrSSE
	h["Cache-Control"] = hdrNoCache
	s.writeStatus(w, http.StatusOK)
	s.streamsStarted.Add(1)
	zero := 0
	chunk := func(delta any, finish string) []byte {
		d, _ := json.Marshal(delta)
		b := appendHead([]byte("data: "), kindChat, true, id, created, req.model)
		b = append(b, `{"index":0,"delta":`...)
		b = append(b, d...)
		b = append(b, `,"logprobs":null,"finish_reason":`...)
		if finish == "" {
			b = append(b, "null"...)
		} else {
			b = append(b, '"')
			b = append(b, finish...)
			b = append(b, '"')
		}
		return append(b, "}]}\n\n"...)
	}
	var out []byte
	out = append(out, chunk(map[string]any{"role": "assistant", "content": nil,
		"tool_calls": []call{{Index: &zero, ID: callID, Type: "function", Function: fn{Name: name}}}}, "")...)
	out = append(out, chunk(map[string]any{"tool_calls": []call{{Index: &zero, Function: fn{Arguments: args}}}}, "")...)
	out = append(out, chunk(map[string]any{}, "tool_calls")...)
	if req.includeUsage {
		b := appendHead([]byte("data: "), kindChat, true, id, created, req.model)
		b = append(b, `],"usage":`...)
		b = appendUsage(b, u)
		out = append(append(out, b...), "}\n\n"...)
	}
	out = append(out, "data: [DONE]\n\n"...)
	_, _ = w.Write(out)
}
