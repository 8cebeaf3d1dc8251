// Package openai serves the OpenAI-compatible routes: chat completions, completions and
// embeddings forwarded to a model's backends, and the model list.
//
// Request bodies are read once, checked with package wire (model, stream) and sent to the
// backend as bytes; answers are relayed as they arrive, SSE chunks flushed one by one.
package openai

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/open-autoglm/autoglm/api/sse"
	"github.com/open-autoglm/autoglm/internal/apierr"
	"github.com/open-autoglm/autoglm/internal/auth"
	"github.com/open-autoglm/autoglm/internal/backend"
	"github.com/open-autoglm/autoglm/internal/cache"
	"github.com/open-autoglm/autoglm/internal/evloop"
	"github.com/open-autoglm/autoglm/internal/httpapi"
	"github.com/open-autoglm/autoglm/internal/httphead"
	"github.com/open-autoglm/autoglm/internal/reqbody"
	"github.com/open-autoglm/autoglm/internal/router"
	"github.com/open-autoglm/autoglm/internal/telemetry"
	"github.com/open-autoglm/autoglm/internal/usage"
	"github.com/open-autoglm/autoglm/internal/wire"

	"go.opentelemetry.io/otel/trace"
)

// Options configure the handlers.
type Options struct {
	// StreamWriteTimeout bounds each write of a stream chunk to the client. Zero:
	// DefaultStreamWriteTimeout; serve passes server.stream_write_timeout.
	StreamWriteTimeout time.Duration
	// Logger receives warnings about upstream failures. Required.
	Logger *slog.Logger
	// Cache, when not nil, answers repeated requests and coalesces identical ones in flight.
	Cache *cache.Cache
	// ModelVisible, when set, decides whether the caller in ctx may see a model in the model
	// list and by id (a key's model allow-list); m is the model, aliases included. Nil: the
	// caller's principal decides (every model is visible without one).
	ModelVisible func(ctx context.Context, m *router.Model) bool
	// CacheOwner, when set, names the caller in ctx for the response cache, which keeps each
	// owner's entries apart as cache.scope says. Nil: the caller's principal (its user and
	// key); without one every caller is the same owner.
	CacheOwner func(ctx context.Context) cache.Owner
	// OnDone, when set, is told what each model request consumed, after its answer is
	// written. It runs on the request's goroutine and must not block. Setting it turns on
	// exact usage accounting for streams: the gateway asks the upstream for the usage chunk
	// when the client did not, and strips it from what the client sees.
	OnDone func(ctx context.Context, o Outcome)
	// Owner, when set, names who the caller in ctx is for stored responses: a caller sees
	// only the responses stored under its name. Nil: the principal's user, or its key when
	// the key has no user; without a principal everyone is "".
	Owner func(ctx context.Context) string
	// Responses keeps stored responses (POST /v1/responses with store). Nil: an in-memory
	// store of the most recent MemoryResponses responses, lost on restart.
	Responses ResponseStore
}

// DefaultStreamWriteTimeout is the StreamWriteTimeout of handlers built without one (the
// default of server.stream_write_timeout).
const DefaultStreamWriteTimeout = 30 * time.Second

// CacheHeader tells the client whether the answer came from the response cache.
const CacheHeader = "X-AutoGLM-Cache"

// Handler serves the OpenAI-compatible routes over a registry.
type Handler struct {
	reg     *router.Registry
	opt     Options
	created int64 // the "created" time every model lists
	catalog atomic.Pointer[modelCatalog]
	count   usage.Counter

	memResponses *MemoryResponses
}

// New returns the handlers for reg. The model list is rendered once: the registry does not
// change while the server runs.
func New(reg *router.Registry, opt Options) *Handler {
	if opt.StreamWriteTimeout <= 0 {
		opt.StreamWriteTimeout = DefaultStreamWriteTimeout
	}
	if opt.CacheOwner == nil {
		opt.CacheOwner = cacheOwner
	}
	if opt.Owner == nil {
		opt.Owner = ownerOf
	}
	h := &Handler{reg: reg, opt: opt, created: time.Now().Unix()}
	if opt.Responses == nil {
		h.memResponses = NewMemoryResponses(DefaultMemoryResponses)
	}
	return h
}

