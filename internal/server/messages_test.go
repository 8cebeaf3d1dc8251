package server_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/open-autoglm/autoglm/internal/mockllm"
)

type messageDoc struct {
	ID         string `json:"id"`
	Type       string `json:"type"`
	Role       string `json:"role"`
	Model      string `json:"model"`
	StopReason string `json:"stop_reason"`
	Content    []struct {
		Type  string          `json:"type"`
		Text  string          `json:"text"`
		ID    string          `json:"id"`
		Name  string          `json:"name"`
		Input json.RawMessage `json:"input"`
	} `json:"content"`
	Usage struct {
		InputTokens  int `json:"input_tokens"`
		OutputTokens int `json:"output_tokens"`
	} `json:"usage"`
}

type anthropicErr struct {
	Type  string `json:"type"`
	Error struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"error"`
	RequestID string `json:"request_id"`
}

func TestMessages(t *testing.T) {
	mock, mockURL := startMock(t, mockllm.Options{Tokens: 5})
	g := startGateway(t, oneModel(mockURL, ""), nil)
	resp, b := post(t, g.URL+"/v1/messages", `{"model":"glm4","max_tokens":100,"system":[{"type":"text","text":"Be brief."}],
		"messages":[{"role":"user","content":"Hello"},{"role":"assistant","content":"Hi!"},{"role":"user","content":[{"type":"text","text":"A joke?"}]}]}`,
		"anthropic-version", "2023-06-01")
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	var m messageDoc
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if m.Type != "message" || m.Role != "assistant" || m.Model != "glm4" || m.StopReason != "end_turn" || !strings.HasPrefix(m.ID, "msg_") ||
		len(m.Content) != 1 || m.Content[0].Type != "text" || len(strings.Fields(m.Content[0].Text)) != 5 ||
		m.Usage.OutputTokens != 5 || m.Usage.InputTokens == 0 {
		t.Errorf("message: %s", b)
	}
	if resp.Header.Get("Request-Id") == "" || resp.Header.Get("Request-Id") != resp.Header.Get("X-Trace-Id") {
		t.Errorf("request-id header %q", resp.Header.Get("Request-Id"))
	}
	msgs, up := lastUpstream(t, mock)
	if len(msgs) != 4 || msgs[0]["role"] != "system" || msgs[0]["content"] != "Be brief." || msgs[2]["role"] != "assistant" ||
		msgs[3]["content"] != "A joke?" || up["max_tokens"] != float64(100) {
		t.Errorf("upstream: %s", mock.Stats().LastBody)
	}

	// max_tokens reached.
	_, b = post(t, g.URL+"/v1/messages", `{"model":"glm4","max_tokens":2,"messages":[{"role":"user","content":"x"}]}`)
	if err := json.Unmarshal(b, &m); err != nil || m.StopReason != "max_tokens" {
		t.Errorf("cut: %s", b)
	}

	// Errors in Anthropic's shape.
	for _, tc := range []struct {
		body, typ string
		status    int
	}{
		{`{"model":"glm4","messages":[{"role":"user","content":"x"}]}`, "invalid_request_error", 400},
		{`{"model":"nope","max_tokens":5,"messages":[{"role":"user","content":"x"}]}`, "not_found_error", 404},
		{`{"model":"glm4","max_tokens":5,"messages":[{"role":"system","content":"x"}]}`, "invalid_request_error", 400},
		{`not json`, "invalid_request_error", 400},
	} {
		resp, b := post(t, g.URL+"/v1/messages", tc.body)
		var e anthropicErr
		if err := json.Unmarshal(b, &e); err != nil || resp.StatusCode != tc.status || e.Type != "error" || e.Error.Type != tc.typ || e.Error.Message == "" ||
			e.RequestID != resp.Header.Get("X-Trace-Id") {
			t.Errorf("%s: %d %s", tc.body, resp.StatusCode, b)
		}
	}
	resp, b = get(t, g.URL+"/v1/messages")
	var e anthropicErr
	if err := json.Unmarshal(b, &e); err != nil || resp.StatusCode != 405 || e.Error.Type != "invalid_request_error" {
		t.Errorf("GET: %d %s", resp.StatusCode, b)
	}

	resp, b = post(t, g.URL+"/v1/messages/count_tokens", `{"model":"glm4","messages":[{"role":"user","content":"Hello there, how are you?"}]}`)
	var ct struct {
		InputTokens int `json:"input_tokens"`
	}
	if err := json.Unmarshal(b, &ct); err != nil || resp.StatusCode != 200 || ct.InputTokens < 6 || ct.InputTokens > 20 {
		t.Errorf("count_tokens: %d %s", resp.StatusCode, b)
	}
}

func TestMessagesTools(t *testing.T) {
	mock, mockURL := startMock(t, mockllm.Options{Tokens: 3, ToolCalls: true})
	g := startGateway(t, oneModel(mockURL, ""), nil)
	tools := `"tools":[{"name":"get_weather","description":"Weather","input_schema":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}]`
	resp, b := post(t, g.URL+"/v1/messages", `{"model":"glm4","max_tokens":50,`+tools+`,"messages":[{"role":"user","content":"Weather in Paris?"}]}`)
	var m messageDoc
	if err := json.Unmarshal(b, &m); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	if m.StopReason != "tool_use" || len(m.Content) != 1 || m.Content[0].Type != "tool_use" || m.Content[0].Name != "get_weather" ||
		string(m.Content[0].Input) != `{"city":"mock"}` || m.Content[0].ID == "" {
		t.Fatalf("tool use: %s", b)
	}
	use := m.Content[0]
	resp, b = post(t, g.URL+"/v1/messages", `{"model":"glm4","max_tokens":50,`+tools+`,"messages":[
		{"role":"user","content":"Weather in Paris?"},
		{"role":"assistant","content":[{"type":"text","text":"Let me look."},{"type":"tool_use","id":"`+use.ID+`","name":"get_weather","input":{"city":"Paris"}}]},
		{"role":"user","content":[{"type":"tool_result","tool_use_id":"`+use.ID+`","content":[{"type":"text","text":"18C"}]},{"type":"text","text":"Thanks"}]}]}`)
	if err := json.Unmarshal(b, &m); err != nil || resp.StatusCode != 200 || m.StopReason != "end_turn" || m.Content[0].Type != "text" {
		t.Fatalf("after tool result: %d %s", resp.StatusCode, b)
	}
	msgs, up := lastUpstream(t, mock)
	// user, assistant (text + tool call), tool, user
	if len(msgs) != 4 || msgs[1]["content"] != "Let me look." || msgs[2]["role"] != "tool" || msgs[2]["tool_call_id"] != use.ID ||
		msgs[2]["content"] != "18C" || msgs[3]["content"] != "Thanks" {
		t.Fatalf("upstream: %s", mock.Stats().LastBody)
	}
	tc := msgs[1]["tool_calls"].([]any)[0].(map[string]any)["function"].(map[string]any)
	if tc["name"] != "get_weather" || tc["arguments"] != `{"city":"Paris"}` {
		t.Errorf("tool call upstream: %v", tc)
	}
	if up["tools"].([]any)[0].(map[string]any)["function"].(map[string]any)["parameters"] == nil {
		t.Errorf("tool schema not sent: %s", mock.Stats().LastBody)
	}
	// tool_choice any → required.
	post(t, g.URL+"/v1/messages", `{"model":"glm4","max_tokens":50,`+tools+`,"tool_choice":{"type":"any"},"messages":[{"role":"user","content":"x"}]}`)
	if _, up := lastUpstream(t, mock); up["tool_choice"] != "required" {
		t.Errorf("tool_choice: %s", mock.Stats().LastBody)
	}
}

func TestMessagesStream(t *testing.T) {
	_, mockURL := startMock(t, mockllm.Options{Tokens: 4, ToolCalls: true})
	g := startGateway(t, oneModel(mockURL, ""), nil)
	resp, b := post(t, g.URL+"/v1/messages", `{"model":"glm4","max_tokens":50,"stream":true,"messages":[{"role":"user","content":"Story"}]}`)
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	var types []string
	text := ""
	var last map[string]any
	for _, ev := range readEvents(t, b) {
		if ev.name != ev.data["type"] {
			t.Errorf("event %s has type %v", ev.name, ev.data["type"])
		}
		if ev.name == "content_block_delta" {
			d := ev.data["delta"].(map[string]any)
			if d["type"] != "text_delta" {
				t.Errorf("delta %v", d)
			}
			text += d["text"].(string)
			continue
		}
		if ev.name == "message_delta" {
			last = ev.data
		}
		types = append(types, ev.name)
	}
	if got := strings.Join(types, " "); got != "message_start ping content_block_start content_block_stop message_delta message_stop" {
		t.Errorf("events: %s", got)
	}
	if len(strings.Fields(text)) != 4 || last["delta"].(map[string]any)["stop_reason"] != "end_turn" ||
		last["usage"].(map[string]any)["output_tokens"] != float64(4) {
		t.Errorf("text %q, message_delta %v", text, last)
	}

	// A streamed tool call is a tool_use block with input_json_delta.
	resp, b = post(t, g.URL+"/v1/messages", `{"model":"glm4","max_tokens":50,"stream":true,"messages":[{"role":"user","content":"x"}],
		"tools":[{"name":"f","input_schema":{"type":"object","properties":{"a":{"type":"boolean"}},"required":["a"]}}]}`)
	types, args := nil, ""
	for _, ev := range readEvents(t, b) {
		types = append(types, ev.name)
		switch ev.name {
		case "content_block_start":
			if cb := ev.data["content_block"].(map[string]any); cb["type"] != "tool_use" || cb["name"] != "f" || cb["id"] == "" {
				t.Errorf("block start %v", cb)
			}
		case "content_block_delta":
			args += ev.data["delta"].(map[string]any)["partial_json"].(string)
		case "message_delta":
			if ev.data["delta"].(map[string]any)["stop_reason"] != "tool_use" {
				t.Errorf("stop reason %v", ev.data)
			}
		}
	}
	if got := strings.Join(types, " "); resp.StatusCode != 200 || got != "message_start ping content_block_start content_block_delta content_block_stop message_delta message_stop" || args != `{"a":true}` {
		t.Errorf("tool stream: %s, arguments %q", got, args)
	}
}

// TestMessagesAuth: x-api-key authenticates, and refusals are in Anthropic's shape.
func TestMessagesAuth(t *testing.T) {
	_, mockURL := startMock(t, mockllm.Options{Tokens: 2})
	g := startAuthGateway(t, mockURL, nil)
	key := g.newKey(t, "user", nil)
	body := `{"model":"glm-4-flash","max_tokens":5,"messages":[{"role":"user","content":"x"}]}`
	resp, b := post(t, g.URL+"/v1/messages", body, "x-api-key", key, "anthropic-version", "2023-06-01")
	if resp.StatusCode != 200 {
		t.Errorf("x-api-key: %d %s", resp.StatusCode, b)
	}
	for _, hdr := range [][]string{nil, {"x-api-key", "agk-wrong"}} {
		resp, b := post(t, g.URL+"/v1/messages", body, hdr...)
		var e anthropicErr
		if err := json.Unmarshal(b, &e); err != nil || resp.StatusCode != 401 || e.Type != "error" || e.Error.Type != "authentication_error" {
			t.Errorf("%v: %d %s", hdr, resp.StatusCode, b)
		}
	}
	guest := g.newKey(t, "guest", nil)
	resp, b = post(t, g.URL+"/v1/messages", body, "x-api-key", guest)
	var e anthropicErr
	if err := json.Unmarshal(b, &e); err != nil || resp.StatusCode != 403 || e.Error.Type != "permission_error" {
		t.Errorf("guest: %d %s", resp.StatusCode, b)
	}
}
