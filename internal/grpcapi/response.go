package grpcapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"strings"

	"connectrpc.com/connect"
	autoglmv1 "github.com/open-autoglm/autoglm/gen/autoglm/v1"
	"github.com/open-autoglm/autoglm/internal/apierr"
	"google.golang.org/protobuf/types/known/structpb"
)

// The OpenAI answers, as far as the proto messages carry them.

type usageJSON struct {
	PromptTokens     int64 `json:"prompt_tokens"`
	CompletionTokens int64 `json:"completion_tokens"`
	TotalTokens      int64 `json:"total_tokens"`
}

func (u *usageJSON) proto() *autoglmv1.Usage {
	if u == nil {
		return nil
	}
	return &autoglmv1.Usage{PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens, TotalTokens: u.TotalTokens}
}

type chatJSON struct {
	ID                string     `json:"id"`
	Model             string     `json:"model"`
	Created           int64      `json:"created"`
	SystemFingerprint string     `json:"system_fingerprint"`
	Usage             *usageJSON `json:"usage"`
	Choices           []struct {
		Index        int32          `json:"index"`
		Message      map[string]any `json:"message"`
		Delta        map[string]any `json:"delta"`
		FinishReason string         `json:"finish_reason"`
	} `json:"choices"`
}

func chatResponse(body []byte) (*autoglmv1.ChatResponse, error) {
	var c chatJSON
	if err := json.Unmarshal(body, &c); err != nil {
		return nil, badAnswer(err)
	}
	out := &autoglmv1.ChatResponse{Id: c.ID, Model: c.Model, Created: c.Created, SystemFingerprint: c.SystemFingerprint, Usage: c.Usage.proto()}
	for _, ch := range c.Choices {
		m, err := message(ch.Message)
		if err != nil {
			return nil, err
		}
		out.Choices = append(out.Choices, &autoglmv1.ChatChoice{Index: ch.Index, Message: m, FinishReason: ch.FinishReason})
	}
	return out, nil
}

// chatChunk converts one chat.completion.chunk event.
func chatChunk(data []byte) (*autoglmv1.ChatStreamResponse, error) {
	var c chatJSON
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, badAnswer(err)
	}
	out := &autoglmv1.ChatStreamResponse{Id: c.ID, Model: c.Model, Created: c.Created, Usage: c.Usage.proto()}
	for _, ch := range c.Choices {
		m, err := message(ch.Delta)
		if err != nil {
			return nil, err
		}
		out.Choices = append(out.Choices, &autoglmv1.ChatDelta{Index: ch.Index, Delta: m, FinishReason: ch.FinishReason})
	}
	return out, nil
}

// message converts an OpenAI message (or delta) object. role, string content, name and
// tool_call_id become fields; everything else (tool_calls, refusal, structured content, ...)
// stays in extra.
func message(o map[string]any) (*autoglmv1.Message, error) {
	if o == nil {
		return nil, nil
	}
	m := &autoglmv1.Message{}
	take := func(key string, dst *string) {
		if s, ok := o[key].(string); ok {
			*dst = s
			delete(o, key)
		} else if v, ok := o[key]; ok && v == nil {
			delete(o, key)
		}
	}
	take("role", &m.Role)
	take("content", &m.Content)
	take("name", &m.Name)
	take("tool_call_id", &m.ToolCallId)
	if len(o) > 0 {
		s, err := structpb.NewStruct(o)
		if err != nil {
			return nil, badAnswer(err)
		}
		m.Extra = s
	}
	return m, nil
}

func completeResponse(body []byte) (*autoglmv1.CompleteResponse, error) {
	var c struct {
		ID      string     `json:"id"`
		Model   string     `json:"model"`
		Created int64      `json:"created"`
		Usage   *usageJSON `json:"usage"`
		Choices []struct {
			Index        int32  `json:"index"`
			Text         string `json:"text"`
			FinishReason string `json:"finish_reason"`
		} `json:"choices"`
	}
	if err := json.Unmarshal(body, &c); err != nil {
		return nil, badAnswer(err)
	}
	out := &autoglmv1.CompleteResponse{Id: c.ID, Model: c.Model, Created: c.Created, Usage: c.Usage.proto()}
	for _, ch := range c.Choices {
		out.Choices = append(out.Choices, &autoglmv1.CompleteChoice{Index: ch.Index, Text: ch.Text, FinishReason: ch.FinishReason})
	}
	return out, nil
}

