package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// Errors the drivers return, wrapped with detail; test for them with errors.Is.
var (
	// ErrNotFound: no row has the id or hash asked for.
	ErrNotFound = errors.New("store: not found")
	// ErrConflict: a row with the same id, user name or key hash exists.
	ErrConflict = errors.New("store: already exists")
	// ErrInvalid: an argument is unusable (a malformed cursor, a missing required field).
	ErrInvalid = errors.New("store: invalid argument")
	// ErrUnavailable: the database could not be reached or was busy; the same call may
	// succeed later.
	ErrUnavailable = errors.New("store: unavailable")
)

// Store is everything governance keeps: users, API keys, usage and audit records. Both drivers
// implement it and pass the same conformance suite (package storetest).
//
// All methods are safe for concurrent use. Times given to the store are kept with microsecond
// precision and come back in UTC; times the store sets itself (CreatedAt, UpdatedAt,
// RevokedAt) come from the database's clock on PostgreSQL, so replicas with skewed clocks
// agree on them.
type Store interface {
	Users
	Keys
	Usage
	Audit
	// Append writes usage and audit records in one transaction: all of them or none. The
	// request path does not call it directly but queues records in a Batcher.
	//
	// batch names the batch so that retrying it is safe: an attempt can fail on the caller's
	// side (its deadline expires) after the database committed it, and the retry must not
	// count the records again. The store remembers every batch id it applied for at least
	// BatchMemory, and an Append of an id it remembers writes nothing and returns nil. A
	// retry that overlaps an attempt still running waits for it and then does the same if
	// it committed. An empty batch is written without the check: for a write that is never
	// retried. Batch ids come from NewBatchID.
	Append(ctx context.Context, batch string, usage []UsageRecord, audit []AuditRecord) error
	// Ping checks that the database answers.
	Ping(ctx context.Context) error
	// Close releases the connections. The store must not be used afterwards.
	Close() error
}

// Users manages user accounts.
type Users interface {
	// CreateUser inserts u. An empty ID is filled with NewID("usr"). Name must be set and
	// unique; a duplicate ID or Name is ErrConflict. The stored user is returned, with
	// CreatedAt and UpdatedAt set.
	CreateUser(ctx context.Context, u User) (User, error)
	// GetUser returns the user with the id, or ErrNotFound.
	GetUser(ctx context.Context, id string) (User, error)
	// ListUsers returns users newest first, one page at a time.
	ListUsers(ctx context.Context, p ListParams) (Page[User], error)
	// UpdateUser changes the fields p sets and returns the result; ErrNotFound if there is no
	// such user. Disabling or re-enabling a user also marks their keys as changed, so caches
	// that follow KeysChangedSince learn of it (Key.UserDisabled).
	UpdateUser(ctx context.Context, p UpdateUserParams) (User, error)
}

// Keys manages API keys. Only a hash of a key's secret is stored.
type Keys interface {
	// CreateKey inserts k. ID, Hash and Role must be set; a duplicate ID or Hash is
	// ErrConflict; a UserID naming no user is ErrInvalid. CreatedAt and UpdatedAt are set by
	// the store, RevokedAt is ignored. The stored key is returned.
	CreateKey(ctx context.Context, k Key) (Key, error)
	// GetKey returns the key with the id, or ErrNotFound. Revoked and expired keys are
	// returned too: deciding whether a key is usable is the caller's job (Key.Usable).
	GetKey(ctx context.Context, id string) (Key, error)
	// KeyByHash returns the key whose Hash equals hash, or ErrNotFound, under the same rules
	// as GetKey.
	KeyByHash(ctx context.Context, hash []byte) (Key, error)
	// ListKeys returns keys newest first, one page at a time, all users' or one user's.
	ListKeys(ctx context.Context, p ListKeysParams) (Page[Key], error)
	// UpdateKey changes the fields p sets and returns the result; ErrNotFound if there is no
	// such key. A revoked key can still be updated, and stays revoked.
	UpdateKey(ctx context.Context, p UpdateKeyParams) (Key, error)
	// RevokeKey marks the key revoked and returns it; revoking a revoked key keeps the first
	// RevokedAt and is not an error. ErrNotFound if there is no such key.
	RevokeKey(ctx context.Context, id string) (Key, error)
	// KeysChangedSince returns every key created, updated or revoked (or whose user was
	// disabled or re-enabled) at or after since, oldest change first, and the value to pass
	// as since on the next call. A zero since returns all keys, for a cache's first load.
	//
	// next trails the database clock by ChangeOverlap so that a write whose transaction
	// commits late is still seen; a key can therefore come back on several calls, and the
	// caller applies them idempotently (the latest UpdatedAt wins). Polling every 500 ms
	// makes a revocation visible on every replica within about that long.
	KeysChangedSince(ctx context.Context, since time.Time) (keys []Key, next time.Time, err error)
}

