package server_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/open-autoglm/autoglm/internal/admin"
	"github.com/open-autoglm/autoglm/internal/auth"
	"github.com/open-autoglm/autoglm/internal/config"
	"github.com/open-autoglm/autoglm/internal/mockllm"
	"github.com/open-autoglm/autoglm/internal/openai"
	"github.com/open-autoglm/autoglm/internal/ratelimit"
	"github.com/open-autoglm/autoglm/internal/router"
	"github.com/open-autoglm/autoglm/internal/server"
	"github.com/open-autoglm/autoglm/internal/store"
	_ "github.com/open-autoglm/autoglm/internal/store/sqlite"
	"github.com/open-autoglm/autoglm/internal/telemetry"
)

// BenchmarkGovernance measures what authentication, rate limiting and usage records add to a
// chat completion through the gateway's handler (a real mock upstream behind it): "off" has
// none of them; "on" has an API key, in-memory limits on requests, tokens and concurrency, and
// a usage record per request queued for a real SQLite store.
func BenchmarkGovernance(b *testing.B) {
	up := httptest.NewServer(mockllm.New(mockllm.Options{Tokens: 16}))
	defer up.Close()
	cfg, err := config.Parse([]byte(oneModel(up.URL+"/v1", "")+`
ratelimit:
  roles:
    user: {requests_per_minute: 1000000000, tokens_per_minute: 1000000000000, concurrent: 1000}
`), func(string) (string, bool) { return "", false })
	if err != nil {
		b.Fatal(err)
	}
	reg, err := router.New(cfg.Models)
	if err != nil {
		b.Fatal(err)
	}
	defer reg.Close()
	log := telemetry.NewLogger(io.Discard, telemetry.ParseLevel("error"))
	ctx := context.Background()
	cfg.Store.Path = filepath.Join(b.TempDir(), "bench.db")
	st, err := store.Open(ctx, cfg.Store, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	batcher := store.NewBatcher(st, store.BatcherOptionsFrom(cfg.Store.Batch))
	defer batcher.Close(ctx)
	cfg.Auth.Enabled = true
	a, err := auth.New(auth.Options{Config: cfg.Auth, Keys: admin.KeyFeed(st)})
	if err != nil {
		b.Fatal(err)
	}
	secret := auth.NewKey()
	if _, err := st.CreateKey(ctx, store.Key{ID: "key_bench", Prefix: auth.DisplayPrefix(secret), Hash: auth.HashKey(secret), Role: auth.RoleUser}); err != nil {
		b.Fatal(err)
	}
	if err := a.Refresh(ctx); err != nil {
		b.Fatal(err)
	}
	lim, err := ratelimit.New(cfg.RateLimit, ratelimit.Options{Logger: log})
	if err != nil {
		b.Fatal(err)
	}
	defer lim.Close()
	usage := func(ctx context.Context, o openai.Outcome) {
		ratelimit.Settle(ctx, o.Usage.Total())
		p, _ := auth.FromContext(ctx)
		batcher.Usage(store.UsageRecord{Time: time.Now(), KeyID: p.KeyID, Model: o.Model, Backend: o.Backend,
			PromptTokens: o.Usage.PromptTokens, CompletionTokens: o.Usage.CompletionTokens, Status: o.Status})
	}
	subject := func(r *http.Request) (ratelimit.Subject, bool) {
		p, ok := auth.FromContext(r.Context())
		if !ok {
			return ratelimit.Subject{}, false
		}
		return ratelimit.Subject{KeyID: p.KeyID, UserID: p.UserID, Role: p.Role}, true
	}
	offSrv, _ := newServer(cfg.Server, reg, log, server.Options{}, openai.Options{})
	onSrv, _ := newServer(cfg.Server, reg, log, server.Options{Auth: a,
		Limit: lim.Stage(ratelimit.MiddlewareOptions{Subject: subject})}, openai.Options{OnDone: usage})
	off, on := offSrv.Handler(), onSrv.Handler()
	body := `{"model":"glm4","messages":[{"role":"user","content":"the quick brown fox"}],"max_tokens":16}`
	for _, bc := range []struct {
		name string
		h    http.Handler
		key  string
	}{{"off", off, ""}, {"on", on, secret}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest("POST", "/v1/chat/completions", strings.NewReader(body))
				if bc.key != "" {
					req.Header.Set("Authorization", "Bearer "+bc.key)
				}
				w := httptest.NewRecorder()
				bc.h.ServeHTTP(w, req)
				if w.Code != 200 {
					b.Fatalf("%d %s", w.Code, w.Body)
				}
			}
		})
	}
}
