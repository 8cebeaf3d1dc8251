package telemetry

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/open-autoglm/autoglm/internal/config"
)

// Scope is the instrumentation scope of every span autoglm makes.
const Scope = "github.com/open-autoglm/autoglm"

// propagator reads and writes W3C trace context (traceparent, tracestate) and baggage: what
// incoming requests are continued from and what upstream requests carry.
var propagator propagation.TextMapPropagator = propagation.NewCompositeTextMapPropagator(
	propagation.TraceContext{}, propagation.Baggage{})

// Extract returns ctx with the W3C trace context and baggage of an incoming request's headers,
// for its server span to continue.
func Extract(ctx context.Context, h http.Header) context.Context {
	return propagator.Extract(ctx, propagation.HeaderCarrier(h))
}

// Tracing is a started OpenTelemetry pipeline: spans are batched and exported over OTLP until
// Shutdown.
type Tracing struct {
	tp *sdktrace.TracerProvider
}

// Provider returns the tracer provider that request spans start from.
func (t *Tracing) Provider() trace.TracerProvider { return t.tp }

// Shutdown exports the spans still buffered and stops the exporter; ctx bounds the wait.
func (t *Tracing) Shutdown(ctx context.Context) error { return t.tp.Shutdown(ctx) }

// TracingEnabled reports whether cfg and the environment turn tracing on: cfg.Enabled or
// OTEL_TRACES_EXPORTER=otlp, unless OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none.
func TracingEnabled(cfg config.Tracing, env config.LookupEnv) bool {
	if v, _ := env("OTEL_SDK_DISABLED"); strings.EqualFold(strings.TrimSpace(v), "true") {
		return false
	}
	exp, set := env("OTEL_TRACES_EXPORTER")
	exp = strings.ToLower(strings.TrimSpace(exp))
	if set && exp == "none" {
		return false
	}
	return cfg.Enabled || (set && exp == "otlp")
}

// StartTracing builds the exporter cfg asks for (fields left empty come from the OTEL_*
// variables in env, as the OpenTelemetry specification names them) and the provider over it.
// It returns nil, nil when tracing is off (TracingEnabled). Nothing is sent before the first
// span ends; an unreachable collector costs dropped spans, never a failed request.
func StartTracing(ctx context.Context, cfg config.Tracing, version string, env config.LookupEnv) (*Tracing, error) {
	if !TracingEnabled(cfg, env) {
		return nil, nil
	}
	protocol := cfg.Protocol
	if protocol == "" {
		protocol = firstEnv(env, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	if protocol == "" {
		protocol = config.TracingHTTP
	}
	timeout := cfg.Timeout.D()
	var (
		exp sdktrace.SpanExporter
		err error
	)
	switch protocol {
	case config.TracingHTTP:
		var opts []otlptracehttp.Option
		if cfg.Endpoint != "" {
			opts = append(opts, otlptracehttp.WithEndpointURL(cfg.Endpoint))
		}
		if len(cfg.Headers) > 0 {
			opts = append(opts, otlptracehttp.WithHeaders(cfg.Headers))
		}
		if timeout > 0 {
			opts = append(opts, otlptracehttp.WithTimeout(timeout))
		}
		exp, err = otlptracehttp.New(ctx, opts...)
	case config.TracingGRPC:
		var opts []otlptracegrpc.Option
		if cfg.Endpoint != "" {
			opts = append(opts, otlptracegrpc.WithEndpointURL(cfg.Endpoint))
		}
		if len(cfg.Headers) > 0 {
			opts = append(opts, otlptracegrpc.WithHeaders(cfg.Headers))
		}
		if timeout > 0 {
			opts = append(opts, otlptracegrpc.WithTimeout(timeout))
		}
		exp, err = otlptracegrpc.New(ctx, opts...)
	default:
		return nil, fmt.Errorf("tracing: unknown OTLP protocol %q (want %q or %q)", protocol, config.TracingHTTP, config.TracingGRPC)
	}
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	res, err := tracingResource(ctx, cfg.ServiceName, version)
	if err != nil {
		_ = exp.Shutdown(ctx)
		return nil, fmt.Errorf("tracing: %w", err)
	}
	opts := []sdktrace.TracerProviderOption{
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(res),
		sdktrace.WithIDGenerator(idGenerator{}),
	}
	if cfg.SampleRatio > 0 {
		opts = append(opts, sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(cfg.SampleRatio))))
	} // else the SDK reads OTEL_TRACES_SAMPLER (default: parent-based, always on)
	return NewTracing(opts...), nil
}

