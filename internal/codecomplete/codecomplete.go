// Package codecomplete is the native code-completion API, POST /v1/code/complete: the code
// before and after the cursor in, the code for the gap out. It sends an OpenAI completions
// request with "suffix" through the gateway's completions route, in-process, so a local code model fills the middle
// with its fill-in-the-middle tokens (and an upstream that supports suffix does the same).
package codecomplete

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/open-autoglm/autoglm/api"
	"github.com/open-autoglm/autoglm/api/sse"
	"github.com/open-autoglm/autoglm/internal/apierr"
	"github.com/open-autoglm/autoglm/internal/auth"
	"github.com/open-autoglm/autoglm/internal/httpapi"
)

// Request is the body of POST /v1/code/complete.
type Request struct {
	Model string `json:"model"`
	// Prefix is the code before the cursor, Suffix the code after it. One must be set.
	Prefix string `json:"prefix"`
	Suffix string `json:"suffix"`
	// Language names the code's language ("go", "python"); it is echoed back and recorded,
	// and does not change the prompt.
	Language    string   `json:"language,omitempty"`
	MaxTokens   int      `json:"max_tokens,omitempty"`
	Temperature *float64 `json:"temperature,omitempty"`
	Stop        api.Stop `json:"stop,omitempty"`
	Seed        *int64   `json:"seed,omitempty"`
	// Stream sends the completion as server-sent events as it is generated: "delta" events
	// ({"completion": more text}), then one "done" event whose data is the whole Result (or an
	// "error" event with code and message).
	Stream bool `json:"stream,omitempty"`
}

// Result is the data of a successful answer.
type Result struct {
	Completion   string    `json:"completion"`
	FinishReason string    `json:"finish_reason"`
	Model        string    `json:"model"`
	Language     string    `json:"language,omitempty"`
	Usage        api.Usage `json:"usage"`
}

// DefaultMaxTokens is used when a request sets none.
const DefaultMaxTokens = 128

var languageRe = regexp.MustCompile(`^[A-Za-z0-9+#._-]{1,32}$`)

// Completer serves an OpenAI completions request (POST /v1/completions): the gateway's own
// handler, so that a code completion is routed, cached and accounted (usage records, model
// metrics, token quotas) exactly as a completion sent to that route.
type Completer func(w http.ResponseWriter, r *http.Request) error

// Routes returns the route, which answers in the native envelope. complete is the gateway's
// completions handler; each code completion runs through it in-process, on behalf of the
// caller (authentication and limits have already run on the outer request).
func Routes(complete Completer) []httpapi.Route {
	h := &handler{complete: complete}
	return []httpapi.Route{{Method: "POST", Pattern: "/v1/code/complete", Shape: apierr.ShapeEnvelope, Permission: auth.ModelsUse, Handler: h.serve}}
}

type handler struct{ complete Completer }

func invalid(param, msg string) error {
	return &apierr.Error{Kind: apierr.Invalid, Code: apierr.CodeInvalidRequest, Param: param, Message: msg}
}

