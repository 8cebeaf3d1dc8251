package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/open-autoglm/autoglm/internal/store"
	"github.com/open-autoglm/autoglm/internal/store/sqldb"
)

const userCols = `id, name, email, role, disabled, created_at, updated_at`

func scanUser(sc interface{ Scan(...any) error }) (store.User, error) {
	var u store.User
	var created, updated sql.NullInt64
	err := sc.Scan(&u.ID, &u.Name, &u.Email, &u.Role, &u.Disabled, &created, &updated)
	u.CreatedAt, u.UpdatedAt = fromMicros(created), fromMicros(updated)
	return u, err
}

// CreateUser implements store.Users.
func (s *Store) CreateUser(ctx context.Context, u store.User) (store.User, error) {
	if u.Name == "" || u.Role == "" {
		return store.User{}, fmt.Errorf("sqlite: create user: %w: name and role are required", store.ErrInvalid)
	}
	if u.ID == "" {
		u.ID = store.NewID("usr")
	}
	t := now()
	_, err := s.w.ExecContext(ctx, `INSERT INTO users (`+userCols+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		u.ID, u.Name, u.Email, u.Role, u.Disabled, t, t)
	if err != nil {
		return store.User{}, dialect.Err("create user", err)
	}
	u.CreatedAt = time.UnixMicro(t).UTC()
	u.UpdatedAt = u.CreatedAt
	return u, nil
}

