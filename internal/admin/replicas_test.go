package admin_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/open-autoglm/autoglm/internal/admin"
	"github.com/open-autoglm/autoglm/internal/auth"
	"github.com/open-autoglm/autoglm/internal/config"
	"github.com/open-autoglm/autoglm/internal/router"
	"github.com/open-autoglm/autoglm/internal/server"
	"github.com/open-autoglm/autoglm/internal/store"
	_ "github.com/open-autoglm/autoglm/internal/store/postgres"
	_ "github.com/open-autoglm/autoglm/internal/store/sqlite"
	"github.com/open-autoglm/autoglm/internal/telemetry"
	"github.com/open-autoglm/autoglm/internal/testenv"
)

// replica is one server process's worth of governance: its own store connection, its own
// key cache refreshing in the background, its own listener.
type replica struct {
	url  string
	auth *auth.Authenticator
}

func startReplica(t *testing.T, scfg config.Store, dataDir string) *replica {
	t.Helper()
	cfg, err := config.Parse([]byte("server: {addr: 127.0.0.1:0}\nauth: {enabled: true, key_refresh: 500ms}\n"), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	st, err := store.Open(ctx, scfg, dataDir)
	if err != nil {
		t.Fatal(err)
	}
	a, err := auth.New(auth.Options{Config: cfg.Auth, Keys: admin.KeyFeed(st), AdminKey: adminKey})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() { a.Run(ctx) })
	reg, _ := router.New(nil)
	log := telemetry.NewLogger(io.Discard, telemetry.ParseLevel("error"))
	api := admin.New(admin.Options{Store: st, Roles: a.Roles(), Logger: log, KeysChanged: a.Refresh})
	ts := httptest.NewServer(server.NewWith(cfg.Server, reg, log, server.Options{Auth: a, Routes: api.Routes()}).Handler())
	t.Cleanup(func() {
		ts.Close()
		cancel()
		wg.Wait()
		st.Close()
	})
	return &replica{url: ts.URL, auth: a}
}

func status(t *testing.T, url, key string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", url+"/v1/me/keys", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestRevocationAcrossReplicas creates a key on one replica, revokes it there, and checks that
// a second replica sharing the store refuses it within one second — on SQLite (two opens of
// one file) and on PostgreSQL.
func TestRevocationAcrossReplicas(t *testing.T) {
	stores := map[string]func(t *testing.T) (config.Store, string){
		"sqlite": func(t *testing.T) (config.Store, string) {
			dir := t.TempDir()
			return config.Store{Driver: "sqlite", Path: filepath.Join(dir, "shared.db"), ReadConns: 2}, dir
		},
		"postgres": func(t *testing.T) (config.Store, string) {
			return config.Store{Driver: "postgres", DSN: schemaDSN(t)}, t.TempDir()
		},
	}
	for name, open := range stores {
		t.Run(name, func(t *testing.T) {
			scfg, dir := open(t)
			scfg = withStoreDefaults(t, scfg)
			a := startReplica(t, scfg, dir)
			b := startReplica(t, scfg, dir)
			e := &env{url: a.url, auth: a.auth}
			var u struct{ ID string }
			if st, env := e.call(t, adminKey, "POST", "/v1/admin/users", admin.CreateUserRequest{Name: "replica-user"}, &u); st != 201 {
				t.Fatalf("create user: %d %+v", st, env)
			}
			var k admin.CreatedKey
			if st, env := e.call(t, adminKey, "POST", "/v1/admin/keys", admin.CreateKeyRequest{UserID: u.ID}, &k); st != 201 {
				t.Fatalf("create key: %d %+v", st, env)
			}
			// Both replicas learn of the new key by themselves.
			deadline := time.Now().Add(5 * time.Second)
			for status(t, a.url, k.Secret) != 200 || status(t, b.url, k.Secret) != 200 {
				if time.Now().After(deadline) {
					t.Fatal("the new key never worked on both replicas")
				}
				time.Sleep(20 * time.Millisecond)
			}
			revoked := time.Now()
			if st, _ := e.call(t, adminKey, "DELETE", "/v1/admin/keys/"+k.ID, nil, nil); st != 200 {
				t.Fatalf("revoke: %d", st)
			}
			for _, r := range []struct {
				name string
				url  string
			}{{"A (revoked here)", a.url}, {"B", b.url}} {
				for status(t, r.url, k.Secret) != http.StatusUnauthorized {
					if time.Since(revoked) > 3*time.Second {
						t.Fatalf("replica %s still accepts the revoked key after 3s", r.name)
					}
					time.Sleep(5 * time.Millisecond)
				}
				took := time.Since(revoked)
				t.Logf("replica %s refuses the revoked key %v after revocation", r.name, took.Round(time.Millisecond))
				if took > time.Second {
					t.Errorf("replica %s took %v (> 1s) to refuse the revoked key", r.name, took)
				}
			}
		})
	}
}

// withStoreDefaults fills the store section's defaults the way config.Parse does.
func withStoreDefaults(t *testing.T, s config.Store) config.Store {
	t.Helper()
	cfg, err := config.Parse([]byte("server: {addr: 127.0.0.1:0}\n"), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	d := cfg.Store
	d.Driver, d.Path, d.DSN = s.Driver, s.Path, s.DSN
	if s.ReadConns != 0 {
		d.ReadConns = s.ReadConns
	}
	return d
}

// schemaDSN gives the test its own schema in the test database, dropped at the end.
func schemaDSN(t *testing.T) string { return testenv.PostgresSchemaDSN(t, "admintest") }
