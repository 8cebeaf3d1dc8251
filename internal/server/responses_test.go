package server_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/open-autoglm/autoglm/internal/mockllm"
)

// respDoc is the part of a response object the tests read.
type respDoc struct {
	ID                 string  `json:"id"`
	Object             string  `json:"object"`
	Status             string  `json:"status"`
	Model              string  `json:"model"`
	PreviousResponseID *string `json:"previous_response_id"`
	Instructions       *string `json:"instructions"`
	IncompleteDetails  *struct {
		Reason string `json:"reason"`
	} `json:"incomplete_details"`
	Output []struct {
		ID        string `json:"id"`
		Type      string `json:"type"`
		Role      string `json:"role"`
		Status    string `json:"status"`
		CallID    string `json:"call_id"`
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
		Content   []struct {
			Type string `json:"type"`
			Text string `json:"text"`
		} `json:"content"`
	} `json:"output"`
	Usage *struct {
		InputTokens  int `json:"input_tokens"`
		OutputTokens int `json:"output_tokens"`
		TotalTokens  int `json:"total_tokens"`
	} `json:"usage"`
}

func (d *respDoc) text() string {
	var b strings.Builder
	for _, o := range d.Output {
		for _, c := range o.Content {
			b.WriteString(c.Text)
		}
	}
	return b.String()
}

func decodeResp(t *testing.T, resp *http.Response, b []byte) *respDoc {
	t.Helper()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	var d respDoc
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	return &d
}

// lastUpstream is the chat request the mock received last.
func lastUpstream(t *testing.T, m *mockllm.Server) (msgs []map[string]any, body map[string]any) {
	t.Helper()
	st := m.Stats()
	if err := json.Unmarshal([]byte(st.LastBody), &body); err != nil {
		t.Fatalf("%v: %s", err, st.LastBody)
	}
	for _, m := range body["messages"].([]any) {
		msgs = append(msgs, m.(map[string]any))
	}
	return msgs, body
}