// modelCatalog is the /v1/models answer of one model table, encoded once.
type modelCatalog struct {
	version uint64
	list    []byte
	byID    map[string][]byte // by name and alias
}

// catalogNow returns the model list of the table in force, building it again after a reload.
func (h *Handler) catalogNow() *modelCatalog {
	v := h.reg.Version()
	if c := h.catalog.Load(); c != nil && c.version == v {
		return c
	}
	c := &modelCatalog{version: v, byID: make(map[string][]byte)}
	list := []byte(`{"object":"list","data":[`)
	for i, m := range h.reg.Models() {
		entry := appendModel(nil, m.Name, h.created)
		c.byID[m.Name] = entry
		for _, a := range m.Aliases {
			c.byID[a] = entry
		}
		if i > 0 {
			list = append(list, ',')
		}
		list = append(list, entry...)
	}
	c.list = append(list, "]}"...)
	h.catalog.Store(c)
	return c
}

func appendModel(b []byte, id string, created int64) []byte {
	b = append(b, `{"id":`...)
	b = strconv.AppendQuote(b, id)
	b = append(b, `,"object":"model","created":`...)
	b = strconv.AppendInt(b, created, 10)
	return append(b, `,"owned_by":"autoglm"}`...)
}

// visibility is the filter of the models the caller in ctx may see, or nil when it sees every
// model: Options.ModelVisible, else its principal's allow-list when it has one.
func (h *Handler) visibility(ctx context.Context) func(context.Context, *router.Model) bool {
	if h.opt.ModelVisible != nil {
		return h.opt.ModelVisible
	}
	if p, ok := auth.FromContext(ctx); !ok || p == nil || len(p.Models) == 0 {
		return nil // the cached list: the common case costs nothing
	}
	return modelVisible
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
	visible := h.visibility(r.Context())
	cat := h.catalogNow()
	if visible == nil {
		writeJSON(w, http.StatusOK, cat.list)
		return nil
	}
	list := []byte(`{"object":"list","data":[`)
	n := 0
	for _, m := range h.reg.Models() {
		if !visible(r.Context(), m) {
			continue
		}
		if n > 0 {
			list = append(list, ',')
		}
		entry, ok := cat.byID[m.Name]
		if !ok {
			entry = appendModel(nil, m.Name, h.created) // a reload raced the catalog
		}
		list = append(list, entry...)
		n++
	}
	writeJSON(w, http.StatusOK, append(list, "]}"...))
	return nil
}

