// Package openai serves the OpenAI-compatible routes: chat completions, completions and
// embeddings forwarded to a model's backends, and the model list.
//
// Request bodies are read once, checked with package wire (model, stream) and sent to the
// backend as bytes; answers are relayed as they arrive, SSE chunks flushed one by one.
package openai

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/open-autoglm/autoglm/internal/apierr"
	"github.com/open-autoglm/autoglm/internal/backend"
	"github.com/open-autoglm/autoglm/internal/router"
	"github.com/open-autoglm/autoglm/internal/telemetry"
	"github.com/open-autoglm/autoglm/internal/wire"
)

// Options configure the handlers.
type Options struct {
	// StreamWriteTimeout bounds each write of a stream chunk to the client.
	StreamWriteTimeout time.Duration
	// Logger receives warnings about upstream failures. Required.
	Logger *slog.Logger
}

// Handler serves the OpenAI-compatible routes over a registry.
type Handler struct {
	reg       *router.Registry
	opt       Options
	modelList []byte
	modelByID map[string][]byte
}

// New returns the handlers for reg. The model list is rendered once: the registry does not
// change while the server runs.
func New(reg *router.Registry, opt Options) *Handler {
	h := &Handler{reg: reg, opt: opt, modelByID: make(map[string][]byte)}
	created := time.Now().Unix()
	list := []byte(`{"object":"list","data":[`)
	for i, m := range reg.Models() {
		entry := appendModel(nil, m.Name, created)
		h.modelByID[m.Name] = entry
		for _, a := range m.Aliases {
			h.modelByID[a] = entry
		}
		if i > 0 {
			list = append(list, ',')
		}
		list = append(list, entry...)
	}
	h.modelList = append(list, "]}"...)
	return h
}

func appendModel(b []byte, id string, created int64) []byte {
	b = append(b, `{"id":`...)
	b = strconv.AppendQuote(b, id)
	b = append(b, `,"object":"model","created":`...)
	b = strconv.AppendInt(b, created, 10)
	return append(b, `,"owned_by":"autoglm"}`...)
}

// ChatCompletions serves POST /v1/chat/completions.
func (h *Handler) ChatCompletions(w http.ResponseWriter, r *http.Request) error {
	return h.forward(w, r, backend.OpChat)
}

// Completions serves POST /v1/completions.
func (h *Handler) Completions(w http.ResponseWriter, r *http.Request) error {
	return h.forward(w, r, backend.OpCompletion)
}

// Embeddings serves POST /v1/embeddings.
func (h *Handler) Embeddings(w http.ResponseWriter, r *http.Request) error {
	return h.forward(w, r, backend.OpEmbedding)
}

// ListModels serves GET /v1/models.
func (h *Handler) ListModels(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, h.modelList)
	return nil
}

// GetModel serves GET /v1/models/{id}. Model ids may contain slashes ("org/model"), so the
// route captures the rest of the path. An alias answers with its model's entry.
func (h *Handler) GetModel(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	entry, ok := h.modelByID[id]
	if !ok {
		return modelNotFound(id)
	}
	writeJSON(w, http.StatusOK, entry)
	return nil
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func modelNotFound(name string) error {
	return &apierr.Error{Kind: apierr.NotFound, Code: "model_not_found", Param: "model",
		Message: fmt.Sprintf("The model `%s` does not exist or you do not have access to it.", name)}
}

var bodyPool = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

// readBody reads the whole request body into a pooled buffer. The caller returns the buffer
// with bodyPool.Put when the request is done. The size limit is enforced by the server's
// http.MaxBytesReader.
func readBody(r *http.Request) (*[]byte, error) {
	bp := bodyPool.Get().(*[]byte)
	b := (*bp)[:0]
	if n := r.ContentLength; n > int64(cap(b)) && n < 64<<20 {
		b = make([]byte, 0, n+1)
	}
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Body.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			*bp = b
			return bp, nil
		}
		if err != nil {
			*bp = b[:0]
			bodyPool.Put(bp)
			return nil, err
		}
	}
}

