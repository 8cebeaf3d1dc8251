package wasm

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strconv"

	"github.com/open-autoglm/autoglm/internal/plugin"
)

// appendRequest appends the request as a module receives it: a JSON object written field
// by field (no reflection), into a buffer the instance keeps from call to call.
func appendRequest(b []byte, r *plugin.Request) []byte {
	b = append(b, `{"op":`...)
	b = plugin.AppendString(b, r.Op)
	b = append(b, `,"model":`...)
	b = plugin.AppendString(b, r.Model)
	b = append(b, `,"stream":`...)
	b = strconv.AppendBool(b, r.Stream)
	if r.Messages != nil {
		b = append(b, `,"messages":`...)
		b = plugin.AppendMessages(b, r.Messages)
	}
	if r.HasPrompt() {
		b = append(b, `,"prompt":`...)
		b = plugin.AppendString(b, r.Prompt)
	}
	if len(r.Params) > 0 {
		b = append(b, `,"params":{`...)
		var arr [16]string
		keys := slices.AppendSeq(arr[:0], maps.Keys(r.Params))
		slices.Sort(keys)
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = plugin.AppendString(b, k)
			b = append(b, ':')
			b = append(b, r.Params[k]...)
		}
		b = append(b, '}')
	}
	for _, f := range [...]struct{ name, v string }{{"key_id", r.KeyID}, {"key", r.KeyName}, {"user", r.User}, {"role", r.Role}, {"route", r.Route}} {
		if f.v != "" {
			b = append(b, ',', '"')
			b = append(b, f.name...)
			b = append(b, '"', ':')
			b = plugin.AppendString(b, f.v)
		}
	}
	n := 0
	for k, v := range r.Header {
		if len(v) == 0 || k == "Authorization" || k == "X-Api-Key" || k == "Cookie" {
			continue // credentials never reach a module
		}
		if n == 0 {
			b = append(b, `,"headers":{`...)
		} else {
			b = append(b, ',')
		}
		n++
		b = plugin.AppendString(b, k)
		b = append(b, ':')
		b = plugin.AppendString(b, v[0])
	}
	if n > 0 {
		b = append(b, '}')
	}
	if len(r.Metadata) > 0 {
		b = append(b, `,"metadata":{`...)
		i := 0
		for k, v := range r.Metadata {
			if i > 0 {
				b = append(b, ',')
			}
			i++
			b = plugin.AppendString(b, k)
			b = append(b, ':')
			b = plugin.AppendString(b, v)
		}
		b = append(b, '}')
	}
	return append(b, '}')
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
	ok, err := p.invoke(ctx, hookRequest, func(b []byte) []byte {
		return append(appendRequest(append(b, `{"request":`...), c.Req), '}')
	}, &ans)
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
	var ans struct {
		Response *struct {
			Choices []wireChoice `json:"choices"`
		} `json:"response"`
		Error string `json:"error"`
	}
	ok, err := p.invoke(ctx, hookResponse, func(b []byte) []byte {
		b = appendRequest(append(b, `{"request":`...), c.Req)
		b = append(b, `,"response":{"model":`...)
		b = plugin.AppendString(b, r.Model)
		b = append(b, `,"choices":[`...)
		for i, ch := range r.Choices {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"index":`...)
			b = strconv.AppendInt(b, int64(ch.Index), 10)
			b = append(b, `,"text":`...)
			b = plugin.AppendString(b, ch.Text)
			if ch.Finish != "" {
				b = append(b, `,"finish":`...)
				b = plugin.AppendString(b, ch.Finish)
			}
			b = append(b, '}')
		}
		return append(b, "]}}"...)
	}, &ans)
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
	if !p.has[hookChunk] {
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
	ok, err := p.invoke(ctx, hookChunk, func(b []byte) []byte {
		b = append(b, `{"chunk":{"index":`...)
		b = strconv.AppendInt(b, int64(ch.Index), 10)
		b = append(b, `,"text":`...)
		b = plugin.AppendString(b, ch.Text)
		b = append(b, `,"finish":`...)
		b = plugin.AppendString(b, ch.Finish)
		b = append(b, `,"end":`...)
		b = strconv.AppendBool(b, ch.End)
		b = append(b, `},"state":`...)
		b = plugin.AppendString(b, states[ch.Index])
		b = append(b, `,"op":`...)
		b = plugin.AppendString(b, c.Req.Op)
		b = append(b, `,"model":`...)
		b = plugin.AppendString(b, c.Req.Model)
		return append(b, '}')
	}, &ans)
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