// NewTracing returns a pipeline over a provider built with opts (tests give their own exporter
// or span processor). The trace ids it makes are the requests' trace ids (X-Trace-Id) where
// those are W3C-shaped, so logs, error bodies and traces name a request the same way.
func NewTracing(opts ...sdktrace.TracerProviderOption) *Tracing {
	opts = append([]sdktrace.TracerProviderOption{sdktrace.WithIDGenerator(idGenerator{})}, opts...)
	return &Tracing{tp: sdktrace.NewTracerProvider(opts...)}
}

func tracingResource(ctx context.Context, name, version string) (*resource.Resource, error) {
	base := resource.NewSchemaless(semconv.ServiceName("autoglm"), semconv.ServiceVersion(version))
	env, err := resource.New(ctx, resource.WithFromEnv(), resource.WithTelemetrySDK(), resource.WithHost())
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, err
	}
	res, err := resource.Merge(base, env)
	if err != nil {
		return nil, err
	}
	if name != "" {
		return resource.Merge(res, resource.NewSchemaless(semconv.ServiceName(name)))
	}
	return res, nil
}

func firstEnv(env config.LookupEnv, names ...string) string {
	for _, n := range names {
		if v, ok := env(n); ok && strings.TrimSpace(v) != "" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// idGenerator makes a root span's trace id the request's trace id when that is a W3C trace id
// (32 lowercase hex digits, what the server generates), and random ids otherwise.
type idGenerator struct{}

func (idGenerator) NewIDs(ctx context.Context) (trace.TraceID, trace.SpanID) {
	var tid trace.TraceID
	if id := TraceID(ctx); len(id) == 32 && isLowerHex(id) {
		_, _ = hex.Decode(tid[:], []byte(id))
	}
	if !tid.IsValid() {
		_, _ = rand.Read(tid[:])
	}
	return tid, newSpanID()
}

func (idGenerator) NewSpanID(context.Context, trace.TraceID) trace.SpanID { return newSpanID() }

func newSpanID() trace.SpanID {
	var sid trace.SpanID
	for !sid.IsValid() {
		_, _ = rand.Read(sid[:])
	}
	return sid
}

// StartSpan starts a span named name as a child of the span in ctx, from that span's own
// provider. When ctx carries no recording span (tracing off, or the trace not sampled) it
// returns ctx and the span already there, both unchanged, without allocating: callers
// instrument every stage unconditionally, and a request without tracing pays one context
// lookup per stage. Callers must End the span; guard attribute building that allocates with
// span.IsRecording().
//
// This is the helper for every stage that runs within a request: authentication, limits,
// cache, routing, upstream attempts, plugin hooks.
func StartSpan(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	parent := trace.SpanFromContext(ctx)
	if !parent.IsRecording() {
		return ctx, parent
	}
	return parent.TracerProvider().Tracer(Scope).Start(ctx, name, opts...)
}

// StartRoot starts a new trace from tp (work that no request is waiting on: a task run, a
// webhook delivery), whatever span or trace id ctx carries; the returned context carries the
// new trace's id as its trace id, so the work's log lines name its trace. A nil tp returns ctx
// and a span that records nothing.
func StartRoot(ctx context.Context, tp trace.TracerProvider, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	if tp == nil {
		return ctx, trace.SpanFromContext(ctx)
	}
	opts = append(opts, trace.WithNewRoot())
	ctx, span := tp.Tracer(Scope).Start(WithTraceID(ctx, ""), name, opts...)
	if sc := span.SpanContext(); sc.IsValid() {
		ctx = WithTraceID(ctx, sc.TraceID().String())
	}
	return ctx, span
}

// Fail marks span as failed with err's class (error.type) and a status message that says what
// went wrong without internal detail.
func Fail(span trace.Span, errType, message string) {
	if !span.IsRecording() {
		return
	}
	span.SetAttributes(semconv.ErrorTypeKey.String(errType))
	span.SetStatus(codes.Error, message)
}

// EventAt adds an event to span at time at.
func EventAt(span trace.Span, name string, at time.Time, attrs ...attribute.KeyValue) {
	if !span.IsRecording() {
		return
	}
	span.AddEvent(name, trace.WithTimestamp(at), trace.WithAttributes(attrs...))
}

// StartHook starts the span of one plugin hook ("pre" or "post") under the request's span:
// autoglm.plugin with the plugin's id and the hook. Like StartSpan it costs nothing with
// tracing off; the caller ends the span, with Fail first when the hook refused the request.
func StartHook(ctx context.Context, pluginID, hook string) (context.Context, trace.Span) {
	ctx, span := StartSpan(ctx, SpanPlugin)
	if span.IsRecording() {
		span.SetAttributes(AttrPluginID.String(pluginID), AttrPluginHook.String(hook))
	}
	return ctx, span
}
