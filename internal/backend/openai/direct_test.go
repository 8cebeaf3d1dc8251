package openai

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/open-autoglm/autoglm/internal/backend"
	"github.com/open-autoglm/autoglm/internal/config"
	"github.com/open-autoglm/autoglm/internal/telemetry"
)

// generalRT hides Transport's type, so that a Client built on it takes the general way: an
// http.Request with a header map, written by Transport.
type generalRT struct{ t *Transport }

func (g generalRT) RoundTrip(r *http.Request) (*http.Response, error) { return g.t.RoundTrip(r) }

// TestDirectHeadMatchesGeneral: a request sent with the direct head reaches the upstream with
// the same head and body as the same request sent the general way, whatever headers the
// client and the configuration bring.
func TestDirectHeadMatchesGeneral(t *testing.T) {
	type seen struct {
		method, uri, host string
		length            int64
		header            http.Header
		body              string
	}
	got := make(chan seen, 1)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{r.Method, r.RequestURI, r.Host, r.ContentLength, r.Header.Clone(), string(b)}
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	defer up.Close()

	cases := []struct {
		name   string
		cfg    config.Backend
		op     backend.Op
		stream bool
		header http.Header
		trace  string
	}{
		{name: "bare", op: backend.OpChat},
		{name: "trace id from the request", op: backend.OpCompletion, trace: "4bf92f3577b34da6a3ce929d0e0e4736"},
		{name: "client headers", op: backend.OpChat, stream: true, trace: "0af7651916cd43dd8448eb211c80319c",
			cfg: config.Backend{APIKey: "sk-up", Organization: "org-up", Headers: map[string]string{"X-Team": "search"}},
			header: http.Header{
				"User-Agent":     {"client/1.0"},
				"Traceparent":    {"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
				"Tracestate":     {"vendor=1"},
				"Authorization":  {"Bearer client"},
				"Openai-Beta":    {"assistants=v2"},
				"X-Team":         {"client-team"},
				"Accept":         {"text/html"},
				"Content-Type":   {"text/plain"},
				"Content-Length": {"1"},
				"Host":           {"elsewhere.example"},
				"X-Multi":        {"a", "b\r\nInjected: yes"},
			}},
		{name: "the request's own trace id", op: backend.OpEmbedding, trace: "4bf92f3577b34da6a3ce929d0e0e4736",
			header: http.Header{telemetry.TraceHeader: {"client-chosen"}}},
		{name: "configured user agent", op: backend.OpResponses,
			cfg: config.Backend{Headers: map[string]string{"User-Agent": "gateway/1"}}, header: http.Header{"User-Agent": {"client/1.0"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Type, tc.cfg.BaseURL = "openai", up.URL+"/v1"
			tr := newTransport(5 * time.Second)
			defer tr.CloseIdleConnections()
			var probes atomic.Int64
			tr.Proxy = func(r *http.Request) (*url.URL, error) {
				if r.URL.Path == "/v1" {
					probes.Add(1) // the direct head's proxy question
				}
				return nil, nil
			}
			direct, err := New(tc.cfg, tr)
			if err != nil {
				t.Fatal(err)
			}
			general, err := New(tc.cfg, generalRT{tr})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			if tc.trace != "" {
				ctx = telemetry.WithTraceID(ctx, tc.trace)
			}
			send := func(c *Client) seen {
				resp, err := c.Do(ctx, &backend.Request{Op: tc.op, Body: []byte(`{"model":"m","input":"hi"}`), Stream: tc.stream, Header: tc.header})
				if err != nil {
					t.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				return <-got
			}
			d, g := send(direct), send(general)
			if probes.Load() != 1 {
				t.Fatalf("the direct head was used %d times, want 1", probes.Load())
			}
			if !reflect.DeepEqual(d, g) {
				t.Errorf("direct head:\n%+v\ngeneral way:\n%+v", d, g)
			}
			if d.header.Get("Authorization") == "Bearer client" || d.header.Get("Openai-Beta") != "" {
				t.Errorf("a client credential reached the upstream: %v", d.header)
			}
			if d.length != int64(len(`{"model":"m","input":"hi"}`)) || d.host != up.Listener.Addr().String() {
				t.Errorf("framing: length %d host %q", d.length, d.host)
			}
		})
	}
}

// TestDirectHeadFallsBack: requests the direct head cannot carry go the general way and still
// reach the upstream: one with a header Transport leaves to net/http, one with tracing on, and
// one through a proxy.
func TestDirectHeadFallsBack(t *testing.T) {
	var hits atomic.Int64
	var seen atomic.Value // the last request's traceparent
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		seen.Store(r.Header.Get("Traceparent"))
		_, _ = io.WriteString(w, `{}`)
	}))
	defer up.Close()
	tr := newTransport(5 * time.Second)
	defer tr.CloseIdleConnections()
	c, err := New(config.Backend{Type: "openai", BaseURL: up.URL + "/v1"}, tr)
	if err != nil {
		t.Fatal(err)
	}
	do := func(ctx context.Context, h http.Header) {
		t.Helper()
		resp, err := c.Do(ctx, &backend.Request{Op: backend.OpChat, Body: []byte(`{}`), Header: h})
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
	}
	var probes atomic.Int64
	tr.Proxy = func(r *http.Request) (*url.URL, error) {
		if r == c.probe {
			probes.Add(1)
		}
		return nil, nil
	}
	do(context.Background(), http.Header{"Connection": {"close"}})
	if probes.Load() != 0 {
		t.Error("a request with Connection took the direct head")
	}
	// Tracing on: the propagator writes the attempt's traceparent, which the direct head
	// does not carry.
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1}, SpanID: trace.SpanID{1},
		TraceFlags: trace.FlagsSampled})
	do(trace.ContextWithSpanContext(context.Background(), sc), nil)
	if probes.Load() != 0 {
		t.Error("a request with tracing on took the direct head")
	}
	if want := "00-01000000000000000000000000000000-0100000000000000-01"; seen.Load() != want {
		t.Errorf("traceparent upstream %q, want %q", seen.Load(), want)
	}
	if hits.Load() != 2 {
		t.Fatalf("upstream reached %d times, want 2", hits.Load())
	}
	// A proxy that the settings name for this upstream: the request goes to it, through Std.
	proxied := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"via":"proxy"}`)
	}))
	defer proxied.Close()
	pu, _ := url.Parse(proxied.URL)
	tr.Proxy = func(*http.Request) (*url.URL, error) { return pu, nil }
	tr.Std.Proxy = tr.Proxy
	resp, err := c.Do(context.Background(), &backend.Request{Op: backend.OpChat, Body: []byte(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if string(b) != `{"via":"proxy"}` {
		t.Errorf("through the proxy: %q", b)
	}
	if hits.Load() != 2 {
		t.Errorf("upstream reached %d times, want 2 (the proxied request must not reach it directly)", hits.Load())
	}
}
