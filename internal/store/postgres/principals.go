package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/open-autoglm/autoglm/internal/store"
	"github.com/open-autoglm/autoglm/internal/store/sqldb"
)

const userCols = `id, name, email, role, disabled, created_at, updated_at`

func scanUser(row pgx.Row) (store.User, error) {
	var u store.User
	err := row.Scan(&u.ID, &u.Name, &u.Email, &u.Role, &u.Disabled, &u.CreatedAt, &u.UpdatedAt)
	u.CreatedAt, u.UpdatedAt = u.CreatedAt.UTC(), u.UpdatedAt.UTC()
	return u, err
}

// CreateUser implements store.Users.
func (s *Store) CreateUser(ctx context.Context, u store.User) (store.User, error) {
	if u.Name == "" || u.Role == "" {
		return store.User{}, fmt.Errorf("postgres: create user: %w: name and role are required", store.ErrInvalid)
	}
	if u.ID == "" {
		u.ID = store.NewID("usr")
	}
	// One reading of the clock, so that a new row's CreatedAt equals its UpdatedAt.
	u, err := scanUser(s.pool.QueryRow(ctx, `WITH t AS (SELECT clock_timestamp() AS ts)
		INSERT INTO users (`+userCols+`) SELECT $1, $2, $3, $4, $5, t.ts, t.ts FROM t RETURNING `+userCols,
		u.ID, u.Name, u.Email, u.Role, u.Disabled))
	return u, dialect.Err("create user", err)
}

// GetUser implements store.Users.
func (s *Store) GetUser(ctx context.Context, id string) (store.User, error) {
	u, err := scanUser(s.pool.QueryRow(ctx, `SELECT `+userCols+` FROM users WHERE id = $1`, id))
	return u, dialect.Err("get user", err)
}

// ListUsers implements store.Users.
func (s *Store) ListUsers(ctx context.Context, p store.ListParams) (store.Page[store.User], error) {
	w := dialect.Where()
	if err := w.After(p.Cursor, "created_at", "id"); err != nil {
		return store.Page[store.User]{}, err
	}
	limit := store.PageLimit(p.Limit)
	q, args := w.SQL(`SELECT `+userCols+` FROM users`, ` ORDER BY created_at DESC, id DESC LIMIT ?`, limit+1)
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return store.Page[store.User]{}, dialect.Err("list users", err)
	}
	users, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.User, error) { return scanUser(r) })
	if err != nil {
		return store.Page[store.User]{}, dialect.Err("list users", err)
	}
	return sqldb.PageOf(users, limit, func(u store.User) store.Cursor { return store.Cursor{Time: u.CreatedAt, ID: u.ID} }), nil
}

// UpdateUser implements store.Users.
func (s *Store) UpdateUser(ctx context.Context, p store.UpdateUserParams) (store.User, error) {
	if (p.Name != nil && *p.Name == "") || (p.Role != nil && *p.Role == "") {
		return store.User{}, fmt.Errorf("postgres: update user: %w: name and role must not be empty", store.ErrInvalid)
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return store.User{}, dialect.Err("update user", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	var wasDisabled bool
	if err := tx.QueryRow(ctx, `SELECT disabled FROM users WHERE id = $1 FOR UPDATE`, p.ID).Scan(&wasDisabled); err != nil {
		return store.User{}, dialect.Err("update user", err)
	}
	// A NULL argument leaves the column as it is.
	u, err := scanUser(tx.QueryRow(ctx, `UPDATE users SET
			name = COALESCE($2, name), email = COALESCE($3, email), role = COALESCE($4, role),
			disabled = COALESCE($5, disabled), updated_at = clock_timestamp()
		WHERE id = $1 RETURNING `+userCols, p.ID, p.Name, p.Email, p.Role, p.Disabled))
	if err != nil {
		return store.User{}, dialect.Err("update user", err)
	}
	if u.Disabled != wasDisabled {
		// Key caches follow KeysChangedSince; touching the keys tells them.
		if _, err := tx.Exec(ctx, `UPDATE api_keys SET updated_at = clock_timestamp() WHERE user_id = $1`, u.ID); err != nil {
			return store.User{}, dialect.Err("update user", err)
		}
	}
	return u, dialect.Err("update user", tx.Commit(ctx))
}

const keyCols = `k.id, k.prefix, k.hash, COALESCE(k.user_id, ''), k.role, k.name, k.models, k.expires_at,
	k.revoked_at, k.created_at, k.updated_at, COALESCE(u.disabled, false)`

const keyFrom = ` FROM api_keys k LEFT JOIN users u ON u.id = k.user_id`

// keyFromCTE reads the rows a data-modifying CTE named k returned: the statement's snapshot
// does not see its own changes in api_keys.
const keyFromCTE = ` FROM k LEFT JOIN users u ON u.id = k.user_id`

func scanKey(row pgx.Row) (store.Key, error) {
	var k store.Key
	var expires, revoked *time.Time
	err := row.Scan(&k.ID, &k.Prefix, &k.Hash, &k.UserID, &k.Role, &k.Name, &k.Models, &expires, &revoked,
		&k.CreatedAt, &k.UpdatedAt, &k.UserDisabled)
	if len(k.Models) == 0 {
		k.Models = nil
	}
	k.ExpiresAt, k.RevokedAt = fromTS(expires), fromTS(revoked)
	k.CreatedAt, k.UpdatedAt = k.CreatedAt.UTC(), k.UpdatedAt.UTC()
	return k, err
}

func collectKeys(rows pgx.Rows) ([]store.Key, error) {
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Key, error) { return scanKey(r) })
}

func models(m []string) []string {
	if len(m) == 0 {
		return nil // stored as NULL
	}
	return m
}

