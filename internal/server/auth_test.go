package server_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/open-autoglm/autoglm/internal/admin"
	"github.com/open-autoglm/autoglm/internal/admin/admintest"
	"github.com/open-autoglm/autoglm/internal/auth"
	"github.com/open-autoglm/autoglm/internal/batch"
	"github.com/open-autoglm/autoglm/internal/codeapi"
	"github.com/open-autoglm/autoglm/internal/codecheck"
	"github.com/open-autoglm/autoglm/internal/codecomplete"
	"github.com/open-autoglm/autoglm/internal/config"
	"github.com/open-autoglm/autoglm/internal/mockllm"
	"github.com/open-autoglm/autoglm/internal/modelstore"
	"github.com/open-autoglm/autoglm/internal/openai"
	"github.com/open-autoglm/autoglm/internal/router"
	"github.com/open-autoglm/autoglm/internal/server"
	"github.com/open-autoglm/autoglm/internal/store"
	"github.com/open-autoglm/autoglm/internal/store/sqlite"
	"github.com/open-autoglm/autoglm/internal/telemetry"
)

// authGateway is a server with authentication on, the admin API registered, and one key per
// role.
type authGateway struct {
	URL   string
	srv   *server.Server
	auth  *auth.Authenticator
	store *admintest.Store
	keys  map[string]string // role → secret
	logs  *syncBuffer
}

const testAdminKey = "test-bootstrap-admin-key"

