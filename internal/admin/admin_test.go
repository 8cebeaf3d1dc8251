package admin_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/open-autoglm/autoglm/internal/admin"
	"github.com/open-autoglm/autoglm/internal/admin/admintest"
	"github.com/open-autoglm/autoglm/internal/auth"
	"github.com/open-autoglm/autoglm/internal/config"
	"github.com/open-autoglm/autoglm/internal/openapi/openapitest"
	"github.com/open-autoglm/autoglm/internal/router"
	"github.com/open-autoglm/autoglm/internal/server"
	"github.com/open-autoglm/autoglm/internal/store"
	"github.com/open-autoglm/autoglm/internal/telemetry"
)

const adminKey = "admin-test-bootstrap-key"

type env struct {
	url   string
	st    *admintest.Store
	auth  *auth.Authenticator
	roles *auth.Roles
	// checked counts the exchanges checked against the API description.
	checked *openapitest.Counter
}

func newEnv(t *testing.T, custom map[string][]string) *env {
	t.Helper()
	cfg, err := config.Parse([]byte("server: {addr: 127.0.0.1:0}\n"), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	cfg.Auth.Enabled = true
	cfg.Auth.Roles = custom
	reg, err := router.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	st := admintest.NewStore()
	a, err := auth.New(auth.Options{Config: cfg.Auth, Keys: admin.KeyFeed(st), AdminKey: adminKey})
	if err != nil {
		t.Fatal(err)
	}
	log := telemetry.NewLogger(io.Discard, telemetry.ParseLevel("error"))
	api := admin.New(admin.Options{Store: st, Roles: a.Roles(), Logger: log})
	var checked *openapitest.Counter
	srv := server.NewWith(cfg.Server, reg, log, server.Options{Auth: a, Routes: api.Routes(), Denied: api.Denied,
		// Every exchange is checked against the API description.
		Outer: func(h http.Handler) http.Handler { h, checked = openapitest.Middleware(t, h); return h }})
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return &env{url: ts.URL, st: st, auth: a, roles: a.Roles(), checked: checked}
}

// envelope is the native answer shape.
type envelope struct {
	Code    string          `json:"code"`
	Success bool            `json:"success"`
	Data    json.RawMessage `json:"data"`
	Message string          `json:"message"`
	TraceID string          `json:"trace_id"`
}

func (e *env) call(t *testing.T, key, method, path string, body any, out any) (int, envelope) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = strings.NewReader(string(b))
	}
	req, _ := http.NewRequest(method, e.url+path, rd)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var env envelope
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		t.Fatalf("%s %s: not an envelope: %v", method, path, err)
	}
	if out != nil && env.Success {
		if err := json.Unmarshal(env.Data, out); err != nil {
			t.Fatalf("%s %s: data: %v", method, path, err)
		}
	}
	return resp.StatusCode, env
}

