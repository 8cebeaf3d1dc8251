package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/open-autoglm/autoglm/internal/config"
	"github.com/open-autoglm/autoglm/internal/mockllm"
	"github.com/open-autoglm/autoglm/internal/openai"
	"github.com/open-autoglm/autoglm/internal/router"
	"github.com/open-autoglm/autoglm/internal/server"
	"github.com/open-autoglm/autoglm/internal/telemetry"
)

// TestJWTCallerHeldToUserQuota: a caller with a JWT (no API key) is refused once its user has
// used the daily quota, as a key would be.
func TestJWTCallerHeldToUserQuota(t *testing.T) {
	up := httptest.NewServer(mockllm.New(mockllm.Options{Tokens: 40}))
	defer up.Close()
	const secret = "quota-test-secret-0123456789abcdef"
	cfg, err := config.Parse([]byte(`
server: {addr: 127.0.0.1:0}
models:
  - name: m
    backends: [{type: openai, base_url: `+up.URL+`/v1}]
auth:
  enabled: true
  jwt: {secret: `+secret+`}
ratelimit:
  roles:
    user: {tokens_per_day: 60}
`), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(adminKeyEnv, "")
	log := telemetry.NewLogger(io.Discard, telemetry.ParseLevel("error"))
	g, err := setupGovernance(context.Background(), cfg, t.TempDir(), false, log)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	reg, err := router.New(cfg.Models)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	var opts server.Options
	oaOpts := openai.Options{Logger: log}
	g.apply(&opts, &oaOpts)
	opts.Routes = append(opts.Routes, openai.New(reg, oaOpts).Routes()...)
	ts := httptest.NewServer(server.NewWith(cfg.Server, reg, log, opts).Handler())
	defer ts.Close()

	token, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": "alice", "role": "user", "exp": time.Now().Add(time.Hour).Unix(),
	}).SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	chat := func() (int, string) {
		req, _ := http.NewRequest("POST", ts.URL+"/v1/chat/completions",
			strings.NewReader(`{"model":"m","max_tokens":40,"messages":[{"role":"user","content":"hi"}]}`))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// 40 completion tokens plus the prompt: the first request crosses 60 only with the second.
	for i, want := range []int{200, 200, 429} {
		status, body := chat()
		if status != want {
			t.Fatalf("request %d: %d %s, want %d", i+1, status, body, want)
		}
		if want == 429 && !strings.Contains(body, "this user has used its daily quota of 60 tokens") {
			t.Errorf("refusal: %s", body)
		}
	}
}
