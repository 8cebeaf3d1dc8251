package local

import (
	"encoding/json"
	"errors"

	"github.com/open-autoglm/autoglm/api"
	"github.com/open-autoglm/autoglm/internal/apierr"
	"github.com/open-autoglm/autoglm/internal/engine/chat"
	"github.com/open-autoglm/autoglm/internal/engine/grammar"
)

// toolPlan is how one chat request uses tools.
type toolPlan struct {
	active bool   // tools are offered (tool_choice is not none)
	prefix string // text appended to the prompt that opens a required call
	names  []string
	// constraint, when set, makes the output the call itself (tool_choice required or named).
	constraint *grammar.Constraint
}

// renderChat renders the conversation with its tools, and plans tool use: tool_choice
// "none" renders no tools; "auto" (the default with tools) lets the model choose and parses
// its calls; "required" and a named function end the prompt with the opening of a call and
// constrain the output to the call's JSON, arguments following the function's schema.
func (b *Backend) renderChat(cr *api.ChatCompletionRequest) (string, toolPlan, error) {
	var plan toolPlan
	turns := make([]chat.Turn, len(cr.Messages))
	for i, m := range cr.Messages {
		role := m.Role
		if role == api.RoleDeveloper {
			role = api.RoleSystem
		}
		turns[i] = chat.Turn{Message: chat.Message{Role: role, Content: m.Content.String()}}
		for _, tc := range m.ToolCalls {
			turns[i].ToolCalls = append(turns[i].ToolCalls, chat.ToolCall{Name: tc.Function.Name, Arguments: tc.Function.Arguments})
		}
	}
	var tools []chat.Tool
	var params []json.RawMessage
	for i, t := range cr.Tools {
		if t.Type != "function" || t.Function == nil || t.Function.Name == "" {
			return "", plan, invalid("tools", "tools[%d] must be a function with a name", i)
		}
		tools = append(tools, chat.Tool{Name: t.Function.Name, Description: t.Function.Description, Parameters: t.Function.Parameters})
		plan.names = append(plan.names, t.Function.Name)
		params = append(params, t.Function.Parameters)
	}
	choice, named, err := parseToolChoice(cr.ToolChoice, plan.names)
	if err != nil {
		return "", plan, err
	}
	if choice == "none" {
		tools = nil
	}
	tmpl := b.r.Template()
	text, err := tmpl.RenderTools(turns, tools, true)
	if errors.Is(err, chat.ErrNoToolFormat) {
		return "", plan, &apierr.Error{Kind: apierr.Invalid, Code: apierr.CodeToolsUnsupported, Param: "tools",
			Message: "this model's chat template (" + tmpl.Name() + ") has no tool-calling format; tools need a Qwen2.5, GLM-4 or Llama-3.1 model"}
	}
	if err != nil {
		return "", plan, invalid("messages", "%v", err)
	}
	plan.active = len(tools) > 0
	if !plan.active || choice == "auto" {
		return text, plan, nil
	}
	names, ps := plan.names, params
	if named != "" {
		for i, n := range plan.names {
			if n == named {
				names, ps = []string{n}, []json.RawMessage{params[i]}
			}
		}
	}
	schema, ok := tmpl.CallSchema(names, ps)
	if !ok {
		return text, plan, nil // this family's call cannot be forced: parse what comes
	}
	plan.prefix = tmpl.ToolCallPrefix(named)
	key := "tool:" + string(schema)
	plan.constraint, err = b.compiled(key, schema)
	if err != nil {
		// An argument schema outside the supported subset: still force a call, with any
		// JSON object as its arguments.
		loose, _ := tmpl.CallSchema(names, nil)
		if plan.constraint, err = b.compiled("tool:"+string(loose), loose); err != nil {
			return "", plan, err
		}
	}
	return text + plan.prefix, plan, nil
}

// parseToolChoice reads tool_choice: "none", "auto", "required" or
// {"type":"function","function":{"name":...}}.
func parseToolChoice(raw json.RawMessage, names []string) (choice, named string, err error) {
	if len(raw) == 0 || string(raw) == "null" {
		if len(names) == 0 {
			return "none", "", nil
		}
		return "auto", "", nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		switch s {
		case "none", "auto", "required":
			if s != "none" && len(names) == 0 {
				return "", "", invalid("tool_choice", "tool_choice %q needs tools", s)
			}
			return s, "", nil
		}
		return "", "", invalid("tool_choice", "tool_choice must be none, auto, required or a function")
	}
	var obj struct {
		Type     string `json:"type"`
		Function struct {
			Name string `json:"name"`
		} `json:"function"`
	}
	if json.Unmarshal(raw, &obj) != nil || obj.Type != "function" {
		return "", "", invalid("tool_choice", "tool_choice must be none, auto, required or a function")
	}
	for _, n := range names {
		if n == obj.Function.Name {
			return "named", n, nil
		}
	}
	return "", "", invalid("tool_choice", "tool_choice names %q, which is not among the tools", obj.Function.Name)
}

// finishCalls turns a choice's output into content and OpenAI tool calls.
func (b *Backend) finishCalls(plan toolPlan) func(string) (string, []api.ToolCall) {
	tmpl := b.r.Template()
	return func(text string) (string, []api.ToolCall) {
		content, calls := tmpl.ParseToolCalls(plan.prefix, text, plan.names)
		if len(calls) == 0 {
			return text, nil
		}
		out := make([]api.ToolCall, len(calls))
		for i, c := range calls {
			idx := i
			out[i] = api.ToolCall{Index: &idx, ID: newID("call_")[:29], Type: "function", Function: api.FunctionCall{Name: c.Name, Arguments: c.Arguments}}
		}
		return content, out
	}
}
