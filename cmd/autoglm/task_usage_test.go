package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/open-autoglm/autoglm/api"
	"github.com/open-autoglm/autoglm/internal/config"
	"github.com/open-autoglm/autoglm/internal/mockllm"
)

// bareUpstream streams chat completions and never reports usage, whatever the request asks,
// as some OpenAI-compatible servers do.
func bareUpstream() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for _, piece := range []string{"The quick", " brown fox", " jumps over", " the lazy dog."} {
			b, _ := json.Marshal(map[string]any{"id": "c1", "object": "chat.completion.chunk", "model": "bare",
				"choices": []any{map[string]any{"index": 0, "delta": map[string]string{"content": piece}}}})
			fmt.Fprintf(w, "data: %s\n\n", b)
		}
		fmt.Fprint(w, "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n")
	})
}

// TestTaskUsageInMetrics runs serve with one upstream that reports usage and one that does
// not, runs a chat task on each, and reads /metrics: task tokens are counted in the same
// autoglm_model_* series as HTTP requests, exact where the upstream reported them and
// estimated (and labelled so) where it did not.
func TestTaskUsageInMetrics(t *testing.T) {
	exact := httptest.NewServer(mockllm.New(mockllm.Options{Tokens: 5}))
	defer exact.Close()
	bare := httptest.NewServer(bareUpstream())
	defer bare.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // serve listens on it itself
	cfg, err := config.Parse([]byte(`
server: {addr: "`+addr+`"}
log: {level: error}
models:
  - name: exact
    backends: [{type: openai, base_url: `+exact.URL+`/v1}]
    health: {probe: none}
  - name: bare
    backends: [{type: openai, base_url: `+bare.URL+`/v1}]
    health: {probe: none}
`), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("GOGC", "100")
	t.Setenv("GOMEMLIMIT", "off")
	base := runServe(t, cfg)
	ctx := t.Context()

	c := api.NewClient(base, nil)
	results := map[string]*api.Usage{}
	for _, m := range []string{"exact", "bare"} {
		tk, err := c.SubmitTask(ctx, &api.TaskRequest{Kind: api.TaskKindChat, Model: m,
			Input: json.RawMessage(`{"messages":[{"role":"user","content":"Tell me about foxes and dogs."}]}`)}, "")
		if err != nil {
			t.Fatalf("submit %s: %v", m, err)
		}
		fctx, fcancel := context.WithTimeout(ctx, 20*time.Second)
		final, err := c.FollowTask(fctx, tk.ID, 0, nil)
		fcancel()
		if err != nil {
			t.Fatalf("follow %s: %v", m, err)
		}
		if final.Status != api.TaskSucceeded || final.Result == nil || final.Result.Usage == nil {
			t.Fatalf("task on %s: %+v", m, final)
		}
		results[m] = final.Result.Usage
	}
	// The bare upstream's text, "The quick brown fox jumps over the lazy dog.", is 10 tokens
	// in cl100k_base; the prompt's text is counted the same way.
	if u := results["bare"]; u.CompletionTokens != 10 || u.PromptTokens < 5 || u.PromptTokens > 12 {
		t.Errorf("estimated usage of the bare upstream's task = %+v; want 10 completion tokens and a prompt of 5-12", u)
	}

	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("/metrics: %v", err)
	}
	value := func(name string, labels map[string]string) (float64, bool) {
		f := families[name]
		if f == nil {
			return 0, false
		}
	next:
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if want, ok := labels[l.GetName()]; ok && want != l.GetValue() {
					continue next
				}
			}
			return m.GetCounter().GetValue(), true
		}
		return 0, false
	}
	for _, tc := range []struct {
		model, estimated string
		u                *api.Usage
	}{
		{"exact", "false", results["exact"]},
		{"bare", "true", results["bare"]},
	} {
		if n, ok := value("autoglm_model_requests_total", map[string]string{"model": tc.model, "backend": tc.model + "#0", "code": "200"}); !ok || n != 1 {
			t.Errorf("autoglm_model_requests_total{model=%q} = %v (present %v), want 1", tc.model, n, ok)
		}
		for kind, want := range map[string]int{"prompt": tc.u.PromptTokens, "completion": tc.u.CompletionTokens} {
			n, ok := value("autoglm_model_tokens_total", map[string]string{"model": tc.model, "kind": kind, "estimated": tc.estimated})
			if !ok || n != float64(want) || want == 0 {
				t.Errorf("autoglm_model_tokens_total{model=%q,kind=%q,estimated=%q} = %v (present %v), want %d", tc.model, kind, tc.estimated, n, ok, want)
			}
		}
		other := map[string]string{"true": "false", "false": "true"}[tc.estimated]
		if n, ok := value("autoglm_model_tokens_total", map[string]string{"model": tc.model, "estimated": other}); ok {
			t.Errorf("autoglm_model_tokens_total{model=%q,estimated=%q} = %v: want no such series", tc.model, other, n)
		}
	}
}
