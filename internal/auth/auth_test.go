package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/open-autoglm/autoglm/internal/apierr"
	"github.com/open-autoglm/autoglm/internal/config"
)

// memKeys is a KeyStore fake: keys in a map, UpdatedAt from the real clock (the "store's
// clock"), and a switch to make it fail.
type memKeys struct {
	mu    sync.Mutex
	keys  map[string]Key
	fail  atomic.Bool
	calls atomic.Int64
}

func newMemKeys() *memKeys { return &memKeys{keys: map[string]Key{}} }

func (m *memKeys) KeysChangedSince(ctx context.Context, since time.Time) ([]Key, error) {
	m.calls.Add(1)
	if m.fail.Load() {
		return nil, errors.New("store down")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Key
	for _, k := range m.keys {
		if !k.UpdatedAt.Before(since) {
			out = append(out, k)
		}
	}
	return out, nil
}

// create stores a new key and returns its secret.
func (m *memKeys) create(id, user, role string, models []string, expires time.Time) string {
	secret := NewKey()
	now := time.Now()
	m.mu.Lock()
	m.keys[id] = Key{ID: id, UserID: user, Role: role, Prefix: DisplayPrefix(secret), Hash: HashKey(secret),
		Models: models, ExpiresAt: expires, CreatedAt: now, UpdatedAt: now}
	m.mu.Unlock()
	return secret
}

func (m *memKeys) revoke(id string) {
	m.mu.Lock()
	k := m.keys[id]
	k.RevokedAt, k.UpdatedAt = time.Now(), time.Now()
	m.keys[id] = k
	m.mu.Unlock()
}

func authOf(t testing.TB, store KeyStore, adminKey string, now func() time.Time) *Authenticator {
	t.Helper()
	cfg := config.Auth{Enabled: true, KeyRefresh: config.Duration(500 * time.Millisecond)}
	a, err := New(Options{Config: cfg, Keys: store, AdminKey: adminKey, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	return a
}

func keyCred(secret string) Credential { return Credential{Kind: APIKey, Token: secret} }

func TestKeyShape(t *testing.T) {
	k := NewKey()
	if len(k) != 47 || k[:4] != KeyPrefix {
		t.Fatalf("key %q", k)
	}
	if c, err := ParseCredential("Bearer "+k, ""); err != nil || c.Kind != APIKey {
		t.Fatalf("a generated key parses as %+v, %v", c, err)
	}
	if NewKey() == k {
		t.Fatal("two keys are equal")
	}
	if p := DisplayPrefix(k); len(p) != 12 || k[:12] != p {
		t.Fatalf("prefix %q", p)
	}
	if len(HashKey(k)) != 32 {
		t.Fatal("hash length")
	}
}

func TestKeyLifecycle(t *testing.T) {
	store := newMemKeys()
	var clock atomic.Pointer[time.Time]
	start := time.Now()
	clock.Store(&start)
	now := func() time.Time { return *clock.Load() }
	a := authOf(t, store, "", now)

	// Unknown before creation, known after a refresh.
	secret := store.create("k1", "alice", RoleUser, []string{"stories"}, start.Add(time.Hour))
	if _, err := a.AuthenticateCredential(keyCred(secret)); apierr.KindOf(err) != apierr.Unauthenticated {
		t.Fatalf("key known before refresh: %v", err)
	}
	if err := a.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	p, err := a.AuthenticateCredential(keyCred(secret))
	if err != nil {
		t.Fatal(err)
	}
	if p.KeyID != "k1" || p.UserID != "alice" || p.Role != RoleUser || p.Method != MethodAPIKey || p.KeyPrefix != DisplayPrefix(secret) {
		t.Fatalf("principal %+v", p)
	}
	if !p.AllowsModel("stories") || p.AllowsModel("glm-4") {
		t.Errorf("allow-list %v", p.Models)
	}
	if err := p.CheckModel("glm-4"); apierr.KindOf(err) != apierr.PermissionDenied {
		t.Errorf("CheckModel(glm-4) = %v", err)
	}
	// A near miss is refused.
	if _, err := a.AuthenticateCredential(keyCred(secret[:len(secret)-1] + "x")); apierr.KindOf(err) != apierr.Unauthenticated {
		t.Errorf("altered key accepted: %v", err)
	}

	// Expiry needs no store change.
	later := start.Add(2 * time.Hour)
	clock.Store(&later)
	_, err = a.AuthenticateCredential(keyCred(secret))
	if e := apierr.From(err); e == nil || e.Kind != apierr.Unauthenticated || e.Message != "the API key has expired" {
		t.Fatalf("expired key: %v", err)
	}
	clock.Store(&start)

	// Revocation takes effect at the next refresh, and survives later refreshes.
	store.revoke("k1")
	if err := a.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := a.AuthenticateCredential(keyCred(secret)); apierr.KindOf(err) != apierr.Unauthenticated {
			t.Fatalf("revoked key accepted: %v", err)
		}
		a.Refresh(context.Background())
	}
	if n := a.CachedKeys(); n != 0 {
		t.Errorf("cache holds %d keys after revocation", n)
	}

	// A store outage keeps the cache serving.
	s2 := store.create("k2", "bob", RoleGuest, nil, time.Time{})
	a.Refresh(context.Background())
	store.fail.Store(true)
	if err := a.Refresh(context.Background()); err == nil {
		t.Fatal("refresh against a failing store succeeded")
	}
	if p, err := a.AuthenticateCredential(keyCred(s2)); err != nil || p.Can(ModelsUse) || !p.Can(ModelsList) {
		t.Fatalf("guest key during outage: %+v %v", p, err)
	}
}

func TestDisabledUserKeys(t *testing.T) {
	store := newMemKeys()
	secret := store.create("k1", "carol", RoleUser, nil, time.Time{})
	a := authOf(t, store, "", nil)
	if _, err := a.AuthenticateCredential(keyCred(secret)); err != nil {
		t.Fatal(err)
	}
	store.mu.Lock()
	k := store.keys["k1"]
	k.Disabled, k.UpdatedAt = true, time.Now()
	store.keys["k1"] = k
	store.mu.Unlock()
	a.Refresh(context.Background())
	if _, err := a.AuthenticateCredential(keyCred(secret)); apierr.KindOf(err) != apierr.Unauthenticated {
		t.Fatalf("key of a disabled user accepted: %v", err)
	}
	store.mu.Lock()
	k.Disabled, k.UpdatedAt = false, time.Now()
	store.keys["k1"] = k
	store.mu.Unlock()
	a.Refresh(context.Background())
	if _, err := a.AuthenticateCredential(keyCred(secret)); err != nil {
		t.Fatalf("key of a re-enabled user refused: %v", err)
	}
}

func TestAdminKey(t *testing.T) {
	a := authOf(t, nil, "bootstrap-secret-value", nil)
	if !a.Enabled() {
		t.Fatal("an admin key must turn auth on")
	}
	r := httptest.NewRequest("GET", "/v1/admin/users", nil)
	r.Header.Set("Authorization", "Bearer bootstrap-secret-value")
	p, err := a.Authenticate(r)
	if err != nil || p.Method != MethodAdminKey || p.Role != RoleAdmin || !p.Can(AdminKeys) {
		t.Fatalf("admin key: %+v %v", p, err)
	}
	r.Header.Set("Authorization", "Bearer bootstrap-secret-valuE")
	if _, err := a.Authenticate(r); apierr.KindOf(err) != apierr.Unauthenticated {
		t.Fatalf("wrong admin key: %v", err)
	}
	r.Header.Del("Authorization")
	if p, err := a.Authenticate(r); p != nil || err != nil {
		t.Fatalf("no credential: %+v %v", p, err)
	}
	off, _ := New(Options{})
	if off.Enabled() {
		t.Fatal("auth on without config or admin key")
	}
}

func TestAuthorize(t *testing.T) {
	roles, err := NewRoles(map[string][]string{"support": {"admin.audit", "models.list"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewRoles(map[string][]string{"x": {"models.fly"}}); err == nil {
		t.Fatal("unknown permission accepted")
	}
	if _, err := NewRoles(map[string][]string{"user": {"models.list"}}); err == nil {
		t.Fatal("built-in role redefined")
	}
	p := &Principal{Role: "support", perms: roles.sets["support"]}
	if err := Authorize(p, AdminAudit); err != nil {
		t.Error(err)
	}
	if err := Authorize(p, AdminKeys); apierr.KindOf(err) != apierr.PermissionDenied {
		t.Errorf("support may manage keys: %v", err)
	}
	if err := Authorize(nil, ModelsList); apierr.KindOf(err) != apierr.Unauthenticated {
		t.Errorf("anonymous may list models: %v", err)
	}
	if err := Authorize(nil, Public); err != nil {
		t.Errorf("anonymous refused a public route: %v", err)
	}
	for _, perm := range Permissions() {
		if !roles.Allows(RoleAdmin, perm) {
			t.Errorf("admin lacks %s", perm)
		}
	}
	if roles.Allows("nobody", ModelsList) {
		t.Error("unknown role holds a permission")
	}
}

// TestRevocationAcrossReplicas runs two authenticators ("replicas") refreshing from one
// store on their own schedules, revokes a key, and checks that both refuse it within a second.
func TestRevocationAcrossReplicas(t *testing.T) {
	store := newMemKeys()
	secret := store.create("k1", "dave", RoleUser, nil, time.Time{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var replicas []*Authenticator
	for i := range 2 {
		a := authOf(t, store, "", nil)
		replicas = append(replicas, a)
		go func() {
			// Stagger the replicas so their refreshes do not line up.
			time.Sleep(time.Duration(i) * 230 * time.Millisecond)
			a.Run(ctx)
		}()
		if _, err := a.AuthenticateCredential(keyCred(secret)); err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
	}
	time.Sleep(300 * time.Millisecond)
	revoked := time.Now()
	store.revoke("k1")
	var wg sync.WaitGroup
	took := make([]time.Duration, len(replicas))
	for i, a := range replicas {
		wg.Go(func() {
			for time.Since(revoked) < 3*time.Second {
				if _, err := a.AuthenticateCredential(keyCred(secret)); err != nil {
					took[i] = time.Since(revoked)
					return
				}
				time.Sleep(5 * time.Millisecond)
			}
			took[i] = time.Hour
		})
	}
	wg.Wait()
	for i, d := range took {
		t.Logf("replica %d refused the revoked key after %v", i, d.Round(time.Millisecond))
		if d > time.Second {
			t.Errorf("replica %d still accepted the revoked key after %v", i, d)
		}
	}
}

func BenchmarkAuthenticateKey(b *testing.B) {
	store := newMemKeys()
	var secret string
	for i := range 10000 {
		s := store.create(fmt.Sprint("k", i), "u", RoleUser, nil, time.Time{})
		if i == 5000 {
			secret = s
		}
	}
	a := authOf(b, store, "admin-key", nil)
	r := httptest.NewRequest("POST", "/v1/chat/completions", nil)
	r.Header.Set("Authorization", "Bearer "+secret)
	b.Run("request", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := a.Authenticate(r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := a.Authenticate(r); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
