package grpcapi

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
	autoglmv1 "github.com/open-autoglm/autoglm/gen/autoglm/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

func decode(t testing.TB, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("body %s: %v", b, err)
	}
	return m
}

func TestChatBody(t *testing.T) {
	extra, _ := structpb.NewStruct(map[string]any{
		"tool_choice": "auto", "model": "overridden", "stream_options": map[string]any{"x": true},
	})
	msgExtra, _ := structpb.NewStruct(map[string]any{"content": []any{map[string]any{"type": "text", "text": "hi"}}})
	req := &autoglmv1.ChatRequest{
		Model: "m",
		Messages: []*autoglmv1.Message{
			{Role: "system", Content: "be brief <b>"},
			{Role: "user", Extra: msgExtra},
			{Role: "tool", Content: "42", ToolCallId: "call_1"},
		},
		Temperature: proto.Float64(0),
		Stop:        []string{"x"},
		User:        "u1",
		Extra:       extra,
	}
	b, err := chatBody(req, true)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"model": "m",
		"messages": []any{
			map[string]any{"role": "system", "content": "be brief <b>"},
			map[string]any{"role": "user", "content": []any{map[string]any{"type": "text", "text": "hi"}}},
			map[string]any{"role": "tool", "content": "42", "tool_call_id": "call_1"},
		},
		"temperature":    0.0,
		"stop":           []any{"x"},
		"user":           "u1",
		"tool_choice":    "auto",
		"stream":         true,
		"stream_options": map[string]any{"x": true, "include_usage": true},
	}
	if d := cmp.Diff(want, decode(t, b)); d != "" {
		t.Errorf("body (-want +got):\n%s", d)
	}
	b, _ = chatBody(req, false)
	got := decode(t, b)
	if got["stream"] != false || got["stream_options"] != nil {
		t.Errorf("unary body streams: %s", b)
	}
	if _, err := chatBody(&autoglmv1.ChatRequest{TopP: proto.Float64(math.Inf(1))}, false); err == nil {
		t.Error("infinite top_p accepted")
	}
}

func TestEmbedAndCompleteBody(t *testing.T) {
	b, err := embedBody(&autoglmv1.EmbedRequest{Model: "e", Input: []string{"a"}, Dimensions: proto.Int64(4)})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"model": "e", "input": []any{"a"}, "dimensions": 4.0, "encoding_format": "float"}
	if d := cmp.Diff(want, decode(t, b)); d != "" {
		t.Errorf("embed body (-want +got):\n%s", d)
	}
	extra, _ := structpb.NewStruct(map[string]any{"prompt": []any{1.0, 2.0}})
	b, err = completeBody(&autoglmv1.CompleteRequest{Model: "c", Extra: extra, MaxTokens: proto.Int64(3)})
	if err != nil {
		t.Fatal(err)
	}
	want = map[string]any{"model": "c", "prompt": []any{1.0, 2.0}, "max_tokens": 3.0, "stream": false}
	if d := cmp.Diff(want, decode(t, b)); d != "" {
		t.Errorf("complete body (-want +got):\n%s", d)
	}
}

// FuzzChatBody checks that any request either is refused or becomes a JSON object whose typed
// fields hold what the request said.
func FuzzChatBody(f *testing.F) {
	f.Add("glm-4", "user", "hello", `{"tools":[{"type":"function"}]}`, 0.5, int64(16), true)
	f.Add("", "", "", `{}`, math.NaN(), int64(-1), false)
	f.Add("m\u2028", "assistant", "<script>\"\\", `{"stream":true,"stream_options":null,"messages":5}`, math.Inf(-1), int64(0), true)
	f.Add("m", "user", "\xff\xfe", `{"model":"x","n":2,"nested":{"a":[1,2,{"b":null}]}}`, 1e308, int64(1<<62), false)
	f.Fuzz(func(t *testing.T, model, role, content, extraJSON string, temp float64, maxTokens int64, stream bool) {
		req := &autoglmv1.ChatRequest{
			Model:       model,
			Messages:    []*autoglmv1.Message{{Role: role, Content: content}},
			Temperature: proto.Float64(temp),
			MaxTokens:   proto.Int64(maxTokens),
		}
		var extra map[string]any
		if json.Unmarshal([]byte(extraJSON), &extra) == nil && extra != nil {
			if s, err := structpb.NewStruct(extra); err == nil {
				req.Extra = s
			}
		}
		b, err := chatBody(req, stream)
		if err != nil {
			if !math.IsNaN(temp) && !math.IsInf(temp, 0) {
				t.Fatalf("refused a finite request: %v", err)
			}
			return
		}
		var got map[string]any
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("not a JSON object: %s: %v", b, err)
		}
		if got["stream"] != stream {
			t.Errorf("stream = %v, want %v", got["stream"], stream)
		}
		if model != "" && got["model"] != toValidUTF8(model) {
			t.Errorf("model = %q, want %q", got["model"], model)
		}
		msgs, ok := got["messages"].([]any)
		if !ok || len(msgs) != 1 {
			t.Fatalf("messages = %v", got["messages"])
		}
		if m := msgs[0].(map[string]any); m["content"] != toValidUTF8(content) || m["role"] != toValidUTF8(role) {
			t.Errorf("message = %v", m)
		}
		if so, _ := got["stream_options"].(map[string]any); stream && so["include_usage"] != true {
			t.Errorf("stream_options = %v", got["stream_options"])
		}
	})
}

// toValidUTF8 is s as encoding/json writes it: invalid bytes become U+FFFD.
func toValidUTF8(s string) string {
	b, _ := json.Marshal(s)
	var out string
	_ = json.Unmarshal(b, &out)
	return out
}
