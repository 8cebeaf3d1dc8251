package server

import (
	"context"
	"net/http"
	"strconv"

	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/open-autoglm/autoglm/internal/apierr"
	"github.com/open-autoglm/autoglm/internal/httpapi"
	"github.com/open-autoglm/autoglm/internal/telemetry"
)

// serverSpan is the stage that exists only with tracing on: it continues the caller's trace
// (a W3C traceparent) or starts one whose id is the request's trace id, and makes the
// request's server span, the parent of every stage's span. The span is named for the route
// pattern that served the request ("POST /v1/chat/completions"), never the raw path.
func (s *Server) serverSpan(next http.Handler) http.Handler {
	tracer := s.opts.Tracing.Tracer(telemetry.Scope)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := telemetry.Extract(r.Context(), r.Header)
		ctx, span := tracer.Start(ctx, r.Method, trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(semconv.HTTPRequestMethodKey.String(r.Method), semconv.URLPath(r.URL.Path)))
		defer span.End()
		if id := telemetry.TraceID(ctx); id != span.SpanContext().TraceID().String() {
			span.SetAttributes(telemetry.AttrTraceID.String(id))
		}
		next.ServeHTTP(w, r.WithContext(ctx))
		status := http.StatusOK
		if rec := recorderOf(w); rec != nil && rec.status != 0 {
			status = rec.status
		}
		if r.Context().Err() != nil {
			status = apierr.StatusClientClosed
		}
		route := telemetry.Info(r.Context()).Route()
		if route != "" {
			span.SetName(r.Method + " " + route)
			span.SetAttributes(semconv.HTTPRoute(route))
		}
		span.SetAttributes(semconv.HTTPResponseStatusCode(status))
		if model, backend := telemetry.Info(r.Context()).Snapshot(); model != "" {
			span.SetAttributes(telemetry.GenAIRequestModel.String(model), telemetry.AttrBackend.String(backend))
		}
		if status >= 500 && status != apierr.StatusClientClosed {
			span.SetStatus(codes.Error, "status "+strconv.Itoa(status))
		}
	})
}

// limitSpan wraps h in the limit stage with the admission as a span of its own: it ends when
// the limits let the request through (or refuse it), so the handler's spans are its siblings.
func limitSpan(limit httpapi.Stage, h httpapi.HandlerFunc) httpapi.HandlerFunc {
	inner := limit(func(w http.ResponseWriter, r *http.Request) error {
		if span := trace.SpanFromContext(r.Context()); span.IsRecording() {
			span.End()
			if parent, ok := r.Context().Value(limitParentKey{}).(trace.Span); ok {
				r = r.WithContext(trace.ContextWithSpan(r.Context(), parent))
			}
		}
		return h(w, r)
	})
	return func(w http.ResponseWriter, r *http.Request) error {
		ctx, span := telemetry.StartSpan(r.Context(), telemetry.SpanLimits)
		if !span.IsRecording() {
			return inner(w, r)
		}
		parent := trace.SpanFromContext(r.Context())
		err := inner(w, r.WithContext(context.WithValue(ctx, limitParentKey{}, parent)))
		if span.IsRecording() { // refused: the handler never ran
			telemetry.Fail(span, "limited", "request refused by a limit")
			span.End()
		}
		return err
	}
}

// limitParentKey holds the span the limits span was started under, restored for the handler.
type limitParentKey struct{}