func nullString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// CreateKey implements store.Keys.
func (s *Store) CreateKey(ctx context.Context, k store.Key) (store.Key, error) {
	if k.ID == "" || len(k.Hash) == 0 || k.Role == "" {
		return store.Key{}, fmt.Errorf("postgres: create key: %w: id, hash and role are required", store.ErrInvalid)
	}
	row := s.pool.QueryRow(ctx, `WITH t AS (SELECT clock_timestamp() AS ts), k AS (
			INSERT INTO api_keys (id, prefix, hash, user_id, role, name, models, expires_at, created_at, updated_at)
			SELECT $1, $2, $3, $4, $5, $6, $7::text[], $8::timestamptz, t.ts, t.ts FROM t RETURNING *
		) SELECT `+keyCols+keyFromCTE,
		k.ID, k.Prefix, k.Hash, nullString(k.UserID), k.Role, k.Name, models(k.Models), ts(k.ExpiresAt))
	key, err := scanKey(row)
	return key, dialect.Err("create key", err)
}

// GetKey implements store.Keys.
func (s *Store) GetKey(ctx context.Context, id string) (store.Key, error) {
	k, err := scanKey(s.pool.QueryRow(ctx, `SELECT `+keyCols+keyFrom+` WHERE k.id = $1`, id))
	return k, dialect.Err("get key", err)
}

// KeyByHash implements store.Keys.
func (s *Store) KeyByHash(ctx context.Context, hash []byte) (store.Key, error) {
	k, err := scanKey(s.pool.QueryRow(ctx, `SELECT `+keyCols+keyFrom+` WHERE k.hash = $1`, hash))
	return k, dialect.Err("key by hash", err)
}

// ListKeys implements store.Keys.
func (s *Store) ListKeys(ctx context.Context, p store.ListKeysParams) (store.Page[store.Key], error) {
	w := dialect.Where()
	if err := w.After(p.Cursor, "k.created_at", "k.id"); err != nil {
		return store.Page[store.Key]{}, err
	}
	w.Eq("k.user_id", p.UserID)
	if !p.IncludeRevoked {
		w.Add("k.revoked_at IS NULL")
	}
	limit := store.PageLimit(p.Limit)
	q, args := w.SQL(`SELECT `+keyCols+keyFrom, ` ORDER BY k.created_at DESC, k.id DESC LIMIT ?`, limit+1)
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return store.Page[store.Key]{}, dialect.Err("list keys", err)
	}
	keys, err := collectKeys(rows)
	if err != nil {
		return store.Page[store.Key]{}, dialect.Err("list keys", err)
	}
	return sqldb.PageOf(keys, limit, func(k store.Key) store.Cursor { return store.Cursor{Time: k.CreatedAt, ID: k.ID} }), nil
}

// UpdateKey implements store.Keys.
func (s *Store) UpdateKey(ctx context.Context, p store.UpdateKeyParams) (store.Key, error) {
	if p.Role != nil && *p.Role == "" {
		return store.Key{}, fmt.Errorf("postgres: update key: %w: role must not be empty", store.ErrInvalid)
	}
	// A NULL argument leaves the column as it is; $5/$7 say whether to set the nullable
	// columns, which can legitimately become NULL.
	var newModels []string
	if p.Models != nil {
		newModels = models(*p.Models)
	}
	var newExpiry *time.Time
	if p.ExpiresAt != nil {
		newExpiry = ts(*p.ExpiresAt)
	}
	row := s.pool.QueryRow(ctx, `WITH k AS (
			UPDATE api_keys SET
				name = COALESCE($2, name), role = COALESCE($3, role),
				models = CASE WHEN $5 THEN $4::text[] ELSE models END,
				expires_at = CASE WHEN $7 THEN $6::timestamptz ELSE expires_at END,
				updated_at = clock_timestamp()
			WHERE id = $1 RETURNING *
		) SELECT `+keyCols+keyFromCTE,
		p.ID, p.Name, p.Role, newModels, p.Models != nil, newExpiry, p.ExpiresAt != nil)
	k, err := scanKey(row)
	return k, dialect.Err("update key", err)
}

// RevokeKey implements store.Keys.
func (s *Store) RevokeKey(ctx context.Context, id string) (store.Key, error) {
	row := s.pool.QueryRow(ctx, `WITH t AS (SELECT clock_timestamp() AS ts), k AS (
			UPDATE api_keys SET revoked_at = COALESCE(revoked_at, t.ts), updated_at = t.ts
			FROM t WHERE id = $1 RETURNING api_keys.*
		) SELECT `+keyCols+keyFromCTE, id)
	k, err := scanKey(row)
	return k, dialect.Err("revoke key", err)
}

// KeysChangedSince implements store.Keys. The database's clock is read before the query, so
// a change committed between the two is returned now and maybe again next time, never
// missed.
func (s *Store) KeysChangedSince(ctx context.Context, since time.Time) ([]store.Key, time.Time, error) {
	var dbNow time.Time
	if err := s.pool.QueryRow(ctx, `SELECT clock_timestamp()`).Scan(&dbNow); err != nil {
		return nil, since, dialect.Err("keys changed", err)
	}
	rows, err := s.pool.Query(ctx, `SELECT `+keyCols+keyFrom+` WHERE k.updated_at >= $1 ORDER BY k.updated_at, k.id`,
		store.Micro(since))
	if err != nil {
		return nil, since, dialect.Err("keys changed", err)
	}
	keys, err := collectKeys(rows)
	if err != nil {
		return nil, since, dialect.Err("keys changed", err)
	}
	next := store.Micro(dbNow).Add(-store.ChangeOverlap)
	if next.Before(since) {
		next = since // never move the caller backwards
	}
	return keys, next, nil
}