// BatchMemory is how long a store remembers the id of a batch Append applied; older ids are
// pruned. A writer that retries a batch must stop retrying well within it (the Batcher gives
// a batch up after half of it), so that a retry still finds the id and a clock skew between
// replicas cannot make the difference.
const BatchMemory = time.Hour

// ChangeOverlap is how far KeysChangedSince's next trails the database clock. It bounds how
// long a key write may take between getting its timestamp and committing and still be seen
// by callers following KeysChangedSince.
const ChangeOverlap = 5 * time.Second

// Usage holds one record per model request.
type Usage interface {
	// UsageTotals sums the records matching f; for a quota, f names a key (or user) and the
	// period [From, To). When the period is whole UTC days (or open) and no model is named,
	// it reads a daily rollup instead of the records (RollupCovers): a month's quota check
	// reads at most 31 rows per key, however many requests the key made.
	UsageTotals(ctx context.Context, f UsageFilter) (UsageTotals, error)
	// ListUsage returns matching records newest first, one page at a time.
	ListUsage(ctx context.Context, q UsageQuery) (Page[UsageRecord], error)
	// DeleteUsageBefore deletes records older than t (retention) and returns how many.
	DeleteUsageBefore(ctx context.Context, t time.Time) (int64, error)
}

// Audit is the append-only audit log: records are written through Store.Append and never
// updated (both drivers refuse an UPDATE of an audit row); retention deletes old ones.
type Audit interface {
	// ListAudit returns matching records newest first, one page at a time.
	ListAudit(ctx context.Context, q AuditQuery) (Page[AuditRecord], error)
	// DeleteAuditBefore deletes records older than t (retention) and returns how many.
	DeleteAuditBefore(ctx context.Context, t time.Time) (int64, error)
}

