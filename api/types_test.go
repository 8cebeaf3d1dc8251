package api

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestChatRequestJSON(t *testing.T) {
	temp, seed := 0.0, int64(0)
	idx := 0
	req := ChatCompletionRequest{
		Model: "glm-4",
		Messages: []Message{
			{Role: RoleSystem, Content: Text("be brief")},
			{Role: RoleUser, Content: Parts(
				ContentPart{Type: "text", Text: "what is this?"},
				ContentPart{Type: "image_url", ImageURL: &ImageURL{URL: "data:image/png;base64,AA=="}},
			)},
			{Role: RoleAssistant, ToolCalls: []ToolCall{{Index: &idx, ID: "call_1", Type: "function", Function: FunctionCall{Name: "f", Arguments: `{"x":1}`}}}},
			{Role: RoleTool, ToolCallID: "call_1", Content: Text("42")},
		},
		StreamOptions: &StreamOptions{IncludeUsage: true},
		Temperature:   &temp,
		Seed:          &seed,
		Stop:          Stop{"\n"},
		Tools:         []Tool{{Type: "function", Function: &FunctionDefinition{Name: "f", Parameters: json.RawMessage(`{"type":"object"}`)}}},
		ToolChoice:    json.RawMessage(`"auto"`),
	}
	b, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"model":"glm-4","messages":[` +
		`{"role":"system","content":"be brief"},` +
		`{"role":"user","content":[{"type":"text","text":"what is this?"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AA=="}}]},` +
		`{"role":"assistant","content":"","tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":"{\"x\":1}"}}]},` +
		`{"role":"tool","content":"42","tool_call_id":"call_1"}],` +
		`"stream_options":{"include_usage":true},"temperature":0,"stop":"\n","seed":0,` +
		`"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],"tool_choice":"auto"}`
	if string(b) != want {
		t.Errorf("marshal:\n got %s\nwant %s", b, want)
	}
	var back ChatCompletionRequest
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(req, back); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	if got := back.Messages[1].Content.String(); got != "what is this?" {
		t.Errorf("Content.String() = %q", got)
	}
}

func TestUnions(t *testing.T) {
	for _, tc := range []struct {
		in   string
		into any
		want any
		out  string // re-encoded; "" means same as in
	}{
		{`"x"`, new(Content), &Content{Text: "x"}, ""},
		{`null`, new(Content), &Content{}, `""`},
		{`[]`, new(Content), &Content{Parts: []ContentPart{}}, ""},
		{`"a"`, new(Stop), &Stop{"a"}, ""},
		{`["a","b"]`, new(Stop), &Stop{"a", "b"}, ""},
		{`["a"]`, new(Stop), &Stop{"a"}, `"a"`},
		{`null`, new(Stop), new(Stop), `null`},
		{`"p"`, new(Input), &Input{Texts: []string{"p"}}, ""},
		{`["p","q"]`, new(Input), &Input{Texts: []string{"p", "q"}}, ""},
		{`[1,2]`, new(Input), &Input{Tokens: [][]int{{1, 2}}}, ""},
		{`[[1],[2,3]]`, new(Input), &Input{Tokens: [][]int{{1}, {2, 3}}}, ""},
		{`[]`, new(Input), &Input{Texts: []string{}}, ""},
		{`null`, new(FinishReason), new(FinishReason), ""},
		{`"stop"`, new(FinishReason), ptr(FinishStop), ""},
		{`[0.5,-1]`, new(Vector), &Vector{0.5, -1}, ""},
		{`"AAAAPwAAgL8="`, new(Vector), &Vector{0.5, -1}, `[0.5,-1]`},
		{`{"message":"m","type":"t","param":null,"code":429}`, new(ErrorDetail), &ErrorDetail{Message: "m", Type: "t", Code: "429"}, `{"message":"m","type":"t","param":null,"code":"429"}`},
		{`{"message":"m","type":"t","param":"p","code":"c"}`, new(ErrorDetail), &ErrorDetail{Message: "m", Type: "t", Param: "p", Code: "c"}, ""},
	} {
		if err := json.Unmarshal([]byte(tc.in), tc.into); err != nil {
			t.Errorf("%s into %T: %v", tc.in, tc.into, err)
			continue
		}
		if diff := cmp.Diff(tc.want, tc.into); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.in, diff)
		}
		b, err := json.Marshal(tc.into)
		if err != nil {
			t.Errorf("marshal %T: %v", tc.into, err)
			continue
		}
		want := tc.out
		if want == "" {
			want = tc.in
		}
		if string(b) != want {
			t.Errorf("%s re-encodes as %s, want %s", tc.in, b, want)
		}
	}
	for _, bad := range []string{`"AAA"`, `"!!"`} {
		var v Vector
		if json.Unmarshal([]byte(bad), &v) == nil {
			t.Errorf("vector %s decoded", bad)
		}
	}
	if _, err := json.Marshal(Input{Texts: []string{"a"}, Tokens: [][]int{{1}}}); err == nil {
		t.Error("an Input with texts and tokens encoded")
	}
	var in Input
	if json.Unmarshal([]byte(`7`), &in) == nil {
		t.Error("input 7 decoded")
	}
}

func ptr[T any](v T) *T { return &v }

func TestChunkFinishReasonNull(t *testing.T) {
	b, _ := json.Marshal(ChunkChoice{Delta: Delta{Content: "x"}})
	if want := `{"index":0,"delta":{"content":"x"},"finish_reason":null}`; string(b) != want {
		t.Errorf("got %s, want %s", b, want)
	}
}
