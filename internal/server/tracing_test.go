package server_test

import (
	"context"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/open-autoglm/autoglm/internal/apierr"
	"github.com/open-autoglm/autoglm/internal/config"
	"github.com/open-autoglm/autoglm/internal/httpapi"
	"github.com/open-autoglm/autoglm/internal/openai"
	"github.com/open-autoglm/autoglm/internal/router"
	"github.com/open-autoglm/autoglm/internal/server"
	"github.com/open-autoglm/autoglm/internal/telemetry"
)

// otlpReceiver is an OTLP/HTTP trace endpoint: it decodes each ExportTraceServiceRequest and
// keeps its spans, with the service name of their resource.
type otlpReceiver struct {
	mu      sync.Mutex
	spans   []*tracepb.Span
	service string
	bad     []string
}

func (o *otlpReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	o.mu.Lock()
	defer o.mu.Unlock()
	if r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" || err != nil {
		o.bad = append(o.bad, r.Method+" "+r.URL.Path+" "+r.Header.Get("Content-Type"))
		http.Error(w, "bad export", http.StatusBadRequest)
		return
	}
	var req collectortrace.ExportTraceServiceRequest
	if err := proto.Unmarshal(body, &req); err != nil {
		o.bad = append(o.bad, "undecodable: "+err.Error())
		http.Error(w, "bad protobuf", http.StatusBadRequest)
		return
	}
	for _, rs := range req.ResourceSpans {
		for _, a := range rs.GetResource().GetAttributes() {
			if a.Key == "service.name" {
				o.service = a.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.ScopeSpans {
			o.spans = append(o.spans, ss.Spans...)
		}
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
	_, _ = w.Write(out)
}

func attr(s *tracepb.Span, key string) *commonpb.AnyValue {
	for _, a := range s.Attributes {
		if a.Key == key {
			return a.Value
		}
	}
	return nil
}

func hasEvent(s *tracepb.Span, name string) *tracepb.Span_Event {
	for _, e := range s.Events {
		if e.Name == name {
			return e
		}
	}
	return nil
}

// TestTracingStreamedFailover sends a streamed chat whose first backend answers 503 and whose
// second streams, with tracing exported over OTLP/HTTP to a receiver in the test, and checks
// the span tree the receiver decoded: one server span; under it the routing decisions and two
// upstream attempts, the first failed with its retry reason, the second with the first-token
// event; and the trace id the upstream received in traceparent, the one the client got in
// X-Trace-Id.
func TestTracingStreamedFailover(t *testing.T) {
	recv := &otlpReceiver{}
	collector := httptest.NewServer(recv)
	t.Cleanup(collector.Close)

	var failed int
	var mu sync.Mutex
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		mu.Lock()
		failed++
		mu.Unlock()
		http.Error(w, `{"error":{"message":"overloaded"}}`, http.StatusServiceUnavailable)
	}))
	t.Cleanup(bad.Close)
	var upstreamTP, upstreamTraceID string
	good := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		mu.Lock()
		upstreamTP, upstreamTraceID = r.Header.Get("Traceparent"), r.Header.Get("X-Trace-Id")
		mu.Unlock()
		w.Header().Set("Content-Type", "text/event-stream")
		for _, tok := range []string{"Hel", "lo"} {
			_, _ = io.WriteString(w, `data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"`+tok+`"},"finish_reason":null}]}`+"\n\n")
			w.(http.Flusher).Flush()
		}
		_, _ = io.WriteString(w, "data: [DONE]\n\n")
	}))
	t.Cleanup(good.Close)

	cfg, err := config.Parse([]byte(`
models:
  - name: glm-4-flash
    retry: {attempts: 2, backoff: 1ms}
    backends:
      - name: first
        type: openai
        base_url: `+bad.URL+`/v1
        model: glm-upstream
        weight: 100
      - name: second
        type: openai
        base_url: `+good.URL+`/v1
        model: glm-upstream
        weight: 1
telemetry:
  tracing:
    enabled: true
    endpoint: `+collector.URL+`/v1/traces
    service_name: gateway-under-test
`), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	tr, err := telemetry.StartTracing(context.Background(), cfg.Telemetry.Tracing, "test", func(string) (string, bool) { return "", false })
	if err != nil || tr == nil {
		t.Fatalf("StartTracing = %v, %v", tr, err)
	}
	reg := newRegistry(t, cfg)
	srv := server.NewWith(cfg.Server, reg, telemetry.NewLogger(io.Discard, telemetry.ParseLevel("error")),
		server.Options{Tracing: tr.Provider(), Routes: openai.New(reg, openai.Options{}).Routes()})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
		}
	}
	t.Cleanup(stop)

	resp, err := http.Post("http://"+ln.Addr().String()+"/v1/chat/completions", "application/json",
		strings.NewReader(`{"model":"glm-4-flash","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(got), "Hel") || !strings.Contains(string(got), "[DONE]") {
		t.Fatalf("status %d, body %q", resp.StatusCode, got)
	}
	traceID := resp.Header.Get("X-Trace-Id")
	// The server span ends when the handler returns, just after the last byte: a graceful
	// shutdown waits for that, then the provider's shutdown exports everything.
	stop()
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	if err := tr.Shutdown(sctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}

	recv.mu.Lock()
	defer recv.mu.Unlock()
	if len(recv.bad) > 0 {
		t.Fatalf("receiver refused exports: %v", recv.bad)
	}
	if recv.service != "gateway-under-test" {
		t.Errorf("service.name = %q, want gateway-under-test", recv.service)
	}
	if failed != 1 {
		t.Errorf("first backend got %d requests, want 1", failed)
	}
	var root *tracepb.Span
	var attempts, routes []*tracepb.Span
	for _, s := range recv.spans {
		switch s.Name {
		case "POST /v1/chat/completions":
			root = s
		case telemetry.SpanUpstream:
			attempts = append(attempts, s)
		case telemetry.SpanRoute:
			routes = append(routes, s)
		}
	}
	if root == nil {
		var names []string
		for _, s := range recv.spans {
			names = append(names, s.Name)
		}
		t.Fatalf("no server span among %v", names)
	}
	tid := hex.EncodeToString(root.TraceId)
	if tid != traceID {
		t.Errorf("trace id %s, X-Trace-Id %s: want the same", tid, traceID)
	}
	if root.Kind != tracepb.Span_SPAN_KIND_SERVER || len(root.ParentSpanId) != 0 {
		t.Errorf("server span kind %v parent %x", root.Kind, root.ParentSpanId)
	}
	if v := attr(root, "http.route"); v.GetStringValue() != "/v1/chat/completions" {
		t.Errorf("http.route = %v", v)
	}
	if v := attr(root, "http.response.status_code"); v.GetIntValue() != 200 {
		t.Errorf("http.response.status_code = %v", v)
	}
	if len(routes) != 2 {
		t.Errorf("%d routing spans, want 2", len(routes))
	}
	if len(attempts) != 2 {
		t.Fatalf("%d upstream attempt spans, want 2", len(attempts))
	}
	if attr(attempts[0], string(telemetry.AttrAttempt)).GetIntValue() > attr(attempts[1], string(telemetry.AttrAttempt)).GetIntValue() {
		attempts[0], attempts[1] = attempts[1], attempts[0]
	}
	for i, a := range attempts {
		if hex.EncodeToString(a.TraceId) != tid || string(a.ParentSpanId) != string(root.SpanId) {
			t.Errorf("attempt %d: trace %x parent %x, want trace %s parent %x", i+1, a.TraceId, a.ParentSpanId, tid, root.SpanId)
		}
		if a.Kind != tracepb.Span_SPAN_KIND_CLIENT {
			t.Errorf("attempt %d kind %v", i+1, a.Kind)
		}
		for key, want := range map[string]string{"gen_ai.operation.name": "chat", "gen_ai.request.model": "glm-upstream",
			"gen_ai.provider.name": "openai", "autoglm.model": "glm-4-flash"} {
			if v := attr(a, key).GetStringValue(); v != want {
				t.Errorf("attempt %d: %s = %q, want %q", i+1, key, v, want)
			}
		}
	}
	first, second := attempts[0], attempts[1]
	if v := attr(first, "autoglm.backend").GetStringValue(); v != "first" {
		t.Errorf("first attempt went to %q", v)
	}
	if first.Status.GetCode() != tracepb.Status_STATUS_CODE_ERROR {
		t.Errorf("first attempt status %v, want error", first.Status)
	}
	if v := attr(first, "autoglm.retry.reason").GetStringValue(); v != "status_5xx" {
		t.Errorf("first attempt retry reason %q, want status_5xx", v)
	}
	if v := attr(first, "error.type").GetStringValue(); v != "status_5xx" {
		t.Errorf("first attempt error.type %q", v)
	}
	if hasEvent(first, telemetry.EventRetry) == nil {
		t.Error("first attempt has no retry event")
	}
	if v := attr(second, "autoglm.backend").GetStringValue(); v != "second" {
		t.Errorf("second attempt went to %q", v)
	}
	if second.Status.GetCode() == tracepb.Status_STATUS_CODE_ERROR {
		t.Errorf("second attempt failed: %v", second.Status)
	}
	ev := hasEvent(second, telemetry.EventFirstToken)
	if ev == nil {
		t.Fatal("second attempt has no first-token event")
	}
	if ev.TimeUnixNano < second.StartTimeUnixNano || ev.TimeUnixNano > second.EndTimeUnixNano {
		t.Errorf("first token at %d outside the attempt [%d, %d]", ev.TimeUnixNano, second.StartTimeUnixNano, second.EndTimeUnixNano)
	}
	if first.EndTimeUnixNano > second.StartTimeUnixNano {
		t.Error("the second attempt started before the first ended")
	}
	// traceparent: 00-<trace id>-<the second attempt's span id>-01
	want := "00-" + tid + "-" + hex.EncodeToString(second.SpanId) + "-01"
	if upstreamTP != want {
		t.Errorf("upstream traceparent %q, want %q", upstreamTP, want)
	}
	if upstreamTraceID != tid {
		t.Errorf("upstream X-Trace-Id %q, want %q", upstreamTraceID, tid)
	}
}

// TestTracingContinuesTraceparent: a request that carries a W3C traceparent is continued: its
// server span is in the caller's trace, under the caller's span, and X-Trace-Id names it.
func TestTracingContinuesTraceparent(t *testing.T) {
	recv := &otlpReceiver{}
	collector := httptest.NewServer(recv)
	t.Cleanup(collector.Close)
	tr, err := telemetry.StartTracing(context.Background(), config.Tracing{Enabled: true, Endpoint: collector.URL + "/v1/traces"}, "test",
		func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	reg, err := router.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Config{}.WithDefaults()
	srv := server.NewWith(cfg.Server, reg, telemetry.NewLogger(io.Discard, telemetry.ParseLevel("error")), server.Options{Tracing: tr.Provider()})
	req := httptest.NewRequest("GET", "/healthz", nil)
	const caller, parent = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	req.Header.Set("Traceparent", "00-"+caller+"-"+parent+"-01")
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, req)
	if got := rec.Header().Get("X-Trace-Id"); got != caller {
		t.Errorf("X-Trace-Id %q, want the caller's trace id", got)
	}
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	recv.mu.Lock()
	defer recv.mu.Unlock()
	if len(recv.spans) != 1 {
		t.Fatalf("%d spans, want 1", len(recv.spans))
	}
	s := recv.spans[0]
	if hex.EncodeToString(s.TraceId) != caller || hex.EncodeToString(s.ParentSpanId) != parent || s.Name != "GET /healthz" {
		t.Errorf("span %q trace %x parent %x; want the caller's trace and span", s.Name, s.TraceId, s.ParentSpanId)
	}
}

// TestTracingLimitSpan: the limits stage is a span of its own that ends when the request is
// admitted, so the handler's spans are its siblings under the server span; a refused request's
// limits span is marked failed.
func TestTracingLimitSpan(t *testing.T) {
	up := &recordingUpstream{}
	ts := httptest.NewServer(up)
	t.Cleanup(ts.Close)
	cfg, err := config.Parse([]byte(oneModel(ts.URL+"/v1", "")), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	reg := newRegistry(t, cfg)
	exp := tracetest.NewInMemoryExporter()
	tr := telemetry.NewTracing(sdktrace.WithSyncer(exp))
	limit := func(httpapi.Limit) httpapi.Stage {
		return func(next httpapi.HandlerFunc) httpapi.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) error {
				if r.Header.Get("X-Refuse") != "" {
					return apierr.New(apierr.CodeRateLimitExceeded, "limited")
				}
				return next(w, r)
			}
		}
	}
	srv := server.NewWith(cfg.Server, reg, telemetry.NewLogger(io.Discard, telemetry.ParseLevel("error")),
		server.Options{Tracing: tr.Provider(), Limit: limit, Routes: openai.New(reg, openai.Options{}).Routes()})
	for _, refuse := range []string{"", "yes"} {
		req := httptest.NewRequest("POST", "/v1/chat/completions", strings.NewReader(`{"model":"glm4","messages":[{"role":"user","content":"hi"}]}`))
		req.Header.Set("X-Refuse", refuse)
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, req)
		want := http.StatusOK
		if refuse != "" {
			want = http.StatusTooManyRequests
		}
		if rec.Code != want {
			t.Fatalf("refuse=%q: status %d", refuse, rec.Code)
		}
	}
	byTrace := map[string][]tracetest.SpanStub{}
	for _, s := range exp.GetSpans() {
		byTrace[s.SpanContext.TraceID().String()] = append(byTrace[s.SpanContext.TraceID().String()], s)
	}
	if len(byTrace) != 2 {
		t.Fatalf("%d traces, want 2", len(byTrace))
	}
	for _, spans := range byTrace {
		named := map[string]tracetest.SpanStub{}
		for _, s := range spans {
			named[s.Name] = s
		}
		root, ok := named["POST /v1/chat/completions"]
		lim, ok2 := named[telemetry.SpanLimits]
		if !ok || !ok2 {
			t.Fatalf("spans %v", named)
		}
		if lim.Parent.SpanID() != root.SpanContext.SpanID() {
			t.Error("limits span is not under the server span")
		}
		if att, admitted := named[telemetry.SpanUpstream]; admitted {
			if att.Parent.SpanID() != root.SpanContext.SpanID() {
				t.Error("the upstream attempt is not a sibling of the limits span")
			}
			if lim.EndTime.After(att.StartTime) || lim.Status.Code.String() == "Error" {
				t.Error("the admitted request's limits span did not end before the attempt, or failed")
			}
		} else if lim.Status.Code.String() != "Error" {
			t.Error("the refused request's limits span is not marked failed")
		}
	}
}

// TestUpstreamTraceContextTracingOff: with tracing off, the upstream learns the request's trace
// id as X-Trace-Id (the one the client gets); a caller's W3C trace context is passed on
// unchanged, with its sampling decision; none is made up when the caller sent none; a
// malformed one, or a client X-Trace-Id the gateway did not accept, does not reach the
// upstream.
func TestUpstreamTraceContextTracingOff(t *testing.T) {
	up := &recordingUpstream{}
	ts := httptest.NewServer(up)
	t.Cleanup(ts.Close)
	g := startGateway(t, oneModel(ts.URL+"/v1", ""), nil)
	const body = `{"model":"glm4","messages":[{"role":"user","content":"hi"}]}`
	const caller = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	cases := []struct {
		name                string
		hdr                 []string
		traceID             string // "" = a fresh one (32 hex)
		traceparent, tstate string // what the upstream must see ("" = absent)
	}{
		{name: "none", hdr: nil},
		{name: "caller's trace context", hdr: []string{"Traceparent", caller, "Tracestate", "vendor=abc"},
			traceID: "4bf92f3577b34da6a3ce929d0e0e4736", traceparent: caller, tstate: "vendor=abc"},
		{name: "malformed traceparent", hdr: []string{"Traceparent", "00-zz-00f067aa0ba902b7-01", "Tracestate", "vendor=abc"}},
		{name: "rejected X-Trace-Id", hdr: []string{"X-Trace-Id", "bad id"}},
		{name: "accepted X-Trace-Id", hdr: []string{"X-Trace-Id", "my-request-0001"}, traceID: "my-request-0001"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, b := post(t, g.URL+"/v1/chat/completions", body, tc.hdr...)
			if resp.StatusCode != 200 {
				t.Fatalf("%d %s", resp.StatusCode, b)
			}
			id := resp.Header.Get("X-Trace-Id")
			if tc.traceID != "" && id != tc.traceID || tc.traceID == "" && len(id) != 32 {
				t.Errorf("client X-Trace-Id %q, want %q", id, tc.traceID)
			}
			h := up.headers()
			if h.Get("X-Trace-Id") != id || resp.Header.Get("X-Request-Id") != id || len(h.Values("X-Trace-Id")) != 1 {
				t.Errorf("upstream X-Trace-Id %q, client X-Trace-Id %q X-Request-Id %q", h.Values("X-Trace-Id"), id, resp.Header.Get("X-Request-Id"))
			}
			if h.Get("Traceparent") != tc.traceparent || h.Get("Tracestate") != tc.tstate {
				t.Errorf("upstream traceparent %q tracestate %q, want %q %q", h.Get("Traceparent"), h.Get("Tracestate"), tc.traceparent, tc.tstate)
			}
		})
	}
}
