package faults_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/open-autoglm/autoglm/api"
)

// TestRedisRestart stops the Redis shared by three gateways, one per rate-limit fail mode,
// and starts it again. While it is down: "open" admits every request, "closed" refuses every
// limited request with 503 and Retry-After, "local" limits each key in memory at its
// configured rate, and the response cache keeps answering from memory; no other error is
// allowed. Once it is back, each gateway uses it again without a restart.
func TestRedisRestart(t *testing.T) {
	rd := startRedis(t)
	mock := mockllm(t, "mockllm")
	const rpm = 30
	gw := map[string]*proc{}
	keys := map[string]string{}
	for _, mode := range []string{"open", "closed", "local"} {
		yml := fmt.Sprintf(`server:
  shutdown_timeout: 2s
ratelimit:
  roles:
    user: {requests_per_minute: %d}
  redis: {addr: %q, prefix: "faults-%s:", timeout: 1s, fail: %s}
cache:
  enabled: true
  redis: {addr: %q, prefix: "faults-cache-%s:"}
models:
  - name: mock
    backends: [{type: openai, base_url: "%s/v1"}]
    health: {probe: none}
`, rpm, rd.addr(), mode, mode, rd.addr(), mode, mock.URL)
		g := serve(t, mode, yml, "", "AUTOGLM_ADMIN_KEY="+adminKey)
		k, err := api.NewClient(g.URL, client).WithAPIKey(adminKey).CreateKey(context.Background(), &api.CreateKeyRequest{Name: "redis-" + mode})
		if err != nil {
			t.Fatalf("create key on %s: %v", mode, err)
		}
		gw[mode], keys[mode] = g, k.Secret
	}
	chat := func(mode string) answer {
		return do(t, "POST", gw[mode].URL+"/v1/chat/completions", keys[mode], chatBody)
	}
	cached := func(mode, prompt string) answer {
		return do(t, "POST", gw[mode].URL+"/v1/chat/completions", keys[mode],
			fmt.Sprintf(`{"model":"mock","temperature":0,"max_tokens":8,"messages":[{"role":"user","content":%q}]}`, prompt))
	}
	decisions := func(mode, d string) float64 {
		return gw[mode].metric(t, "autoglm_ratelimit_decisions_total", `decision="`+d+`"`)
	}
	for mode := range gw {
		if a := chat(mode); a.status != http.StatusOK {
			t.Fatalf("%s with Redis up: %d %s", mode, a.status, a.body)
		}
	}

	rd.stop(t)
	t.Log("Redis stopped")
	t.Run("Open", func(t *testing.T) {
		before := decisions("open", "failed_open")
		for i := range 10 {
			if a := chat("open"); a.status != http.StatusOK {
				t.Errorf("request %d with Redis down, fail open: %d %s", i, a.status, a.body)
			}
		}
		if d := decisions("open", "failed_open") - before; d < 10 {
			t.Errorf("autoglm_ratelimit_decisions_total{decision=failed_open} rose by %.0f over 10 requests, want 10", d)
		}
	})
	t.Run("Closed", func(t *testing.T) {
		for i := range 5 {
			a := chat("closed")
			code, _, _, ok := openAIError(a.body)
			if a.status != http.StatusServiceUnavailable || !ok || a.header.Get("Retry-After") == "" {
				t.Errorf("request %d with Redis down, fail closed: %d %s (Retry-After %q, code %q); want 503 with Retry-After",
					i, a.status, a.body, a.header.Get("Retry-After"), code)
			}
		}
	})
	t.Run("Local", func(t *testing.T) {
		// The key's bucket holds one minute's worth (rpm) and the requests take far less than
		// the minute, so about rpm are admitted and the rest refused with 429.
		admitted, limited := 0, 0
		for i := range rpm + 15 {
			switch a := chat("local"); a.status {
			case http.StatusOK:
				admitted++
			case http.StatusTooManyRequests:
				limited++
			default:
				t.Errorf("request %d with Redis down, fail local: %d %s; want 200 or 429", i, a.status, a.body)
			}
		}
		t.Logf("fail local: %d admitted, %d refused of %d (rate %d/min)", admitted, limited, rpm+15, rpm)
		if admitted > rpm+2 || admitted < rpm-2 {
			t.Errorf("fail local admitted %d of %d, want about %d (the key's own bucket, in memory)", admitted, rpm+15, rpm)
		}
	})
	t.Run("CacheFromMemory", func(t *testing.T) {
		first, second := cached("open", "cache while Redis is down"), cached("open", "cache while Redis is down")
		if first.status != http.StatusOK || second.status != http.StatusOK {
			t.Fatalf("cacheable requests with Redis down: %d %s, %d %s", first.status, first.body, second.status, second.body)
		}
		if h := second.header.Get("X-Autoglm-Cache"); h != "hit" {
			t.Errorf("the second identical request was %q, want a hit from the memory tier", h)
		}
	})

	rd.start(t)
	t.Log("Redis started again")
	t.Run("Back", func(t *testing.T) {
		eventually(t, 60*time.Second, "fail closed admits again", func() bool { return chat("closed").status == http.StatusOK })
		eventually(t, 60*time.Second, "fail open decides through Redis again", func() bool {
			before := decisions("open", "failed_open")
			return chat("open").status == http.StatusOK && decisions("open", "failed_open") == before
		})
		eventually(t, 60*time.Second, "fail local decides through Redis again", func() bool {
			before := decisions("local", "failed_local")
			a := chat("local")
			return (a.status == http.StatusOK || a.status == http.StatusTooManyRequests) && decisions("local", "failed_local") == before
		})
		// The cache's second tier is written again: a fresh answer is stored in Redis and
		// served from it by another replica-like reader (the closed gateway has its own
		// prefix, so the check reads the open gateway's entries back through itself).
		before := gw["open"].metric(t, "autoglm_cache_events_total", `event="l2_error"`)
		if a := cached("open", "cache after Redis is back"); a.status != http.StatusOK {
			t.Errorf("cacheable request after Redis is back: %d %s", a.status, a.body)
		}
		if d := gw["open"].metric(t, "autoglm_cache_events_total", `event="l2_error"`) - before; d > 0 {
			t.Errorf("%.0f cache tier errors after Redis came back", d)
		}
	})
}