func TestResponsesTextAndConversation(t *testing.T) {
	mock, mockURL := startMock(t, mockllm.Options{Tokens: 6})
	g := startGateway(t, oneModel(mockURL, ""), nil)

	resp, b := post(t, g.URL+"/v1/responses", `{"model":"glm4","input":"Tell me a joke.","instructions":"Be brief.","max_output_tokens":50}`)
	first := decodeResp(t, resp, b)
	if first.Object != "response" || first.Status != "completed" || first.Model != "glm4" || !strings.HasPrefix(first.ID, "resp_") {
		t.Errorf("response fields: %s", b)
	}
	if len(first.Output) != 1 || first.Output[0].Type != "message" || first.Output[0].Role != "assistant" ||
		first.Output[0].Content[0].Type != "output_text" || len(strings.Fields(first.text())) != 6 {
		t.Errorf("output: %s", b)
	}
	if u := first.Usage; u == nil || u.OutputTokens != 6 || u.InputTokens == 0 || u.TotalTokens != u.InputTokens+u.OutputTokens {
		t.Errorf("usage: %s", b)
	}
	if resp.Header.Get("X-Request-Id") == "" {
		t.Error("no X-Request-Id")
	}
	msgs, up := lastUpstream(t, mock)
	if len(msgs) != 2 || msgs[0]["role"] != "system" || msgs[0]["content"] != "Be brief." || msgs[1]["content"] != "Tell me a joke." ||
		up["max_tokens"] != float64(50) || up["model"] != "upstream-glm" {
		t.Errorf("upstream request: %s", mock.Stats().LastBody)
	}

	// The stored response reads back as it was answered; its input items list the input.
	resp, got := get(t, g.URL+"/v1/responses/"+first.ID)
	if resp.StatusCode != 200 || !bytes.Equal(got, b) {
		t.Errorf("GET stored response: %d %s\nwant %s", resp.StatusCode, got, b)
	}
	resp, got = get(t, g.URL+"/v1/responses/"+first.ID+"/input_items")
	var items struct {
		Object string `json:"object"`
		Data   []struct {
			Type    string `json:"type"`
			Role    string `json:"role"`
			Content []struct {
				Type, Text string
			} `json:"content"`
		} `json:"data"`
		HasMore bool `json:"has_more"`
	}
	if err := json.Unmarshal(got, &items); err != nil || resp.StatusCode != 200 || items.Object != "list" || len(items.Data) != 1 ||
		items.Data[0].Role != "user" || items.Data[0].Content[0].Type != "input_text" || items.Data[0].Content[0].Text != "Tell me a joke." {
		t.Errorf("input items: %d %s", resp.StatusCode, got)
	}

	// previous_response_id continues the conversation: the earlier turns reach the model,
	// the earlier instructions do not.
	resp, b = post(t, g.URL+"/v1/responses", `{"model":"glm4","previous_response_id":"`+first.ID+`",
		"input":[{"role":"user","content":[{"type":"input_text","text":"Another one."}]}]}`)
	second := decodeResp(t, resp, b)
	if second.PreviousResponseID == nil || *second.PreviousResponseID != first.ID {
		t.Errorf("previous_response_id not echoed: %s", b)
	}
	msgs, _ = lastUpstream(t, mock)
	if len(msgs) != 3 || msgs[0]["content"] != "Tell me a joke." || msgs[1]["role"] != "assistant" || msgs[1]["content"] != first.text() ||
		msgs[2]["content"] != "Another one." {
		t.Errorf("continued conversation: %s", mock.Stats().LastBody)
	}
	// Two steps back works too.
	resp, b = post(t, g.URL+"/v1/responses", `{"model":"glm4","previous_response_id":"`+second.ID+`","input":"And a third."}`)
	decodeResp(t, resp, b)
	if msgs, _ = lastUpstream(t, mock); len(msgs) != 5 {
		t.Errorf("third turn sent %d messages: %s", len(msgs), mock.Stats().LastBody)
	}

	// item_reference inputs name stored items: here the first answer, sent back by id as
	// the Vercel AI SDK does.
	resp, b = post(t, g.URL+"/v1/responses", `{"model":"glm4","input":[{"role":"user","content":"Tell me a joke."},
		{"type":"item_reference","id":"`+first.Output[0].ID+`"},{"role":"user","content":"Again."}]}`)
	decodeResp(t, resp, b)
	if msgs, _ = lastUpstream(t, mock); len(msgs) != 3 || msgs[1]["role"] != "assistant" || msgs[1]["content"] != first.text() {
		t.Errorf("item_reference: %s", mock.Stats().LastBody)
	}
	resp, b = post(t, g.URL+"/v1/responses", `{"model":"glm4","input":[{"type":"item_reference","id":"msg_nope"}]}`)
	if e := decodeOpenAIError(t, resp, b); resp.StatusCode != 404 || e.Error.Code != "item_not_found" {
		t.Errorf("unknown item_reference: %d %s", resp.StatusCode, b)
	}

	// store: false is not kept.
	resp, b = post(t, g.URL+"/v1/responses", `{"model":"glm4","input":"x","store":false}`)
	unstored := decodeResp(t, resp, b)
	if resp, _ := get(t, g.URL+"/v1/responses/"+unstored.ID); resp.StatusCode != 404 {
		t.Errorf("store:false response was stored: %d", resp.StatusCode)
	}
	resp, b = post(t, g.URL+"/v1/responses", `{"model":"glm4","input":"x","previous_response_id":"`+unstored.ID+`"}`)
	if e := decodeOpenAIError(t, resp, b); resp.StatusCode != 404 || e.Error.Code != "previous_response_not_found" {
		t.Errorf("unknown previous response: %d %s", resp.StatusCode, b)
	}

	// Delete, then it is gone.
	req, _ := http.NewRequest("DELETE", g.URL+"/v1/responses/"+first.ID, nil)
	dresp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	dresp.Body.Close()
	if resp, _ := get(t, g.URL+"/v1/responses/"+first.ID); dresp.StatusCode != 200 || resp.StatusCode != 404 {
		t.Errorf("delete: %d, then GET %d", dresp.StatusCode, resp.StatusCode)
	}

	// max_output_tokens cutting the answer makes it incomplete.
	resp, b = post(t, g.URL+"/v1/responses", `{"model":"glm4","input":"x","max_output_tokens":2}`)
	if d := decodeResp(t, resp, b); d.Status != "incomplete" || d.IncompleteDetails == nil || d.IncompleteDetails.Reason != "max_output_tokens" {
		t.Errorf("cut answer: %s", b)
	}
}

func TestResponsesErrors(t *testing.T) {
	_, mockURL := startMock(t, mockllm.Options{Tokens: 3})
	g := startGateway(t, oneModel(mockURL, ""), nil)
	for _, tc := range []struct {
		body, code, param string
		status            int
	}{
		{`{"input":"x"}`, "missing_required_parameter", "model", 400},
		{`{"model":"glm4"}`, "missing_required_parameter", "input", 400},
		{`{"model":"nope","input":"x"}`, "model_not_found", "model", 404},
		{`{"model":"glm4","input":[{"role":"robot","content":"x"}]}`, "invalid_value", "input[0]", 400},
		{`{"model":"glm4","input":"x","tools":[{"type":"web_search"}]}`, "invalid_value", "tools[0].type", 400},
		{`{"model":"glm4","input":"x"`, "invalid_json", "", 400},
	} {
		resp, b := post(t, g.URL+"/v1/responses", tc.body)
		e := decodeOpenAIError(t, resp, b)
		param := ""
		if e.Error.Param != nil {
			param = *e.Error.Param
		}
		if resp.StatusCode != tc.status || e.Error.Code != tc.code || param != tc.param {
			t.Errorf("%s: %d %s", tc.body, resp.StatusCode, b)
		}
	}
	if resp, b := get(t, g.URL+"/v1/responses/resp_nope"); resp.StatusCode != 404 || !strings.Contains(string(b), "response_not_found") {
		t.Errorf("unknown id: %d %s", resp.StatusCode, b)
	}
}

