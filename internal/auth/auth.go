package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/open-autoglm/autoglm/internal/apierr"
	"github.com/open-autoglm/autoglm/internal/config"
)

// KeyStore is what authentication needs from the store.
type KeyStore interface {
	// KeysChangedSince returns every key created, updated, revoked or disabled at or after
	// since (zero: every key), judged by the store's clock and with UpdatedAt set from it.
	// Revoked keys must be returned too, so that replicas learn of the revocation. It is
	// called concurrently with the store's other methods and must be safe for that.
	KeysChangedSince(ctx context.Context, since time.Time) ([]Key, error)
}

// refreshOverlap is how far before the newest change already seen each refresh asks again.
// A change whose timestamp was taken before a concurrent, later-committed change (a store
// transaction that took a while) would otherwise be missed; reading a few seconds twice is
// cheap, and upserting a key twice is harmless.
const refreshOverlap = 5 * time.Second

// Options configure an Authenticator.
type Options struct {
	// Config is the auth section.
	Config config.Auth
	// Keys is where API keys live. Nil: only the admin key and JWTs authenticate.
	Keys KeyStore
	// AdminKey is the bootstrap admin key (AUTOGLM_ADMIN_KEY). Empty: none. When set,
	// authentication is on whatever Config.Enabled says.
	AdminKey string
	// Logger receives refresh failures. Default: slog.Default().
	Logger *slog.Logger
	// Now is the clock for key expiry. Default: time.Now.
	Now func() time.Time
}

// Authenticator turns request credentials into principals. It is safe for concurrent use.
type Authenticator struct {
	enabled  bool
	roles    *Roles
	jwt      *jwtVerifier
	store    KeyStore
	log      *slog.Logger
	now      func() time.Time
	refresh  time.Duration
	admin    *Principal
	adminSum [sha256.Size]byte // SHA-256 of the admin key; compared in constant time
	hasAdmin bool

	mu     sync.RWMutex
	byHash map[[sha256.Size]byte]*cachedKey
	byID   map[string][sha256.Size]byte
	// cursor is the newest UpdatedAt seen; loaded tells whether a full load has happened.
	cursor time.Time
	loaded bool
	// refreshMu serialises refreshes so that two never interleave their cursor updates.
	refreshMu sync.Mutex
}

type cachedKey struct {
	key       Key
	principal *Principal
}

