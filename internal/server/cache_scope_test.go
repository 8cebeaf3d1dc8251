package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"testing"

	"github.com/open-autoglm/autoglm/internal/admin"
	"github.com/open-autoglm/autoglm/internal/admin/admintest"
	"github.com/open-autoglm/autoglm/internal/auth"
	"github.com/open-autoglm/autoglm/internal/cache"
	"github.com/open-autoglm/autoglm/internal/config"
	"github.com/open-autoglm/autoglm/internal/mockllm"
	"github.com/open-autoglm/autoglm/internal/openai"
	"github.com/open-autoglm/autoglm/internal/server"
	"github.com/open-autoglm/autoglm/internal/store"
	"github.com/open-autoglm/autoglm/internal/telemetry"
)

// startCachedAuthGateway serves mockURL with authentication and the response cache on, in
// the given cache scope, and returns its URL and a function that makes a key for a user.
func startCachedAuthGateway(t *testing.T, mockURL, scope string) (string, func(user string) string) {
	t.Helper()
	cfg, err := config.Parse([]byte(oneModel(mockURL, "")+"cache:\n  enabled: true\n  scope: "+scope+"\n"), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	cfg.Auth.Enabled = true
	reg := newRegistry(t, cfg)
	st := admintest.NewStore()
	a, err := auth.New(auth.Options{Config: cfg.Auth, Keys: admin.KeyFeed(st), AdminKey: testAdminKey})
	if err != nil {
		t.Fatal(err)
	}
	log := telemetry.NewLogger(&syncBuffer{}, telemetry.ParseLevel("debug"))
	c, err := cache.New(cfg.Cache, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	srv, _ := newServer(cfg.Server, reg, log, server.Options{Auth: a}, openai.Options{Cache: c})
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	newKey := func(user string) string {
		if _, err := st.CreateUser(context.Background(), store.User{ID: user, Name: user, Role: auth.RoleUser}); err != nil && !errors.Is(err, store.ErrConflict) {
			t.Fatal(err)
		}
		secret := auth.NewKey()
		if _, err := st.CreateKey(context.Background(), store.Key{ID: store.NewID("key"), Prefix: auth.DisplayPrefix(secret),
			Hash: auth.HashKey(secret), UserID: user, Role: auth.RoleUser}); err != nil {
			t.Fatal(err)
		}
		if err := a.Refresh(context.Background()); err != nil {
			t.Fatal(err)
		}
		return secret
	}
	return ts.URL, newKey
}

// TestCacheScopedPerUser: with the default scope a second user asking the same question is a
// miss and gets an answer of its own; another key of the first user shares its entries.
func TestCacheScopedPerUser(t *testing.T) {
	mock, mockURL := startMock(t, mockllm.Options{Tokens: 4})
	url, newKey := startCachedAuthGateway(t, mockURL, "user")
	alice, alice2, bob := newKey("alice"), newKey("alice"), newKey("bob")
	req := `{"model":"glm4","temperature":0,"messages":[{"role":"user","content":"a private question"}]}`
	ask := func(key string) (string, string) {
		t.Helper()
		resp, body := post(t, url+"/v1/chat/completions", req, "Authorization", "Bearer "+key)
		if resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		var c struct{ ID string }
		_ = json.Unmarshal(body, &c)
		return resp.Header.Get("X-AutoGLM-Cache"), c.ID
	}
	state, aliceID := ask(alice)
	if state != "miss" {
		t.Fatalf("alice first: %s", state)
	}
	state, bobID := ask(bob)
	if state != "miss" || bobID == aliceID {
		t.Errorf("bob after alice: %s, id %s (alice's %s)", state, bobID, aliceID)
	}
	if state, id := ask(alice2); state != "hit" || id != aliceID {
		t.Errorf("alice's second key: %s, id %s, want a hit with %s", state, id, aliceID)
	}
	if state, id := ask(bob); state != "hit" || id != bobID {
		t.Errorf("bob again: %s, id %s, want a hit with %s", state, id, bobID)
	}
	if n := chatCalls(mock); n != 2 {
		t.Errorf("upstream called %d times, want 2 (once per user)", n)
	}
}

// TestCacheScopeKeyAndGlobal: scope key keeps two keys of one user apart; scope global shares
// entries between users, as configured.
func TestCacheScopeKeyAndGlobal(t *testing.T) {
	req := `{"model":"glm4","temperature":0,"messages":[{"role":"user","content":"q"}]}`
	for scope, wantSecond := range map[string]string{"key": "miss", "global": "hit"} {
		t.Run(scope, func(t *testing.T) {
			_, mockURL := startMock(t, mockllm.Options{Tokens: 4})
			url, newKey := startCachedAuthGateway(t, mockURL, scope)
			first, second := newKey("alice"), newKey("bob")
			if scope == "key" {
				second = newKey("alice")
			}
			resp, _ := post(t, url+"/v1/chat/completions", req, "Authorization", "Bearer "+first)
			if got := resp.Header.Get("X-AutoGLM-Cache"); got != "miss" {
				t.Fatalf("first: %s", got)
			}
			resp, _ = post(t, url+"/v1/chat/completions", req, "Authorization", "Bearer "+second)
			if got := resp.Header.Get("X-AutoGLM-Cache"); got != wantSecond {
				t.Errorf("second caller: %s, want %s", got, wantSecond)
			}
		})
	}
}

// TestAmbiguousBodiesRefused: bodies that JSON parsers read differently (invalid UTF-8, an
// unpaired surrogate escape, a repeated key) are refused with 400 in OpenAI's shape, so the
// cache key and the model allow-list always see the request the upstream sees.
func TestAmbiguousBodiesRefused(t *testing.T) {
	mock, mockURL := startMock(t, mockllm.Options{Tokens: 4})
	g := startGateway(t, oneModel(mockURL, "")+cacheCfg, nil)
	resp, _ := post(t, g.URL+"/v1/chat/completions", `{"model":"glm4","temperature":0,"messages":[{"role":"user","content":"a\ufffdb"}]}`)
	if resp.StatusCode != 200 || resp.Header.Get("X-AutoGLM-Cache") != "miss" {
		t.Fatalf("first: %d %s", resp.StatusCode, resp.Header.Get("X-AutoGLM-Cache"))
	}
	for name, body := range map[string]string{
		"invalid utf-8":      "{\"model\":\"glm4\",\"temperature\":0,\"messages\":[{\"role\":\"user\",\"content\":\"a\xffb\"}]}",
		"unpaired surrogate": `{"model":"glm4","temperature":0,"messages":[{"role":"user","content":"a\udfffb"}]}`,
		"repeated key":       `{"model":"glm4","temperature":0,"messages":[{"role":"user","content":"a\ufffdb"}],"messages":[{"role":"user","content":"other"}]}`,
		"repeated model":     `{"model":"glm4","model":"other-model","messages":[{"role":"user","content":"x"}]}`,
		"repeated nested":    `{"model":"glm4","messages":[{"role":"user","content":"x","content":"y"}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			resp, b := post(t, g.URL+"/v1/chat/completions", body)
			var e struct {
				Error struct{ Message, Type, Code string }
			}
			_ = json.Unmarshal(b, &e)
			if resp.StatusCode != 400 || e.Error.Code != "invalid_json" || e.Error.Type != "invalid_request_error" || resp.Header.Get("X-AutoGLM-Cache") != "" {
				t.Errorf("%d %s (cache %q)", resp.StatusCode, b, resp.Header.Get("X-AutoGLM-Cache"))
			}
		})
	}
	if n := chatCalls(mock); n != 1 {
		t.Errorf("upstream called %d times, want 1", n)
	}
}
