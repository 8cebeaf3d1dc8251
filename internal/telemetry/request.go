package telemetry

import (
	"context"
	"sync"

	"go.opentelemetry.io/otel/trace"
)

// RequestInfo is what the access log says about one request beyond method, path and status.
// Handlers fill it as they learn things (the model asked for, the backend chosen). It is
// safe for concurrent use because a streaming handler and the logger may touch it from
// different goroutines.
type RequestInfo struct {
	mu      sync.Mutex
	model   string
	backend string
	route   string
}

type infoKey struct{}

// WithRequestInfo returns a context carrying info.
func WithRequestInfo(ctx context.Context, info *RequestInfo) context.Context {
	return context.WithValue(ctx, infoKey{}, info)
}

// WithRequest returns a context carrying a request's trace id and its info, as WithTraceID
// and WithRequestInfo would, in one layer: the server's first stage sets both for every
// request, and one layer is one allocation and one step fewer for every later lookup.
//
// It also looks once whether ctx holds a span. When it does not (tracing off, the usual case),
// every later search for the span that reaches this layer ends here: the request's stages ask
// for it four or five times, and each search would otherwise walk on through the connection's
// and the server's contexts to the root.
func WithRequest(ctx context.Context, id string, info *RequestInfo) context.Context {
	return &requestCtx{Context: ctx, id: id, info: info, noSpan: ctx.Value(spanKey) == nil}
}

// requestCtx is WithRequest's context. id is kept boxed, so that TraceID's lookups allocate
// nothing; cancellation and every other value come from the parent.
type requestCtx struct {
	context.Context
	id     any // string
	info   *RequestInfo
	noSpan bool // the parent holds no span
}

func (c *requestCtx) Value(key any) any {
	switch key.(type) {
	case traceKey:
		return c.id
	case infoKey:
		return c.info
	}
	if c.noSpan && key == spanKey {
		return nil
	}
	return c.Context.Value(key)
}

// spanKey is the key OpenTelemetry keeps a context's span under. The key's type is its own
// and unexported, so it is learnt once, when the program starts, by asking a context that
// notes the key it is asked for. TestSpanKey holds it to trace.ContextWithSpan.
var spanKey = func() any {
	var k keyNoter
	trace.SpanFromContext(&k)
	return k.key
}()

// keyNoter is a context that notes the last key it was asked for and holds nothing.
type keyNoter struct {
	context.Context
	key any
}

func (k *keyNoter) Value(key any) any {
	k.key = key
	return nil
}

func (c *requestCtx) String() string { return "telemetry.WithRequest" }

// Info returns the RequestInfo in ctx, or nil.
func Info(ctx context.Context) *RequestInfo {
	ri, _ := ctx.Value(infoKey{}).(*RequestInfo)
	return ri
}

// SetModel records the model the request asked for. Safe on a nil receiver.
func (ri *RequestInfo) SetModel(m string) {
	if ri == nil {
		return
	}
	ri.mu.Lock()
	ri.model = m
	ri.mu.Unlock()
}

// SetBackend records the backend that served the request. Safe on a nil receiver.
func (ri *RequestInfo) SetBackend(b string) {
	if ri == nil {
		return
	}
	ri.mu.Lock()
	ri.backend = b
	ri.mu.Unlock()
}

// Snapshot returns the recorded model and backend.
func (ri *RequestInfo) Snapshot() (model, backend string) {
	if ri == nil {
		return "", ""
	}
	ri.mu.Lock()
	defer ri.mu.Unlock()
	return ri.model, ri.backend
}

// SetRoute records the route pattern that serves the request. Safe on a nil receiver.
func (ri *RequestInfo) SetRoute(p string) {
	if ri == nil {
		return
	}
	ri.mu.Lock()
	ri.route = p
	ri.mu.Unlock()
}

// Route returns the recorded route pattern.
func (ri *RequestInfo) Route() string {
	if ri == nil {
		return ""
	}
	ri.mu.Lock()
	defer ri.mu.Unlock()
	return ri.route
}
