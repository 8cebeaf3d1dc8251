package plugin

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/open-autoglm/autoglm/internal/jsonscan"
	"github.com/open-autoglm/autoglm/internal/wire"
)

// Request is a model request as every plugin sees it, whatever protocol it arrived in.
type Request struct {
	// Op is "chat", "completion", "embedding" or "responses".
	Op string
	// Model is the public model name asked for. Changing it routes the request to that
	// model (it must be configured).
	Model string
	// Messages are a chat request's messages.
	Messages []Message
	// Prompt is a completion request's prompt when it is one string.
	Prompt string
	// Stream reports whether the answer is streamed. Read-only.
	Stream bool
	// Params holds every other field of the body (temperature, max_tokens, tools, ...) as
	// JSON; see Param, Number, SetParam.
	Params map[string]json.RawMessage

	// Who asks: the API key's id and display prefix, the user and the role. Empty when
	// authentication is off or the request came from inside (a task without an owner).
	KeyID, KeyName, User, Role string
	// Route is the route pattern the request came in by ("POST /v1/chat/completions"), or
	// "task" for the task system.
	Route string
	// Header holds the client's request headers; nil for tasks. Read-only.
	Header http.Header
	// Metadata holds the body's "metadata" object (string values) and what the caller knows
	// about the request (task.kind, code.language). Plugins may add entries for later plugins;
	// they are never sent upstream.
	Metadata map[string]string

	prompt bool     // the body had a string prompt
	made   [][]byte // parameter values SetParam encoded itself: valid JSON by construction
	madeN  [2][]byte
}

// Message is one chat message. Content holds string content; other shapes (a list of parts)
// are kept in RawContent, passed on as they are, and read as text by Text.
type Message struct {
	Role       string
	Content    string
	RawContent json.RawMessage
	// Extra holds the message's other fields (name, tool_calls, tool_call_id).
	Extra map[string]json.RawMessage
}

