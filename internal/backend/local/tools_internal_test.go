package local

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/open-autoglm/autoglm/api"
	"github.com/open-autoglm/autoglm/internal/backend"
	"github.com/open-autoglm/autoglm/internal/engine/synth"
)

const weatherTools = `[{"type":"function","function":{"name":"get_weather","description":"Weather forecast",
	"parameters":{"type":"object","properties":{"city":{"enum":["Oslo","Paris"]},"days":{"type":"integer"}},"required":["city","days"],"additionalProperties":false}}},
	{"type":"function","function":{"name":"noop","parameters":{"type":"object","properties":{}}}}]`

func doRaw(t *testing.T, b *Backend, op backend.Op, body string) (int, []byte) {
	t.Helper()
	resp, err := b.Do(t.Context(), &backend.Request{Op: op, Body: []byte(body), Stream: strings.Contains(body, `"stream":true`)})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

func checkWeatherCall(t *testing.T, tc api.ToolCall) {
	t.Helper()
	var args struct {
		City *string `json:"city"`
		Days *int64  `json:"days"`
	}
	dec := json.NewDecoder(strings.NewReader(tc.Function.Arguments))
	dec.DisallowUnknownFields()
	if tc.Function.Name != "get_weather" || tc.Type != "function" || !strings.HasPrefix(tc.ID, "call_") ||
		dec.Decode(&args) != nil || args.City == nil || (*args.City != "Oslo" && *args.City != "Paris") || args.Days == nil {
		t.Errorf("tool call %+v does not follow the function's schema", tc)
	}
}

// TestToolCalls runs random-weight Qwen2 (ChatML), GLM-4 and Llama-3.1 models: with a named
// or required tool the answer is a call whose arguments follow the function's schema,
// streamed or not.
func TestToolCalls(t *testing.T) {
	for _, arch := range []string{"qwen2", "glm4", "llama"} {
		t.Run(arch, func(t *testing.T) {
			spec := synth.Spec{Arch: arch, Dim: 32, Layers: 1, Heads: 2, FFN: 32, Vocab: 600, Seed: 5, Ctx: 2048}
			if arch == "llama" {
				spec.ChatTemplate = "{{ '<|start_header_id|>' }} Cutting Knowledge Date" // detected as Llama-3.1
			}
			b := openSynth(t, spec)
			if arch == "llama" && b.r.Template().Name() != "llama3.1" {
				t.Fatalf("template %s", b.r.Template().Name())
			}
			called := 0
			for seed := range 3 {
				body := `{"model":"m","max_tokens":300,"temperature":1,"seed":` + string(rune('1'+seed)) + `,"tools":` + weatherTools + `,
					"tool_choice":{"type":"function","function":{"name":"get_weather"}},"messages":[{"role":"user","content":"Weather in Oslo?"}]}`
				status, out := doRaw(t, b, backend.OpChat, body)
				var cc api.ChatCompletion
				if status != 200 || json.Unmarshal(out, &cc) != nil {
					t.Fatalf("%d %s", status, out)
				}
				ch := cc.Choices[0]
				if ch.FinishReason == "length" {
					continue // the random model ran out of tokens inside the call
				}
				if ch.FinishReason != "tool_calls" || len(ch.Message.ToolCalls) != 1 {
					t.Fatalf("seed %d: %s", seed, out)
				}
				checkWeatherCall(t, ch.Message.ToolCalls[0])
				called++
			}
			if called == 0 {
				t.Error("no seed produced a complete call")
			}
			if arch == "qwen2" {
				// required with one matching function name enum; streamed.
				req := `{"model":"m","max_tokens":300,"temperature":1,"seed":9,
					"tools":[` + strings.TrimPrefix(strings.SplitN(weatherTools, "},\n", 2)[0], "[") + `}],"tool_choice":"required",
					"messages":[{"role":"user","content":"Weather?"}]`
				_, whole := doRaw(t, b, backend.OpChat, req+`}`)
				var cc api.ChatCompletion
				if err := json.Unmarshal(whole, &cc); err != nil || len(cc.Choices) != 1 {
					t.Fatalf("%s", whole)
				}
				status, out := doRaw(t, b, backend.OpChat, req+`,"stream":true}`)
				if status != 200 {
					t.Fatalf("%d %s", status, out)
				}
				// The call streams as OpenAI deltas: the first names the function (with
				// an ID and no arguments yet), the arguments follow in several fragments,
				// and the finish comes after all of them.
				var calls []api.ToolCall
				finish, argDeltas := "", 0
				sc := bufio.NewScanner(bytes.NewReader(out))
				for sc.Scan() {
					d, ok := strings.CutPrefix(sc.Text(), "data: ")
					var chunk api.ChatCompletionChunk
					if !ok || d == "[DONE]" || json.Unmarshal([]byte(d), &chunk) != nil || len(chunk.Choices) == 0 {
						continue
					}
					if finish != "" {
						t.Fatalf("a chunk after the finish: %s", d)
					}
					for _, tc := range chunk.Choices[0].Delta.ToolCalls {
						if tc.Index == nil || *tc.Index > len(calls) {
							t.Fatalf("delta %s", d)
						}
						if *tc.Index == len(calls) {
							if tc.Function.Name != "get_weather" || !strings.HasPrefix(tc.ID, "call_") || tc.Function.Arguments != "" {
								t.Fatalf("the first delta of a call %s", d)
							}
							calls = append(calls, tc)
							continue
						}
						if tc.Function.Name != "" || tc.ID != "" {
							t.Fatalf("a later delta names the call again: %s", d)
						}
						calls[*tc.Index].Function.Arguments += tc.Function.Arguments
						argDeltas++
					}
					if f := chunk.Choices[0].FinishReason; f != "" {
						finish = string(f)
					}
				}
				t.Logf("streamed finish %q, %d argument deltas", finish, argDeltas)
				if len(calls) != 1 || argDeltas < 3 {
					t.Fatalf("streamed calls %+v in %d argument deltas: %s", calls, argDeltas, out)
				}
				switch finish {
				case "tool_calls":
					checkWeatherCall(t, calls[0])
					// The same seed unstreamed gives the same call.
					if w := cc.Choices[0].Message.ToolCalls; len(w) != 1 || w[0].Function != calls[0].Function {
						t.Errorf("streamed %+v, unstreamed %+v", calls[0].Function, w)
					}
				case "length":
				default:
					t.Errorf("stream finished %q: %s", finish, out)
				}
			}
		})
	}
}

// TestToolResultsAndChoices: a conversation carrying a call and its result renders and runs;
// tool_choice none drops the tools from the prompt; bad choices and templates without a
// tool format are refused.
func TestToolResultsAndChoices(t *testing.T) {
	b := openSynth(t, synth.Spec{Arch: "qwen2", Dim: 32, Layers: 1, Heads: 2, FFN: 32, Vocab: 600, Seed: 5, Ctx: 2048})
	usage := func(body string) int {
		status, out := doRaw(t, b, backend.OpChat, body)
		var cc api.ChatCompletion
		if status != 200 || json.Unmarshal(out, &cc) != nil {
			t.Fatalf("%d %s", status, out)
		}
		return cc.Usage.PromptTokens
	}
	msgs := `"messages":[{"role":"user","content":"Weather in Oslo?"},
		{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Oslo\",\"days\":1}"}}]},
		{"role":"tool","tool_call_id":"call_1","content":"{\"temp\":3}"}]`
	withTools := usage(`{"model":"m","max_tokens":2,"tools":` + weatherTools + `,` + msgs + `}`)
	without := usage(`{"model":"m","max_tokens":2,"tools":` + weatherTools + `,"tool_choice":"none",` + msgs + `}`)
	text, _, err := b.renderChat(&api.ChatCompletionRequest{Messages: []api.Message{{Role: "user", Content: api.Text("x")},
		{Role: "assistant", ToolCalls: []api.ToolCall{{Function: api.FunctionCall{Name: "get_weather", Arguments: `{"city":"Oslo","days":1}`}}}},
		{Role: "tool", Content: api.Text(`{"temp":3}`)}}})
	if err != nil || !strings.Contains(text, "<tool_call>\n{\"name\": \"get_weather\"") || !strings.Contains(text, "<tool_response>\n{\"temp\":3}\n</tool_response>") {
		t.Errorf("rendered %q, %v", text, err)
	}
	if withTools <= without {
		t.Errorf("prompt with tools %d tokens, with tool_choice none %d", withTools, without)
	}
	for _, tc := range []struct{ body, code string }{
		{`{"model":"m","tools":` + weatherTools + `,"tool_choice":{"type":"function","function":{"name":"nope"}},"messages":[{"role":"user","content":"x"}]}`, "invalid_request"},
		{`{"model":"m","tool_choice":"required","messages":[{"role":"user","content":"x"}]}`, "invalid_request"},
		{`{"model":"m","tools":[{"type":"function"}],"messages":[{"role":"user","content":"x"}]}`, "invalid_request"},
		{`{"model":"m","tools":` + weatherTools + `,"tool_choice":"required","response_format":{"type":"json_object"},"messages":[{"role":"user","content":"x"}]}`, "invalid_request"},
	} {
		status, out := doRaw(t, b, backend.OpChat, tc.body)
		var e api.ErrorResponse
		if status != 400 || json.Unmarshal(out, &e) != nil || e.Error.Code != tc.code {
			t.Errorf("%.90s: %d %s", tc.body, status, out)
		}
	}
	plain := openSynth(t, synth.Spec{Arch: "llama", Dim: 32, Layers: 1, Heads: 2, FFN: 32, Vocab: 600, Seed: 5, Ctx: 2048, ChatTemplate: "x"})
	status, out := doRaw(t, plain, backend.OpChat, `{"model":"m","tools":`+weatherTools+`,"messages":[{"role":"user","content":"x"}]}`)
	if status != 400 || !strings.Contains(string(out), "tools_unsupported") {
		t.Errorf("plain template with tools: %d %s", status, out)
	}
}
