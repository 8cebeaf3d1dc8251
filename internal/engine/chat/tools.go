package chat

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
)

// Tool is a function the model may call.
type Tool struct {
	Name        string
	Description string
	// Parameters is the JSON schema of the arguments (may be empty).
	Parameters json.RawMessage
}

// ToolCall is a call: in an assistant message of the conversation, or parsed from output.
type ToolCall struct {
	Name string
	// Arguments is a JSON object, as text.
	Arguments string
}

// Turn is a message with the tool calls it made (assistant messages).
type Turn struct {
	Message
	ToolCalls []ToolCall
}

// ErrNoToolFormat is returned for families without a tool-calling format.
var ErrNoToolFormat = errors.New("chat: this model's chat template has no tool-calling format (supported: Qwen2.5/ChatML, GLM-4, Llama-3.1)")

// SupportsTools reports whether the family has a tool-calling format.
func (t Template) SupportsTools() bool {
	return t.Family == ChatML || t.Family == GLM4 || t.Family == Llama31
}

// qwenDefaultSystem is Qwen2.5's system message when the conversation has none.
const qwenDefaultSystem = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."

func toolJSON(tl Tool) string {
	fn := map[string]any{"name": tl.Name}
	if tl.Description != "" {
		fn["description"] = tl.Description
	}
	if len(tl.Parameters) > 0 {
		fn["parameters"] = json.RawMessage(tl.Parameters)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(map[string]any{"type": "function", "function": fn})
	return strings.TrimSuffix(buf.String(), "\n")
}

func argsOrEmpty(a string) string {
	if strings.TrimSpace(a) == "" {
		return "{}"
	}
	return a
}

// RenderTools renders a conversation that may define tools, carry assistant tool calls
// (Message.ToolCalls) and tool results (role "tool"), in the family's tool format:
//
//   - ChatML (Qwen2.5): the tools in <tools></tools> in the system message, calls as
//     <tool_call>{"name": ..., "arguments": ...}</tool_call>, results as <tool_response> in
//     a user turn;
//   - GLM-4: the tools under "# 可用工具" in the system message, a call as the function name
//     on its own line followed by the JSON arguments, results as observation turns;
//   - Llama-3.1: the tools in the first user message with the instruction to answer
//     {"name": ..., "parameters": ...}, results as ipython turns.
//
// With no tools and no tool messages it is Render.
func (t Template) RenderTools(msgs []Turn, tools []Tool, addGenerationPrompt bool) (string, error) {
	hasToolMsgs := false
	plain := make([]Message, len(msgs))
	for i, m := range msgs {
		if m.Role == "tool" || len(m.ToolCalls) > 0 {
			hasToolMsgs = true
		}
		plain[i] = m.Message
	}
	if len(tools) == 0 && !hasToolMsgs {
		return t.Render(plain, addGenerationPrompt)
	}
	if !t.SupportsTools() {
		return "", ErrNoToolFormat
	}
	var out []Message
	switch t.Family {
	case ChatML:
		sys, rest := t.DefaultSystem, msgs
		if sys == "" {
			sys = qwenDefaultSystem
		}
		if len(rest) > 0 && rest[0].Role == "system" {
			sys, rest = rest[0].Content, rest[1:]
		}
		if len(tools) > 0 {
			var b strings.Builder
			b.WriteString(sys)
			b.WriteString("\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n" +
				"You are provided with function signatures within <tools></tools> XML tags:\n<tools>")
			for _, tl := range tools {
				b.WriteString("\n" + toolJSON(tl))
			}
			b.WriteString("\n</tools>\n\nFor each function call, return a json object with function name and arguments within " +
				"<tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call>")
			sys = b.String()
		}
		out = append(out, Message{Role: "system", Content: sys})
		for _, m := range rest {
			switch {
			case m.Role == "tool":
				resp := "<tool_response>\n" + m.Content + "\n</tool_response>"
				if n := len(out); n > 0 && out[n-1].Role == "user" && strings.HasSuffix(out[n-1].Content, "</tool_response>") {
					out[n-1].Content += "\n" + resp
				} else {
					out = append(out, Message{Role: "user", Content: resp})
				}
			case len(m.ToolCalls) > 0:
				c := m.Content
				for _, tc := range m.ToolCalls {
					if c != "" {
						c += "\n"
					}
					c += "<tool_call>\n{\"name\": " + quote(tc.Name) + ", \"arguments\": " + argsOrEmpty(tc.Arguments) + "}\n</tool_call>"
				}
				out = append(out, Message{Role: "assistant", Content: c})
			default:
				out = append(out, Message{Role: m.Role, Content: m.Content})
			}
		}
		return Template{Family: ChatML}.Render(out, addGenerationPrompt)
	case GLM4:
		rest := msgs
		sys := ""
		if len(rest) > 0 && rest[0].Role == "system" {
			sys, rest = rest[0].Content, rest[1:]
		}
		if len(tools) > 0 {
			var b strings.Builder
			if sys != "" {
				b.WriteString(sys + "\n\n")
			}
			b.WriteString("# 可用工具")
			for _, tl := range tools {
				b.WriteString("\n\n## " + tl.Name + "\n\n" + toolJSON(tl) + "\n在调用上述函数时，请使用 Json 格式表示调用的参数。")
			}
			sys = b.String()
		}
		if sys != "" {
			out = append(out, Message{Role: "system", Content: sys})
		}
		for _, m := range rest {
			switch {
			case m.Role == "tool":
				out = append(out, Message{Role: "observation", Content: m.Content})
			case len(m.ToolCalls) > 0:
				for _, tc := range m.ToolCalls {
					out = append(out, Message{Role: "assistant", Content: tc.Name + "\n" + argsOrEmpty(tc.Arguments)})
				}
			default:
				out = append(out, m.Message)
			}
		}
		return t.Render(out, addGenerationPrompt)
	default: // Llama31
		rest := msgs
		var sys *Message
		if len(rest) > 0 && rest[0].Role == "system" {
			s := rest[0].Message
			sys, rest = &s, rest[1:]
		}
		sysText := "Environment: ipython"
		if sys != nil {
			sysText += "\n\n" + sys.Content
		}
		out = append(out, Message{Role: "system", Content: sysText})
		toolsDone := len(tools) == 0
		for _, m := range rest {
			switch {
			case m.Role == "tool":
				out = append(out, Message{Role: "ipython", Content: m.Content})
			case len(m.ToolCalls) > 0:
				for _, tc := range m.ToolCalls {
					out = append(out, Message{Role: "assistant", Content: "{\"name\": " + quote(tc.Name) + ", \"parameters\": " + argsOrEmpty(tc.Arguments) + "}"})
				}
			case m.Role == "user" && !toolsDone:
				var b strings.Builder
				b.WriteString("Given the following functions, please respond with a JSON for a function call with its proper arguments " +
					"that best answers the given prompt.\n\nRespond in the format {\"name\": function name, \"parameters\": dictionary of " +
					"argument name and its value}.Do not use variables.\n\n")
				for _, tl := range tools {
					b.WriteString(toolJSON(tl) + "\n\n")
				}
				b.WriteString(m.Content)
				out = append(out, Message{Role: "user", Content: b.String()})
				toolsDone = true
			default:
				out = append(out, m.Message)
			}
		}
		return t.Render(out, addGenerationPrompt)
	}
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// ToolCallPrefix is the text that opens a call in the family's format, which the engine puts
// at the end of the prompt when a call is required, so that the output is the call itself.
// names, when one, is the function that must be called (GLM-4 writes it before the JSON).
func (t Template) ToolCallPrefix(named string) string {
	switch t.Family {
	case ChatML:
		return "<tool_call>\n"
	case GLM4:
		if named != "" {
			return named + "\n"
		}
	}
	return ""
}

// CallSchema returns the JSON schema the output must follow when a call is required and
// the prompt ends with ToolCallPrefix: for ChatML {"name", "arguments"}, for Llama-3.1
// {"name", "parameters"}, for GLM-4 with a named function the arguments alone. names are the
// allowed functions, params their argument schemas (nil: any object). ok is false when the
// family's call cannot be constrained this way (GLM-4 without a named function).
func (t Template) CallSchema(names []string, params []json.RawMessage) (schema []byte, ok bool) {
	argSchema := func(i int) json.RawMessage {
		if len(names) == 1 && len(params) == 1 && len(params[0]) > 0 {
			return params[0]
		}
		return json.RawMessage(`{"type":"object"}`)
	}
	nameSchema := map[string]any{"enum": names}
	if len(names) == 1 {
		nameSchema = map[string]any{"const": names[0]}
	}
	key := "arguments"
	switch t.Family {
	case GLM4:
		if len(names) != 1 {
			return nil, false
		}
		return argSchema(0), true
	case Llama31:
		key = "parameters"
	case ChatML:
	default:
		return nil, false
	}
	s, err := json.Marshal(map[string]any{
		"type":                 "object",
		"properties":           map[string]any{"name": nameSchema, key: argSchema(0)},
		"required":             []string{"name", key},
		"additionalProperties": false,
	})
	return s, err == nil
}

// ParseToolCalls splits model output into text content and tool calls, in the family's
// format. prefix is what the prompt ended with (ToolCallPrefix), as if the model had
// written it. names lists the defined functions (GLM-4's format names one on a line).
func (t Template) ParseToolCalls(prefix, output string, names []string) (content string, calls []ToolCall) {
	text := prefix + output
	switch t.Family {
	case ChatML:
		i := strings.Index(text, "<tool_call>")
		if i < 0 {
			return text, nil
		}
		content = strings.TrimSpace(text[:i])
		rest := text[i:]
		for {
			j := strings.Index(rest, "<tool_call>")
			if j < 0 {
				break
			}
			rest = rest[j+len("<tool_call>"):]
			body := rest
			if k := strings.Index(rest, "</tool_call>"); k >= 0 {
				body, rest = rest[:k], rest[k+len("</tool_call>"):]
			} else {
				rest = ""
			}
			if c, ok := parseCallJSON(body, "arguments"); ok {
				calls = append(calls, c)
			}
		}
		if len(calls) == 0 {
			return text, nil
		}
		return content, calls
	case Llama31:
		if c, ok := parseCallJSON(text, "parameters"); ok {
			return "", []ToolCall{c}
		}
		return text, nil
	case GLM4:
		line, args, ok := strings.Cut(strings.TrimLeft(text, "\n"), "\n")
		name := strings.TrimSpace(line)
		for _, n := range names {
			if n == name && ok && json.Valid([]byte(strings.TrimSpace(args))) {
				return "", []ToolCall{{Name: name, Arguments: compact(args)}}
			}
		}
	}
	return text, nil
}

func compact(s string) string {
	var buf bytes.Buffer
	if json.Compact(&buf, []byte(strings.TrimSpace(s))) != nil {
		return strings.TrimSpace(s)
	}
	return buf.String()
}

func parseCallJSON(body, argsKey string) (ToolCall, bool) {
	var c map[string]json.RawMessage
	if json.Unmarshal([]byte(strings.TrimSpace(body)), &c) != nil {
		return ToolCall{}, false
	}
	var name string
	if json.Unmarshal(c["name"], &name) != nil || name == "" {
		return ToolCall{}, false
	}
	args := c[argsKey]
	if len(args) == 0 {
		args = json.RawMessage("{}")
	}
	return ToolCall{Name: name, Arguments: compact(string(args))}, true
}
