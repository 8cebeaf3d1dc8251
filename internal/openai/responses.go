package openai

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/open-autoglm/autoglm/internal/apierr"
	"github.com/open-autoglm/autoglm/internal/backend"
	"github.com/open-autoglm/autoglm/internal/router"
	"github.com/open-autoglm/autoglm/internal/telemetry"
	"github.com/open-autoglm/autoglm/internal/wire"
)

// The OpenAI Responses API (POST /v1/responses and the routes of a stored response),
// translated into chat completions: input items and instructions become chat messages,
// function tools become chat tools, and the answer (or its stream) is written back as a
// response object (or its typed events). previous_response_id continues the conversation
// kept with a stored response; responses are stored unless the request says store: false.

// StoredResponse is a response kept for GET /v1/responses/{id} and previous_response_id.
type StoredResponse struct {
	ID      string
	Owner   string // who may read it (Options.Owner); "" with authentication off
	Model   string
	Created time.Time
	// Response is the response object as the client received it.
	Response []byte
	// Input is the JSON list of this request's input items, with their ids.
	Input []byte
	// Context is the JSON list of chat messages of the whole conversation up to and
	// including this response's output (instructions excluded: they are not carried over).
	Context []byte
	// Items are the input and output items by id (for item_reference).
	Items map[string]json.RawMessage
}

// ResponseStore keeps stored responses. Implementations are safe for concurrent use. Get and
// Delete see only the owner's responses and return an apierr NotFound error for any other.
//
// PutResponse also keeps the response's input and output items by id, for item_reference
// inputs (clients such as the Vercel AI SDK refer to earlier output that way); GetItems
// returns those of ids the owner stored (missing ids are absent from the map).
type ResponseStore interface {
	PutResponse(ctx context.Context, r *StoredResponse) error
	GetResponse(ctx context.Context, owner, id string) (*StoredResponse, error)
	DeleteResponse(ctx context.Context, owner, id string) error
	GetItems(ctx context.Context, owner string, ids []string) (map[string]json.RawMessage, error)
}

// responseObject is the Responses API's response object.
type responseObject struct {
	ID                 string            `json:"id"`
	Object             string            `json:"object"`
	CreatedAt          int64             `json:"created_at"`
	Status             string            `json:"status"`
	CompletedAt        *int64            `json:"completed_at"`
	Error              *responseError    `json:"error"`
	IncompleteDetails  *incomplete       `json:"incomplete_details"`
	Instructions       *string           `json:"instructions"`
	MaxOutputTokens    *int              `json:"max_output_tokens"`
	Model              string            `json:"model"`
	Output             []item            `json:"output"`
	ParallelToolCalls  bool              `json:"parallel_tool_calls"`
	PreviousResponseID *string           `json:"previous_response_id"`
	Store              bool              `json:"store"`
	Temperature        *float64          `json:"temperature"`
	TopP               *float64          `json:"top_p"`
	Text               json.RawMessage   `json:"text"`
	ToolChoice         json.RawMessage   `json:"tool_choice"`
	Tools              []responseTool    `json:"tools"`
	Truncation         string            `json:"truncation"`
	Usage              *responseUsage    `json:"usage,omitempty"`
	User               *string           `json:"user,omitempty"`
	Metadata           map[string]string `json:"metadata"`
}

type responseError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

type incomplete struct {
	Reason string `json:"reason"`
}

type responseUsage struct {
	InputTokens        int64 `json:"input_tokens"`
	InputTokensDetails struct {
		CachedTokens     int64 `json:"cached_tokens"`
		CacheWriteTokens int64 `json:"cache_write_tokens"`
	} `json:"input_tokens_details"`
	OutputTokens        int64 `json:"output_tokens"`
	OutputTokensDetails struct {
		ReasoningTokens int64 `json:"reasoning_tokens"`
	} `json:"output_tokens_details"`
	TotalTokens int64 `json:"total_tokens"`
}

func usageOf(u chatUsage) *responseUsage {
	ru := &responseUsage{InputTokens: u.PromptTokens, OutputTokens: u.CompletionTokens, TotalTokens: u.PromptTokens + u.CompletionTokens}
	ru.InputTokensDetails.CachedTokens = u.cached()
	return ru
}