func (h *Handler) forward(w http.ResponseWriter, r *http.Request, op backend.Op) error {
	bp, err := readBody(r)
	if err != nil {
		return readError(err)
	}
	defer func() {
		if cap(*bp) <= 1<<20 { // do not keep huge buffers alive
			*bp = (*bp)[:0]
			bodyPool.Put(bp)
		}
	}()
	body := *bp
	f, err := wire.Peek(body)
	if err != nil {
		e := &apierr.Error{Kind: apierr.Invalid, Code: "invalid_request", Message: err.Error()}
		switch {
		case errors.Is(err, wire.ErrInvalidJSON), errors.Is(err, wire.ErrNotObject):
			e.Code = "invalid_json"
		case errors.Is(err, wire.ErrModelType):
			e.Param = "model"
		case errors.Is(err, wire.ErrStreamType):
			e.Param = "stream"
		default:
			e.Param = "stream_options"
		}
		return e
	}
	if !f.HasModel || f.Model == "" {
		return &apierr.Error{Kind: apierr.Invalid, Code: "missing_model", Param: "model",
			Message: "you must provide a model parameter"}
	}
	if op == backend.OpEmbedding && f.Stream {
		return &apierr.Error{Kind: apierr.Invalid, Code: "invalid_request", Param: "stream",
			Message: "embeddings cannot be streamed"}
	}
	m, ok := h.reg.Lookup(f.Model)
	if !ok {
		return modelNotFound(f.Model)
	}
	info := telemetry.Info(r.Context())
	info.SetModel(m.Name)

	req := &router.Request{Op: op, Body: body, Fields: f, Stream: f.Stream, Header: forwardHeaders(r.Header), Client: r.Header}
	resp, t, err := h.reg.Do(r.Context(), m, req)
	if t != nil {
		info.SetBackend(t.Name)
	}
	if err != nil {
		return err
	}
	return h.relay(w, r, resp)
}

func readError(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return apierr.From(err)
	}
	if errors.Is(err, context.Canceled) {
		return apierr.From(err)
	}
	return &apierr.Error{Kind: apierr.Invalid, Code: "bad_body", Message: "could not read the request body", Err: err}
}

// forwardHeaders picks the client headers an upstream may need. Authorization is never
// forwarded: the backend's own key is used.
func forwardHeaders(h http.Header) http.Header {
	var out http.Header
	for _, k := range []string{"Openai-Organization", "Openai-Project", "User-Agent"} {
		if v := h.Get(k); v != "" {
			if out == nil {
				out = make(http.Header, 2)
			}
			out.Set(k, v)
		}
	}
	if id := h.Get(telemetry.TraceHeader); id != "" {
		if out == nil {
			out = make(http.Header, 1)
		}
		out.Set(telemetry.TraceHeader, id)
	}
	return out
}

// relayed are the upstream response headers a client sees; the rest (hop-by-hop, cookies,
// the upstream's own rate-limit and server headers) stay behind.
var relayed = []string{"Content-Type", "X-Request-Id", "Openai-Processing-Ms", "Openai-Version"}

var copyPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// relay writes the backend's answer to the client. SSE is written chunk by chunk as the
// upstream sends it, each chunk flushed at once with its own write deadline; anything else is
// copied through.
func (h *Handler) relay(w http.ResponseWriter, r *http.Request, resp *backend.Response) error {
	defer resp.Body.Close()
	hdr := w.Header()
	for _, k := range relayed {
		if v := resp.Header.Get(k); v != "" {
			hdr.Set(k, v)
		}
	}
	stream := strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream")
	bp := copyPool.Get().(*[]byte)
	defer copyPool.Put(bp)
	buf := *bp
	if !stream {
		if cl := resp.Header.Get("Content-Length"); cl != "" {
			hdr.Set("Content-Length", cl)
		}
		w.WriteHeader(resp.StatusCode)
		_, err := io.CopyBuffer(w, resp.Body, buf)
		if err != nil && r.Context().Err() == nil {
			h.opt.Logger.WarnContext(r.Context(), "relay of a response failed", "err", err)
		}
		return nil
	}
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("X-Accel-Buffering", "no")
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Now().Add(h.opt.StreamWriteTimeout))
	w.WriteHeader(resp.StatusCode)
	_ = rc.Flush()
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			_ = rc.SetWriteDeadline(time.Now().Add(h.opt.StreamWriteTimeout))
			if _, werr := w.Write(buf[:n]); werr != nil {
				return nil // the client is gone or too slow; the deferred Close ends the upstream request
			}
			if ferr := rc.Flush(); ferr != nil {
				return nil
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			if r.Context().Err() != nil {
				return nil
			}
			// The upstream broke off mid-stream. Nothing can be retried once bytes reached the
			// client: end the stream with an error event a client can recognise.
			h.opt.Logger.WarnContext(r.Context(), "upstream stream broke off", "err", err)
			e := &apierr.Error{Kind: apierr.Upstream, Code: "upstream_stream_interrupted",
				Message: "the model's upstream stopped in the middle of the stream"}
			switch {
			case errors.Is(err, router.ErrIdleTimeout):
				e = &apierr.Error{Kind: apierr.Timeout, Code: "upstream_idle_timeout",
					Message: "the model's upstream sent nothing within the idle timeout"}
			case errors.Is(err, router.ErrTotalTimeout):
				e = &apierr.Error{Kind: apierr.Timeout, Code: "request_timeout",
					Message: "the request reached its total timeout"}
			}
			ev := append([]byte("\n\ndata: "), apierr.AppendOpenAIError(nil, e, telemetry.TraceID(r.Context()))...)
			ev = append(ev, "\n\n"...)
			_ = rc.SetWriteDeadline(time.Now().Add(h.opt.StreamWriteTimeout))
			_, _ = w.Write(ev)
			_ = rc.Flush()
			return nil
		}
	}
}
