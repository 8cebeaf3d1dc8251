package openai

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/open-autoglm/autoglm/internal/apierr"
)

// responsesRequest is the body of POST /v1/responses, the fields the gateway honours.
type responsesRequest struct {
	Model              string            `json:"model"`
	Input              json.RawMessage   `json:"input"`
	Instructions       *string           `json:"instructions"`
	Tools              []json.RawMessage `json:"tools"`
	ToolChoice         json.RawMessage   `json:"tool_choice"`
	PreviousResponseID *string           `json:"previous_response_id"`
	Store              *bool             `json:"store"`
	Stream             bool              `json:"stream"`
	MaxOutputTokens    *int              `json:"max_output_tokens"`
	Temperature        *float64          `json:"temperature"`
	TopP               *float64          `json:"top_p"`
	Metadata           map[string]string `json:"metadata"`
	ParallelToolCalls  *bool             `json:"parallel_tool_calls"`
	Text               *struct {
		Format json.RawMessage `json:"format"`
	} `json:"text"`
	User string `json:"user"`
}

// responseTool is a function tool of the Responses API (flat, unlike chat's nested one).
type responseTool struct {
	Type        string          `json:"type"`
	Name        string          `json:"name"`
	Description *string         `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters"`
	Strict      *bool           `json:"strict"`
}

// item is an input or output item of the Responses API: a message, a function call or a
// function call's output. It is stored with its id and written in the API's shape.
type item struct {
	ID        string          `json:"id,omitempty"`
	Type      string          `json:"type"`
	Status    string          `json:"status,omitempty"`
	Role      string          `json:"role,omitempty"`
	Content   []contentPart   `json:"content,omitempty"`
	CallID    string          `json:"call_id,omitempty"`
	Name      string          `json:"name,omitempty"`
	Arguments string          `json:"arguments,omitempty"`
	Output    json.RawMessage `json:"output,omitempty"`
}

// MarshalJSON writes an item with the keys its type requires, empty ones included.
func (it item) MarshalJSON() ([]byte, error) {
	switch it.Type {
	case "function_call":
		return json.Marshal(struct {
			ID        string `json:"id,omitempty"`
			Type      string `json:"type"`
			Status    string `json:"status,omitempty"`
			CallID    string `json:"call_id"`
			Name      string `json:"name"`
			Arguments string `json:"arguments"`
		}{it.ID, it.Type, it.Status, it.CallID, it.Name, it.Arguments})
	case "function_call_output":
		out := it.Output
		if len(out) == 0 {
			out = json.RawMessage(`""`)
		}
		return json.Marshal(struct {
			ID     string          `json:"id,omitempty"`
			Type   string          `json:"type"`
			Status string          `json:"status,omitempty"`
			CallID string          `json:"call_id"`
			Output json.RawMessage `json:"output"`
		}{it.ID, it.Type, it.Status, it.CallID, out})
	default:
		content := it.Content
		if content == nil {
			content = []contentPart{}
		}
		return json.Marshal(struct {
			ID      string        `json:"id,omitempty"`
			Type    string        `json:"type"`
			Status  string        `json:"status,omitempty"`
			Role    string        `json:"role"`
			Content []contentPart `json:"content"`
		}{it.ID, "message", it.Status, it.Role, content})
	}
}

// contentPart is a part of a message item.
type contentPart struct {
	Type     string
	Text     string
	ImageURL string
	FileID   string
	Detail   string
}

func (p contentPart) MarshalJSON() ([]byte, error) {
	switch p.Type {
	case "output_text":
		return json.Marshal(struct {
			Type        string `json:"type"`
			Text        string `json:"text"`
			Annotations []any  `json:"annotations"`
			Logprobs    []any  `json:"logprobs"`
		}{p.Type, p.Text, []any{}, []any{}})
	case "refusal":
		return json.Marshal(struct {
			Type    string `json:"type"`
			Refusal string `json:"refusal"`
		}{p.Type, p.Text})
	case "input_image":
		detail := p.Detail
		if detail == "" {
			detail = "auto"
		}
		return json.Marshal(struct {
			Type     string `json:"type"`
			ImageURL string `json:"image_url,omitempty"`
			FileID   string `json:"file_id,omitempty"`
			Detail   string `json:"detail"`
		}{p.Type, p.ImageURL, p.FileID, detail})
	default:
		return json.Marshal(struct {
			Type string `json:"type"`
			Text string `json:"text"`
		}{p.Type, p.Text})
	}
}