// responseCall is one POST /v1/responses being served.
type responseCall struct {
	req     responsesRequest
	input   []item
	context []chatMessage // the previous response's conversation
	obj     responseObject
	store   bool
	owner   string
}

// Responses serves POST /v1/responses.
func (h *Handler) Responses(w http.ResponseWriter, r *http.Request) error {
	body, err := readBody(r)
	if err != nil {
		return readError(err)
	}
	if f, err := wire.Peek(body); err == nil && f.HasModel {
		if m, ok := h.reg.Lookup(f.Model); ok && m.NativeResponses() {
			return h.passResponses(w, r, m, body, f)
		}
	}
	c := &responseCall{owner: h.owner(r.Context())}
	if err := json.Unmarshal(body, &c.req); err != nil {
		return &apierr.Error{Kind: apierr.Invalid, Code: apierr.CodeInvalidJSON, Message: "could not decode the request: " + jsonProblem(err)}
	}
	if c.req.Model == "" {
		return &apierr.Error{Kind: apierr.Invalid, Code: apierr.CodeMissingRequiredParameter, Param: "model", Message: "Missing required parameter: 'model'."}
	}
	if c.input, err = parseInput(c.req.Input); err != nil {
		return err
	}
	if err := h.resolveReferences(r.Context(), c); err != nil {
		return err
	}
	chat, err := h.responsesChat(r.Context(), c)
	if err != nil {
		return err
	}
	chatBody, err := json.Marshal(chat)
	if err != nil {
		return err
	}
	if !c.req.Stream {
		out, err := h.innerChat(w, r, chatBody, nil)
		if err != nil {
			return err
		}
		h.finishResponse(c, out, nil)
		h.storeResponse(r.Context(), c, out)
		body, err := json.Marshal(&c.obj)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, body)
		return nil
	}
	sink := &responseStream{h: h, w: w, c: c, writeTimeout: h.opt.StreamWriteTimeout}
	out, err := h.innerChat(w, r, chatBody, sink)
	if err != nil {
		return err
	}
	h.storeResponse(r.Context(), c, out)
	return nil
}

// passResponses sends a Responses request as it is to a model whose backends all speak the
// Responses API: the upstream keeps the conversation (previous_response_id, stored
// responses) itself. It goes through the same routing, retries and usage accounting as a chat
// completion; it is never cached, because the upstream's state changes with every call.
func (h *Handler) passResponses(w http.ResponseWriter, r *http.Request, m *router.Model, body []byte, f wire.Fields) error {
	telemetry.Info(r.Context()).SetModel(m.Name)
	x := &exchange{op: backend.OpResponses, stream: f.Stream, start: time.Now(), reqBody: body}
	req := &router.Request{Op: backend.OpResponses, Body: body, Fields: f, Stream: f.Stream, Header: forwardHeaders(r.Header), Client: r.Header}
	err := h.call(w, r, m, req, x, nil)
	h.done(r, m, x, err)
	return err
}

