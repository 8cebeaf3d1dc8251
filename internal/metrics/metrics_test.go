package metrics_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	_ "github.com/open-autoglm/autoglm/internal/backend/openai"
	"github.com/open-autoglm/autoglm/internal/config"
	"github.com/open-autoglm/autoglm/internal/metrics"
	"github.com/open-autoglm/autoglm/internal/mockllm"
	"github.com/open-autoglm/autoglm/internal/openai"
	"github.com/open-autoglm/autoglm/internal/router"
	"github.com/open-autoglm/autoglm/internal/server"
)

// TestScrape serves a few requests through a real gateway and checks what /metrics says.
func TestScrape(t *testing.T) {
	up := httptest.NewServer(mockllm.New(mockllm.Options{Tokens: 5}))
	defer up.Close()
	cfg, err := config.Parse([]byte(`
models:
  - name: m
    backends: [{type: openai, base_url: "`+up.URL+`/v1"}]
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
	oa := openai.New(reg, openai.Options{Logger: slog.New(slog.DiscardHandler), OnDone: m.ObserveModel})
	srv := server.NewWith(cfg.Server, reg, slog.New(slog.DiscardHandler), server.Options{
		Routes: oa.Routes(), Metrics: m.ServeHTTP, Observe: m.ObserveHTTP})
	gw := httptest.NewServer(srv.Handler())
	defer gw.Close()

	for range 3 {
		resp, err := http.Post(gw.URL+"/v1/chat/completions", "application/json",
			strings.NewReader(`{"model":"m","messages":[{"role":"user","content":"hi"}]}`))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	resp, _ := http.Post(gw.URL+"/v1/chat/completions", "application/json", strings.NewReader(`{"model":"nope"}`))
	resp.Body.Close()
	resp, _ = http.Get(gw.URL + "/no/such/path/12345")
	resp.Body.Close()

	resp, err = http.Get(gw.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	text := string(body)
	for _, want := range []string{
		`autoglm_http_requests_total{code="2xx",method="POST",route="/v1/chat/completions"} 3`,
		`autoglm_http_requests_total{code="4xx",method="POST",route="/v1/chat/completions"} 1`,
		`autoglm_http_requests_total{code="4xx",method="GET",route=""} 1`,
		`autoglm_model_requests_total{backend="m#0",cache="",code="200",model="m"} 3`,
		`autoglm_model_tokens_total{estimated="false",kind="completion",model="m"} 15`,
		`autoglm_backend_requests_total{backend="m#0",model="m"} 3`,
		`autoglm_backend_circuit_state{backend="m#0",model="m",state="closed"} 1`,
		"go_goroutines ",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if strings.Contains(text, "12345") {
		t.Error("a raw path leaked into a label")
	}
}