func TestResponsesToolRoundTrip(t *testing.T) {
	mock, mockURL := startMock(t, mockllm.Options{Tokens: 4, ToolCalls: true})
	g := startGateway(t, oneModel(mockURL, ""), nil)
	tools := `"tools":[{"type":"function","name":"get_weather","description":"Weather of a city",
		"parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}]`
	resp, b := post(t, g.URL+"/v1/responses", `{"model":"glm4","input":"Weather in Paris?",`+tools+`}`)
	d := decodeResp(t, resp, b)
	if len(d.Output) != 1 || d.Output[0].Type != "function_call" || d.Output[0].Name != "get_weather" ||
		d.Output[0].Arguments != `{"city":"mock"}` || d.Output[0].CallID == "" || d.Status != "completed" {
		t.Fatalf("tool call output: %s", b)
	}
	_, up := lastUpstream(t, mock)
	tl := up["tools"].([]any)[0].(map[string]any)
	if tl["type"] != "function" || tl["function"].(map[string]any)["name"] != "get_weather" {
		t.Errorf("tools sent upstream: %s", mock.Stats().LastBody)
	}
	call := d.Output[0]
	resp, b = post(t, g.URL+"/v1/responses", `{"model":"glm4","previous_response_id":"`+d.ID+`",`+tools+`,
		"input":[{"type":"function_call_output","call_id":"`+call.CallID+`","output":"18C and sunny"}]}`)
	d2 := decodeResp(t, resp, b)
	if len(d2.Output) != 1 || d2.Output[0].Type != "message" || len(strings.Fields(d2.text())) != 4 {
		t.Errorf("answer after the tool result: %s", b)
	}
	msgs, _ := lastUpstream(t, mock)
	if len(msgs) != 3 || msgs[1]["role"] != "assistant" || msgs[2]["role"] != "tool" || msgs[2]["tool_call_id"] != call.CallID ||
		msgs[2]["content"] != "18C and sunny" {
		t.Fatalf("tool round trip upstream: %s", mock.Stats().LastBody)
	}
	tc := msgs[1]["tool_calls"].([]any)[0].(map[string]any)
	if tc["id"] != call.CallID || tc["function"].(map[string]any)["arguments"] != `{"city":"mock"}` {
		t.Errorf("assistant tool call upstream: %v", tc)
	}
	// The whole history can also be sent without previous_response_id.
	resp, b = post(t, g.URL+"/v1/responses", `{"model":"glm4",`+tools+`,"input":[
		{"role":"user","content":"Weather in Paris?"},
		{"type":"function_call","call_id":"c1","name":"get_weather","arguments":"{\"city\":\"Paris\"}"},
		{"type":"function_call_output","call_id":"c1","output":"rain"}]}`)
	decodeResp(t, resp, b)
	if msgs, _ = lastUpstream(t, mock); len(msgs) != 3 || msgs[2]["role"] != "tool" {
		t.Errorf("explicit history: %s", mock.Stats().LastBody)
	}
}

// sseEvent is one event of a Responses stream.
type sseEvent struct {
	name string
	data map[string]any
	raw  string
}

func readEvents(t *testing.T, b []byte) []sseEvent {
	t.Helper()
	var out []sseEvent
	var cur sseEvent
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			cur.name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			cur.raw = strings.TrimPrefix(line, "data: ")
			if err := json.Unmarshal([]byte(cur.raw), &cur.data); err != nil {
				t.Fatalf("event data %q: %v", cur.raw, err)
			}
		case line == "" && cur.raw != "":
			out = append(out, cur)
			cur = sseEvent{}
		}
	}
	return out
}

