package openai

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/open-autoglm/autoglm/api/sse"
	"github.com/open-autoglm/autoglm/internal/apierr"
)

// The Responses and Messages APIs are translated into chat completions inside the gateway
// and run through Handler.ChatCompletions as an in-process request: the same model lookup,
// routing, retries, response cache and usage accounting as a chat completion sent by the
// client. Authentication, authorization and limits have already run on the outer request.

// chatOutcome is a finished chat completion, decoded.
type chatOutcome struct {
	ID        string
	Model     string
	Text      string
	ToolCalls []chatToolCall
	Finish    string
	Usage     chatUsage
}

type chatToolCall struct {
	ID        string
	Name      string
	Arguments string
}

// chatUsage is the usage a chat completion reported.
type chatUsage struct {
	PromptTokens     int64 `json:"prompt_tokens"`
	CompletionTokens int64 `json:"completion_tokens"`
	Details          *struct {
		CachedTokens int64 `json:"cached_tokens"`
	} `json:"prompt_tokens_details,omitempty"`
}

func (u chatUsage) cached() int64 {
	if u.Details == nil {
		return 0
	}
	return u.Details.CachedTokens
}

// chatDoc is the part of a chat completion (or one of its stream chunks) the translations read.
type chatDoc struct {
	ID      string `json:"id"`
	Model   string `json:"model"`
	Choices []struct {
		Index   int `json:"index"`
		Message struct {
			Content   *string `json:"content"`
			ToolCalls []struct {
				ID       string `json:"id"`
				Function struct {
					Name      string `json:"name"`
					Arguments string `json:"arguments"`
				} `json:"function"`
			} `json:"tool_calls"`
		} `json:"message"`
		Delta struct {
			Content   *string `json:"content"`
			ToolCalls []struct {
				Index    int    `json:"index"`
				ID       string `json:"id"`
				Function struct {
					Name      string `json:"name"`
					Arguments string `json:"arguments"`
				} `json:"function"`
			} `json:"tool_calls"`
		} `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *chatUsage `json:"usage"`
	Error *struct {
		Message string `json:"message"`
		Type    string `json:"type"`
		Code    any    `json:"code"`
	} `json:"error"`
}

// chatSink receives a streamed chat completion as it arrives. Each method may write to the
// client; an error stops the stream.
type chatSink interface {
	// text is more of the answer's text.
	text(delta string) error
	// toolStart is the start of tool call i (0, 1, … in order).
	toolStart(i int, id, name string) error
	// toolArgs is more of tool call i's arguments.
	toolArgs(i int, delta string) error
	// done is the end of the answer; out holds all of it.
	done(out *chatOutcome) error
	// fail is an error the upstream reported after the stream began.
	fail(e *apierr.Error) error
}

// innerChat runs body, a chat completion request, through the chat completions route on
// behalf of r. Without a sink (body not streamed) it returns the decoded answer; with one,
// the stream is fed to the sink as it arrives and the returned outcome is what the sink's
// done received. An error answer of the upstream becomes the returned error, with the
// upstream's status and message.
func (h *Handler) innerChat(w http.ResponseWriter, r *http.Request, body []byte, sink chatSink) (*chatOutcome, error) {
	ir := r.Clone(r.Context())
	ir.URL.Path = "/v1/chat/completions"
	ir.RequestURI = ""
	ir.Body = http.NoBody
	if len(body) > 0 {
		ir.Body = nopCloser{bytes.NewReader(body)}
	}
	ir.ContentLength = int64(len(body))
	ir.Header.Set("Content-Type", "application/json")
	iw := &innerWriter{outer: w, header: make(http.Header), sink: sink}
	if err := h.ChatCompletions(iw, ir); err != nil {
		return nil, err
	}
	if v := iw.header.Get(CacheHeader); v != "" {
		w.Header().Set(CacheHeader, v)
	}
	if iw.err != nil {
		return nil, iw.err
	}
	if iw.status != http.StatusOK {
		return nil, upstreamError(iw.status, iw.buf.Bytes())
	}
	if iw.stream {
		iw.finishStream()
		if iw.err != nil {
			return nil, iw.err
		}
		return &iw.acc, nil
	}
	var d chatDoc
	if err := json.Unmarshal(iw.buf.Bytes(), &d); err != nil {
		return nil, &apierr.Error{Kind: apierr.Upstream, Code: apierr.CodeUpstreamBadAnswer,
			Message: "the model's upstream answered with a document that is not a chat completion", Err: err}
	}
	out := &chatOutcome{ID: d.ID, Model: d.Model}
	if d.Usage != nil {
		out.Usage = *d.Usage
	}
	for _, c := range d.Choices {
		if c.Index != 0 {
			continue
		}
		if c.Message.Content != nil {
			out.Text = *c.Message.Content
		}
		for _, tc := range c.Message.ToolCalls {
			out.ToolCalls = append(out.ToolCalls, chatToolCall{ID: tc.ID, Name: tc.Function.Name, Arguments: tc.Function.Arguments})
		}
		if c.FinishReason != nil {
			out.Finish = *c.FinishReason
		}
	}
	return out, nil
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

// upstreamError turns an upstream's error answer into an error with the same status and the
// upstream's message (OpenAI's shape), so every API reports it in its own shape.
func upstreamError(status int, body []byte) *apierr.Error {
	var d chatDoc
	msg := "the model's upstream answered with status " + http.StatusText(status)
	var code apierr.Code
	if json.Unmarshal(body, &d) == nil && d.Error != nil && d.Error.Message != "" {
		msg = d.Error.Message
		if s, ok := d.Error.Code.(string); ok {
			code = apierr.Code(s) // the upstream's own code, passed through as OpenAI clients expect
		}
	}
	return &apierr.Error{Kind: kindOfStatus(status), Status: status, Code: code, Message: msg}
}

func kindOfStatus(status int) apierr.Kind {
	switch status {
	case 400, 422:
		return apierr.Invalid
	case 401:
		return apierr.Unauthenticated
	case 403:
		return apierr.PermissionDenied
	case 404:
		return apierr.NotFound
	case 408, 504:
		return apierr.Timeout
	case 409:
		return apierr.Conflict
	case 413:
		return apierr.TooLarge
	case 429:
		return apierr.RateLimited
	case 503:
		return apierr.Unavailable
	}
	if status >= 500 {
		return apierr.Upstream
	}
	return apierr.Invalid
}

// innerLimit bounds a non-streamed inner answer kept in memory.
const innerLimit = 32 << 20

// innerWriter is the ResponseWriter of an inner chat request: it keeps a JSON answer, or
// cuts a stream into events for the sink.
type innerWriter struct {
	outer  http.ResponseWriter
	header http.Header
	sink   chatSink
	status int
	stream bool
	buf    bytes.Buffer
	split  sse.Splitter
	err    error // the sink's error, or a stream's error event

	acc      chatOutcome
	tools    map[int]int // upstream tool call index → position in acc.ToolCalls
	finished bool
}

func (iw *innerWriter) Header() http.Header { return iw.header }

func (iw *innerWriter) WriteHeader(status int) {
	if iw.status != 0 {
		return
	}
	iw.status = status
	iw.stream = status == http.StatusOK && iw.sink != nil &&
		strings.HasPrefix(iw.header.Get("Content-Type"), "text/event-stream")
}

func (iw *innerWriter) Write(p []byte) (int, error) {
	if iw.status == 0 {
		iw.WriteHeader(http.StatusOK)
	}
	if iw.err != nil {
		return 0, iw.err
	}
	if !iw.stream {
		if iw.buf.Len()+len(p) > innerLimit {
			iw.err = &apierr.Error{Kind: apierr.Upstream, Code: apierr.CodeUpstreamAnswerTooLarge, Message: "the model's answer is too large"}
			return 0, iw.err
		}
		iw.buf.Write(p)
		return len(p), nil
	}
	iw.buf.Write(p)
	for {
		b := iw.buf.Bytes()
		end := iw.split.Cut(b)
		if end < 0 {
			break
		}
		ev := b[:end]
		iw.event(ev)
		iw.buf.Next(end)
		if iw.err != nil {
			return 0, iw.err
		}
	}
	return len(p), nil
}

// Flush is a no-op: the sink flushes what it writes to the client.
func (iw *innerWriter) Flush() {}

// SetWriteDeadline passes the relay's per-chunk write deadline on to the client's connection.
func (iw *innerWriter) SetWriteDeadline(t time.Time) error {
	return http.NewResponseController(iw.outer).SetWriteDeadline(t)
}

// event handles one SSE event of the chat stream.
func (iw *innerWriter) event(ev []byte) {
	data := sse.Data(ev)
	data = bytes.TrimSpace(data)
	if len(data) == 0 || iw.finished {
		return
	}
	if string(data) == "[DONE]" {
		iw.finishStream()
		return
	}
	var d chatDoc
	if err := json.Unmarshal(data, &d); err != nil {
		return // not a chunk; OpenAI-compatible servers send comments and keep-alives
	}
	if d.Error != nil {
		code := apierr.CodeUpstreamError
		if s, ok := d.Error.Code.(string); ok && s != "" {
			code = apierr.Code(s) // the upstream's own code, passed through
		}
		e := &apierr.Error{Kind: apierr.Upstream, Code: code, Message: d.Error.Message}
		iw.finished = true
		if err := iw.sink.fail(e); err != nil {
			iw.err = err
		} else {
			iw.err = errStreamFailed
		}
		return
	}
	if iw.acc.ID == "" {
		iw.acc.ID, iw.acc.Model = d.ID, d.Model
	}
	if d.Usage != nil {
		iw.acc.Usage = *d.Usage
	}
	for _, c := range d.Choices {
		if c.Index != 0 {
			continue
		}
		if c.Delta.Content != nil && *c.Delta.Content != "" {
			iw.acc.Text += *c.Delta.Content
			if err := iw.sink.text(*c.Delta.Content); err != nil {
				iw.err = err
				return
			}
		}
		for _, tc := range c.Delta.ToolCalls {
			if iw.tools == nil {
				iw.tools = make(map[int]int)
			}
			pos, ok := iw.tools[tc.Index]
			if !ok {
				pos = len(iw.acc.ToolCalls)
				iw.tools[tc.Index] = pos
				iw.acc.ToolCalls = append(iw.acc.ToolCalls, chatToolCall{ID: tc.ID, Name: tc.Function.Name})
				if err := iw.sink.toolStart(pos, tc.ID, tc.Function.Name); err != nil {
					iw.err = err
					return
				}
			}
			if tc.Function.Arguments != "" {
				iw.acc.ToolCalls[pos].Arguments += tc.Function.Arguments
				if err := iw.sink.toolArgs(pos, tc.Function.Arguments); err != nil {
					iw.err = err
					return
				}
			}
		}
		if c.FinishReason != nil && *c.FinishReason != "" {
			iw.acc.Finish = *c.FinishReason
		}
	}
}

// errStreamFailed ends an inner stream whose upstream reported an error the sink has
// already written to the client (so it is only logged).
var errStreamFailed = &apierr.Error{Kind: apierr.Upstream, Code: apierr.CodeUpstreamStreamError,
	Err: errors.New("the upstream stream reported an error")}

// finishStream tells the sink the stream is complete, once.
func (iw *innerWriter) finishStream() {
	if iw.finished || iw.err != nil {
		return
	}
	iw.finished = true
	if err := iw.sink.done(&iw.acc); err != nil {
		iw.err = err
	}
}