func (p *contentPart) UnmarshalJSON(b []byte) error {
	var v struct {
		Type     string          `json:"type"`
		Text     string          `json:"text"`
		Refusal  string          `json:"refusal"`
		ImageURL json.RawMessage `json:"image_url"`
		FileID   string          `json:"file_id"`
		Detail   string          `json:"detail"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*p = contentPart{Type: v.Type, Text: v.Text, FileID: v.FileID, Detail: v.Detail}
	if v.Type == "refusal" {
		p.Text = v.Refusal
	}
	if len(v.ImageURL) > 0 {
		// A string in the Responses API; {"url": ...} as in chat, accepted too.
		var s string
		if json.Unmarshal(v.ImageURL, &s) != nil {
			var o struct {
				URL string `json:"url"`
			}
			_ = json.Unmarshal(v.ImageURL, &o)
			s = o.URL
		}
		p.ImageURL = s
	}
	return nil
}

// newID returns prefix_ and 24 random bytes in hex, the length of OpenAI's ids.
func newID(prefix string) string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return prefix + "_" + hex.EncodeToString(b[:])
}

func invalidParam(param, format string, args ...any) *apierr.Error {
	return &apierr.Error{Kind: apierr.Invalid, Code: apierr.CodeInvalidValue, Param: param, Message: fmt.Sprintf(format, args...)}
}

// parseInput reads the input of a Responses request: a string (one user message) or a list
// of items. Every item gets an id.
func parseInput(raw json.RawMessage) ([]item, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, &apierr.Error{Kind: apierr.Invalid, Code: apierr.CodeMissingRequiredParameter, Param: "input",
			Message: "Missing required parameter: 'input'."}
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, invalidParam("input", "input must be a string or a list of items")
		}
		return []item{{ID: newID("msg"), Type: "message", Status: "completed", Role: "user",
			Content: []contentPart{{Type: "input_text", Text: s}}}}, nil
	}
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, invalidParam("input", "input must be a string or a list of items")
	}
	items := make([]item, 0, len(list))
	for i, el := range list {
		it, err := parseItem(el)
		if err != nil {
			if e, ok := err.(*apierr.Error); ok && e.Param == "" {
				e.Param = fmt.Sprintf("input[%d]", i)
			}
			return nil, err
		}
		if it != nil {
			items = append(items, *it)
		}
	}
	return items, nil
}

// parseItem reads one input item; nil for items that carry nothing for the model
// (reasoning, references).
func parseItem(raw json.RawMessage) (*item, error) {
	var v struct {
		ID        string          `json:"id"`
		Type      string          `json:"type"`
		Role      string          `json:"role"`
		Content   json.RawMessage `json:"content"`
		CallID    string          `json:"call_id"`
		Name      string          `json:"name"`
		Arguments string          `json:"arguments"`
		Output    json.RawMessage `json:"output"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, invalidParam("", "an input item must be an object: %s", jsonProblem(err))
	}
	switch v.Type {
	case "", "message":
		it := &item{ID: v.ID, Type: "message", Status: "completed", Role: v.Role}
		if it.ID == "" {
			it.ID = newID("msg")
		}
		switch v.Role {
		case "user", "assistant", "system", "developer":
		default:
			return nil, invalidParam("", "a message's role must be user, assistant, system or developer, not %q", v.Role)
		}
		c := bytes.TrimSpace(v.Content)
		switch {
		case len(c) > 0 && c[0] == '"':
			var s string
			_ = json.Unmarshal(c, &s)
			t := "input_text"
			if v.Role == "assistant" {
				t = "output_text"
			}
			it.Content = []contentPart{{Type: t, Text: s}}
		case len(c) > 0 && c[0] == '[':
			if err := json.Unmarshal(c, &it.Content); err != nil {
				return nil, invalidParam("", "a message's content parts are malformed: %s", jsonProblem(err))
			}
			for _, p := range it.Content {
				switch p.Type {
				case "input_text", "output_text", "refusal", "input_image":
				default:
					return nil, invalidParam("", "content parts of type %q are not supported", p.Type)
				}
			}
		default:
			return nil, invalidParam("", "a message needs content: a string or a list of parts")
		}
		return it, nil
	case "function_call":
		if v.CallID == "" || v.Name == "" {
			return nil, invalidParam("", "a function_call item needs call_id and name")
		}
		id := v.ID
		if id == "" {
			id = newID("fc")
		}
		return &item{ID: id, Type: "function_call", Status: "completed", CallID: v.CallID, Name: v.Name, Arguments: v.Arguments}, nil
	case "function_call_output":
		if v.CallID == "" {
			return nil, invalidParam("", "a function_call_output item needs call_id")
		}
		id := v.ID
		if id == "" {
			id = newID("fco")
		}
		return &item{ID: id, Type: "function_call_output", Status: "completed", CallID: v.CallID, Output: v.Output}, nil
	case "item_reference":
		if v.ID == "" {
			return nil, invalidParam("", "an item_reference needs the id of a stored item")
		}
		return &item{ID: v.ID, Type: "item_reference"}, nil
	case "reasoning":
		return nil, nil
	}
	return nil, invalidParam("", "input items of type %q are not supported", v.Type)
}

func jsonProblem(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return "invalid JSON"
	case errors.As(err, &te):
		if te.Field != "" {
			return fmt.Sprintf("%s must be %s", te.Field, kindName(te.Type.Kind().String()))
		}
		return "a value has the wrong type"
	}
	return "invalid JSON"
}

func kindName(k string) string {
	switch k {
	case "string":
		return "a string"
	case "slice":
		return "an array"
	case "struct", "map":
		return "an object"
	case "bool":
		return "a boolean"
	}
	return "a number"
}

// outputText is the text of a function call output: a string, or the text parts of a list.
func outputText(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var parts []contentPart
	if json.Unmarshal(raw, &parts) == nil {
		var b strings.Builder
		for _, p := range parts {
			b.WriteString(p.Text)
		}
		return b.String()
	}
	return string(raw)
}
