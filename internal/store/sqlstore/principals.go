package sqlstore

import (
	"context"
	"database/sql"
	"strings"
	"time"

	"github.com/open-autoglm/autoglm/internal/store"
	"github.com/open-autoglm/autoglm/internal/store/sqldb"
)

// The state changes of users and keys, each one named statement. Times the store sets are
// arguments taken from Dialect.Now inside the write's transaction.
//
//	user: insert ──update (name, email, role, disabled)──▶ …
//	      disabling or re-enabling touches the user's keys (stmtTouchUserKeys), so caches
//	      following KeysChangedSince learn of it
//	key:  insert ──update (name, role, models, expiry)──▶ … ──revoke──▶ revoked (kept)
const (
	stmtInsertUser = `INSERT INTO users (` + userCols + `) VALUES (?, ?, ?, ?, ?, ?, ?)`
	stmtUpdateUser = `UPDATE users SET name = ?, email = ?, role = ?, disabled = ?, updated_at = ? WHERE id = ?`
	// stmtTouchUserKeys marks a user's keys changed.
	stmtTouchUserKeys = `UPDATE api_keys SET updated_at = ? WHERE user_id = ?`
	stmtInsertKey     = `INSERT INTO api_keys (id, prefix, hash, user_id, role, name, models, expires_at,
		revoked_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?)`
	// stmtRevokeKey keeps the first revocation time of a key revoked twice.
	stmtRevokeKey = `UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?), updated_at = ? WHERE id = ?`
	// stmtUpdateKey is completed by updateKey with the columns a change sets.
	stmtUpdateKey = `UPDATE api_keys SET `
)

const userCols = `id, name, email, role, disabled, created_at, updated_at`

func scanUser(sc scanner) (store.User, error) {
	var u store.User
	err := sc.Scan(&u.ID, &u.Name, &u.Email, &u.Role, &u.Disabled, sqldb.ScanTime(&u.CreatedAt), sqldb.ScanTime(&u.UpdatedAt))
	return u, err
}

// CreateUser implements store.Users.
func (s *Store) CreateUser(ctx context.Context, u store.User) (store.User, error) {
	if u.Name == "" || u.Role == "" {
		return store.User{}, s.d.Invalid("create user", "name and role are required")
	}
	if u.ID == "" {
		u.ID = store.NewID("usr")
	}
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		t, err := s.d.Now(ctx, tx)
		if err != nil {
			return err
		}
		// One reading of the clock, so that a new row's CreatedAt equals its UpdatedAt.
		u.CreatedAt, u.UpdatedAt = t, t
		_, err = tx.ExecContext(ctx, s.q(stmtInsertUser), u.ID, u.Name, u.Email, u.Role, u.Disabled, s.d.Time(t), s.d.Time(t))
		return err
	})
	if err != nil {
		return store.User{}, s.d.Err("create user", err)
	}
	return u, nil
}

// GetUser implements store.Users.
func (s *Store) GetUser(ctx context.Context, id string) (store.User, error) {
	u, err := scanUser(s.db.R.QueryRowContext(ctx, s.q(`SELECT `+userCols+` FROM users WHERE id = ?`), id))
	return u, s.d.Err("get user", err)
}

// ListUsers implements store.Users.
func (s *Store) ListUsers(ctx context.Context, p store.ListParams) (store.Page[store.User], error) {
	w := s.d.Where()
	if err := w.After(p.Cursor, "created_at", "id"); err != nil {
		return store.Page[store.User]{}, err
	}
	limit := store.PageLimit(p.Limit)
	q, args := w.SQL(`SELECT `+userCols+` FROM users`, ` ORDER BY created_at DESC, id DESC LIMIT ?`, limit+1)
	users, err := queryAll(ctx, s.db.R, scanUser, q, args...)
	if err != nil {
		return store.Page[store.User]{}, s.d.Err("list users", err)
	}
	return sqldb.PageOf(users, limit, func(u store.User) store.Cursor { return store.Cursor{Time: u.CreatedAt, ID: u.ID} }), nil
}