// resolveReferences replaces item_reference inputs by the stored items they name.
func (h *Handler) resolveReferences(ctx context.Context, c *responseCall) error {
	var ids []string
	for _, it := range c.input {
		if it.Type == "item_reference" {
			ids = append(ids, it.ID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	found, err := h.responses().GetItems(ctx, c.owner, ids)
	if err != nil {
		return err
	}
	for i, it := range c.input {
		if it.Type != "item_reference" {
			continue
		}
		raw, ok := found[it.ID]
		if !ok {
			return &apierr.Error{Kind: apierr.NotFound, Code: apierr.CodeItemNotFound, Param: "input",
				Message: "Item with id '" + it.ID + "' not found."}
		}
		got, err := parseItem(raw)
		if err != nil || got == nil || got.Type == "item_reference" {
			return &apierr.Error{Kind: apierr.Internal, Err: fmt.Errorf("stored item %s does not parse: %v", it.ID, err)}
		}
		c.input[i] = *got
	}
	return nil
}

// owner is who a stored response belongs to.
func (h *Handler) owner(ctx context.Context) string {
	if h.opt.Owner == nil {
		return ""
	}
	return h.opt.Owner(ctx)
}

// responsesChat builds the chat request of c and the response object's fields that echo the
// request.
func (h *Handler) responsesChat(ctx context.Context, c *responseCall) (*chatRequest, error) {
	q := &c.req
	chat := &chatRequest{Model: q.Model, Stream: q.Stream, MaxTokens: q.MaxOutputTokens, Temperature: q.Temperature,
		TopP: q.TopP, ParallelToolCalls: q.ParallelToolCalls, User: q.User}
	if q.Stream {
		chat.StreamOptions = &streamOptions{IncludeUsage: true}
	}
	c.store = q.Store == nil || *q.Store
	c.obj = responseObject{ID: newID("resp"), Object: "response", CreatedAt: time.Now().Unix(), Status: "in_progress",
		Instructions: q.Instructions, MaxOutputTokens: q.MaxOutputTokens, Model: q.Model, Output: []item{},
		ParallelToolCalls: q.ParallelToolCalls == nil || *q.ParallelToolCalls, PreviousResponseID: q.PreviousResponseID,
		Store: c.store, Temperature: q.Temperature, TopP: q.TopP, Truncation: "disabled", Metadata: q.Metadata,
		Tools: []responseTool{}, Text: json.RawMessage(`{"format":{"type":"text"}}`), ToolChoice: json.RawMessage(`"auto"`)}
	if c.obj.Metadata == nil {
		c.obj.Metadata = map[string]string{}
	}
	if q.User != "" {
		c.obj.User = &q.User
	}
	if q.PreviousResponseID != nil && *q.PreviousResponseID != "" {
		prev, err := h.responses().GetResponse(ctx, c.owner, *q.PreviousResponseID)
		if err != nil {
			if apierr.KindOf(err) == apierr.NotFound {
				return nil, &apierr.Error{Kind: apierr.NotFound, Code: apierr.CodePreviousResponseNotFound, Param: "previous_response_id",
					Message: "Previous response with id '" + *q.PreviousResponseID + "' not found."}
			}
			return nil, err
		}
		if err := json.Unmarshal(prev.Context, &c.context); err != nil {
			return nil, &apierr.Error{Kind: apierr.Internal, Err: err}
		}
	}
	if q.Instructions != nil && *q.Instructions != "" {
		chat.Messages = append(chat.Messages, chatMessage{Role: "system", Content: jsonString(*q.Instructions)})
	}
	chat.Messages = append(chat.Messages, c.context...)
	chat.Messages = append(chat.Messages, chatMessagesOf(c.input)...)
	for i, raw := range q.Tools {
		var t responseTool
		if err := json.Unmarshal(raw, &t); err != nil {
			return nil, invalidParam("tools["+strconv.Itoa(i)+"]", "a tool must be an object: %s", jsonProblem(err))
		}
		if t.Type != "function" {
			return nil, invalidParam("tools["+strconv.Itoa(i)+"].type", "only function tools are supported, not %q", t.Type)
		}
		if t.Name == "" {
			return nil, invalidParam("tools["+strconv.Itoa(i)+"].name", "a function tool needs a name")
		}
		if t.Strict == nil {
			yes := true
			t.Strict = &yes
		}
		if len(t.Parameters) == 0 || string(t.Parameters) == "null" {
			t.Parameters = json.RawMessage(`{"type":"object","properties":{}}`)
		}
		c.obj.Tools = append(c.obj.Tools, t)
		chat.Tools = append(chat.Tools, chatTool{Type: "function", Function: chatFunction{Name: t.Name, Description: t.Description,
			Parameters: t.Parameters, Strict: t.Strict}})
	}
	if tc := bytes.TrimSpace(q.ToolChoice); len(tc) > 0 && string(tc) != "null" {
		c.obj.ToolChoice = tc
		if tc[0] == '"' {
			chat.ToolChoice = tc
		} else {
			var v struct {
				Type string `json:"type"`
				Name string `json:"name"`
			}
			if json.Unmarshal(tc, &v) != nil || v.Type != "function" || v.Name == "" {
				return nil, invalidParam("tool_choice", "tool_choice must be none, auto, required or {\"type\":\"function\",\"name\":...}")
			}
			chat.ToolChoice, _ = json.Marshal(map[string]any{"type": "function", "function": map[string]string{"name": v.Name}})
		}
	}
	if q.Text != nil && len(q.Text.Format) > 0 {
		var f struct {
			Type   string          `json:"type"`
			Name   string          `json:"name"`
			Schema json.RawMessage `json:"schema"`
			Strict *bool           `json:"strict"`
		}
		if err := json.Unmarshal(q.Text.Format, &f); err != nil {
			return nil, invalidParam("text.format", "text.format must be an object")
		}
		switch f.Type {
		case "", "text":
		case "json_object":
			chat.ResponseFormat = json.RawMessage(`{"type":"json_object"}`)
		case "json_schema":
			chat.ResponseFormat, _ = json.Marshal(map[string]any{"type": "json_schema",
				"json_schema": map[string]any{"name": f.Name, "schema": f.Schema, "strict": f.Strict}})
		default:
			return nil, invalidParam("text.format.type", "text.format.type must be text, json_object or json_schema")
		}
		c.obj.Text, _ = json.Marshal(map[string]json.RawMessage{"format": q.Text.Format})
	}
	return chat, nil
}

// finishResponse fills c.obj from the chat answer. ids, when not nil, are the item ids a
// stream already announced (message first, then one per tool call).
func (h *Handler) finishResponse(c *responseCall, out *chatOutcome, output []item) {
	if output == nil {
		output = outputItems(out, nil)
	}
	c.obj.Output = output
	c.obj.Usage = usageOf(out.Usage)
	if out.Model != "" {
		c.obj.Model = out.Model
	}
	switch out.Finish {
	case "length":
		c.obj.Status = "incomplete"
		c.obj.IncompleteDetails = &incomplete{Reason: "max_output_tokens"}
	case "content_filter":
		c.obj.Status = "incomplete"
		c.obj.IncompleteDetails = &incomplete{Reason: "content_filter"}
	default:
		c.obj.Status = "completed"
		now := time.Now().Unix()
		c.obj.CompletedAt = &now
	}
	if c.obj.Model != c.req.Model {
		// Clients match the model they asked for; the backend's name stays internal.
		c.obj.Model = c.req.Model
	}
}

// outputItems are the output items of a chat answer: its text as a message (when there is
// text, or nothing else), then one function call per tool call.
func outputItems(out *chatOutcome, ids []string) []item {
	id := func(i int, prefix string) string {
		if i < len(ids) && ids[i] != "" {
			return ids[i]
		}
		return newID(prefix)
	}
	var items []item
	if out.Text != "" || len(out.ToolCalls) == 0 {
		items = append(items, item{ID: id(0, "msg"), Type: "message", Status: "completed", Role: "assistant",
			Content: []contentPart{{Type: "output_text", Text: out.Text}}})
	}
	for i, tc := range out.ToolCalls {
		callID := tc.ID
		if callID == "" {
			callID = newID("call")
		}
		items = append(items, item{ID: id(i+1, "fc"), Type: "function_call", Status: "completed", CallID: callID,
			Name: tc.Name, Arguments: tc.Arguments})
	}
	return items
}

// storeResponse keeps a finished response unless the request said store: false.
func (h *Handler) storeResponse(ctx context.Context, c *responseCall, out *chatOutcome) {
	if !c.store || out == nil {
		return
	}
	conv := append([]chatMessage(nil), c.context...)
	conv = append(conv, chatMessagesOf(c.input)...)
	conv = append(conv, chatMessagesOf(c.obj.Output)...)
	convJSON, err1 := json.Marshal(conv)
	inputJSON, err2 := json.Marshal(c.input)
	respJSON, err3 := json.Marshal(&c.obj)
	if err1 != nil || err2 != nil || err3 != nil {
		return
	}
	sr := &StoredResponse{ID: c.obj.ID, Owner: c.owner, Model: c.req.Model, Created: time.Unix(c.obj.CreatedAt, 0),
		Response: respJSON, Input: inputJSON, Context: convJSON, Items: map[string]json.RawMessage{}}
	for _, list := range [][]item{c.input, c.obj.Output} {
		for _, it := range list {
			if b, err := json.Marshal(it); err == nil && it.ID != "" {
				sr.Items[it.ID] = b
			}
		}
	}
	// The answer is already the client's; a request that went away must still be stored.
	if err := h.responses().PutResponse(context.WithoutCancel(ctx), sr); err != nil {
		h.opt.Logger.WarnContext(ctx, "storing a response failed", "id", c.obj.ID, "err", err)
	}
}

func (h *Handler) responses() ResponseStore {
	if h.opt.Responses != nil {
		return h.opt.Responses
	}
	return h.memResponses
}

// GetResponse serves GET /v1/responses/{id}.
func (h *Handler) GetResponse(w http.ResponseWriter, r *http.Request) error {
	sr, err := h.responses().GetResponse(r.Context(), h.owner(r.Context()), r.PathValue("id"))
	if err != nil {
		return responseNotFound(err, r.PathValue("id"))
	}
	writeJSON(w, http.StatusOK, sr.Response)
	return nil
}

// DeleteResponse serves DELETE /v1/responses/{id}.
func (h *Handler) DeleteResponse(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if err := h.responses().DeleteResponse(r.Context(), h.owner(r.Context()), id); err != nil {
		return responseNotFound(err, id)
	}
	body, _ := json.Marshal(map[string]any{"id": id, "object": "response.deleted", "deleted": true})
	writeJSON(w, http.StatusOK, body)
	return nil
}

// ResponseInputItems serves GET /v1/responses/{id}/input_items: the input items of a stored
// response, newest first unless order=asc, limit (1 to 100, default 20) after the item
// named by after.
func (h *Handler) ResponseInputItems(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	sr, err := h.responses().GetResponse(r.Context(), h.owner(r.Context()), id)
	if err != nil {
		return responseNotFound(err, id)
	}
	var items []json.RawMessage
	if err := json.Unmarshal(sr.Input, &items); err != nil {
		return &apierr.Error{Kind: apierr.Internal, Err: err}
	}
	q := r.URL.Query()
	limit := 20
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 100 {
			return invalidParam("limit", "limit must be an integer from 1 to 100")
		}
		limit = n
	}
	switch q.Get("order") {
	case "", "desc":
		for i, j := 0, len(items)-1; i < j; i, j = i+1, j-1 {
			items[i], items[j] = items[j], items[i]
		}
	case "asc":
	default:
		return invalidParam("order", "order must be asc or desc")
	}
	if after := q.Get("after"); after != "" {
		for i, it := range items {
			var v struct {
				ID string `json:"id"`
			}
			if json.Unmarshal(it, &v) == nil && v.ID == after {
				items = items[i+1:]
				break
			}
		}
	}
	more := len(items) > limit
	if more {
		items = items[:limit]
	}
	page := struct {
		Object  string            `json:"object"`
		Data    []json.RawMessage `json:"data"`
		FirstID *string           `json:"first_id"`
		LastID  *string           `json:"last_id"`
		HasMore bool              `json:"has_more"`
	}{Object: "list", Data: items, HasMore: more}
	if page.Data == nil {
		page.Data = []json.RawMessage{}
	}
	if len(items) > 0 {
		var first, last struct {
			ID string `json:"id"`
		}
		_ = json.Unmarshal(items[0], &first)
		_ = json.Unmarshal(items[len(items)-1], &last)
		page.FirstID, page.LastID = &first.ID, &last.ID
	}
	body, err := json.Marshal(page)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, body)
	return nil
}

func responseNotFound(err error, id string) error {
	if apierr.KindOf(err) != apierr.NotFound {
		return err
	}
	return &apierr.Error{Kind: apierr.NotFound, Code: apierr.CodeResponseNotFound, Param: "id",
		Message: "Response with id '" + id + "' not found."}
}
