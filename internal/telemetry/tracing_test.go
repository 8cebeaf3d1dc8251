package telemetry

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/open-autoglm/autoglm/internal/config"
)

func envOf(m map[string]string) config.LookupEnv {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestTracingEnabled(t *testing.T) {
	for _, tc := range []struct {
		name string
		on   bool
		env  map[string]string
		want bool
	}{
		{"default off", false, nil, false},
		{"config on", true, nil, true},
		{"exporter otlp turns it on", false, map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, true},
		{"exporter none wins", true, map[string]string{"OTEL_TRACES_EXPORTER": "none"}, false},
		{"sdk disabled wins", true, map[string]string{"OTEL_SDK_DISABLED": "TRUE"}, false},
		{"other exporter leaves config", true, map[string]string{"OTEL_TRACES_EXPORTER": "console"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := TracingEnabled(config.Tracing{Enabled: tc.on}, envOf(tc.env)); got != tc.want {
				t.Errorf("TracingEnabled = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestStartTracingProtocols(t *testing.T) {
	ctx := context.Background()
	if tr, err := StartTracing(ctx, config.Tracing{}, "v", envOf(nil)); tr != nil || err != nil {
		t.Fatalf("off: %v, %v", tr, err)
	}
	for _, env := range []map[string]string{
		{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317"},
		{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf"},
	} {
		tr, err := StartTracing(ctx, config.Tracing{Enabled: true}, "v", envOf(env))
		if err != nil || tr == nil {
			t.Fatalf("%v: %v, %v", env, tr, err)
		}
		// Nothing was recorded: shutting down sends nothing and must not wait on a collector.
		if err := tr.Shutdown(ctx); err != nil {
			t.Errorf("%v: shutdown: %v", env, err)
		}
	}
	_, err := StartTracing(ctx, config.Tracing{Enabled: true}, "v", envOf(map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}))
	if err == nil || !strings.Contains(err.Error(), "http/json") {
		t.Errorf("unsupported protocol: %v", err)
	}
}

// TestStartSpanOff: without a recording span in the context, StartSpan hands the context back
// unchanged and allocates nothing.
func TestStartSpanOff(t *testing.T) {
	ctx := WithTraceID(context.Background(), NewTraceID())
	allocs := testing.AllocsPerRun(100, func() {
		c, span := StartSpan(ctx, SpanRoute)
		if c != ctx || span.IsRecording() {
			t.Fatal("StartSpan changed the context with tracing off")
		}
		Fail(span, "x", "y")
		span.End()
	})
	if allocs != 0 {
		t.Errorf("StartSpan with tracing off allocates %v times", allocs)
	}
}

// TestSpanTreeAndIDs: a root span takes the request's W3C trace id; StartSpan nests under the
// span in the context; StartRoot starts a new trace.
func TestSpanTreeAndIDs(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tr := NewTracing(sdktrace.WithSyncer(exp))
	id := NewTraceID()
	ctx, root := tr.Provider().Tracer(Scope).Start(WithTraceID(context.Background(), id), "root")
	cctx, child := StartSpan(ctx, SpanCache)
	_, grandchild := StartSpan(cctx, SpanRoute)
	grandchild.End()
	child.End()
	root.End()
	_, other := StartRoot(ctx, tr.Provider(), SpanTask)
	other.End()
	spans := exp.GetSpans()
	if len(spans) != 4 {
		t.Fatalf("%d spans", len(spans))
	}
	byName := map[string]tracetest.SpanStub{}
	for _, s := range spans {
		byName[s.Name] = s
	}
	if got := byName["root"].SpanContext.TraceID().String(); got != id {
		t.Errorf("root trace id %s, want the request's %s", got, id)
	}
	if byName[SpanRoute].Parent.SpanID() != byName[SpanCache].SpanContext.SpanID() ||
		byName[SpanCache].Parent.SpanID() != byName["root"].SpanContext.SpanID() {
		t.Error("StartSpan did not nest under the context's span")
	}
	if o := byName[SpanTask]; o.Parent.IsValid() || o.SpanContext.TraceID().String() == id {
		t.Error("StartRoot continued the context's trace")
	}
	// A non-W3C request id gets a random trace id.
	_, s := tr.Provider().Tracer(Scope).Start(WithTraceID(context.Background(), "my-request-1"), "x")
	if !s.SpanContext().TraceID().IsValid() {
		t.Error("invalid trace id for a non-W3C request id")
	}
	s.End()
}

func TestInjectUpstream(t *testing.T) {
	id := "4bf92f3577b34da6a3ce929d0e0e4736"
	// Off: the trace id as X-Trace-Id, and no traceparent made up (a caller's own is passed
	// on by the route, not here).
	h := http.Header{}
	InjectUpstream(WithTraceID(context.Background(), id), h)
	if h.Get("Traceparent") != "" || h.Get(TraceHeader) != id || len(h) != 1 {
		t.Errorf("off: %v", h)
	}
	// Off, with the caller's traceparent already among the headers: left as it is.
	caller := "00-" + id + "-00f067aa0ba902b7-01"
	h = http.Header{"Traceparent": {caller}}
	InjectUpstream(WithTraceID(context.Background(), id), h)
	if h.Get("Traceparent") != caller || h.Get(TraceHeader) != id {
		t.Errorf("off, caller's traceparent: %v", h)
	}
	// A request id that is not a W3C trace id travels as X-Trace-Id too.
	h = http.Header{}
	InjectUpstream(WithTraceID(context.Background(), "my-request-1"), h)
	if h.Get("Traceparent") != "" || h.Get(TraceHeader) != "my-request-1" {
		t.Errorf("non-W3C id: %v", h)
	}
	// On: the current span is the parent.
	tr := NewTracing()
	ctx, span := tr.Provider().Tracer(Scope).Start(WithTraceID(context.Background(), id), "attempt")
	defer span.End()
	h = http.Header{}
	InjectUpstream(ctx, h)
	want := "00-" + id + "-" + span.SpanContext().SpanID().String() + "-01"
	if h.Get("Traceparent") != want {
		t.Errorf("on: traceparent %q, want %q", h.Get("Traceparent"), want)
	}
}

func TestValidTraceparent(t *testing.T) {
	for v, want := range map[string]bool{
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01":  true,
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00":  true,
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01":  false, // invalid trace id
		"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01":  false, // invalid parent id
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01":  false, // upper case
		"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01":  false, // another version
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03":  true,
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-ff":  false, // flags not defined
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-": false,
		"00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01":  false,
		"": false,
	} {
		if got := ValidTraceparent(v); got != want {
			t.Errorf("ValidTraceparent(%q) = %v, want %v", v, got, want)
		}
	}
}

// FuzzValidTraceparent: whatever ValidTraceparent accepts, OpenTelemetry's W3C propagator
// reads as the same trace id, parent id and sampling flag, so what is passed on is a trace
// context an upstream's tracer can continue.
func FuzzValidTraceparent(f *testing.F) {
	f.Add("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	f.Add("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")
	f.Add("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-02")
	f.Add("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03")
	f.Add("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-ff")
	f.Add("00-00000000000000000000000000000000-00f067aa0ba902b7-01")
	f.Add("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	f.Fuzz(func(t *testing.T, v string) {
		if !ValidTraceparent(v) {
			return
		}
		ctx := propagation.TraceContext{}.Extract(context.Background(), propagation.HeaderCarrier{"Traceparent": {v}})
		sc := trace.SpanContextFromContext(ctx)
		sampled := v[54]&1 == 1 // the flags' low bit, whatever the case of the hex digit
		if !sc.IsValid() || sc.TraceID().String() != v[3:35] || sc.SpanID().String() != v[36:52] || sc.IsSampled() != sampled {
			t.Fatalf("accepted %q, which the propagator reads as %v", v, sc)
		}
	})
}

func parseTraceparent(v string) (trace.SpanContext, bool) {
	parts := strings.Split(v, "-")
	if len(parts) != 4 || parts[0] != "00" {
		return trace.SpanContext{}, false
	}
	tid, err1 := trace.TraceIDFromHex(parts[1])
	sid, err2 := trace.SpanIDFromHex(parts[2])
	if err1 != nil || err2 != nil || !sid.IsValid() {
		return trace.SpanContext{}, false
	}
	var flags trace.TraceFlags
	if parts[3] == "01" {
		flags = trace.FlagsSampled
	}
	return trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: flags}), true
}

func TestStartHook(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tr := NewTracing(sdktrace.WithSyncer(exp))
	ctx, root := tr.Provider().Tracer(Scope).Start(context.Background(), "root")
	_, hook := StartHook(ctx, "plugin.redact", "pre")
	Fail(hook, "refused", "the plugin refused the request")
	hook.End()
	root.End()
	var got tracetest.SpanStub
	for _, s := range exp.GetSpans() {
		if s.Name == SpanPlugin {
			got = s
		}
	}
	attrs := map[string]string{}
	for _, a := range got.Attributes {
		attrs[string(a.Key)] = a.Value.Emit()
	}
	if got.Parent.SpanID() != root.SpanContext().SpanID() || attrs["autoglm.plugin.id"] != "plugin.redact" ||
		attrs["autoglm.plugin.hook"] != "pre" || attrs["error.type"] != "refused" {
		t.Errorf("hook span %+v attrs %v", got.Parent, attrs)
	}
}