// New builds an Authenticator: roles from the configuration, JWT keys read from their files.
// Call Refresh (or Run) before serving to load the keys.
func New(opts Options) (*Authenticator, error) {
	roles, err := NewRoles(opts.Config.Roles)
	if err != nil {
		return nil, err
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	jv, err := newJWTVerifier(opts.Config.JWT, roles, now)
	if err != nil {
		return nil, err
	}
	a := &Authenticator{
		enabled: opts.Config.Enabled || opts.AdminKey != "",
		roles:   roles,
		jwt:     jv,
		store:   opts.Keys,
		log:     opts.Logger,
		now:     now,
		refresh: opts.Config.KeyRefresh.D(),
		byHash:  map[[sha256.Size]byte]*cachedKey{},
		byID:    map[string][sha256.Size]byte{},
	}
	if a.log == nil {
		a.log = slog.Default()
	}
	if a.refresh <= 0 {
		a.refresh = 500 * time.Millisecond
	}
	if opts.AdminKey != "" {
		a.hasAdmin = true
		a.adminSum = sha256.Sum256([]byte(opts.AdminKey))
		a.admin = &Principal{Method: MethodAdminKey, UserID: AdminKeyUser, Role: RoleAdmin, perms: roles.sets[RoleAdmin]}
	}
	return a, nil
}

// Enabled reports whether requests must authenticate: auth.enabled or an admin key.
func (a *Authenticator) Enabled() bool { return a.enabled }

// Roles returns the roles the authenticator knows.
func (a *Authenticator) Roles() *Roles { return a.roles }

// Authenticate returns the principal of r's credential. A request without a credential gives
// (nil, nil): whether that is acceptable depends on the route (see Authorize). A credential
// that does not check out gives an Unauthenticated *apierr.Error.
func (a *Authenticator) Authenticate(r *http.Request) (*Principal, error) {
	cred, err := ParseCredential(r.Header.Get("Authorization"), r.Header.Get("X-Api-Key"))
	if err != nil {
		return nil, &apierr.Error{Kind: apierr.Unauthenticated, Code: apierr.CodeInvalidCredential, Message: err.Error()}
	}
	return a.AuthenticateCredential(cred)
}

// AuthenticateCredential is Authenticate for a parsed credential.
func (a *Authenticator) AuthenticateCredential(cred Credential) (*Principal, error) {
	switch cred.Kind {
	case NoCredential:
		return nil, nil
	case JWT:
		if a.jwt == nil {
			return nil, &apierr.Error{Kind: apierr.Unauthenticated, Code: apierr.CodeInvalidToken, Message: "JWT bearer tokens are not accepted by this server"}
		}
		p, err := a.jwt.verify(cred.Token, a.now())
		if err != nil {
			return nil, &apierr.Error{Kind: apierr.Unauthenticated, Code: apierr.CodeInvalidToken, Message: err.Error()}
		}
		return p, nil
	}
	sum := hashToken(cred.Token)
	if a.hasAdmin && subtle.ConstantTimeCompare(sum[:], a.adminSum[:]) == 1 {
		return a.admin, nil
	}
	a.mu.RLock()
	ck := a.byHash[sum]
	a.mu.RUnlock()
	// The map is keyed by the hash, so the lookup compares hashes, never the secret; an
	// attacker learns nothing from its timing that helps find a key.
	if ck == nil {
		return nil, &apierr.Error{Kind: apierr.Unauthenticated, Code: apierr.CodeInvalidAPIKey, Message: "invalid API key"}
	}
	if !ck.key.Active(a.now()) {
		msg := "the API key has expired"
		if !ck.key.RevokedAt.IsZero() || ck.key.Disabled {
			msg = "invalid API key"
		}
		return nil, &apierr.Error{Kind: apierr.Unauthenticated, Code: apierr.CodeInvalidAPIKey, Message: msg}
	}
	return ck.principal, nil
}

// Refresh reads the keys that changed since the last refresh (every key the first time) into
// the cache. On error the cache keeps what it had.
func (a *Authenticator) Refresh(ctx context.Context) error {
	if a.store == nil {
		return nil
	}
	a.refreshMu.Lock()
	defer a.refreshMu.Unlock()
	a.mu.RLock()
	since, loaded := a.cursor, a.loaded
	a.mu.RUnlock()
	if loaded {
		since = since.Add(-refreshOverlap)
	} else {
		since = time.Time{}
	}
	keys, err := a.store.KeysChangedSince(ctx, since)
	if err != nil {
		return err
	}
	a.apply(keys)
	return nil
}

// apply folds changed keys into the cache. Revoked and disabled keys are dropped; expired
// ones are kept so that their owner is told the key expired.
func (a *Authenticator) apply(keys []Key) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.loaded = true
	for i := range keys {
		k := keys[i]
		if k.UpdatedAt.After(a.cursor) {
			a.cursor = k.UpdatedAt
		}
		if len(k.Hash) != sha256.Size {
			a.log.Warn("auth: ignoring a key with a malformed hash", "key_id", k.ID)
			continue
		}
		var h [sha256.Size]byte
		copy(h[:], k.Hash)
		if old, ok := a.byID[k.ID]; ok && old != h {
			delete(a.byHash, old)
		}
		if !k.RevokedAt.IsZero() || k.Disabled {
			delete(a.byHash, h)
			delete(a.byID, k.ID)
			continue
		}
		k.Models = append([]string(nil), k.Models...)
		a.byHash[h] = &cachedKey{key: k, principal: &Principal{
			Method: MethodAPIKey, UserID: k.UserID, KeyID: k.ID, KeyPrefix: k.Prefix,
			Role: k.Role, Models: k.Models, perms: a.roles.sets[k.Role],
		}}
		a.byID[k.ID] = h
	}
}

// Run refreshes the cache every auth.key_refresh until ctx is canceled. Failures are logged
// (once per streak) and retried at the next tick; the cache keeps serving what it has.
func (a *Authenticator) Run(ctx context.Context) {
	if a.store == nil {
		return
	}
	t := time.NewTicker(a.refresh)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := a.Refresh(ctx)
		switch {
		case err != nil && ctx.Err() != nil:
			return
		case err != nil && !failing:
			failing = true
			a.log.Warn("auth: key refresh failed; serving the cached keys", "err", err)
		case err == nil && failing:
			failing = false
			a.log.Info("auth: key refresh recovered")
		}
	}
}

// CachedKeys reports how many active or expired keys the cache holds.
func (a *Authenticator) CachedKeys() int {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return len(a.byHash)
}

// hashToken is sha256.Sum256 of token without the heap copy a []byte conversion of a
// key-sized string costs.
func hashToken(token string) [sha256.Size]byte {
	var buf [64]byte
	if len(token) <= len(buf) {
		n := copy(buf[:], token)
		return sha256.Sum256(buf[:n])
	}
	return sha256.Sum256([]byte(token))
}
