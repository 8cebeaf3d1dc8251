package chat

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var weather = Tool{Name: "get_weather", Description: "Weather of a city",
	Parameters: json.RawMessage(`{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}`)}

func toolConversation() []Turn {
	return []Turn{
		{Message: Message{Role: "user", Content: "Weather in Oslo?"}},
		{Message: Message{Role: "assistant"}, ToolCalls: []ToolCall{{Name: "get_weather", Arguments: `{"city":"Oslo"}`}}},
		{Message: Message{Role: "tool", Content: `{"temp":3}`}},
	}
}

func TestRenderToolsQwen(t *testing.T) {
	got, err := Template{Family: ChatML}.RenderTools(toolConversation(), []Tool{weather}, true)
	if err != nil {
		t.Fatal(err)
	}
	want := "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.\n\n# Tools\n\n" +
		"You may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>\n" +
		`{"function":{"description":"Weather of a city","name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}},"type":"function"}` +
		"\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n" +
		"<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" +
		"<|im_start|>user\nWeather in Oslo?<|im_end|>\n" +
		"<|im_start|>assistant\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\":\"Oslo\"}}\n</tool_call><|im_end|>\n" +
		"<|im_start|>user\n<tool_response>\n{\"temp\":3}\n</tool_response><|im_end|>\n<|im_start|>assistant\n"
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
}

func TestRenderToolsGLM4AndLlama31(t *testing.T) {
	got, err := Template{Family: GLM4}.RenderTools(toolConversation(), []Tool{weather}, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"[gMASK]<sop><|system|>\n# 可用工具\n\n## get_weather\n\n{\"function\"", "在调用上述函数时，请使用 Json 格式表示调用的参数。<|user|>\nWeather in Oslo?",
		"<|assistant|>\nget_weather\n{\"city\":\"Oslo\"}<|observation|>\n{\"temp\":3}<|assistant|>"} {
		if !strings.Contains(got, want) {
			t.Errorf("GLM-4 rendering lacks %q:\n%s", want, got)
		}
	}
	got, err = Template{Family: Llama31}.RenderTools(toolConversation(), []Tool{weather}, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Environment: ipython<|eot_id|>", "Respond in the format {\"name\": function name, \"parameters\": dictionary",
		"\"name\":\"get_weather\"", "\n\nWeather in Oslo?<|eot_id|>", "<|start_header_id|>assistant<|end_header_id|>\n\n{\"name\": \"get_weather\", \"parameters\": {\"city\":\"Oslo\"}}<|eot_id|>",
		"<|start_header_id|>ipython<|end_header_id|>\n\n{\"temp\":3}<|eot_id|>"} {
		if !strings.Contains(got, want) {
			t.Errorf("Llama-3.1 rendering lacks %q:\n%s", want, got)
		}
	}
	if _, err := (Template{Family: Llama2}).RenderTools(toolConversation(), []Tool{weather}, true); err == nil {
		t.Error("Llama-2 rendered tools")
	}
}

func TestParseToolCalls(t *testing.T) {
	names := []string{"get_weather", "add"}
	cases := []struct {
		tmpl           Template
		prefix, output string
		content        string
		calls          []ToolCall
	}{
		{Template{Family: ChatML}, "", "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\"}}\n</tool_call>\n<tool_call>\n{\"name\":\"add\",\"arguments\":{\"a\":1}}\n</tool_call>",
			"Let me check.", []ToolCall{{"get_weather", `{"city":"Oslo"}`}, {"add", `{"a":1}`}}},
		{Template{Family: ChatML}, "<tool_call>\n", `{"name": "add", "arguments": {"a": 1, "b": 2}}`, "", []ToolCall{{"add", `{"a":1,"b":2}`}}},
		{Template{Family: ChatML}, "", "no call here", "no call here", nil},
		{Template{Family: Llama31}, "", `{"name": "add", "parameters": {"a": 1}}`, "", []ToolCall{{"add", `{"a":1}`}}},
		{Template{Family: GLM4}, "", "get_weather\n{\"city\": \"Oslo\"}", "", []ToolCall{{"get_weather", `{"city":"Oslo"}`}}},
		{Template{Family: GLM4}, "", "It is sunny.", "It is sunny.", nil},
	}
	for _, tc := range cases {
		content, calls := tc.tmpl.ParseToolCalls(tc.prefix, tc.output, names)
		if content != tc.content || !cmp.Equal(calls, tc.calls) {
			t.Errorf("%s %q: %q %v", tc.tmpl.Family, tc.output, content, calls)
		}
	}
}

func FuzzParseToolCalls(f *testing.F) {
	f.Add("<tool_call>\n{\"name\":\"a\",\"arguments\":{}}\n</tool_call>")
	f.Add("a\n{}")
	f.Add(`{"name":"a","parameters":{"x":[1]}}`)
	f.Fuzz(func(t *testing.T, s string) {
		for _, fam := range []Family{ChatML, GLM4, Llama31} {
			_, calls := Template{Family: fam}.ParseToolCalls("", s, []string{"a"})
			for _, c := range calls {
				if c.Name == "" || !json.Valid([]byte(c.Arguments)) {
					t.Fatalf("%s: bad call %+v from %q", fam, c, s)
				}
			}
		}
	})
}

func TestCallSchema(t *testing.T) {
	s, ok := Template{Family: ChatML}.CallSchema([]string{"get_weather"}, []json.RawMessage{weather.Parameters})
	if !ok || !strings.Contains(string(s), `"name":{"const":"get_weather"}`) || !strings.Contains(string(s), `"arguments":{"type":"object","properties"`) {
		t.Errorf("%s", s)
	}
	if _, ok := (Template{Family: GLM4}).CallSchema([]string{"a", "b"}, nil); ok {
		t.Error("GLM-4 with two functions constrained")
	}
}
