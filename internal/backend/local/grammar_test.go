package local_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/open-autoglm/autoglm/api"
	"github.com/open-autoglm/autoglm/internal/backend"
)

const colorSchema = `{"type":"object","properties":{"ok":{"type":"boolean"},"n":{"type":"integer"},
	"color":{"enum":["red","green","dark blue"]},"tags":{"type":"array","items":{"enum":["a","b"]},"maxItems":2}},
	"required":["ok","n","color"],"additionalProperties":false}`

// TestResponseFormatFollowsSchema: the demo model writes children's stories, not JSON; under
// the schema its answers still parse and follow the schema, for every seed. (The schema has
// no free-text string: inside one, this model would tell its story until max_tokens.)
func TestResponseFormatFollowsSchema(t *testing.T) {
	b := open(t)
	for seed := range 4 {
		body := fmt.Sprintf(`{"model":"m","max_tokens":200,"temperature":1,"seed":%d,
			"response_format":{"type":"json_schema","json_schema":{"name":"c","strict":true,"schema":%s}},
			"messages":[{"role":"user","content":"Once upon a time"}]}`, seed, colorSchema)
		status, out := do(t, b, backend.OpChat, body)
		if status != 200 {
			t.Fatalf("%d %s", status, out)
		}
		var cc api.ChatCompletion
		if err := json.Unmarshal(out, &cc); err != nil {
			t.Fatal(err)
		}
		text := cc.Choices[0].Message.Content.String()
		if cc.Choices[0].FinishReason != "stop" {
			t.Errorf("seed %d: finish %q for %q", seed, cc.Choices[0].FinishReason, text)
			continue
		}
		var v struct {
			OK    *bool    `json:"ok"`
			N     *int64   `json:"n"`
			Color string   `json:"color"`
			Tags  []string `json:"tags"`
		}
		dec := json.NewDecoder(strings.NewReader(text))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&v); err != nil || dec.More() {
			t.Errorf("seed %d: %q: %v", seed, text, err)
			continue
		}
		if v.OK == nil || v.N == nil || (v.Color != "red" && v.Color != "green" && v.Color != "dark blue") || len(v.Tags) > 2 {
			t.Errorf("seed %d: %q does not follow the schema", seed, text)
		}
	}
	// json_object, streamed: the concatenated deltas are one JSON object.
	status, out := do(t, b, backend.OpChat, `{"model":"m","max_tokens":300,"temperature":0.7,"seed":3,"stream":true,
		"response_format":{"type":"json_object"},"messages":[{"role":"user","content":"Lily"}]}`)
	if status != 200 {
		t.Fatalf("%d %s", status, out)
	}
	var text, finish string
	for _, d := range sse(t, out) {
		var ch api.ChatCompletionChunk
		if d != "[DONE]" && json.Unmarshal([]byte(d), &ch) == nil && len(ch.Choices) > 0 {
			text += ch.Choices[0].Delta.Content
			if ch.Choices[0].FinishReason != "" {
				finish = string(ch.Choices[0].FinishReason)
			}
		}
	}
	var obj map[string]any
	if finish == "stop" && json.Unmarshal([]byte(text), &obj) != nil {
		t.Errorf("json_object output %q is not an object", text)
	}
}

func TestResponseFormatRefusals(t *testing.T) {
	b := open(t)
	for _, tc := range []struct{ rf, code string }{
		{`{"type":"json_schema","json_schema":{"name":"x","schema":{"type":"string","pattern":"a+"}}}`, "unsupported_schema"},
		{`{"type":"json_schema","json_schema":{"name":"x","schema":{"$ref":"#/defs/a"}}}`, "unsupported_schema"},
		{`{"type":"json_schema","json_schema":{"name":"x"}}`, "invalid_request"},
		{`{"type":"yaml"}`, "invalid_request"},
	} {
		status, out := do(t, b, backend.OpChat, `{"model":"m","response_format":`+tc.rf+`,"messages":[{"role":"user","content":"x"}]}`)
		var e api.ErrorResponse
		if status != 400 || json.Unmarshal(out, &e) != nil || e.Error.Code != tc.code || e.Error.Message == "" {
			t.Errorf("%s: %d %s", tc.rf, status, out)
		}
	}
}
