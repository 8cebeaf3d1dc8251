package metrics_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	_ "github.com/open-autoglm/autoglm/internal/backend/local"
	"github.com/open-autoglm/autoglm/internal/config"
	"github.com/open-autoglm/autoglm/internal/metrics"
	"github.com/open-autoglm/autoglm/internal/mockllm"
	"github.com/open-autoglm/autoglm/internal/openai"
	"github.com/open-autoglm/autoglm/internal/router"
	"github.com/open-autoglm/autoglm/internal/server"
)

// series finds the sample of family name whose labels include want, or fails.
func series(t *testing.T, fams map[string]*dto.MetricFamily, name string, want map[string]string) *dto.Metric {
	t.Helper()
	f, ok := fams[name]
	if !ok {
		t.Fatalf("no metric %s", name)
	}
next:
	for _, m := range f.GetMetric() {
		got := map[string]string{}
		for _, l := range m.GetLabel() {
			got[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if got[k] != v {
				continue next
			}
		}
		return m
	}
	t.Fatalf("no %s series with labels %v", name, want)
	return nil
}

// TestScrapeStreamAndEngine streams chats from an upstream and from the local engine, and
// checks the per-request latency histograms and the engine's figures that /metrics reports.
func TestScrapeStreamAndEngine(t *testing.T) {
	up := httptest.NewServer(mockllm.New(mockllm.Options{Tokens: 6, TTFT: 20 * time.Millisecond, ITL: 2 * time.Millisecond}))
	defer up.Close()
	cfg, err := config.Parse([]byte(`
models:
  - name: m
    backends: [{type: openai, name: upstream, base_url: "`+up.URL+`/v1"}]
  - name: stories
    backends:
      - {type: local, name: engine, path: ../../models/stories260K.gguf, context_length: 256, parallel: 2}
`), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	reg, err := router.New(cfg.Models)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	m := metrics.New(metrics.Sources{Registry: reg})
	srv := server.NewWith(cfg.Server, reg, slog.New(slog.DiscardHandler), server.Options{
		Metrics: m.ServeHTTP, Observe: m.ObserveHTTP, Routes: openai.New(reg, openai.Options{OnDone: m.ObserveModel}).Routes()})
	gw := httptest.NewServer(srv.Handler())
	defer gw.Close()

	post := func(path, body string) {
		t.Helper()
		resp, err := http.Post(gw.URL+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("X-Request-Id") == "" || resp.Header.Get("X-Request-Id") != resp.Header.Get("X-Trace-Id") {
			t.Fatalf("%s: %d %q (x-request-id %q)", path, resp.StatusCode, b, resp.Header.Get("X-Request-Id"))
		}
	}
	for range 2 {
		post("/v1/chat/completions", `{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
		// The same prompt twice: the second reuses the first's KV cache.
		post("/v1/completions", `{"model":"stories","stream":true,"prompt":"Once upon a time","max_tokens":8,"temperature":0}`)
	}
	resp, err := http.Get(gw.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}

	for _, b := range []map[string]string{{"model": "m", "backend": "upstream"}, {"model": "stories", "backend": "engine"}} {
		ttft := series(t, fams, "autoglm_model_time_to_first_token_seconds", b).GetHistogram()
		if ttft.GetSampleCount() != 2 || ttft.GetSampleSum() <= 0 || ttft.GetSampleSum() > 60 {
			t.Errorf("%v: TTFT count %d sum %g, want 2 observations of a positive, finite time", b, ttft.GetSampleCount(), ttft.GetSampleSum())
		}
		gap := series(t, fams, "autoglm_model_inter_token_seconds", b).GetHistogram()
		// The engine may hand several tokens over in one read (a gap of zero); the upstream
		// waits 2ms between tokens.
		if gap.GetSampleCount() != 2 || gap.GetSampleSum() < 0 || (b["backend"] == "upstream" && gap.GetSampleSum() <= 0) || gap.GetSampleSum() > 60 {
			t.Errorf("%v: inter-token count %d sum %g", b, gap.GetSampleCount(), gap.GetSampleSum())
		}
	}
	// The upstream waits 20ms before its first token: the gateway cannot report less.
	if h := series(t, fams, "autoglm_model_time_to_first_token_seconds", map[string]string{"backend": "upstream"}).GetHistogram(); h.GetSampleSum() < 2*0.020 {
		t.Errorf("upstream TTFT sum %gs is below the upstream's own 2×20ms", h.GetSampleSum())
	}
	// The same calls under the GenAI conventions' names: the chat upstream and the local
	// engine's text completions, each with its tokens by type and the streaming timings.
	for _, c := range []struct{ op, model, provider string }{{"chat", "m", "upstream"}, {"text_completion", "stories", "engine"}} {
		l := map[string]string{"gen_ai_operation_name": c.op, "gen_ai_request_model": c.model, "gen_ai_provider_name": c.provider}
		if h := series(t, fams, "gen_ai_server_time_to_first_token_seconds", l).GetHistogram(); h.GetSampleCount() != 2 || h.GetSampleSum() <= 0 {
			t.Errorf("%v: gen_ai TTFT count %d sum %g", l, h.GetSampleCount(), h.GetSampleSum())
		}
		if h := series(t, fams, "gen_ai_server_request_duration_seconds", map[string]string{"gen_ai_request_model": c.model, "error_type": ""}).GetHistogram(); h.GetSampleCount() != 2 {
			t.Errorf("%v: gen_ai request duration count %d, want 2", l, h.GetSampleCount())
		}
		out := series(t, fams, "gen_ai_client_token_usage", map[string]string{"gen_ai_request_model": c.model, "gen_ai_token_type": "output"}).GetHistogram()
		if out.GetSampleCount() != 2 || out.GetSampleSum() < 2 {
			t.Errorf("%v: gen_ai output tokens count %d sum %g", l, out.GetSampleCount(), out.GetSampleSum())
		}
	}
	route := series(t, fams, "autoglm_http_request_duration_seconds", map[string]string{"route": "/v1/completions"}).GetHistogram()
	if route.GetSampleCount() != 2 {
		t.Errorf("route histogram count %d, want 2", route.GetSampleCount())
	}

	eng := map[string]string{"model": "stories", "backend": "engine"}
	val := func(name string, labels map[string]string) float64 {
		m := series(t, fams, name, labels)
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue()
		case m.Gauge != nil:
			return m.GetGauge().GetValue()
		}
		t.Fatalf("%s is neither a counter nor a gauge", name)
		return 0
	}
	if v := val("autoglm_engine_generated_tokens_total", eng); v < 2 || v > 16 {
		t.Errorf("generated tokens %g, want between 2 and 2×8", v)
	}
	prompt, cached := val("autoglm_engine_prompt_tokens_total", eng), val("autoglm_engine_cached_prompt_tokens_total", eng)
	if prompt <= 0 || cached <= 0 {
		t.Errorf("prompt tokens computed %g, reused %g: want both (the second prompt repeats the first)", prompt, cached)
	}
	if v := val("autoglm_engine_forward_seconds_total", eng); v <= 0 {
		t.Errorf("forward seconds %g", v)
	}
	hits := val("autoglm_engine_prefix_cache_requests_total", map[string]string{"backend": "engine", "result": "hit"})
	misses := val("autoglm_engine_prefix_cache_requests_total", map[string]string{"backend": "engine", "result": "miss"})
	if hits != 1 || misses != 1 {
		t.Errorf("prefix cache hits %g misses %g, want 1 and 1", hits, misses)
	}
	batch := series(t, fams, "autoglm_engine_batch_size", eng).GetHistogram()
	if batch.GetSampleCount() == 0 || batch.GetSampleSum() < float64(batch.GetSampleCount()) {
		t.Errorf("batch size histogram count %d sum %g: every step has at least one sequence", batch.GetSampleCount(), batch.GetSampleSum())
	}
	if v := val("autoglm_engine_queue_depth", eng); v != 0 {
		t.Errorf("queue depth %g after the requests ended", v)
	}
	if v := val("autoglm_engine_kv_cache_bytes", eng); v <= 0 {
		t.Errorf("KV cache bytes %g: the slots keep their caches", v)
	}
}
