package chat

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// collected is a streamed answer put back together.
type collected struct {
	Content string
	Calls   []ToolCall
	// Starts counts the deltas that announced a call before any of its arguments.
	Starts int
}

// runStream feeds out to a ToolStream in pieces of size step (0: all at once).
func runStream(t Template, prefix, out string, names []string, step int) (collected, [][]ToolDelta) {
	s := t.NewToolStream(prefix, names)
	var c collected
	var all [][]ToolDelta
	add := func(ds []ToolDelta) {
		all = append(all, ds)
		for _, d := range ds {
			switch {
			case d.Name != "":
				if d.Call != len(c.Calls) {
					panic("call index out of order")
				}
				c.Calls = append(c.Calls, ToolCall{Name: d.Name})
				c.Starts++
			case d.Args != "":
				c.Calls[d.Call].Arguments += d.Args
			default:
				c.Content += d.Content
			}
		}
	}
	if step <= 0 {
		step = len(out) + 1
	}
	for i := 0; i < len(out); i += step {
		add(s.Write(out[i:min(len(out), i+step)]))
	}
	add(s.Close())
	return c, all
}

// TestToolStream checks that an answer streamed in pieces, down to one byte at a time, gives
// the content and calls ParseToolCalls finds in the whole answer, with each call announced by
// name before its arguments, and text passed on before the answer ends.
func TestToolStream(t *testing.T) {
	names := []string{"get_weather", "noop"}
	for _, tc := range []struct {
		tmpl   Template
		prefix string
		out    string
	}{
		{Template{Family: ChatML}, "", "Let me check. <tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\", \"days\": 2, \"x\": [1, {\"y\": \"a } b\"}]}}\n</tool_call>"},
		{Template{Family: ChatML}, "<tool_call>\n", "{\"arguments\": {\"days\": 3}, \"name\": \"get_weather\"}\n</tool_call>\n<tool_call>\n{\"name\": \"noop\"}\n</tool_call> trailing"},
		{Template{Family: ChatML}, "", "{\"name\": \"x\"} <tool_ca is not a call < and <tool"},
		{Template{Family: ChatML}, "<tool_call>\n", "{\"name\": \"noop\", \"arguments\": {}, \"extra\": true}</tool_call>"},
		{Template{Family: Llama31}, "", "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\", \"days\": 1.5e1}}"},
		{Template{Family: Llama31}, "", "  {\"answer\": 42}"},
		{Template{Family: Llama31}, "", "Plain words."},
		{Template{Family: GLM4}, "", "get_weather\n{\"city\": \"Oslo\",\n \"days\": 7}"},
		{Template{Family: GLM4}, "", "get something\nelse"},
	} {
		wantContent, wantCalls := tc.tmpl.ParseToolCalls(tc.prefix, tc.out, names)
		for _, step := range []int{0, 1, 2, 3, 7} {
			got, all := runStream(tc.tmpl, tc.prefix, tc.out, names, step)
			if len(wantCalls) == 0 {
				wantCalls = nil
			}
			if !reflect.DeepEqual(got.Calls, wantCalls) && !(len(got.Calls) == 0 && len(wantCalls) == 0) {
				t.Errorf("%s %q step %d: calls %+v, want %+v", tc.tmpl.Family, tc.out, step, got.Calls, wantCalls)
			}
			if strings.TrimSpace(got.Content) != strings.TrimSpace(wantContent) {
				t.Errorf("%s %q step %d: content %q, want %q", tc.tmpl.Family, tc.out, step, got.Content, wantContent)
			}
			if step == 1 && len(wantCalls) > 0 {
				// Arguments arrive while the call is being written, not all at the end.
				n := 0
				for _, ds := range all[:len(all)-1] {
					for _, d := range ds {
						if d.Args != "" {
							n++
						}
					}
				}
				if n < 2 {
					t.Errorf("%s %q: arguments came in %d pieces", tc.tmpl.Family, tc.out, n)
				}
			}
		}
	}
	// Text is passed on as it comes, but not the start of a possible marker.
	s := Template{Family: ChatML}.NewToolStream("", names)
	if d := s.Write("Hello there <tool"); len(d) != 1 || d[0].Content != "Hello there" {
		t.Errorf("held text: %+v", d)
	}
	if d := s.Write("box>"); len(d) != 1 || d[0].Content != " <toolbox>" {
		t.Errorf("released text: %+v", d)
	}
}

// FuzzToolStream: for any output, streaming it in pieces never panics, gives the same result
// however it is cut, and its calls' arguments are valid JSON whenever ParseToolCalls agrees
// on the calls.
func FuzzToolStream(f *testing.F) {
	f.Add(0, "", "x <tool_call>\n{\"name\": \"a\", \"arguments\": {\"k\": [1, \"}\"]}}\n</tool_call>", 3)
	f.Add(1, "", "{\"name\": \"a\", \"parameters\": {}}", 1)
	f.Add(2, "", "a\n{\"q\": null}", 2)
	f.Add(0, "<tool_call>\n", "{\"name\": \"a\\\"b\", \"arguments\": 12}", 5)
	fams := []Family{ChatML, Llama31, GLM4}
	f.Fuzz(func(t *testing.T, fam int, prefix, out string, step int) {
		tmpl := Template{Family: fams[uint(fam)%3]}
		names := []string{"a", "get_weather"}
		whole, _ := runStream(tmpl, prefix, out, names, 0)
		cut, _ := runStream(tmpl, prefix, out, names, 1+int(uint(step)%8))
		if !reflect.DeepEqual(whole, cut) {
			t.Fatalf("whole %+v, cut %+v", whole, cut)
		}
		_, calls := tmpl.ParseToolCalls(prefix, out, names)
		if reflect.DeepEqual(calls, whole.Calls) {
			for _, c := range whole.Calls {
				if !json.Valid([]byte(c.Arguments)) {
					t.Fatalf("arguments %q", c.Arguments)
				}
			}
		}
	})
}

// TestToolStreamForcedGLMCall: with a named tool_choice, GLM-4's prompt ends with the
// function's name (ToolCallPrefix), and the model writes only the arguments. The stream
// still announces the call by name before its arguments, however the answer is cut.
func TestToolStreamForcedGLMCall(t *testing.T) {
	tmpl := Template{Family: GLM4}
	prefix := tmpl.ToolCallPrefix("get_weather")
	for _, step := range []int{0, 1, 4} {
		c, all := runStream(tmpl, prefix, `{"city": "Oslo"}`, []string{"get_weather", "noop"}, step)
		if len(c.Calls) != 1 || c.Calls[0].Name != "get_weather" || c.Calls[0].Arguments != `{"city":"Oslo"}` || c.Content != "" {
			t.Fatalf("step %d: %+v", step, c)
		}
		if len(all) == 0 || len(all[0]) == 0 || all[0][0].Name != "get_weather" {
			t.Fatalf("step %d: the first delta does not name the call: %+v", step, all)
		}
	}
}