// User is a person or service that owns keys.
type User struct {
	// ID is the stable identifier, e.g. "usr_…" or a JWT subject.
	ID string `json:"id"`
	// Name is unique, e.g. a login or e-mail local part.
	Name string `json:"name"`
	// Email is optional.
	Email string `json:"email,omitempty"`
	// Role names a built-in or configured role.
	Role string `json:"role"`
	// Disabled users' keys must be refused.
	Disabled  bool      `json:"disabled"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Key is an API key's stored record; the secret itself is never stored.
type Key struct {
	// ID is the stable identifier the admin API and usage records use.
	ID string `json:"id"`
	// Prefix is the start of the secret kept for display ("agk-3fQx…").
	Prefix string `json:"prefix"`
	// Hash is the hash of the secret the key is looked up by.
	Hash []byte `json:"-"`
	// UserID is the owner; empty for a key that belongs to no user.
	UserID string `json:"user_id,omitempty"`
	// Role names a built-in or configured role.
	Role string `json:"role"`
	// Name is a free-form label.
	Name string `json:"name,omitempty"`
	// Models is the allow-list of model names; empty allows every model the role allows.
	Models []string `json:"models,omitempty"`
	// ExpiresAt is when the key stops working; zero means never.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	// RevokedAt is when the key was revoked; zero means it is not.
	RevokedAt time.Time `json:"revoked_at,omitzero"`
	CreatedAt time.Time `json:"created_at"`
	// UpdatedAt is the last change to the key (or to its user's Disabled flag).
	UpdatedAt time.Time `json:"updated_at"`
	// UserDisabled reports that the owner is disabled; read from the users table, not
	// settable through the key.
	UserDisabled bool `json:"user_disabled,omitempty"`
}

// Usable reports whether the key may authenticate a request at now: not revoked, not
// expired, and its owner not disabled.
func (k *Key) Usable(now time.Time) bool {
	return k.RevokedAt.IsZero() && !k.UserDisabled && (k.ExpiresAt.IsZero() || now.Before(k.ExpiresAt))
}

// UsageRecord is what one model request consumed.
type UsageRecord struct {
	// ID is assigned by the store.
	ID               int64         `json:"id"`
	Time             time.Time     `json:"time"`
	KeyID            string        `json:"key_id,omitempty"`
	UserID           string        `json:"user_id,omitempty"`
	Model            string        `json:"model"`
	Backend          string        `json:"backend,omitempty"`
	PromptTokens     int64         `json:"prompt_tokens"`
	CompletionTokens int64         `json:"completion_tokens"`
	Latency          time.Duration `json:"latency_ns"`
	// Status is the HTTP status the client got.
	Status  int    `json:"status"`
	TraceID string `json:"trace_id,omitempty"`
}

// UsageTotals sums usage records.
type UsageTotals struct {
	Requests         int64 `json:"requests"`
	PromptTokens     int64 `json:"prompt_tokens"`
	CompletionTokens int64 `json:"completion_tokens"`
}

// Tokens is PromptTokens + CompletionTokens, what token quotas count.
func (t UsageTotals) Tokens() int64 { return t.PromptTokens + t.CompletionTokens }

// AuditRecord is one audited operation.
type AuditRecord struct {
	// ID is assigned by the store.
	ID   int64     `json:"id"`
	Time time.Time `json:"time"`
	// Actor is who did it: a key id, a user id, or "bootstrap".
	Actor string `json:"actor"`
	// Action names the operation, e.g. "key.create".
	Action string `json:"action"`
	// Target is what it was done to, e.g. a key id.
	Target string `json:"target,omitempty"`
	// ClientAddr is the client's address.
	ClientAddr string `json:"client_addr,omitempty"`
	// Result is "ok", "denied" or "error".
	Result string `json:"result"`
	// Details is a JSON object with anything else; empty is stored as {}. Invalid JSON is
	// stored as a JSON string holding the text, so a bad detail never loses the record.
	Details json.RawMessage `json:"details,omitempty"`
}

// ListParams pages through a list. Pages are at most MaxLimit items.
type ListParams struct {
	// Cursor is the Next of the previous page; empty starts at the beginning.
	Cursor string
	// Limit is the page size; 0 means DefaultLimit, more than MaxLimit means MaxLimit.
	Limit int
}

// Page sizes.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// PageLimit returns the page size to use for a requested limit.
func PageLimit(limit int) int {
	switch {
	case limit <= 0:
		return DefaultLimit
	case limit > MaxLimit:
		return MaxLimit
	}
	return limit
}

// Page is one page of a list.
type Page[T any] struct {
	Items []T `json:"items"`
	// Next fetches the following page; empty when this is the last.
	Next string `json:"next,omitempty"`
}

// ListKeysParams selects keys.
type ListKeysParams struct {
	ListParams
	// UserID lists one user's keys; empty lists all.
	UserID string
	// IncludeRevoked lists revoked keys too.
	IncludeRevoked bool
}

// UpdateUserParams changes a user; nil fields are left alone.
type UpdateUserParams struct {
	ID       string
	Name     *string
	Email    *string
	Role     *string
	Disabled *bool
}

// Apply sets u's fields that p changes (its non-nil ones).
func (p UpdateUserParams) Apply(u *User) {
	if p.Name != nil {
		u.Name = *p.Name
	}
	if p.Email != nil {
		u.Email = *p.Email
	}
	if p.Role != nil {
		u.Role = *p.Role
	}
	if p.Disabled != nil {
		u.Disabled = *p.Disabled
	}
}

// UpdateKeyParams changes a key; nil fields are left alone.
type UpdateKeyParams struct {
	ID     string
	Name   *string
	Role   *string
	Models *[]string
	// ExpiresAt set to a pointer to the zero time removes the expiry.
	ExpiresAt *time.Time
}

// UsageFilter selects usage records; empty fields match everything.
type UsageFilter struct {
	KeyID  string
	UserID string
	Model  string
	// From is inclusive, To exclusive; zero leaves that end open.
	From, To time.Time
}

// UsageQuery pages through usage records.
type UsageQuery struct {
	UsageFilter
	ListParams
}

// AuditQuery selects audit records; empty fields match everything.
type AuditQuery struct {
	Actor  string
	Action string
	Target string
	Result string
	// From is inclusive, To exclusive; zero leaves that end open.
	From, To time.Time
	ListParams
}