func (e *env) refresh(t *testing.T) {
	t.Helper()
	if err := e.auth.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestKeyLifecycleThroughAPI(t *testing.T) {
	e := newEnv(t, nil)
	var u store.User
	if st, env := e.call(t, adminKey, "POST", "/v1/admin/users", admin.CreateUserRequest{Name: "alice", Email: "a@example.com"}, &u); st != 201 {
		t.Fatalf("create user: %d %+v", st, env)
	}
	if u.Role != auth.RoleUser || u.ID == "" {
		t.Fatalf("user %+v", u)
	}
	if st, _ := e.call(t, adminKey, "POST", "/v1/admin/users", admin.CreateUserRequest{Name: "alice"}, nil); st != 409 {
		t.Errorf("duplicate user: %d", st)
	}

	var k admin.CreatedKey
	st, env := e.call(t, adminKey, "POST", "/v1/admin/keys", admin.CreateKeyRequest{UserID: u.ID, Name: "laptop", Models: []string{"stories"}, ExpiresIn: "24h"}, &k)
	if st != 201 {
		t.Fatalf("create key: %d %+v", st, env)
	}
	if !strings.HasPrefix(k.Secret, auth.KeyPrefix) || k.Prefix != auth.DisplayPrefix(k.Secret) || k.Role != auth.RoleUser || k.ExpiresAt.IsZero() {
		t.Fatalf("created key %+v", k)
	}
	if strings.Contains(string(env.Data), `"hash"`) {
		t.Error("the key's hash is in the answer")
	}
	stored, _ := e.st.GetKey(context.Background(), k.ID)
	if string(stored.Hash) != string(auth.HashKey(k.Secret)) {
		t.Error("the store does not hold the key's hash")
	}

	// The key works once the cache has refreshed, and sees only its owner's keys.
	e.refresh(t)
	var mine store.Page[store.Key]
	if st, env := e.call(t, k.Secret, "GET", "/v1/me/keys", nil, &mine); st != 200 || len(mine.Items) != 1 || mine.Items[0].ID != k.ID {
		t.Fatalf("me/keys: %d %+v %+v", st, env, mine)
	}
	if st, _ := e.call(t, k.Secret, "GET", "/v1/admin/keys", nil, nil); st != 403 {
		t.Errorf("a user key listed all keys: %d", st)
	}

	// The listing shows it; revocation stops it after the next refresh.
	var all store.Page[store.Key]
	e.call(t, adminKey, "GET", "/v1/admin/keys?user_id="+u.ID, nil, &all)
	if len(all.Items) != 1 {
		t.Fatalf("list: %+v", all)
	}
	if st, _ := e.call(t, adminKey, "DELETE", "/v1/admin/keys/"+k.ID, nil, nil); st != 200 {
		t.Fatalf("revoke: %d", st)
	}
	e.refresh(t)
	if st, env := e.call(t, k.Secret, "GET", "/v1/me/keys", nil, nil); st != 401 || env.Code != "invalid_api_key" {
		t.Errorf("revoked key: %d %+v", st, env)
	}
	if st, _ := e.call(t, adminKey, "DELETE", "/v1/admin/keys/nope", nil, nil); st != 404 {
		t.Errorf("revoke unknown: %d", st)
	}

	// Disabling the user stops their other keys.
	var k2 admin.CreatedKey
	e.call(t, adminKey, "POST", "/v1/admin/keys", admin.CreateKeyRequest{UserID: u.ID}, &k2)
	e.refresh(t)
	if st, _ := e.call(t, k2.Secret, "GET", "/v1/me/usage", nil, nil); st != 200 {
		t.Fatalf("second key: %d", st)
	}
	if st, _ := e.call(t, adminKey, "POST", "/v1/admin/users/"+u.ID+"/disable", nil, nil); st != 200 {
		t.Fatalf("disable: %d", st)
	}
	e.refresh(t)
	if st, _ := e.call(t, k2.Secret, "GET", "/v1/me/usage", nil, nil); st != 401 {
		t.Errorf("key of a disabled user: %d", st)
	}
	if st, _ := e.call(t, adminKey, "POST", "/v1/admin/keys", admin.CreateKeyRequest{UserID: u.ID}, nil); st != 400 {
		t.Errorf("key for a disabled user: %d", st)
	}
	no := false
	var back store.User
	e.call(t, adminKey, "PATCH", "/v1/admin/users/"+u.ID, admin.UpdateUserRequest{Disabled: &no}, &back)
	e.refresh(t)
	if st, _ := e.call(t, k2.Secret, "GET", "/v1/me/usage", nil, nil); st != 200 || back.Disabled {
		t.Errorf("key of a re-enabled user: %d", st)
	}

	// Every admin operation above left a record.
	var audit store.Page[store.AuditRecord]
	e.call(t, adminKey, "GET", "/v1/admin/audit?action=key.revoke", nil, &audit)
	if len(audit.Items) != 2 {
		t.Fatalf("key.revoke records: %+v", audit.Items)
	}
	last := audit.Items[0] // newest first: the revocation of an unknown key
	if last.Result != "error" || last.Target != "nope" || last.Actor != "bootstrap" || last.ClientAddr != "127.0.0.1" {
		t.Errorf("record %+v", last)
	}
	ok := audit.Items[1]
	if ok.Result != "ok" || ok.Target != k.ID {
		t.Errorf("record %+v", ok)
	}
	var created store.Page[store.AuditRecord]
	e.call(t, adminKey, "GET", "/v1/admin/audit?action=user.create&result=ok", nil, &created)
	if len(created.Items) != 1 || created.Items[0].Target != u.ID {
		t.Errorf("user.create records: %+v", created.Items)
	}
	// Every exchange above was checked against the API description.
	for _, op := range []struct {
		method, path string
		status       int
	}{{"POST", "/v1/admin/users", 201}, {"POST", "/v1/admin/keys", 201}, {"GET", "/v1/admin/keys", 200}, {"DELETE", "/v1/admin/keys/{id}", 200}} {
		if e.checked.Seen(op.method, op.path, op.status) == 0 {
			t.Errorf("%s %s → %d was not checked against the API description", op.method, op.path, op.status)
		}
	}
}

func TestNoPrivilegeEscalation(t *testing.T) {
	e := newEnv(t, map[string][]string{"keymaster": {"admin.keys", "admin.users"}})
	var km admin.CreatedKey
	if st, env := e.call(t, adminKey, "POST", "/v1/admin/keys", admin.CreateKeyRequest{Role: "keymaster"}, &km); st != 201 {
		t.Fatalf("create keymaster key: %d %+v", st, env)
	}
	e.refresh(t)
	st, env := e.call(t, km.Secret, "POST", "/v1/admin/keys", admin.CreateKeyRequest{Role: auth.RoleAdmin}, nil)
	if st != 403 || env.Code != "role_exceeds_caller" {
		t.Errorf("keymaster minted an admin key: %d %+v", st, env)
	}
	if st, _ := e.call(t, km.Secret, "POST", "/v1/admin/users", admin.CreateUserRequest{Name: "x", Role: auth.RoleAdmin}, nil); st != 403 {
		t.Errorf("keymaster made an admin user: %d", st)
	}
	if st, env := e.call(t, km.Secret, "POST", "/v1/admin/keys", admin.CreateKeyRequest{Role: "keymaster"}, nil); st != 201 {
		t.Errorf("keymaster could not make a key of its own role: %d %+v", st, env)
	}
	if st, _ := e.call(t, adminKey, "POST", "/v1/admin/keys", admin.CreateKeyRequest{Role: "root"}, nil); st != 400 {
		t.Errorf("unknown role accepted: %d", st)
	}
	if st, _ := e.call(t, adminKey, "POST", "/v1/admin/keys", map[string]any{"rol": "user"}, nil); st != 400 {
		t.Errorf("unknown field accepted: %d", st)
	}
	var denied store.Page[store.AuditRecord]
	e.call(t, adminKey, "GET", "/v1/admin/audit?result=denied&actor="+km.ID, nil, &denied)
	if len(denied.Items) != 2 {
		t.Errorf("denied records: %+v", denied.Items)
	}
}

func TestAuditAndUsageQueries(t *testing.T) {
	e := newEnv(t, nil)
	for i := range 5 {
		e.call(t, adminKey, "POST", "/v1/admin/users", admin.CreateUserRequest{Name: "u" + string(rune('a'+i))}, nil)
	}
	// Cursor pagination over the audit log.
	var seen []store.AuditRecord
	cursor := ""
	for range 10 {
		var p store.Page[store.AuditRecord]
		path := "/v1/admin/audit?action=user.create&limit=2"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		if st, env := e.call(t, adminKey, "GET", path, nil, &p); st != 200 {
			t.Fatalf("%d %+v", st, env)
		}
		seen = append(seen, p.Items...)
		if cursor = p.Next; cursor == "" {
			break
		}
	}
	if len(seen) != 5 {
		t.Fatalf("paged through %d records, want 5", len(seen))
	}
	if st, _ := e.call(t, adminKey, "GET", "/v1/admin/audit?cursor=%21%21", nil, nil); st != 400 {
		t.Errorf("bad cursor: %d", st)
	}
	if st, _ := e.call(t, adminKey, "GET", "/v1/admin/audit?from=yesterday", nil, nil); st != 400 {
		t.Errorf("bad time: %d", st)
	}

	// Usage: totals and records by key, and a user's own view.
	var k admin.CreatedKey
	e.call(t, adminKey, "POST", "/v1/admin/keys", admin.CreateKeyRequest{}, &k)
	now := time.Now()
	e.st.Append(context.Background(), "", []store.UsageRecord{
		{Time: now, KeyID: k.ID, Model: "m", PromptTokens: 10, CompletionTokens: 5, Status: 200},
		{Time: now, KeyID: k.ID, Model: "m", PromptTokens: 1, CompletionTokens: 2, Status: 200},
		{Time: now, KeyID: "other", Model: "m", PromptTokens: 100, Status: 200},
	}, nil)
	var u admin.UsageAnswer
	if st, env := e.call(t, adminKey, "GET", "/v1/admin/usage?key_id="+k.ID, nil, &u); st != 200 {
		t.Fatalf("usage: %d %+v", st, env)
	}
	if u.Totals.Requests != 2 || u.Totals.Tokens() != 18 || len(u.Items) != 2 {
		t.Errorf("usage %+v", u)
	}
	e.refresh(t)
	var mine admin.UsageAnswer
	e.call(t, k.Secret, "GET", "/v1/me/usage", nil, &mine)
	if mine.Totals.Requests != 2 {
		t.Errorf("own usage %+v", mine)
	}
	if st, _ := e.call(t, k.Secret, "GET", "/v1/admin/usage", nil, nil); st != 403 {
		t.Errorf("user read everyone's usage: %d", st)
	}
}

func TestAuditWriteFailureDoesNotFailTheOperation(t *testing.T) {
	e := newEnv(t, nil)
	e.st.FailAppend.Store(true)
	if st, _ := e.call(t, adminKey, "POST", "/v1/admin/users", admin.CreateUserRequest{Name: "z"}, nil); st != 201 {
		t.Errorf("create user with the audit log down: %d", st)
	}
}
