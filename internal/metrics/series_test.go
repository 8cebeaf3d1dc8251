package metrics_test

import (
	"context"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/open-autoglm/autoglm/internal/backend"
	"github.com/open-autoglm/autoglm/internal/metrics"
	"github.com/open-autoglm/autoglm/internal/usage"
)

// TestKeptSeries: the series kept per label set count every call into the right series, and a
// series is made only when a call has something to record in it, as WithLabelValues did.
func TestKeptSeries(t *testing.T) {
	m := metrics.New(metrics.Sources{})
	ctx := context.Background()
	plain := usage.Outcome{Model: "m", Backend: "up", Op: backend.OpChat, Status: 200,
		Usage: usage.Tokens{PromptTokens: 3, CompletionTokens: 5}, Latency: 10 * time.Millisecond}
	for range 3 {
		m.ObserveModel(ctx, plain)
	}
	streamed := plain
	streamed.Stream, streamed.TTFT, streamed.TextEvents, streamed.TokenGap = true, time.Millisecond, 4, time.Millisecond
	m.ObserveModel(ctx, streamed)
	failed := usage.Outcome{Model: "m", Backend: "up", Op: backend.OpChat, Status: 502, Latency: time.Millisecond}
	m.ObserveModel(ctx, failed)
	m.ObserveModel(ctx, failed)
	for range 2 {
		m.ObserveHTTP("/v1/chat/completions", "POST", 200, time.Millisecond)
	}
	m.ObserveHTTP("/v1/chat/completions", "POST", 503, time.Millisecond)

	fams := gather(t, m)
	if got := series(t, fams, "autoglm_model_requests_total", map[string]string{"code": "200"}).GetCounter().GetValue(); got != 4 {
		t.Errorf("model requests with code 200: %v, want 4", got)
	}
	if got := series(t, fams, "autoglm_model_requests_total", map[string]string{"code": "502"}).GetCounter().GetValue(); got != 2 {
		t.Errorf("model requests with code 502: %v, want 2", got)
	}
	if got := series(t, fams, "autoglm_model_tokens_total", map[string]string{"kind": "completion"}).GetCounter().GetValue(); got != 20 {
		t.Errorf("completion tokens: %v, want 20", got)
	}
	if got := series(t, fams, "autoglm_model_request_duration_seconds", map[string]string{"stream": "false"}).GetHistogram().GetSampleCount(); got != 5 {
		t.Errorf("non-streamed durations: %v, want 5 (3 answered, 2 failed)", got)
	}
	if got := series(t, fams, "autoglm_model_time_to_first_token_seconds", nil).GetHistogram().GetSampleCount(); got != 1 {
		t.Errorf("time-to-first-token samples: %v, want 1", got)
	}
	if got := series(t, fams, "gen_ai_server_request_duration_seconds", map[string]string{"error_type": "502"}).GetHistogram().GetSampleCount(); got != 2 {
		t.Errorf("GenAI durations of failed calls: %v, want 2", got)
	}
	if got := series(t, fams, "gen_ai_client_token_usage", map[string]string{"gen_ai_token_type": "output"}).GetHistogram().GetSampleCount(); got != 4 {
		t.Errorf("GenAI output token samples: %v, want 4 (failed calls record none)", got)
	}
	if got := series(t, fams, "autoglm_http_requests_total", map[string]string{"code": "2xx"}).GetCounter().GetValue(); got != 2 {
		t.Errorf("HTTP 2xx: %v, want 2", got)
	}
	if got := series(t, fams, "autoglm_http_request_duration_seconds", nil).GetHistogram().GetSampleCount(); got != 3 {
		t.Errorf("HTTP durations: %v, want 3", got)
	}
	// The inter-token and per-output-token series exist for the one streamed call only.
	if n := len(fams["autoglm_model_inter_token_seconds"].GetMetric()); n != 1 {
		t.Errorf("inter-token series: %d, want 1", n)
	}
	if n := len(fams["gen_ai_server_time_to_first_token_seconds"].GetMetric()); n != 1 {
		t.Errorf("GenAI time-to-first-token series: %d, want 1", n)
	}
}

func gather(t *testing.T, m *metrics.Metrics) map[string]*dto.MetricFamily {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

// TestFoldedObservations: observations made from many goroutines, past several batches and
// during scrapes, are each counted once, and a scrape sees every observation made before it.
func TestFoldedObservations(t *testing.T) {
	m := metrics.New(metrics.Sources{})
	ctx := context.Background()
	o := usage.Outcome{Model: "m", Backend: "up", Op: backend.OpChat, Status: 200,
		Usage: usage.Tokens{CompletionTokens: 1}, Latency: time.Millisecond}
	const workers, each = 8, 700
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				m.ObserveModel(ctx, o)
				m.ObserveHTTP("/v1/chat/completions", "POST", 200, time.Millisecond)
			}
		})
	}
	wg.Go(func() {
		for range 5 { // scrapes while observations are being added
			m.Handler().ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/metrics", nil))
		}
	})
	wg.Wait()
	fams := gather(t, m)
	if got := series(t, fams, "autoglm_model_requests_total", nil).GetCounter().GetValue(); got != workers*each {
		t.Errorf("model requests: %v, want %d", got, workers*each)
	}
	if got := series(t, fams, "autoglm_model_tokens_total", map[string]string{"kind": "completion"}).GetCounter().GetValue(); got != workers*each {
		t.Errorf("completion tokens: %v, want %d", got, workers*each)
	}
	if got := series(t, fams, "autoglm_http_request_duration_seconds", nil).GetHistogram().GetSampleCount(); got != workers*each {
		t.Errorf("HTTP durations: %v, want %d", got, workers*each)
	}
	m.ObserveModel(ctx, o)
	if got := series(t, gather(t, m), "autoglm_model_requests_total", nil).GetCounter().GetValue(); got != workers*each+1 {
		t.Errorf("after one more: %v, want %d", got, workers*each+1)
	}
}