func (h *handler) serve(w http.ResponseWriter, r *http.Request) error {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return apierr.From(err)
	}
	var req Request
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return invalid("", "the body is not a valid code completion request: "+trim(err.Error()))
	}
	switch {
	case req.Model == "":
		return invalid("model", "model is required")
	case req.Prefix == "" && req.Suffix == "":
		return invalid("prefix", "prefix or suffix is required")
	case req.Language != "" && !languageRe.MatchString(req.Language):
		return invalid("language", "language must be 1-32 letters, digits or +#._-")
	case req.MaxTokens < 0 || req.MaxTokens > 8192:
		return invalid("max_tokens", "max_tokens must be between 1 and 8192")
	}
	if req.MaxTokens == 0 {
		req.MaxTokens = DefaultMaxTokens
	}
	cr := api.CompletionRequest{Model: req.Model, Prompt: api.TextInput(req.Prefix), Suffix: req.Suffix, MaxTokens: req.MaxTokens,
		Temperature: req.Temperature, Stop: req.Stop, Seed: req.Seed}
	if req.Stream {
		cr.Stream = true
		cr.StreamOptions = &api.StreamOptions{IncludeUsage: true}
	}
	out, err := json.Marshal(cr)
	if err != nil {
		return err
	}
	ir := r.Clone(r.Context())
	ir.URL.Path = "/v1/completions"
	ir.RequestURI = ""
	ir.Body = io.NopCloser(bytes.NewReader(out))
	ir.ContentLength = int64(len(out))
	ir.Header.Set("Content-Type", "application/json")
	iw := &innerWriter{outer: w, header: make(http.Header), req: &req}
	if req.Stream {
		iw.res = Result{Model: req.Model, Language: req.Language}
	}
	if err := h.complete(iw, ir); err != nil {
		if iw.started {
			// The stream has begun: the error is told as an event.
			iw.fail(apierr.From(err))
			return nil
		}
		return err
	}
	if iw.err != nil {
		return iw.err
	}
	if iw.status != http.StatusOK {
		return upstreamError(iw.status, iw.buf.Bytes())
	}
	if iw.stream {
		iw.finish()
		return nil
	}
	var c api.Completion
	if err := json.Unmarshal(iw.buf.Bytes(), &c); err != nil || len(c.Choices) == 0 {
		return apierr.New(apierr.CodeUpstreamBadAnswer, "the model sent a malformed completion")
	}
	res := Result{Completion: c.Choices[0].Text, FinishReason: string(c.Choices[0].FinishReason), Model: req.Model, Language: req.Language}
	if c.Usage != nil {
		res.Usage = *c.Usage
	}
	return httpapi.WriteData(w, r, http.StatusOK, res)
}

// upstreamError turns an error answer of the completions route into an error with its status,
// code and message, which the route writes in the envelope.
func upstreamError(status int, data []byte) error {
	var e api.ErrorResponse
	msg := fmt.Sprintf("the model answered %d", status)
	if json.Unmarshal(data, &e) == nil && e.Error.Message != "" {
		msg = e.Error.Message
	}
	kind := apierr.Upstream
	switch {
	case status == http.StatusNotFound:
		kind = apierr.NotFound
	case status == http.StatusTooManyRequests:
		kind = apierr.RateLimited
	case status/100 == 4:
		kind = apierr.Invalid
	}
	code := apierr.CodeUpstreamStatus
	if e.Error.Code != "" {
		code = apierr.Code(e.Error.Code) // the completions route's own code, passed on
	}
	return &apierr.Error{Kind: kind, Status: status, Code: code, Message: msg}
}

// innerLimit bounds a non-streamed answer kept in memory.
const innerLimit = 16 << 20

// innerWriter is the ResponseWriter of the inner completions request: it keeps a JSON answer,
// or turns the completion stream into the code completion stream as it arrives.
type innerWriter struct {
	outer   http.ResponseWriter
	header  http.Header
	req     *Request
	status  int
	stream  bool
	started bool // the code completion stream has been sent its header
	done    bool
	buf     bytes.Buffer
	split   sse.Splitter
	err     error
	res     Result // the streamed answer so far
}

func (iw *innerWriter) Header() http.Header { return iw.header }

func (iw *innerWriter) WriteHeader(status int) {
	if iw.status != 0 {
		return
	}
	iw.status = status
	iw.stream = status == http.StatusOK && iw.req.Stream && strings.HasPrefix(iw.header.Get("Content-Type"), "text/event-stream")
	if iw.stream {
		h := iw.outer.Header()
		h.Set("Content-Type", "text/event-stream")
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Accel-Buffering", "no")
		iw.outer.WriteHeader(http.StatusOK)
		iw.started = true
		_ = http.NewResponseController(iw.outer).Flush()
	}
}