// Text is the message's text: its content, or the text parts of a content list joined.
func (m *Message) Text() string {
	if m.RawContent == nil {
		return m.Content
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if json.Unmarshal(m.RawContent, &parts) != nil {
		return ""
	}
	var b strings.Builder
	for _, p := range parts {
		if p.Type == "text" || p.Type == "input_text" {
			b.WriteString(p.Text)
		}
	}
	return b.String()
}

// Text is the request's whole prompt text: every message's text, or the prompt.
func (r *Request) Text() string {
	if r.prompt {
		return r.Prompt
	}
	var b strings.Builder
	for i := range r.Messages {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(r.Messages[i].Text())
	}
	return b.String()
}

// PromptLen is the length of Text in bytes.
func (r *Request) PromptLen() int {
	if r.prompt {
		return len(r.Prompt)
	}
	n := 0
	for i := range r.Messages {
		if r.Messages[i].RawContent == nil {
			n += len(r.Messages[i].Content)
		} else {
			n += len(r.Messages[i].Text())
		}
	}
	return n
}

// HasPrompt reports whether the request carries a string prompt (a completion).
func (r *Request) HasPrompt() bool { return r.prompt }

// Param returns a body field other than model, messages, prompt and stream.
func (r *Request) Param(name string) (json.RawMessage, bool) {
	v, ok := r.Params[name]
	return v, ok
}

// Number returns a numeric body field.
func (r *Request) Number(name string) (float64, bool) {
	v, ok := r.Params[name]
	if !ok {
		return 0, false
	}
	f, err := strconv.ParseFloat(string(v), 64)
	if err != nil {
		return 0, false
	}
	return f, true
}

// SetParam sets a body field to v encoded as JSON. It refuses the fields with a place of
// their own (model, messages, prompt, stream).
func (r *Request) SetParam(name string, v any) error {
	switch name {
	case "model", "messages", "stream":
		return errors.New("plugin: " + name + " is not a parameter")
	case "prompt":
		if r.prompt {
			return errors.New("plugin: prompt is not a parameter")
		}
	}
	var b []byte
	made := true
	switch x := v.(type) {
	case int:
		b = strconv.AppendInt(nil, int64(x), 10)
	case float64:
		if math.IsInf(x, 0) || math.IsNaN(x) {
			return errors.New("plugin: " + name + " is not a finite number")
		}
		b = strconv.AppendFloat(nil, x, 'g', -1, 64)
	case bool, string, nil:
		b, _ = json.Marshal(x)
	default:
		// Anything else may hold raw JSON (json.RawMessage, a Marshaler): the body it
		// ends up in is checked again.
		made = false
		var err error
		if b, err = json.Marshal(v); err != nil {
			return err
		}
	}
	if r.Params == nil {
		r.Params = make(map[string]json.RawMessage)
	}
	r.Params[name] = b
	if made {
		if r.made == nil {
			r.made = r.madeN[:0]
		}
		r.made = append(r.made, b)
	}
	return nil
}

// DeleteParam removes a body field.
func (r *Request) DeleteParam(name string) { delete(r.Params, name) }

// SetSystem puts text first as the system message: the existing leading system (or
// developer) message's content is replaced, or a system message is inserted.
func (r *Request) SetSystem(text string) {
	if len(r.Messages) > 0 && (r.Messages[0].Role == "system" || r.Messages[0].Role == "developer") && r.Messages[0].RawContent == nil {
		r.Messages[0].Content = text
		return
	}
	r.Messages = slices.Insert(r.Messages, 0, Message{Role: "system", Content: text})
}

// System returns the leading system message's text, if there is one.
func (r *Request) System() (string, bool) {
	if len(r.Messages) > 0 && (r.Messages[0].Role == "system" || r.Messages[0].Role == "developer") {
		return r.Messages[0].Text(), true
	}
	return "", false
}

// LastUser returns the last user message, or nil.
func (r *Request) LastUser() *Message {
	for i := len(r.Messages) - 1; i >= 0; i-- {
		if r.Messages[i].Role == "user" {
			return &r.Messages[i]
		}
	}
	return nil
}

// decodeBody fills r's body fields from a request body, which must be valid JSON (the
// router's bodies are: checked by wire.Peek, or made by json.Marshal).
func (r *Request) decodeBody(body []byte) error {
	return jsonscan.EachMember(body, func(k, v []byte) error {
		key, err := unquote(k)
		if err != nil {
			return err
		}
		switch {
		case key == "model":
			if len(v) == 0 || v[0] != '"' {
				return jsonscan.ErrNotObject // not a request the plugins can read: passed on as it is
			}
			r.Model, err = unquote(v)
			return err
		case key == "stream":
			return nil
		case key == "messages" && r.Op == "chat":
			if len(v) == 0 || v[0] != '[' {
				return jsonscan.ErrNotArray
			}
			return r.decodeMessages(v)
		case key == "prompt" && r.Op == "completion" && len(v) > 0 && v[0] == '"':
			r.Prompt, err = unquote(v)
			r.prompt = true
			return err
		case key == "metadata" && len(v) > 0 && v[0] == '{':
			_ = jsonscan.EachMember(v, func(mk, mv []byte) error {
				if len(mv) == 0 || mv[0] != '"' {
					return nil
				}
				name, err1 := unquote(mk)
				val, err2 := unquote(mv)
				if err1 == nil && err2 == nil {
					if r.Metadata == nil {
						r.Metadata = make(map[string]string, 4)
					}
					r.Metadata[name] = val
				}
				return nil
			})
		}
		if r.Params == nil {
			r.Params = make(map[string]json.RawMessage, 8)
		}
		r.Params[key] = v
		return nil
	})
}

func (r *Request) decodeMessages(v []byte) error {
	n := 0
	_ = jsonscan.EachElement(v, func([]byte) error { n++; return nil })
	r.Messages = make([]Message, 0, n)
	return jsonscan.EachElement(v, func(raw []byte) error {
		var msg Message
		err := jsonscan.EachMember(raw, func(k, v []byte) error {
			key, err := unquote(k)
			if err != nil {
				return err
			}
			switch key {
			case "role":
				if len(v) == 0 || v[0] != '"' {
					return jsonscan.ErrNotObject
				}
				msg.Role, err = unquote(v)
				return err
			case "content":
				if len(v) > 0 && v[0] == '"' {
					msg.Content, err = unquote(v)
					return err
				}
				msg.RawContent = json.RawMessage(v)
				return nil
			}
			if msg.Extra == nil {
				msg.Extra = make(map[string]json.RawMessage, 2)
			}
			msg.Extra[key] = v
			return nil
		})
		if err != nil {
			return err
		}
		r.Messages = append(r.Messages, msg)
		return nil
	})
}

// encodeBody writes the request back as a body: model, messages or prompt, stream, then the
// parameters in name order. orig is the body the request was decoded from and f its fields.
//
// It returns the new body's fields too when the body is valid by construction: every string
// escaped here, every raw value either a part of orig (which wire.Peek checked) or one that
// SetParam wrote itself. Otherwise (a plugin put raw JSON of its own in, or a key twice)
// checked is false and the caller checks the body with wire.Peek.
func (r *Request) encodeBody(orig []byte, f wire.Fields) (body []byte, nf wire.Fields, checked bool) {
	checked = true
	trusted := func(v []byte) bool {
		if within(v, orig) {
			return true
		}
		for _, m := range r.made {
			if len(m) == len(v) && len(v) > 0 && &m[0] == &v[0] {
				return true
			}
		}
		return false
	}
	// Most of the body is the original's; what plugins add is usually short.
	b := make([]byte, 0, len(orig)+len(orig)/4+256)
	b = append(b, `{"model":`...)
	nf.ModelStart = len(b)
	b = AppendString(b, r.Model)
	nf.ModelEnd, nf.Model, nf.HasModel, nf.Stream = len(b), r.Model, true, r.Stream
	wroteMessages := r.Op == "chat" || r.Messages != nil
	if wroteMessages {
		b = append(b, `,"messages":`...)
		b = AppendMessages(b, r.Messages)
		for i := range r.Messages {
			m := &r.Messages[i]
			if m.RawContent != nil && !trusted(m.RawContent) {
				checked = false
			}
			for k, v := range m.Extra {
				if k == "role" || k == "content" || !trusted(v) {
					checked = false
				}
			}
		}
	}
	if r.prompt {
		b = append(b, `,"prompt":`...)
		b = AppendString(b, r.Prompt)
	}
	if r.Stream {
		b = append(b, `,"stream":true`...)
	}
	var arr [16]string
	for _, k := range appendSortedKeys(arr[:0], r.Params) {
		v := r.Params[k]
		b = append(b, ',')
		b = AppendString(b, k)
		b = append(b, ':')
		b = append(b, v...)
		switch {
		case !trusted(v) || k == "model" || k == "stream" || k == "messages" && wroteMessages || k == "prompt" && r.prompt:
			checked = false
		case k == "stream_options":
			// Its include_usage is the original's only if the value is the original's.
			if within(v, orig) {
				nf.IncludeUsage = f.IncludeUsage
			} else {
				checked = false
			}
		}
	}
	b = append(b, '}')
	return b, nf, checked
}

// within reports whether v is a part of b (shares its memory), without unsafe: a slice of b
// ends its capacity where b does.
func within(v, b []byte) bool {
	if len(v) == 0 || cap(b) == 0 {
		return false
	}
	end := &b[:cap(b)][cap(b)-1]
	off := cap(b) - cap(v)
	return &v[:cap(v)][cap(v)-1] == end && off >= 0 && off+len(v) <= len(b)
}

// appendSortedKeys appends m's keys to keys, sorted.
func appendSortedKeys(keys []string, m map[string]json.RawMessage) []string {
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// writeString writes s as a JSON string.
func writeString(b *bytes.Buffer, s string) {
	b.Write(AppendString(b.AvailableBuffer(), s))
}

// AppendString appends s as a JSON string. Bytes that are not UTF-8 become U+FFFD, as
// encoding/json writes them, so the result is always valid JSON text.
func AppendString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c != 0x7f && c < utf8.RuneSelf {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r != utf8.RuneError || size != 1 {
				i += size
				continue
			}
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"':
			dst = append(dst, '\\', '"')
		case '\\':
			dst = append(dst, '\\', '\\')
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		i++
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// AppendMessages appends msgs as a JSON list in the OpenAI shape (role, content, and their
// other fields), as a Wasm module receives them.
func AppendMessages(dst []byte, msgs []Message) []byte {
	dst = append(dst, '[')
	for i := range msgs {
		m := &msgs[i]
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"role":`...)
		dst = AppendString(dst, m.Role)
		dst = append(dst, `,"content":`...)
		if m.RawContent != nil {
			dst = append(dst, m.RawContent...)
		} else {
			dst = AppendString(dst, m.Content)
		}
		if len(m.Extra) > 0 {
			var arr [8]string
			for _, k := range appendSortedKeys(arr[:0], m.Extra) {
				dst = append(dst, ',')
				dst = AppendString(dst, k)
				dst = append(dst, ':')
				dst = append(dst, m.Extra[k]...)
			}
		}
		dst = append(dst, '}')
	}
	return append(dst, ']')
}

// MarshalMessages encodes messages in the OpenAI shape (role, content, and their other
// fields), as a Wasm module receives them.
func MarshalMessages(msgs []Message) json.RawMessage {
	return AppendMessages(nil, msgs)
}

// UnmarshalMessages decodes messages in the OpenAI shape.
func UnmarshalMessages(raw json.RawMessage) ([]Message, error) {
	r := Request{Op: "chat"}
	if err := r.decodeBody(append(append([]byte(`{"messages":`), raw...), '}')); err != nil {
		return nil, err
	}
	if r.Messages == nil {
		return nil, errors.New("messages: not a list")
	}
	return r.Messages, nil
}
