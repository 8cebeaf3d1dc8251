package telemetry

import (
	"context"
	"sync"
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
func WithRequest(ctx context.Context, id string, info *RequestInfo) context.Context {
	return &requestCtx{Context: ctx, id: id, info: info}
}

// requestCtx is WithRequest's context. id is kept boxed, so that TraceID's lookups allocate
// nothing; cancellation and every other value come from the parent.
type requestCtx struct {
	context.Context
	id   any // string
	info *RequestInfo
}

func (c *requestCtx) Value(key any) any {
	switch key.(type) {
	case traceKey:
		return c.id
	case infoKey:
		return c.info
	}
	return c.Context.Value(key)
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
