package server_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/open-autoglm/autoglm/internal/config"
	"github.com/open-autoglm/autoglm/internal/mockllm"
	"github.com/open-autoglm/autoglm/internal/openai"
	"github.com/open-autoglm/autoglm/internal/router"
	"github.com/open-autoglm/autoglm/internal/server"
	"github.com/open-autoglm/autoglm/internal/telemetry"
)

// discard is a span exporter that drops what it is given.
type discard struct{}

func (discard) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discard) Shutdown(context.Context) error                             { return nil }

// BenchmarkTracing measures a streamed chat through the gateway's handler to a real mock
// upstream, in one run: "off" is the server without a tracer (the default; every stage's span
// call finds no span and returns at once); "unsampled" has a tracer that samples nothing;
// "on" records every span (exported to a discarding exporter in batches, as in production).
// BenchmarkStagesOff below isolates what "off" adds over code with no tracing calls at all.
func BenchmarkTracing(b *testing.B) {
	up := httptest.NewServer(mockllm.New(mockllm.Options{Tokens: 16}))
	defer up.Close()
	cfg, err := config.Parse([]byte(oneModel(up.URL+"/v1", "")), func(string) (string, bool) { return "", false })
	if err != nil {
		b.Fatal(err)
	}
	body := `{"model":"glm4","stream":true,"messages":[{"role":"user","content":"the quick brown fox"}],"max_tokens":16}`
	for _, tc := range []struct {
		name string
		tp   trace.TracerProvider
	}{
		{"off", nil},
		{"unsampled", telemetry.NewTracing(sdktrace.WithSampler(sdktrace.NeverSample())).Provider()},
		{"on", telemetry.NewTracing(sdktrace.WithBatcher(discard{})).Provider()},
	} {
		b.Run(tc.name, func(b *testing.B) {
			reg, err := router.New(cfg.Models)
			if err != nil {
				b.Fatal(err)
			}
			defer reg.Close()
			log := telemetry.NewLogger(io.Discard, telemetry.ParseLevel("error"))
			srv := server.NewWith(cfg.Server, reg, log, server.Options{Tracing: tc.tp,
				Routes: openai.New(reg, openai.Options{Logger: log}).Routes()})
			h := srv.Handler()
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(body))
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatal(rec.Code, rec.Body.String())
				}
			}
		})
	}
}

// BenchmarkStagesOff runs, with tracing off, every span call one streamed chat makes on its
// way through the gateway (authentication, limits, cache, two routing decisions and two
// upstream attempts with their attribute guards, the first-token event, and the trace context
// written on the upstream request), against a baseline loop that does the same work minus the
// tracing calls. The difference is the whole per-request cost of tracing when it is off.
func BenchmarkStagesOff(b *testing.B) {
	ctx := telemetry.WithTraceID(context.Background(), telemetry.NewTraceID())
	ctx = context.WithValue(ctx, struct{ k int }{1}, 1) // a few values deep, as a request's context is
	ctx = context.WithValue(ctx, struct{ k int }{2}, 2)
	h := make(http.Header, 8)
	b.Run("baseline", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			clear(h)
			h.Set("X-Trace-Id", telemetry.TraceID(ctx))
		}
	})
	b.Run("off", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			stagesOff(b, ctx)
			clear(h)
			h.Set("X-Trace-Id", telemetry.TraceID(ctx))
		}
	})
	// The trace context written on every upstream request with tracing off: X-Trace-Id (no
	// traceparent is made up; a caller's own is passed on by the route).
	b.Run("upstream_headers", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			clear(h)
			telemetry.InjectUpstream(ctx, h)
		}
	})
}

var stageNames = [...]string{telemetry.SpanAuth, telemetry.SpanLimits, telemetry.SpanCache,
	telemetry.SpanRoute, telemetry.SpanUpstream, telemetry.SpanRoute, telemetry.SpanUpstream}

func stagesOff(b *testing.B, ctx context.Context) {
	for _, name := range stageNames {
		_, span := telemetry.StartSpan(ctx, name)
		if span.IsRecording() {
			b.Fatal("recording with tracing off")
		}
		span.End()
	}
}