func (iw *innerWriter) Write(p []byte) (int, error) {
	if iw.status == 0 {
		iw.WriteHeader(http.StatusOK)
	}
	if iw.err != nil {
		return 0, iw.err
	}
	if iw.buf.Len()+len(p) > innerLimit {
		iw.err = apierr.New(apierr.CodeUpstreamAnswerTooLarge, "the model's answer is too large")
		return 0, iw.err
	}
	iw.buf.Write(p)
	if !iw.stream {
		return len(p), nil
	}
	for {
		b := iw.buf.Bytes()
		end := iw.split.Cut(b)
		if end < 0 {
			break
		}
		iw.event(b[:end])
		iw.buf.Next(end)
		if iw.err != nil {
			return 0, iw.err
		}
	}
	return len(p), nil
}

// Flush is a no-op: events are flushed to the client as they are written.
func (iw *innerWriter) Flush() {}

// SetWriteDeadline passes the relay's per-chunk write deadline on to the client's connection.
func (iw *innerWriter) SetWriteDeadline(t time.Time) error {
	return http.NewResponseController(iw.outer).SetWriteDeadline(t)
}

// chunk is the part of a completion stream chunk the translation reads.
type chunk struct {
	Choices []struct {
		Index        int     `json:"index"`
		Text         string  `json:"text"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *api.Usage `json:"usage"`
	Error *struct {
		Message string `json:"message"`
		Code    any    `json:"code"`
	} `json:"error"`
}

// event handles one SSE event of the completion stream.
func (iw *innerWriter) event(ev []byte) {
	data := sse.Data(ev)
	data = bytes.TrimSpace(data)
	if len(data) == 0 || iw.done {
		return
	}
	if string(data) == "[DONE]" {
		iw.finish()
		return
	}
	var c chunk
	if json.Unmarshal(data, &c) != nil {
		return
	}
	if c.Error != nil {
		code := apierr.CodeUpstreamError
		if s, _ := c.Error.Code.(string); s != "" {
			code = apierr.Code(s) // the completions route's own code, passed on
		}
		iw.fail(&apierr.Error{Kind: apierr.Upstream, Code: code, Message: c.Error.Message})
		return
	}
	if c.Usage != nil {
		iw.res.Usage = *c.Usage
	}
	for _, ch := range c.Choices {
		if ch.Index != 0 {
			continue
		}
		if ch.FinishReason != nil && *ch.FinishReason != "" {
			iw.res.FinishReason = *ch.FinishReason
		}
		if ch.Text != "" {
			iw.res.Completion += ch.Text
			b, _ := json.Marshal(delta{Completion: ch.Text})
			iw.send("delta", b)
		}
	}
}

// delta is the data of a "delta" event: more of the completion.
type delta struct {
	Completion string `json:"completion"`
}

// send writes one event to the client and flushes it.
func (iw *innerWriter) send(name string, data []byte) {
	if iw.err != nil {
		return
	}
	b, err := sse.AppendEvent(nil, sse.Event{Type: name, Data: data})
	if err == nil {
		_, err = iw.outer.Write(b)
	}
	if err != nil {
		iw.err = err
		return
	}
	_ = http.NewResponseController(iw.outer).Flush()
}

// finish sends the "done" event, whose data is the whole Result, once.
func (iw *innerWriter) finish() {
	if iw.done {
		return
	}
	iw.done = true
	b, _ := json.Marshal(iw.res)
	iw.send("done", b)
}

// fail sends an "error" event with the error's public code and message, once.
func (iw *innerWriter) fail(e *apierr.Error) {
	if iw.done {
		return
	}
	iw.done = true
	b, _ := json.Marshal(struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}{e.PublicCode(), e.PublicMessage()})
	iw.send("error", b)
}

func trim(s string) string {
	if len(s) > 200 {
		return s[:200]
	}
	return s
}