// GetUser implements store.Users.
func (s *Store) GetUser(ctx context.Context, id string) (store.User, error) {
	u, err := scanUser(s.r.QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE id = ?`, id))
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
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return store.Page[store.User]{}, dialect.Err("list users", err)
	}
	defer rows.Close()
	var users []store.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return store.Page[store.User]{}, dialect.Err("list users", err)
		}
		users = append(users, u)
	}
	if err := rows.Err(); err != nil {
		return store.Page[store.User]{}, dialect.Err("list users", err)
	}
	return sqldb.PageOf(users, limit, func(u store.User) store.Cursor { return store.Cursor{Time: u.CreatedAt, ID: u.ID} }), nil
}

// UpdateUser implements store.Users.
func (s *Store) UpdateUser(ctx context.Context, p store.UpdateUserParams) (store.User, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return store.User{}, dialect.Err("update user", err)
	}
	defer func() { _ = tx.Rollback() }()
	old, err := scanUser(tx.QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE id = ?`, p.ID))
	if err != nil {
		return store.User{}, dialect.Err("update user", err)
	}
	u := old
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
	if u.Name == "" || u.Role == "" {
		return store.User{}, fmt.Errorf("sqlite: update user: %w: name and role must not be empty", store.ErrInvalid)
	}
	t := now()
	if _, err := tx.ExecContext(ctx, `UPDATE users SET name = ?, email = ?, role = ?, disabled = ?, updated_at = ? WHERE id = ?`,
		u.Name, u.Email, u.Role, u.Disabled, t, u.ID); err != nil {
		return store.User{}, dialect.Err("update user", err)
	}
	if u.Disabled != old.Disabled {
		// Key caches follow KeysChangedSince; touching the keys tells them.
		if _, err := tx.ExecContext(ctx, `UPDATE api_keys SET updated_at = ? WHERE user_id = ?`, t, u.ID); err != nil {
			return store.User{}, dialect.Err("update user", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return store.User{}, dialect.Err("update user", err)
	}
	u.UpdatedAt = time.UnixMicro(t).UTC()
	return u, nil
}

const keyCols = `k.id, k.prefix, k.hash, COALESCE(k.user_id, ''), k.role, k.name, k.models, k.expires_at,
	k.revoked_at, k.created_at, k.updated_at, COALESCE(u.disabled, 0)`

const keyFrom = ` FROM api_keys k LEFT JOIN users u ON u.id = k.user_id`

func scanKey(sc interface{ Scan(...any) error }) (store.Key, error) {
	var k store.Key
	var models string
	var expires, revoked, created, updated sql.NullInt64
	err := sc.Scan(&k.ID, &k.Prefix, &k.Hash, &k.UserID, &k.Role, &k.Name, &models, &expires, &revoked,
		&created, &updated, &k.UserDisabled)
	if err != nil {
		return store.Key{}, err
	}
	if models != "" {
		if err := json.Unmarshal([]byte(models), &k.Models); err != nil {
			return store.Key{}, fmt.Errorf("key %s: models column: %w", k.ID, err)
		}
	}
	k.ExpiresAt, k.RevokedAt = fromMicros(expires), fromMicros(revoked)
	k.CreatedAt, k.UpdatedAt = fromMicros(created), fromMicros(updated)
	return k, nil
}

func encodeModels(m []string) string {
	if len(m) == 0 {
		return ""
	}
	b, _ := json.Marshal(m) // a []string always marshals
	return string(b)
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// CreateKey implements store.Keys.
func (s *Store) CreateKey(ctx context.Context, k store.Key) (store.Key, error) {
	if k.ID == "" || len(k.Hash) == 0 || k.Role == "" {
		return store.Key{}, fmt.Errorf("sqlite: create key: %w: id, hash and role are required", store.ErrInvalid)
	}
	t := now()
	_, err := s.w.ExecContext(ctx, `INSERT INTO api_keys (id, prefix, hash, user_id, role, name, models, expires_at,
		revoked_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?)`,
		k.ID, k.Prefix, k.Hash, nullString(k.UserID), k.Role, k.Name, encodeModels(k.Models),
		micros(store.Micro(k.ExpiresAt)), t, t)
	if err != nil {
		return store.Key{}, dialect.Err("create key", err)
	}
	return s.getKey(ctx, s.w, "create key", `k.id = ?`, k.ID)
}

type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func (s *Store) getKey(ctx context.Context, q queryer, op, cond string, arg any) (store.Key, error) {
	k, err := scanKey(q.QueryRowContext(ctx, `SELECT `+keyCols+keyFrom+` WHERE `+cond, arg))
	return k, dialect.Err(op, err)
}

// GetKey implements store.Keys.
func (s *Store) GetKey(ctx context.Context, id string) (store.Key, error) {
	return s.getKey(ctx, s.r, "get key", `k.id = ?`, id)
}

// KeyByHash implements store.Keys.
func (s *Store) KeyByHash(ctx context.Context, hash []byte) (store.Key, error) {
	return s.getKey(ctx, s.r, "key by hash", `k.hash = ?`, hash)
}

// ListKeys implements store.Keys.
func (s *Store) ListKeys(ctx context.Context, p store.ListKeysParams) (store.Page[store.Key], error) {
	w := dialect.Where()
	if err := w.After(p.Cursor, "k.created_at", "k.id"); err != nil {
		return store.Page[store.Key]{}, err
	}
	if p.UserID != "" {
		w.Add("k.user_id = ?", p.UserID)
	}
	if !p.IncludeRevoked {
		w.Add("k.revoked_at IS NULL")
	}
	limit := store.PageLimit(p.Limit)
	q, args := w.SQL(`SELECT `+keyCols+keyFrom, ` ORDER BY k.created_at DESC, k.id DESC LIMIT ?`, limit+1)
	keys, err := s.queryKeys(ctx, q, args...)
	if err != nil {
		return store.Page[store.Key]{}, dialect.Err("list keys", err)
	}
	return sqldb.PageOf(keys, limit, func(k store.Key) store.Cursor { return store.Cursor{Time: k.CreatedAt, ID: k.ID} }), nil
}

func (s *Store) queryKeys(ctx context.Context, q string, args ...any) ([]store.Key, error) {
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var keys []store.Key
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, rows.Err()
}

// UpdateKey implements store.Keys.
func (s *Store) UpdateKey(ctx context.Context, p store.UpdateKeyParams) (store.Key, error) {
	var set []string
	var args []any
	if p.Name != nil {
		set, args = append(set, "name = ?"), append(args, *p.Name)
	}
	if p.Role != nil {
		if *p.Role == "" {
			return store.Key{}, fmt.Errorf("sqlite: update key: %w: role must not be empty", store.ErrInvalid)
		}
		set, args = append(set, "role = ?"), append(args, *p.Role)
	}
	if p.Models != nil {
		set, args = append(set, "models = ?"), append(args, encodeModels(*p.Models))
	}
	if p.ExpiresAt != nil {
		set, args = append(set, "expires_at = ?"), append(args, micros(store.Micro(*p.ExpiresAt)))
	}
	set, args = append(set, "updated_at = ?"), append(args, now(), p.ID)
	return s.writeKey(ctx, "update key", `UPDATE api_keys SET `+strings.Join(set, ", ")+` WHERE id = ?`, p.ID, args...)
}

// RevokeKey implements store.Keys.
func (s *Store) RevokeKey(ctx context.Context, id string) (store.Key, error) {
	t := now()
	return s.writeKey(ctx, "revoke key",
		`UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?), updated_at = ? WHERE id = ?`, id, t, t, id)
}

// writeKey runs one UPDATE of key id and returns the key as it is afterwards, reading it on
// the writer so the read sees the write.
func (s *Store) writeKey(ctx context.Context, op, q, id string, args ...any) (store.Key, error) {
	res, err := s.w.ExecContext(ctx, q, args...)
	if err != nil {
		return store.Key{}, dialect.Err(op, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return store.Key{}, dialect.Err(op, err)
	} else if n == 0 {
		return store.Key{}, fmt.Errorf("sqlite: %s %s: %w", op, id, store.ErrNotFound)
	}
	return s.getKey(ctx, s.w, op, `k.id = ?`, id)
}

// KeysChangedSince implements store.Keys.
func (s *Store) KeysChangedSince(ctx context.Context, since time.Time) ([]store.Key, time.Time, error) {
	next := time.UnixMicro(now()).UTC().Add(-store.ChangeOverlap)
	var sinceUS int64 // zero since: all keys
	if !since.IsZero() {
		sinceUS = since.UnixMicro()
	}
	keys, err := s.queryKeys(ctx, `SELECT `+keyCols+keyFrom+` WHERE k.updated_at >= ? ORDER BY k.updated_at, k.id`, sinceUS)
	if err != nil {
		return nil, since, dialect.Err("keys changed", err)
	}
	if next.Before(since) {
		next = since // never move the caller backwards
	}
	return keys, next, nil
}