func startAuthGateway(t *testing.T, mockURL string, customRoles map[string][]string) *authGateway {
	t.Helper()
	cfg, err := config.Parse([]byte(oneModel(mockURL, "")), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	cfg.Auth.Enabled = true
	cfg.Auth.Roles = customRoles
	reg := newRegistry(t, cfg)
	st := admintest.NewStore()
	a, err := auth.New(auth.Options{Config: cfg.Auth, Keys: admin.KeyFeed(st), AdminKey: testAdminKey})
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	log := telemetry.NewLogger(logs, telemetry.ParseLevel("debug"))
	api := admin.New(admin.Options{Store: st, Roles: a.Roles(), Logger: log})
	// The Files and Batch APIs keep their rows in a SQLite file of the test's own.
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "autoglm.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	var srv *server.Server
	batches, err := batch.Open(context.Background(), db, batch.Options{Handler: func() http.Handler { return srv.Handler() }, Principal: a.PrincipalOf, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { batches.Close() })
	oa := openai.New(reg, openai.Options{Logger: log})
	srv = server.NewWith(cfg.Server, reg, log, server.Options{Auth: a, Routes: slices.Concat(oa.Routes(), api.Routes(), (&modelstore.Store{Dir: t.TempDir()}).Routes(),
		codecomplete.Routes(oa.Completions), codeapi.Routes(codecheck.New(), nil), batches.Routes()), Denied: api.Denied})
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	g := &authGateway{URL: ts.URL, srv: srv, auth: a, store: st, keys: map[string]string{}, logs: logs}
	for _, role := range a.Roles().Names() {
		g.keys[role] = g.newKey(t, role, nil)
	}
	return g
}

// newKey stores a key straight in the store and refreshes the cache.
func (g *authGateway) newKey(t *testing.T, role string, models []string) string {
	t.Helper()
	secret := auth.NewKey()
	_, err := g.store.CreateKey(context.Background(), store.Key{ID: store.NewID("key"), Prefix: auth.DisplayPrefix(secret),
		Hash: auth.HashKey(secret), Role: role, Models: models})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.auth.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	return secret
}

func (g *authGateway) do(t *testing.T, method, path, body, key string) (*http.Response, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, g.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// concretePath fills a route pattern's wildcards.
func concretePath(pattern string) string {
	p := strings.ReplaceAll(pattern, "{id...}", "glm-4-flash")
	p = strings.ReplaceAll(p, "{path...}", "api/models/acme/none")
	return strings.ReplaceAll(p, "{id}", "nonexistent")
}

// TestRoleRouteMatrix walks every route the server registers (the admin API included) with
// every role, and with no credential, and checks authorization's decision against the role's
// permissions. A route without a permission, or with one no role can hold, fails the test.
func TestRoleRouteMatrix(t *testing.T) {
	_, mockURL := startMock(t, mockllm.Options{Tokens: 2})
	g := startAuthGateway(t, mockURL, map[string][]string{"auditor": {"admin.audit", "models.list"}})
	roles := g.auth.Roles()
	body := `{"model":"glm-4-flash","messages":[{"role":"user","content":"hi"}],"prompt":"hi","input":"hi","max_tokens":2}`
	routes := g.srv.Routes()
	if len(routes) < 20 {
		t.Fatalf("only %d routes: is the admin API registered?", len(routes))
	}
	for _, rt := range routes {
		perm := rt.Permission
		if perm == "" || (perm != auth.Public && !slices.Contains(auth.Permissions(), perm)) {
			t.Errorf("%s %s names no permission auth knows (%q)", rt.Method, rt.Pattern, perm)
			continue
		}
		path := concretePath(rt.Pattern)
		b := ""
		if rt.Method == "POST" || rt.Method == "PATCH" {
			b = body
		}
		for _, role := range append(roles.Names(), "(none)") {
			key := g.keys[role]
			resp, got := g.do(t, rt.Method, path, b, key)
			var allowed bool
			if role == "(none)" {
				allowed = perm == auth.Public
			} else {
				allowed = roles.Allows(role, perm)
			}
			denied := resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden
			switch {
			case allowed && denied:
				t.Errorf("%s %s as %s: %d %s; want allowed (%s)", rt.Method, path, role, resp.StatusCode, got, perm)
			case !allowed && role == "(none)" && resp.StatusCode != http.StatusUnauthorized:
				t.Errorf("%s %s without a credential: %d; want 401", rt.Method, path, resp.StatusCode)
			case !allowed && role != "(none)" && resp.StatusCode != http.StatusForbidden:
				t.Errorf("%s %s as %s: %d; want 403 (%s)", rt.Method, path, role, resp.StatusCode, perm)
			}
		}
	}
	// Refused admin requests are audited.
	denials := 0
	for _, rec := range g.store.Audit() {
		if rec.Result == "denied" {
			denials++
		}
	}
	if denials == 0 {
		t.Error("no denied admin request was audited")
	}
}

func TestAuthRefusals(t *testing.T) {
	_, mockURL := startMock(t, mockllm.Options{Tokens: 2})
	g := startAuthGateway(t, mockURL, nil)
	chat := `{"model":"glm-4-flash","messages":[{"role":"user","content":"hi"}]}`
	for _, tc := range []struct {
		name, path, key, header string
		status                  int
		code                    string
	}{
		{"unknown key", "/v1/chat/completions", "agk-nope", "", 401, "invalid_api_key"},
		{"bad scheme", "/v1/chat/completions", "", "Basic Zm9vOmJhcg==", 401, "invalid_credential"},
		{"jwt not configured", "/v1/chat/completions", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0.c2ln", "", 401, "invalid_token"},
		{"no credential", "/v1/chat/completions", "", "", 401, "missing_credential"},
		{"health stays open", "/healthz", "", "", 200, ""},
		{"bad credential refused even on health", "/healthz", "agk-nope", "", 401, "invalid_api_key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			method, body := "POST", chat
			if tc.path == "/healthz" {
				method, body = "GET", ""
			}
			req, _ := http.NewRequest(method, g.URL+tc.path, strings.NewReader(body))
			if tc.key != "" {
				req.Header.Set("Authorization", "Bearer "+tc.key)
			}
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status || !strings.Contains(string(b), tc.code) {
				t.Errorf("%d %s; want %d %s", resp.StatusCode, b, tc.status, tc.code)
			}
			if tc.status == 401 && strings.HasPrefix(tc.path, "/v1/") && !strings.Contains(string(b), `"type":"authentication_error"`) {
				t.Errorf("OpenAI route answered 401 in the wrong shape: %s", b)
			}
		})
	}
	// x-api-key works as well as Authorization.
	req, _ := http.NewRequest("GET", g.URL+"/v1/models", nil)
	req.Header.Set("x-api-key", g.keys[auth.RoleGuest])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("x-api-key: %d", resp.StatusCode)
	}
}

func TestModelAllowList(t *testing.T) {
	_, mockURL := startMock(t, mockllm.Options{Tokens: 2})
	g := startAuthGateway(t, mockURL, nil)
	only := g.newKey(t, auth.RoleUser, []string{"glm-4-flash"})
	other := g.newKey(t, auth.RoleUser, []string{"stories"})
	chat := func(model string) string {
		return `{"model":"` + model + `","messages":[{"role":"user","content":"hi"}],"max_tokens":2}`
	}
	for _, tc := range []struct {
		name, key, body string
		status          int
	}{
		{"allowed", only, chat("glm-4-flash"), 200},
		{"allowed through an alias", only, chat("glm4"), 200},
		{"not on the list", other, chat("glm-4-flash"), 403},
		{"a repeated model key is refused", other, `{"model":"stories","model":"glm-4-flash","messages":[]}`, 400},
		{"unrestricted key", g.keys[auth.RoleUser], chat("glm-4-flash"), 200},
		{"invalid JSON reaches the handler's own error", other, `{"model":`, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, b := g.do(t, "POST", "/v1/chat/completions", tc.body, tc.key)
			if resp.StatusCode != tc.status {
				t.Errorf("%d %s; want %d", resp.StatusCode, b, tc.status)
			}
			if tc.status == 403 && !strings.Contains(b, "model_not_allowed") {
				t.Errorf("403 without model_not_allowed: %s", b)
			}
		})
	}
}

// TestAuthDisabledLeavesRoutesOpen checks that an authenticator that is not enabled adds no
// stage: the routes answer without credentials.
func TestAuthDisabledLeavesRoutesOpen(t *testing.T) {
	_, mockURL := startMock(t, mockllm.Options{Tokens: 2})
	cfg, err := config.Parse([]byte(oneModel(mockURL, "")), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	reg, _ := router.New(cfg.Models)
	defer reg.Close()
	a, _ := auth.New(auth.Options{Config: cfg.Auth})
	srv, _ := newServer(cfg.Server, reg, telemetry.NewLogger(io.Discard, telemetry.ParseLevel("error")), server.Options{Auth: a}, openai.Options{})
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	resp, err := http.Get(ts.URL + "/v1/models")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("auth off: %d", resp.StatusCode)
	}
}

// BenchmarkAuthOverhead measures what authentication and authorization add to a request: the
// same GET /v1/models through the whole handler chain with auth off, with an API key from the
// cache, and with the bootstrap admin key.
func BenchmarkAuthOverhead(b *testing.B) {
	cfg, err := config.Parse([]byte(oneModel("http://127.0.0.1:1/v1", "")), func(string) (string, bool) { return "", false })
	if err != nil {
		b.Fatal(err)
	}
	reg, _ := router.New(cfg.Models)
	defer reg.Close()
	log := telemetry.NewLogger(io.Discard, telemetry.ParseLevel("error"))
	st := admintest.NewStore()
	cfg.Auth.Enabled = true
	a, err := auth.New(auth.Options{Config: cfg.Auth, Keys: admin.KeyFeed(st), AdminKey: testAdminKey})
	if err != nil {
		b.Fatal(err)
	}
	secret := auth.NewKey()
	st.CreateKey(context.Background(), store.Key{ID: "key_bench", Prefix: auth.DisplayPrefix(secret), Hash: auth.HashKey(secret), Role: auth.RoleUser})
	a.Refresh(context.Background())
	offSrv, _ := newServer(cfg.Server, reg, log, server.Options{}, openai.Options{})
	onSrv, _ := newServer(cfg.Server, reg, log, server.Options{Auth: a}, openai.Options{})
	off, on := offSrv.Handler(), onSrv.Handler()
	for _, bc := range []struct {
		name string
		h    http.Handler
		key  string
	}{{"off", off, ""}, {"api_key", on, secret}, {"admin_key", on, testAdminKey}} {
		b.Run(bc.name, func(b *testing.B) {
			req := httptest.NewRequest("GET", "/v1/models", nil)
			if bc.key != "" {
				req.Header.Set("Authorization", "Bearer "+bc.key)
			}
			b.ReportAllocs()
			for b.Loop() {
				w := httptest.NewRecorder()
				bc.h.ServeHTTP(w, req)
				if w.Code != 200 {
					b.Fatalf("%d %s", w.Code, w.Body)
				}
			}
		})
	}
}

// TestPprofAdminOnly checks the profiler answers admins and nobody else.
func TestPprofAdminOnly(t *testing.T) {
	_, mockURL := startMock(t, mockllm.Options{})
	g := startAuthGateway(t, mockURL, nil)
	user := g.newKey(t, "user", nil)
	for _, tc := range []struct {
		key    string
		status int
	}{{"", 401}, {user, 403}, {testAdminKey, 200}} {
		for _, path := range []string{"/debug/pprof/", "/debug/pprof/heap?debug=1", "/debug/pprof/goroutine?debug=1"} {
			resp, body := g.do(t, "GET", path, "", tc.key)
			if resp.StatusCode != tc.status {
				t.Errorf("%s with key %q: %d, want %d", path, tc.key, resp.StatusCode, tc.status)
			}
			if tc.status == 200 && !strings.Contains(body, "goroutine") && !strings.Contains(body, "heap") {
				t.Errorf("%s: not a profile: %.100s", path, body)
			}
		}
	}
}

// TestModelListFollowsAllowList checks a key sees only the models it may use, in the list and
// by id (aliases included), while an unrestricted key sees them all.
func TestModelListFollowsAllowList(t *testing.T) {
	_, mockURL := startMock(t, mockllm.Options{})
	g := startAuthGateway(t, mockURL, nil)
	byAlias := g.newKey(t, auth.RoleUser, []string{"glm4"})
	none := g.newKey(t, auth.RoleUser, []string{"stories"})
	for _, tc := range []struct {
		name, key string
		listed    bool
	}{{"allowed by alias", byAlias, true}, {"not allowed", none, false}, {"unrestricted", g.keys[auth.RoleUser], true}} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := g.do(t, "GET", "/v1/models", "", tc.key)
			if resp.StatusCode != 200 || strings.Contains(body, `"glm-4-flash"`) != tc.listed {
				t.Errorf("list: %d %s; want glm-4-flash listed=%v", resp.StatusCode, body, tc.listed)
			}
			want := 404
			if tc.listed {
				want = 200
			}
			for _, id := range []string{"glm-4-flash", "glm4"} {
				if resp, body := g.do(t, "GET", "/v1/models/"+id, "", tc.key); resp.StatusCode != want {
					t.Errorf("GET /v1/models/%s: %d %s; want %d", id, resp.StatusCode, body, want)
				}
			}
		})
	}
}
