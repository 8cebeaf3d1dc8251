package wasm

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/open-autoglm/autoglm/internal/plugin"
)

// wireRequest is the request as a module receives it.
type wireRequest struct {
	Op       string                     `json:"op"`
	Model    string                     `json:"model"`
	Messages json.RawMessage            `json:"messages,omitempty"`
	Prompt   *string                    `json:"prompt,omitempty"`
	Stream   bool                       `json:"stream"`
	Params   map[string]json.RawMessage `json:"params,omitempty"`
	KeyID    string                     `json:"key_id,omitempty"`
	Key      string                     `json:"key,omitempty"`
	User     string                     `json:"user,omitempty"`
	Role     string                     `json:"role,omitempty"`
	Route    string                     `json:"route,omitempty"`
	Headers  map[string]string          `json:"headers,omitempty"`
	Metadata map[string]string          `json:"metadata,omitempty"`
}

func toWire(r *plugin.Request) wireRequest {
	w := wireRequest{Op: r.Op, Model: r.Model, Stream: r.Stream, Params: r.Params, KeyID: r.KeyID, Key: r.KeyName,
		User: r.User, Role: r.Role, Route: r.Route, Metadata: r.Metadata}
	if r.Messages != nil {
		w.Messages = plugin.MarshalMessages(r.Messages)
	}
	if r.HasPrompt() {
		w.Prompt = &r.Prompt
	}
	if len(r.Header) > 0 {
		w.Headers = make(map[string]string, len(r.Header))
		for k, v := range r.Header {
			if len(v) > 0 && k != "Authorization" && k != "X-Api-Key" && k != "Cookie" {
				w.Headers[k] = v[0]
			}
		}
	}
	return w
}

// requestAnswer is what on_request may answer; every field is optional.
type requestAnswer struct {
	Request *struct {
		Model    *string                    `json:"model"`
		Messages json.RawMessage            `json:"messages"`
		Prompt   *string                    `json:"prompt"`
		Params   map[string]json.RawMessage `json:"params"`
		Metadata map[string]string          `json:"metadata"`
	} `json:"request"`
	Reply  *string `json:"reply"`
	Refuse string  `json:"refuse"`
	Error  string  `json:"error"`
}

// OnRequest calls the module's on_request.
func (p *Plugin) OnRequest(ctx context.Context, c *plugin.Call) error {
	var ans requestAnswer
	ok, err := p.invoke(ctx, "on_request", map[string]any{"request": toWire(c.Req)}, &ans)
	if err != nil || !ok {
		return err
	}
	switch {
	case ans.Error != "":
		return errors.New("the module reported: " + ans.Error)
	case ans.Refuse != "":
		return plugin.Refuse(ans.Refuse)
	case ans.Reply != nil:
		c.Reply(*ans.Reply)
		return nil
	}
	if ans.Request == nil {
		return nil
	}
	r, a := c.Req, ans.Request
	if a.Model != nil {
		r.Model = *a.Model
	}
	if a.Messages != nil {
		msgs, err := plugin.UnmarshalMessages(a.Messages)
		if err != nil {
			return errors.New("the module's messages are not a list of messages")
		}
		r.Messages = msgs
	}
	if a.Prompt != nil && r.HasPrompt() {
		r.Prompt = *a.Prompt
	}
	for k, v := range a.Params {
		if string(v) == "null" {
			r.DeleteParam(k)
			continue
		}
		if err := r.SetParam(k, v); err != nil {
			return err
		}
	}
	for k, v := range a.Metadata {
		if r.Metadata == nil {
			r.Metadata = map[string]string{}
		}
		r.Metadata[k] = v
	}
	return nil
}

type wireChoice struct {
	Index  int    `json:"index"`
	Text   string `json:"text"`
	Finish string `json:"finish,omitempty"`
}

// OnResponse calls the module's on_response.
func (p *Plugin) OnResponse(ctx context.Context, c *plugin.Call, r *plugin.Response) error {
	choices := make([]wireChoice, len(r.Choices))
	for i, ch := range r.Choices {
		choices[i] = wireChoice{ch.Index, ch.Text, ch.Finish}
	}
	var ans struct {
		Response *struct {
			Choices []wireChoice `json:"choices"`
		} `json:"response"`
		Error string `json:"error"`
	}
	ok, err := p.invoke(ctx, "on_response", map[string]any{"request": toWire(c.Req),
		"response": map[string]any{"model": r.Model, "choices": choices}}, &ans)
	if err != nil || !ok {
		return err
	}
	if ans.Error != "" {
		return errors.New("the module reported: " + ans.Error)
	}
	if ans.Response == nil {
		return nil
	}
	for _, ch := range ans.Response.Choices {
		for i := range r.Choices {
			if r.Choices[i].Index == ch.Index {
				r.Choices[i].Text = ch.Text
			}
		}
	}
	return nil
}

// OnChunk calls the module's on_chunk. A module keeps what it needs from one chunk to the
// next in "state", which the host hands back with the next chunk of the same choice.
func (p *Plugin) OnChunk(ctx context.Context, c *plugin.Call, ch *plugin.Chunk) error {
	if !p.has["on_chunk"] {
		return nil
	}
	st := c.State()
	states, _ := (*st).(map[int]string)
	if states == nil {
		states = map[int]string{}
		*st = states
	}
	var ans struct {
		Chunk *struct {
			Text *string `json:"text"`
			Drop bool    `json:"drop"`
		} `json:"chunk"`
		State *string `json:"state"`
		Error string  `json:"error"`
	}
	in := map[string]any{"chunk": map[string]any{"index": ch.Index, "text": ch.Text, "finish": ch.Finish, "end": ch.End},
		"state": states[ch.Index], "op": c.Req.Op, "model": c.Req.Model}
	ok, err := p.invoke(ctx, "on_chunk", in, &ans)
	if err != nil || !ok {
		return err
	}
	if ans.Error != "" {
		return errors.New("the module reported: " + ans.Error)
	}
	if ans.State != nil {
		states[ch.Index] = *ans.State
	}
	if ans.Chunk != nil {
		if ans.Chunk.Text != nil {
			ch.Text = *ans.Chunk.Text
		}
		ch.Drop = ans.Chunk.Drop
	}
	return nil
}