func embedResponse(body []byte) (*autoglmv1.EmbedResponse, error) {
	var e struct {
		Model string     `json:"model"`
		Usage *usageJSON `json:"usage"`
		Data  []struct {
			Index     int32     `json:"index"`
			Embedding []float32 `json:"embedding"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &e); err != nil {
		return nil, badAnswer(err)
	}
	out := &autoglmv1.EmbedResponse{Model: e.Model, Usage: e.Usage.proto()}
	for _, d := range e.Data {
		out.Data = append(out.Data, &autoglmv1.Embedding{Index: d.Index, Embedding: d.Embedding})
	}
	return out, nil
}

func modelsResponse(body []byte) (*autoglmv1.ListModelsResponse, error) {
	var l struct {
		Data []struct {
			ID      string `json:"id"`
			Created int64  `json:"created"`
			OwnedBy string `json:"owned_by"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &l); err != nil {
		return nil, badAnswer(err)
	}
	out := &autoglmv1.ListModelsResponse{}
	for _, m := range l.Data {
		out.Models = append(out.Models, &autoglmv1.Model{Id: m.ID, Created: m.Created, OwnedBy: m.OwnedBy})
	}
	return out, nil
}

// badAnswer is an answer from the HTTP routes that does not decode: the gateway relays an
// upstream's body, so this is the upstream answering badly.
func badAnswer(err error) error {
	return connect.NewError(connect.Code(apierr.Upstream.GRPCCode()),
		apierr.Wrap(apierr.Upstream, err, "the model's answer could not be read"))
}

// openAIError is OpenAI's error object, the shape every error of the OpenAI-compatible routes
// has (a mid-stream error event included).
type openAIError struct {
	Error *struct {
		Message string `json:"message"`
		Type    string `json:"type"`
		Code    any    `json:"code"`
		Param   any    `json:"param"`
	} `json:"error"`
}

// Metadata keys an error carries besides its code and message.
const (
	metaErrorCode = "autoglm-error-code"
	metaErrorType = "autoglm-error-type"
	metaParam     = "autoglm-error-param"
)

// httpError turns an error answer of the HTTP routes (status, headers, body) into a Connect
// error: the code from the kind of the status (apierr's tables), the public message, and the
// OpenAI code, type and param as metadata. Retry-After and the rate-limit headers go along.
func httpError(status int, hdr http.Header, body []byte) *connect.Error {
	var e openAIError
	_ = json.Unmarshal(body, &e)
	kind := apierr.KindOfStatus(status)
	msg := http.StatusText(status)
	meta := http.Header{}
	if e.Error != nil {
		if e.Error.Type == "insufficient_quota" {
			kind = apierr.QuotaExceeded
		}
		if e.Error.Message != "" {
			msg = e.Error.Message
		}
		if s, ok := e.Error.Code.(string); ok && s != "" {
			meta.Set(metaErrorCode, s)
		}
		if e.Error.Type != "" {
			meta.Set(metaErrorType, e.Error.Type)
		}
		if s, ok := e.Error.Param.(string); ok && s != "" {
			meta.Set(metaParam, s)
		}
	}
	for k, v := range hdr {
		if k == "Retry-After" || strings.HasPrefix(k, "X-Ratelimit-") {
			meta[k] = v
		}
	}
	cerr := connect.NewError(connect.Code(kind.GRPCCode()), errors.New(msg))
	maps.Copy(cerr.Meta(), meta)
	return cerr
}

// streamError is the error an error event in a stream stands for, or nil when data is not one.
func streamError(data []byte) *connect.Error {
	if !bytes.Contains(data, []byte(`"error"`)) {
		return nil
	}
	var e openAIError
	if json.Unmarshal(data, &e) != nil || e.Error == nil {
		return nil
	}
	code := connect.Code(apierr.Upstream.GRPCCode())
	if e.Error.Type == "timeout_error" {
		code = connect.Code(apierr.Timeout.GRPCCode())
	}
	cerr := connect.NewError(code, errors.New(e.Error.Message))
	if s, ok := e.Error.Code.(string); ok && s != "" {
		cerr.Meta().Set(metaErrorCode, s)
	}
	return cerr
}