// GetModel serves GET /v1/models/{id}. Model ids may contain slashes ("org/model"), so the
// route captures the rest of the path. An alias answers with its model's entry.
func (h *Handler) GetModel(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	entry, ok := h.catalogNow().byID[id]
	if !ok {
		return modelNotFound(id)
	}
	if visible := h.visibility(r.Context()); visible != nil {
		if m, _ := h.reg.Lookup(id); m == nil || !visible(r.Context(), m) {
			return modelNotFound(id)
		}
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
	return &apierr.Error{Kind: apierr.NotFound, Code: apierr.CodeModelNotFound, Param: "model",
		Message: fmt.Sprintf("The model `%s` does not exist or you do not have access to it.", name)}
}

// readBody reads the whole request body, or takes it from an earlier stage that read it
// (package reqbody). The size limit is enforced by the server's http.MaxBytesReader.
func readBody(r *http.Request) ([]byte, error) { return reqbody.Read(r) }

func (h *Handler) forward(w http.ResponseWriter, r *http.Request, op backend.Op) error {
	body, err := readBody(r)
	if err != nil {
		return readError(err)
	}
	f, err := reqbody.Peek(r) // scanned once, whichever stage asked first
	if err != nil {
		e := &apierr.Error{Kind: apierr.Invalid, Code: apierr.CodeInvalidRequest, Message: err.Error(), Err: err} // its text is written for clients
		switch {
		case errors.Is(err, wire.ErrInvalidJSON), errors.Is(err, wire.ErrNotObject),
			errors.Is(err, wire.ErrInvalidUTF8), errors.Is(err, wire.ErrDuplicateKey):
			e.Code = apierr.CodeInvalidJSON
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
		return &apierr.Error{Kind: apierr.Invalid, Code: apierr.CodeMissingModel, Param: "model",
			Message: "you must provide a model parameter"}
	}
	if op == backend.OpEmbedding && f.Stream {
		return &apierr.Error{Kind: apierr.Invalid, Code: apierr.CodeInvalidRequest, Param: "stream",
			Message: "embeddings cannot be streamed"}
	}
	m, ok := h.reg.Lookup(f.Model)
	if !ok {
		return modelNotFound(f.Model)
	}
	if evloop.FromContext(r.Context()) != nil && !m.OnLoop() {
		// A backend that waits on something other than the loop's connections (the local
		// engine, an upstream through net/http): the rest of the request runs off the loop.
		evloop.Block(r.Context(), func() { err = h.forwardTo(w, r, op, body, f, m) })
		return err
	}
	return h.forwardTo(w, r, op, body, f, m)
}

// forwardTo serves a request whose body and fields are read and whose model is found.
func (h *Handler) forwardTo(w http.ResponseWriter, r *http.Request, op backend.Op, body []byte, f wire.Fields, m *router.Model) error {
	var err error
	info := telemetry.Info(r.Context())
	info.SetModel(m.Name)

	x := &exchange{op: op, stream: f.Stream, clientUsage: f.IncludeUsage, start: time.Now(), reqBody: body}
	if h.opt.OnDone != nil && f.Stream && !f.IncludeUsage {
		// Ask the upstream for the usage chunk the client did not ask for, and strip it from
		// what the client sees, so streamed requests are accounted exactly.
		if withUsage, nf, err := wire.WithIncludeUsage(body, f); err == nil {
			body, f, x.strip = withUsage, nf, true
		}
	}
	req := &router.Request{Op: op, Body: body, Fields: f, Stream: f.Stream, Header: forwardHeaders(r.Header), Client: r.Header}
	if h.opt.Cache == nil {
		err = h.call(w, r, m, req, x, nil)
	} else {
		err = h.cached(w, r, m, req, x)
	}
	h.done(r, m, x, err)
	x.release()
	if errors.Is(err, errBrokenAnswer) {
		panic(http.ErrAbortHandler)
	}
	return err
}

// exchange is the accounting state of one request as it passes through.
type exchange struct {
	op          backend.Op
	stream      bool
	clientUsage bool // the client asked for the usage chunk
	strip       bool // the gateway asked for it and must not pass it on
	start       time.Time
	reqBody     []byte

	backend   string
	cache     string
	status    int
	usage     Usage
	haveUsage bool
	chunks    int64     // SSE events carrying text
	firstText time.Time // when the first and the latest text events arrived
	lastText  time.Time
	respBytes int64
	doc       []byte  // a non-streamed answer (up to docLimit), or a stream's text events (up to textLimit) until usage is seen
	docBuf    *[]byte // the docPool buffer doc lives in, until release
}

// docLimit bounds how much of a non-streamed answer is kept to find its usage.
const docLimit = 1 << 20

// docPool holds the buffers exchange.doc is kept in: one for each request in flight, of 4 KiB
// to start with (a short answer, or a stream's text events until its usage chunk).
var docPool = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

// keep appends p to x.doc, taking a buffer from docPool for the first bytes.
func (x *exchange) keep(p []byte) {
	if x.docBuf == nil {
		x.docBuf = docPool.Get().(*[]byte)
		x.doc = (*x.docBuf)[:0]
	}
	x.doc = append(x.doc, p...)
}

// release hands x.doc's buffer back to docPool once the request is accounted; one grown
// past 64 KiB is left to the collector rather than kept.
func (x *exchange) release() {
	if x.docBuf != nil && cap(x.doc) <= 64<<10 {
		*x.docBuf = x.doc[:0]
		docPool.Put(x.docBuf)
	}
	x.doc, x.docBuf = nil, nil
}

// done reports the request's outcome to Options.OnDone.
func (h *Handler) done(r *http.Request, m *router.Model, x *exchange, err error) {
	span := trace.SpanFromContext(r.Context())
	if span.IsRecording() {
		span.SetAttributes(telemetry.GenAIOperationName.String(telemetry.GenAIOperation(x.op.String())),
			telemetry.GenAIRequestModel.String(m.Name), telemetry.AttrStream.Bool(x.stream))
		if x.cache != "" {
			span.SetAttributes(telemetry.AttrCacheResult.String(x.cache))
		}
	}
	if h.opt.OnDone == nil {
		return
	}
	status := x.status
	if err != nil {
		status = apierr.From(err).HTTPStatus()
	}
	if r.Context().Err() != nil {
		status = apierr.StatusClientClosed
	}
	u := x.usage
	if !x.haveUsage && x.cache != "hit" && x.backend != "" {
		if x.doc != nil {
			if du, ok := usageFromDocument(x.doc); ok {
				u, x.haveUsage = du, true
			}
		}
		if !x.haveUsage {
			u = h.estimate(x)
		}
	}
	if x.cache == "hit" {
		u = Usage{}
	}
	o := Outcome{Model: m.Name, Backend: x.backend, Op: x.op, Stream: x.stream, Status: status,
		Usage: u, Latency: time.Since(x.start), Cache: x.cache}
	if !x.firstText.IsZero() && x.cache != "hit" && err == nil {
		o.TTFT, o.TextEvents = x.firstText.Sub(x.start), x.chunks
		if x.chunks > 1 {
			o.TokenGap = x.lastText.Sub(x.firstText) / time.Duration(x.chunks-1)
		}
	}
	if span.IsRecording() && x.backend != "" {
		span.SetAttributes(telemetry.GenAIUsageInputTokens.Int64(u.PromptTokens), telemetry.GenAIUsageOutputTokens.Int64(u.CompletionTokens))
	}
	h.opt.OnDone(r.Context(), o)
}

// estimate counts a request's tokens when the upstream reported none.
func (h *Handler) estimate(x *exchange) Usage {
	if x.op == backend.OpEmbedding {
		return h.count.Estimate(x.reqBody, "", 0)
	}
	fallback := (x.respBytes + 3) / 4
	if x.stream {
		fallback = x.chunks
	}
	return h.count.Estimate(x.reqBody, answerText(x.doc, x.stream), fallback)
}

// call sends the request through the scheduling layer and relays the answer. When capture is
// not nil, the bytes relayed are also collected there (up to its limit) for the cache.
func (h *Handler) call(w http.ResponseWriter, r *http.Request, m *router.Model, req *router.Request, x *exchange, capture *capture) error {
	resp, t, err := h.reg.Do(r.Context(), m, req)
	if t != nil {
		telemetry.Info(r.Context()).SetBackend(t.Name)
		x.backend = t.Name
	}
	if err != nil {
		return err
	}
	if capture != nil && resp.StatusCode != http.StatusOK {
		capture = nil
	}
	x.status = resp.StatusCode
	return h.relay(w, r, resp, x, capture)
}

// cached serves a request through the response cache: a hit is answered from the cache (as
// SSE when the request streams); identical requests in flight wait for the first one's answer;
// a miss goes upstream and its answer, complete and successful, is stored.
func (h *Handler) cached(w http.ResponseWriter, r *http.Request, m *router.Model, req *router.Request, x *exchange) error {
	c := h.opt.Cache
	ctx := r.Context()
	op := req.Op
	var owner cache.Owner
	if h.opt.CacheOwner != nil {
		owner = h.opt.CacheOwner(ctx)
	}
	_, span := telemetry.StartSpan(ctx, telemetry.SpanCache)
	defer span.End() // ends at the lookup's result (setCache); this covers the early returns
	p := c.Decide(r.URL.Path, m.Name, req.Body, r.Header.Get("Cache-Control"), owner)
	setCache := func(v string) {
		x.cache = v
		w.Header().Set(CacheHeader, v)
		if span.IsRecording() {
			span.SetAttributes(telemetry.AttrCacheResult.String(v))
		}
		span.End()
	}
	if !p.Cacheable() {
		c.Count(true)
		setCache("bypass")
		return h.call(w, r, m, req, x, nil)
	}
	if p.Read {
		if e, ok := c.Get(ctx, p.Key); ok {
			setCache("hit")
			return h.serveCached(w, e, op, x)
		}
		leader, finish, e, err := c.Join(ctx, p.Key)
		if !leader {
			if err == nil {
				setCache("hit")
				return h.serveCached(w, e, op, x)
			}
			if ctx.Err() != nil {
				return apierr.From(ctx.Err())
			}
			// The leader's answer could not be cached: ask upstream ourselves.
			setCache("miss")
			return h.call(w, r, m, req, x, nil)
		}
		defer finish(nil, nil) // releases waiters if the answer is not stored below
		setCache("miss")
		capt := &capture{limit: c.MaxEntryBytes()}
		if err := h.call(w, r, m, req, x, capt); err != nil {
			return err
		}
		if e := capt.entry(op, req.Stream, p.TTL); e != nil {
			c.Set(ctx, p.Key, e)
			finish(e, nil)
		}
		return nil
	}
	// no-cache: fetch fresh, store the answer for others.
	setCache("miss")
	capt := &capture{limit: c.MaxEntryBytes()}
	if err := h.call(w, r, m, req, x, capt); err != nil {
		return err
	}
	if e := capt.entry(op, req.Stream, p.TTL); e != nil {
		c.Set(ctx, p.Key, e)
	}
	return nil
}

// serveCached answers from a cached document: as is, or replayed as SSE for a stream.
func (h *Handler) serveCached(w http.ResponseWriter, e *cache.Entry, op backend.Op, x *exchange) error {
	x.status = http.StatusOK
	if !x.stream {
		writeJSON(w, http.StatusOK, e.Body)
		return nil
	}
	sse, ok := cache.Replay(op == backend.OpChat, e.Body, x.clientUsage)
	if !ok {
		return &apierr.Error{Kind: apierr.Internal, Code: apierr.CodeCacheCorrupt, Err: errors.New("cached entry does not replay")}
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(sse)
	return nil
}

// capture collects a relayed answer for the cache, up to limit bytes.
type capture struct {
	buf      []byte
	limit    int64
	overflow bool
	complete bool
}

func (c *capture) add(p []byte) {
	if c.overflow {
		return
	}
	if int64(len(c.buf)+len(p)) > c.limit {
		c.overflow, c.buf = true, nil
		return
	}
	c.buf = append(c.buf, p...)
}

// entry turns a completely relayed answer into a cache entry, or nil when it cannot be cached.
func (c *capture) entry(op backend.Op, stream bool, ttl time.Duration) *cache.Entry {
	if c == nil || c.overflow || !c.complete || len(c.buf) == 0 {
		return nil
	}
	body := c.buf
	if stream {
		doc, ok := cache.Assemble(op == backend.OpChat, body)
		if !ok {
			return nil
		}
		body = doc
	} else if !json.Valid(body) || isErrorDocument(body) {
		return nil
	}
	return &cache.Entry{Body: body, TTL: ttl}
}

// isErrorDocument reports whether a JSON answer is an error object ({"error": ...}), which
// some upstreams send with status 200: it must not be cached as an answer.
func isErrorDocument(body []byte) bool {
	var doc struct {
		Error json.RawMessage `json:"error"`
	}
	return json.Unmarshal(body, &doc) == nil && len(doc.Error) > 0 && string(doc.Error) != "null"
}

func readError(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return apierr.From(err)
	}
	if errors.Is(err, context.Canceled) {
		return apierr.From(err)
	}
	return &apierr.Error{Kind: apierr.Invalid, Code: apierr.CodeBadBody, Message: "could not read the request body", Err: err}
}

// forwardHeaders picks the client headers an upstream may see: User-Agent, and the caller's
// W3C trace context (a well-formed traceparent, with its tracestate), passed on unchanged so
// that an upstream's traces continue the caller's with the caller's sampling decision. With
// tracing on, the attempt's own traceparent replaces it (telemetry.InjectUpstream, which also
// sets X-Trace-Id to the request's trace id: a client's X-Trace-Id reaches the upstream only
// when it was accepted as the trace id). No credential or billing header is forwarded
// (Authorization, OpenAI-Organization, OpenAI-Project, ...): the backend's own key,
// organization and project apply, so a client cannot choose which upstream account pays (see
// backend/openai.ClientHeaderRefused).
func forwardHeaders(h http.Header) http.Header {
	var out http.Header
	add := func(k, v string) {
		if out == nil {
			out = make(http.Header, 3)
		}
		out[k] = []string{v}
	}
	if v := h.Get("User-Agent"); v != "" {
		add("User-Agent", v)
	}
	if tp := h.Get("Traceparent"); telemetry.ValidTraceparent(tp) {
		add("Traceparent", tp)
		if ts := h.Get("Tracestate"); ts != "" && len(ts) <= maxTracestate {
			add("Tracestate", ts)
		}
	}
	return out
}

// maxTracestate is the longest tracestate passed on: W3C Trace Context allows a vendor to
// drop one longer than 512 characters.
const maxTracestate = 512

// relayed are the upstream response headers a client sees; the rest (hop-by-hop, cookies,
// the upstream's own rate-limit and server headers) stay behind. The upstream's X-Request-Id
// goes out as X-Upstream-Request-Id: the client's X-Request-Id is the gateway's trace id.
var relayed = []string{"Content-Type", "Openai-Processing-Ms", "Openai-Version"}

// The values of a stream's Cache-Control and X-Accel-Buffering, shared by every stream (each
// of one element, so that an append elsewhere copies rather than writes into them).
var (
	noCache          = []string{"no-cache"}
	accelBufferingNo = []string{"no"}
)

// copyPool holds relay buffers. 8 KiB: stream chunks are small, and every open stream holds one.
var copyPool = sync.Pool{New: func() any { b := make([]byte, 8<<10); return &b }}

// relay writes the backend's answer to the client. SSE is written chunk by chunk as the
// upstream sends it, each chunk flushed at once with its own write deadline; anything else is
// copied through.
func (h *Handler) relay(w http.ResponseWriter, r *http.Request, resp *backend.Response, x *exchange, capt *capture) error {
	defer resp.Body.Close()
	hdr := w.Header()
	// The names are canonical and the values are not changed, so each is passed on as the
	// upstream's one-value slice (capped, so an append elsewhere copies it) rather than copied.
	for _, k := range relayed {
		if vs := resp.Header[k]; len(vs) > 0 && vs[0] != "" {
			hdr[k] = vs[:1:1]
		}
	}
	if vs := resp.Header["X-Request-Id"]; len(vs) > 0 && vs[0] != "" {
		hdr["X-Upstream-Request-Id"] = vs[:1:1]
	}
	stream := strings.HasPrefix(httphead.Get(resp.Header, "Content-Type"), "text/event-stream")
	bp := copyPool.Get().(*[]byte)
	defer copyPool.Put(bp)
	buf := *bp
	if !stream {
		// Wait for the first bytes before answering: an upstream that sends its headers and
		// then nothing must give the client an error status, not an empty 200.
		var n int
		var err error
		for n == 0 && err == nil {
			n, err = resp.Body.Read(buf)
		}
		if n == 0 && err != io.EOF {
			if cerr := r.Context().Err(); cerr != nil {
				return apierr.From(cerr)
			}
			h.opt.Logger.WarnContext(r.Context(), "upstream answer broke off before its first byte", "err", err)
			return upstreamBreak(err, apierr.CodeUpstreamError, "the model's upstream broke off before answering")
		}
		if cl := httphead.Get(resp.Header, "Content-Length"); cl != "" {
			hdr.Set("Content-Length", cl)
		}
		w.WriteHeader(resp.StatusCode)
		var dst io.Writer = w
		if capt != nil {
			dst = io.MultiWriter(w, captureWriter{capt})
		}
		if h.opt.OnDone != nil && resp.StatusCode == http.StatusOK {
			dst = io.MultiWriter(dst, docWriter{x})
		}
		var werr error
		if n > 0 {
			_, werr = dst.Write(buf[:n])
		}
		var rest int64
		if werr == nil && err == nil {
			rest, err = io.CopyBuffer(dst, resp.Body, buf)
		}
		x.respBytes = int64(n) + rest
		if err == io.EOF {
			err = nil
		}
		if werr == nil && err != nil && r.Context().Err() == nil {
			// The upstream broke off after the status went out. The client must not take the
			// truncated body for a whole one: the connection is aborted (errBrokenAnswer).
			h.opt.Logger.WarnContext(r.Context(), "relay of a response failed", "err", err)
			if capt != nil {
				capt.complete = false
			}
			return errBrokenAnswer
		}
		if capt != nil {
			capt.complete = err == nil && werr == nil
		}
		if err == nil && werr == nil && capt == nil {
			// The answer is complete: send it now rather than after the accounting and logging
			// that follow, which the client need not wait for. An answer being cached is sent
			// once it is stored, so that a client that has it can count on a hit at any replica
			// sharing the cache.
			_ = http.NewResponseController(w).Flush()
		}
		return nil
	}
	hdr["Cache-Control"], hdr["X-Accel-Buffering"] = noCache, accelBufferingNo
	rc := http.NewResponseController(w)
	// Each write must go out within StreamWriteTimeout. Moving the deadline is a timer change
	// (a lock and a heap update), so it moves only once a sixteenth of the timeout has passed
	// since it last moved, not at every event: a write may then have between 15/16 of the
	// timeout and all of it.
	timeout := h.opt.StreamWriteTimeout
	moved := time.Now()
	_ = rc.SetWriteDeadline(moved.Add(timeout))
	// The headers go out with the first event, in one write: the scheduling layer hands over a
	// stream only once its first bytes have arrived, so flushing the headers alone would cost
	// the client an extra write and wake-up before its first token.
	w.WriteHeader(resp.StatusCode)
	// With accounting on, the stream is cut into events so the usage chunk can be read (and
	// dropped when only the gateway asked for it); events are written as they complete, byte
	// for byte. Without it, bytes go through as they arrive.
	events := h.opt.OnDone != nil && resp.StatusCode == http.StatusOK && x.op != backend.OpEmbedding
	var pending []byte
	var split sse.Splitter
	// write sends p at once; last says the upstream has ended, so the client's answer ends in
	// the same write rather than in one of its own after the handler returns. (A stream being
	// cached ends after it is stored, as a non-streamed answer being cached is sent once stored:
	// a client that has the whole answer can count on a hit.)
	ended := false // a write has carried last
	write := func(p []byte, last bool) bool {
		if last {
			ended = true
			if capt == nil {
				httpapi.EndOnFlush(w)
			}
		}
		if now := time.Now(); now.Sub(moved) >= timeout/16 {
			moved = now
			_ = rc.SetWriteDeadline(now.Add(timeout))
		}
		if _, werr := w.Write(p); werr != nil {
			return false // the client is gone or too slow; the deferred Close ends the upstream request
		}
		return rc.Flush() == nil
	}
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			if capt != nil {
				capt.add(buf[:n])
			}
			var now time.Time // read once per chunk, when it holds text

			chunk := buf[:n]
			if events && len(pending)+n > maxEventBytes {
				// An event larger than any real one: pass it and the rest of the stream
				// through uninspected rather than hold it (usage is then estimated).
				h.opt.Logger.WarnContext(r.Context(), "upstream sent an oversized stream event; relaying the rest uninspected",
					"limit_bytes", maxEventBytes)
				if len(pending) > 0 && !write(pending, false) {
					return nil
				}
				events, pending = false, nil
			}
			// rest is the start of an event not yet whole, held for the next read.
			var rest []byte
			if events {
				// Events are inspected where they lie (in buf, or in pending when an earlier
				// read left part of one) and the ones the client gets are moved together in
				// place, so an answer passes without being copied. The splitter searches only
				// the bytes it has not searched yet.
				data := chunk
				if len(pending) > 0 {
					pending = append(pending, chunk...)
					data = pending
				}
				kept, off := 0, 0
				for {
					end := split.Cut(data[off:])
					if end < 0 {
						break
					}
					ev := data[off : off+end]
					u, found, usageOnly, text := inspectEvent(ev)
					if text {
						if now.IsZero() {
							now = time.Now()
						}
						if x.firstText.IsZero() {
							x.firstText = now
						}
						x.lastText = now
						x.chunks++
						if !x.haveUsage && len(x.doc)+len(ev) <= textLimit {
							x.keep(ev)
						}
					}
					if found {
						x.usage, x.haveUsage = u, true
					}
					if !(found && usageOnly && x.strip) {
						if kept != off {
							copy(data[kept:], ev)
						}
						kept += end
					}
					off += end
				}
				chunk, rest = data[:kept], data[off:]
				if err == io.EOF && len(rest) > 0 {
					// The stream ended inside an event: what came of it goes out as it is.
					if kept != off {
						copy(data[kept:], rest)
					}
					chunk, rest = data[:kept+len(rest)], nil
				}
			}
			if len(chunk) > 0 && !write(chunk, err == io.EOF) {
				return nil
			}
			if events {
				// After the write: rest may lie in the bytes just written from.
				pending = append(pending[:0], rest...)
			}
		}
		if err == io.EOF {
			// The end came on its own (or its bytes were all held back or stripped): end the
			// client's answer now, with what is pending, not after the accounting that follows.
			if !ended && (len(pending) > 0 || capt == nil) && !write(pending, true) {
				return nil
			}
			if capt != nil {
				capt.complete = true
			}
			return nil
		}
		if err != nil {
			if r.Context().Err() != nil {
				return nil
			}
			// The upstream broke off mid-stream. Nothing can be retried once bytes reached the
			// client: end the stream with an error event a client can recognise.
			h.opt.Logger.WarnContext(r.Context(), "upstream stream broke off", "err", err)
			e := upstreamBreak(err, apierr.CodeUpstreamStreamInterrupted, "the model's upstream stopped in the middle of the stream")
			ev := append([]byte("\n\ndata: "), apierr.AppendOpenAIError(nil, e, telemetry.TraceID(r.Context()))...)
			ev = append(ev, "\n\n"...)
			_ = rc.SetWriteDeadline(time.Now().Add(h.opt.StreamWriteTimeout))
			_, _ = w.Write(ev)
			_ = rc.Flush()
			return nil
		}
	}
}