// UpdateUser implements store.Users. The user's row is read and locked, changed, and, when
// Disabled changed, the user's keys are touched, in one transaction.
func (s *Store) UpdateUser(ctx context.Context, p store.UpdateUserParams) (store.User, error) {
	if (p.Name != nil && *p.Name == "") || (p.Role != nil && *p.Role == "") {
		return store.User{}, s.d.Invalid("update user", "name and role must not be empty")
	}
	var u store.User
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		old, err := scanUser(tx.QueryRowContext(ctx, s.q(`SELECT `+userCols+` FROM users WHERE id = ?`+s.d.ForUpdate()), p.ID))
		if err != nil {
			return err
		}
		u = old
		p.Apply(&u)
		if u.UpdatedAt, err = s.d.Now(ctx, tx); err != nil {
			return err
		}
		at := s.d.Time(u.UpdatedAt)
		if _, err := tx.ExecContext(ctx, s.q(stmtUpdateUser), u.Name, u.Email, u.Role, u.Disabled, at, u.ID); err != nil {
			return err
		}
		if u.Disabled != old.Disabled {
			_, err = tx.ExecContext(ctx, s.q(stmtTouchUserKeys), at, u.ID)
		}
		return err
	})
	if err != nil {
		return store.User{}, s.d.Err("update user", err)
	}
	return u, nil
}

// keyCols are the columns scanKey reads, from keyFrom; a key without a user is not
// disabled.
func keyCols(d sqldb.Dialect) string {
	return `k.id, k.prefix, k.hash, COALESCE(k.user_id, ''), k.role, k.name, ` + d.StringsCol("k.models") + `,
	k.expires_at, k.revoked_at, k.created_at, k.updated_at, u.disabled IS TRUE`
}

const keyFrom = ` FROM api_keys k LEFT JOIN users u ON u.id = k.user_id`

func scanKey(sc scanner) (store.Key, error) {
	var k store.Key
	err := sc.Scan(&k.ID, &k.Prefix, &k.Hash, &k.UserID, &k.Role, &k.Name, sqldb.ScanStrings(&k.Models),
		sqldb.ScanTime(&k.ExpiresAt), sqldb.ScanTime(&k.RevokedAt), sqldb.ScanTime(&k.CreatedAt),
		sqldb.ScanTime(&k.UpdatedAt), &k.UserDisabled)
	return k, err
}

// nullString is the argument for a nullable text column: NULL for "".
func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// CreateKey implements store.Keys.
func (s *Store) CreateKey(ctx context.Context, k store.Key) (store.Key, error) {
	if k.ID == "" || len(k.Hash) == 0 || k.Role == "" {
		return store.Key{}, s.d.Invalid("create key", "id, hash and role are required")
	}
	var out store.Key
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		t, err := s.d.Now(ctx, tx)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.q(stmtInsertKey), k.ID, k.Prefix, k.Hash, nullString(k.UserID), k.Role,
			k.Name, s.d.Strings(k.Models), s.d.NullTime(store.Micro(k.ExpiresAt)), s.d.Time(t), s.d.Time(t)); err != nil {
			return err
		}
		out, err = s.keyWhere(ctx, tx, `k.id = ?`, k.ID)
		return err
	})
	return out, s.d.Err("create key", err)
}

// keyWhere reads the key matching cond (one ? argument) through q.
func (s *Store) keyWhere(ctx context.Context, q sqldb.RowQueryer, cond string, arg any) (store.Key, error) {
	return scanKey(q.QueryRowContext(ctx, s.q(s.selectKey+` WHERE `+cond), arg))
}

// GetKey implements store.Keys.
func (s *Store) GetKey(ctx context.Context, id string) (store.Key, error) {
	k, err := s.keyWhere(ctx, s.db.R, `k.id = ?`, id)
	return k, s.d.Err("get key", err)
}

// KeyByHash implements store.Keys.
func (s *Store) KeyByHash(ctx context.Context, hash []byte) (store.Key, error) {
	k, err := s.keyWhere(ctx, s.db.R, `k.hash = ?`, hash)
	return k, s.d.Err("key by hash", err)
}