func TestResponsesStream(t *testing.T) {
	_, mockURL := startMock(t, mockllm.Options{Tokens: 5})
	g := startGateway(t, oneModel(mockURL, ""), nil)
	resp, b := post(t, g.URL+"/v1/responses", `{"model":"glm4","input":"Tell a story.","stream":true}`)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	events := readEvents(t, b)
	var types []string
	text := ""
	for i, ev := range events {
		if ev.name != ev.data["type"] {
			t.Errorf("event %q carries type %v", ev.name, ev.data["type"])
		}
		if ev.data["sequence_number"] != float64(i) {
			t.Errorf("event %d has sequence_number %v", i, ev.data["sequence_number"])
		}
		if ev.name == "response.output_text.delta" {
			text += ev.data["delta"].(string)
			continue
		}
		types = append(types, ev.name)
	}
	want := []string{"response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
		"response.output_text.done", "response.content_part.done", "response.output_item.done", "response.completed"}
	if strings.Join(types, " ") != strings.Join(want, " ") {
		t.Errorf("events:\n%v\nwant\n%v", types, want)
	}
	last := events[len(events)-1].data["response"].(map[string]any)
	out := last["output"].([]any)[0].(map[string]any)
	final := out["content"].([]any)[0].(map[string]any)["text"]
	if len(strings.Fields(text)) != 5 || final != text || last["status"] != "completed" || last["usage"].(map[string]any)["output_tokens"] != float64(5) {
		t.Errorf("streamed %q, final %v, response %s", text, final, events[len(events)-1].raw)
	}
	// The streamed response is stored, and reads back like the last event's.
	id := last["id"].(string)
	if resp, got := get(t, g.URL+"/v1/responses/"+id); resp.StatusCode != 200 || !strings.Contains(string(got), `"status":"completed"`) {
		t.Errorf("stored streamed response: %d %s", resp.StatusCode, got)
	}
}

func TestResponsesStreamToolCall(t *testing.T) {
	_, mockURL := startMock(t, mockllm.Options{Tokens: 5, ToolCalls: true})
	g := startGateway(t, oneModel(mockURL, ""), nil)
	resp, b := post(t, g.URL+"/v1/responses", `{"model":"glm4","input":"Weather?","stream":true,
		"tools":[{"type":"function","name":"weather","parameters":{"type":"object","properties":{"n":{"type":"integer"}},"required":["n"]}}]}`)
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	var types []string
	args := ""
	events := readEvents(t, b)
	for _, ev := range events {
		types = append(types, ev.name)
		if ev.name == "response.function_call_arguments.delta" {
			args += ev.data["delta"].(string)
		}
	}
	want := "response.created response.in_progress response.output_item.added response.function_call_arguments.delta " +
		"response.function_call_arguments.done response.output_item.done response.completed"
	if strings.Join(types, " ") != want || args != `{"n":1}` {
		t.Errorf("events %v, arguments %q", types, args)
	}
	item := events[len(events)-2].data["item"].(map[string]any)
	if item["type"] != "function_call" || item["name"] != "weather" || item["arguments"] != `{"n":1}` || item["status"] != "completed" {
		t.Errorf("done item: %v", item)
	}
}

// TestResponsesOwnership: a stored response is its owner's alone.
func TestResponsesOwnership(t *testing.T) {
	_, mockURL := startMock(t, mockllm.Options{Tokens: 2})
	g := startAuthGateway(t, mockURL, nil)
	alice, bob := g.newKey(t, "user", nil), g.newKey(t, "user", nil)
	resp, b := g.do(t, "POST", "/v1/responses", `{"model":"glm-4-flash","input":"secret"}`, alice)
	d := decodeResp(t, resp, []byte(b))
	for _, path := range []string{"/v1/responses/" + d.ID, "/v1/responses/" + d.ID + "/input_items"} {
		if resp, _ := g.do(t, "GET", path, "", alice); resp.StatusCode != 200 {
			t.Errorf("owner GET %s: %d", path, resp.StatusCode)
		}
		if resp, got := g.do(t, "GET", path, "", bob); resp.StatusCode != 404 || strings.Contains(got, "secret") {
			t.Errorf("other GET %s: %d %s", path, resp.StatusCode, got)
		}
	}
	if resp, _ := g.do(t, "POST", "/v1/responses", `{"model":"glm-4-flash","input":"x","previous_response_id":"`+d.ID+`"}`, bob); resp.StatusCode != 404 {
		t.Errorf("other continues the conversation: %d", resp.StatusCode)
	}
	if resp, _ := g.do(t, "POST", "/v1/responses", `{"model":"glm-4-flash","input":[{"type":"item_reference","id":"`+d.Output[0].ID+`"}]}`, bob); resp.StatusCode != 404 {
		t.Errorf("other refers to the owner's item: %d", resp.StatusCode)
	}
	if resp, _ := g.do(t, "DELETE", "/v1/responses/"+d.ID, "", bob); resp.StatusCode != 404 {
		t.Errorf("other deletes: %d", resp.StatusCode)
	}
	if resp, _ := g.do(t, "GET", "/v1/responses/"+d.ID, "", alice); resp.StatusCode != 200 {
		t.Errorf("owner lost the response: %d", resp.StatusCode)
	}
}