// maxEventBytes bounds the part of one server-sent event held to read its usage; an event
// larger than this (no real completion chunk comes close) is relayed uninspected.
const maxEventBytes = 1 << 20

// errBrokenAnswer reports a non-streamed answer cut off after its status was sent: the
// handler aborts the client's connection so the truncated body cannot pass for a whole one.
var errBrokenAnswer = &apierr.Error{Kind: apierr.Upstream, Code: apierr.CodeUpstreamError,
	Message: "the model's upstream broke off in the middle of its answer"}

// upstreamBreak is the client's error for an upstream body that failed: the idle or total
// timeout when one of them ended it, else an upstream error with code and message.
func upstreamBreak(err error, code apierr.Code, message string) *apierr.Error {
	switch {
	case errors.Is(err, router.ErrIdleTimeout):
		return &apierr.Error{Kind: apierr.Timeout, Code: apierr.CodeUpstreamIdleTimeout,
			Message: "the model's upstream sent nothing within the idle timeout", Err: err}
	case errors.Is(err, router.ErrTotalTimeout):
		return &apierr.Error{Kind: apierr.Timeout, Code: apierr.CodeRequestTimeout,
			Message: "the request reached its total timeout", Err: err}
	}
	return &apierr.Error{Kind: apierr.Upstream, Code: code, Message: message, Err: err}
}

// captureWriter feeds a capture from io.MultiWriter; it never fails, so the client's copy is
// never cut short by the cache.
type captureWriter struct{ c *capture }

func (cw captureWriter) Write(p []byte) (int, error) {
	cw.c.add(p)
	return len(p), nil
}

// docWriter keeps the start of a non-streamed answer (up to docLimit) to read its usage.
type docWriter struct{ x *exchange }

func (d docWriter) Write(p []byte) (int, error) {
	if room := docLimit - len(d.x.doc); room > 0 {
		d.x.keep(p[:min(len(p), room)])
	}
	return len(p), nil
}