// ListKeys implements store.Keys.
func (s *Store) ListKeys(ctx context.Context, p store.ListKeysParams) (store.Page[store.Key], error) {
	w := s.d.Where()
	if err := w.After(p.Cursor, "k.created_at", "k.id"); err != nil {
		return store.Page[store.Key]{}, err
	}
	w.Eq("k.user_id", p.UserID)
	if !p.IncludeRevoked {
		w.Add("k.revoked_at IS NULL")
	}
	limit := store.PageLimit(p.Limit)
	q, args := w.SQL(s.selectKey, ` ORDER BY k.created_at DESC, k.id DESC LIMIT ?`, limit+1)
	keys, err := queryAll(ctx, s.db.R, scanKey, q, args...)
	if err != nil {
		return store.Page[store.Key]{}, s.d.Err("list keys", err)
	}
	return sqldb.PageOf(keys, limit, func(k store.Key) store.Cursor { return store.Cursor{Time: k.CreatedAt, ID: k.ID} }), nil
}

// UpdateKey implements store.Keys.
func (s *Store) UpdateKey(ctx context.Context, p store.UpdateKeyParams) (store.Key, error) {
	if p.Role != nil && *p.Role == "" {
		return store.Key{}, s.d.Invalid("update key", "role must not be empty")
	}
	var set []string
	var args []any
	if p.Name != nil {
		set, args = append(set, "name = ?"), append(args, *p.Name)
	}
	if p.Role != nil {
		set, args = append(set, "role = ?"), append(args, *p.Role)
	}
	if p.Models != nil {
		set, args = append(set, "models = ?"), append(args, s.d.Strings(*p.Models))
	}
	if p.ExpiresAt != nil {
		set, args = append(set, "expires_at = ?"), append(args, s.d.NullTime(store.Micro(*p.ExpiresAt)))
	}
	stmt := stmtUpdateKey + strings.Join(append(set, "updated_at = ?"), ", ") + ` WHERE id = ?`
	return s.changeKey(ctx, "update key", p.ID, stmt, func(now any) []any { return append(args, now, p.ID) })
}

// RevokeKey implements store.Keys.
func (s *Store) RevokeKey(ctx context.Context, id string) (store.Key, error) {
	return s.changeKey(ctx, "revoke key", id, stmtRevokeKey, func(now any) []any { return []any{now, now, id} })
}

// changeKey runs stmt, one UPDATE of key id whose arguments args makes from the time of
// the change, and returns the key as it is afterwards, read in the same transaction (the
// UPDATE holds the row until commit). No such key is ErrNotFound.
func (s *Store) changeKey(ctx context.Context, op, id, stmt string, args func(now any) []any) (store.Key, error) {
	var k store.Key
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		t, err := s.d.Now(ctx, tx)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, s.q(stmt), args(s.d.Time(t))...)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return sql.ErrNoRows
		}
		k, err = s.keyWhere(ctx, tx, `k.id = ?`, id)
		return err
	})
	return k, s.d.Err(op, err)
}

// KeysChangedSince implements store.Keys. The clock is read before the query, so a change
// committed between the two is returned now and maybe again next time, never missed.
func (s *Store) KeysChangedSince(ctx context.Context, since time.Time) ([]store.Key, time.Time, error) {
	now, err := s.d.Now(ctx, s.db.R)
	if err != nil {
		return nil, since, s.d.Err("keys changed", err)
	}
	// A zero since is the earliest time either database stores: every key.
	keys, err := queryAll(ctx, s.db.R, scanKey, s.q(s.selectKey+` WHERE k.updated_at >= ? ORDER BY k.updated_at, k.id`), s.d.Time(since))
	if err != nil {
		return nil, since, s.d.Err("keys changed", err)
	}
	next := now.Add(-store.ChangeOverlap)
	if next.Before(since) {
		next = since // never move the caller backwards
	}
	return keys, next, nil
}

// queryAll runs q on db and scans every row with scan.
func queryAll[T any](ctx context.Context, db interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}, scan func(scanner) (T, error), q string, args ...any) ([]T, error) {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var items []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		items = append(items, v)
	}
	return items, rows.Err()
}
