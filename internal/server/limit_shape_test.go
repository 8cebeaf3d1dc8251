package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/open-autoglm/autoglm/internal/config"
	"github.com/open-autoglm/autoglm/internal/mockllm"
	"github.com/open-autoglm/autoglm/internal/openai"
	"github.com/open-autoglm/autoglm/internal/ratelimit"
	"github.com/open-autoglm/autoglm/internal/server"
	"github.com/open-autoglm/autoglm/internal/telemetry"
)

// TestRateLimitRefusalShape sends each route one request more than its caller's rate limit
// allows and checks that the refusal is a 429 in the route's own shape, with Retry-After and
// the rate-limit headers: the envelope on native routes (/metrics, /v1/admin/*), OpenAI's
// error object on OpenAI's routes, Anthropic's on /v1/messages.
func TestRateLimitRefusalShape(t *testing.T) {
	_, mockURL := startMock(t, mockllm.Options{Tokens: 2})
	cfg, err := config.Parse([]byte(oneModel(mockURL, "")+`
ratelimit:
  roles:
    user: {requests_per_minute: 1}
`), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	reg := newRegistry(t, cfg)
	log := telemetry.NewLogger(io.Discard, telemetry.ParseLevel("error"))
	lim, err := ratelimit.New(cfg.RateLimit, ratelimit.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lim.Close() })
	// Each request is charged to the key its X-Test-Key header names.
	subject := func(r *http.Request) (ratelimit.Subject, bool) {
		return ratelimit.Subject{KeyID: r.Header.Get("X-Test-Key"), Role: "user"}, true
	}
	srv, _ := newServer(cfg.Server, reg, log, server.Options{
		Limit: lim.Stage(ratelimit.MiddlewareOptions{Subject: subject}),
		Metrics: func(w http.ResponseWriter, r *http.Request) error {
			_, err := io.WriteString(w, "# metrics\n")
			return err
		},
	}, openai.Options{})
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)

	chat := `{"model":"glm4","max_tokens":2,"messages":[{"role":"user","content":"hi"}]}`
	for _, c := range []struct {
		method, path, body string
		shape              string
	}{
		{"GET", "/metrics", "", "envelope"},
		{"GET", "/v1/admin/backends", "", "envelope"},
		{"POST", "/v1/chat/completions", chat, "openai"},
		{"GET", "/v1/models", "", "openai"},
		{"POST", "/v1/messages", chat, "anthropic"},
	} {
		t.Run(c.path, func(t *testing.T) {
			do := func() (*http.Response, []byte) {
				req, _ := http.NewRequest(c.method, ts.URL+c.path, strings.NewReader(c.body))
				req.Header.Set("X-Test-Key", "key:"+c.path)
				req.Header.Set("Content-Type", "application/json")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				return resp, b
			}
			if resp, b := do(); resp.StatusCode != http.StatusOK {
				t.Fatalf("first request: %d %s", resp.StatusCode, b)
			}
			resp, b := do()
			if resp.StatusCode != http.StatusTooManyRequests {
				t.Fatalf("second request: %d %s, want 429", resp.StatusCode, b)
			}
			if got := resp.Header.Get("Retry-After"); got == "" || got == "0" {
				t.Errorf("Retry-After %q", got)
			}
			if got := resp.Header.Get("X-Ratelimit-Remaining-Requests"); got != "0" {
				t.Errorf("X-Ratelimit-Remaining-Requests %q, want 0", got)
			}
			trace := resp.Header.Get("X-Trace-Id")
			switch c.shape {
			case "envelope":
				var e envelope
				if err := json.Unmarshal(b, &e); err != nil || e.Success || e.Code != "rate_limit_exceeded" ||
					e.Message == "" || e.TraceID != trace || string(e.Data) != "null" {
					t.Errorf("not a rate-limit envelope: %s (%v)", b, err)
				}
			case "openai":
				e := decodeOpenAIError(t, resp, b)
				if e.Error.Type != "rate_limit_error" || e.Error.Code != "rate_limit_exceeded" {
					t.Errorf("OpenAI error %+v", e.Error)
				}
			case "anthropic":
				var e struct {
					Type  string `json:"type"`
					Error struct {
						Type    string `json:"type"`
						Message string `json:"message"`
					} `json:"error"`
					RequestID string `json:"request_id"`
				}
				if err := json.Unmarshal(b, &e); err != nil || e.Type != "error" || e.Error.Type != "rate_limit_error" || e.RequestID != trace {
					t.Errorf("not an Anthropic rate-limit error: %s (%v)", b, err)
				}
			}
		})
	}
}
