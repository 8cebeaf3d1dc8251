package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// migrations are applied in order; migration i has version i+1. Append only: a released
// migration is never edited, a change is a new one.
//
// Times are INTEGER microseconds since the Unix epoch (UTC), NULL for "never".
var migrations = []string{
	// 1: users, API keys, usage and the audit log.
	`
CREATE TABLE users (
	id         TEXT PRIMARY KEY,
	name       TEXT NOT NULL UNIQUE,
	email      TEXT NOT NULL DEFAULT '',
	role       TEXT NOT NULL,
	disabled   INTEGER NOT NULL DEFAULT 0,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
);
CREATE INDEX users_created ON users (created_at, id);

CREATE TABLE api_keys (
	id         TEXT PRIMARY KEY,
	prefix     TEXT NOT NULL,
	hash       BLOB NOT NULL UNIQUE,
	user_id    TEXT REFERENCES users (id),
	role       TEXT NOT NULL,
	name       TEXT NOT NULL DEFAULT '',
	models     TEXT NOT NULL DEFAULT '',
	expires_at INTEGER,
	revoked_at INTEGER,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
);
CREATE INDEX api_keys_created ON api_keys (created_at, id);
CREATE INDEX api_keys_user ON api_keys (user_id, created_at, id);
CREATE INDEX api_keys_updated ON api_keys (updated_at);

CREATE TABLE usage_records (
	id                INTEGER PRIMARY KEY,
	time              INTEGER NOT NULL,
	key_id            TEXT NOT NULL,
	user_id           TEXT NOT NULL,
	model             TEXT NOT NULL,
	backend           TEXT NOT NULL,
	prompt_tokens     INTEGER NOT NULL,
	completion_tokens INTEGER NOT NULL,
	latency_us        INTEGER NOT NULL,
	status            INTEGER NOT NULL,
	trace_id          TEXT NOT NULL
);
-- Quota totals read only these covering indexes.
CREATE INDEX usage_key_time ON usage_records (key_id, time, prompt_tokens, completion_tokens);
CREATE INDEX usage_user_time ON usage_records (user_id, time, prompt_tokens, completion_tokens);
CREATE INDEX usage_time ON usage_records (time);

CREATE TABLE audit_records (
	id          INTEGER PRIMARY KEY,
	time        INTEGER NOT NULL,
	actor       TEXT NOT NULL,
	action      TEXT NOT NULL,
	target      TEXT NOT NULL,
	client_addr TEXT NOT NULL,
	result      TEXT NOT NULL,
	details     TEXT NOT NULL
);
CREATE INDEX audit_time ON audit_records (time);
CREATE INDEX audit_actor ON audit_records (actor, id);
CREATE INDEX audit_action ON audit_records (action, id);
CREATE INDEX audit_target ON audit_records (target, id);
CREATE TRIGGER audit_append_only BEFORE UPDATE ON audit_records
BEGIN
	SELECT RAISE(ABORT, 'audit records are append-only');
END;
`,
	// 2: the daily usage rollup (see store.Daily), filled from the records already there.
	`
CREATE TABLE usage_daily (
	key_id            TEXT NOT NULL,
	user_id           TEXT NOT NULL,
	day               INTEGER NOT NULL,
	requests          INTEGER NOT NULL,
	prompt_tokens     INTEGER NOT NULL,
	completion_tokens INTEGER NOT NULL,
	PRIMARY KEY (key_id, user_id, day)
) WITHOUT ROWID;
CREATE INDEX usage_daily_user ON usage_daily (user_id, day);
CREATE INDEX usage_daily_day ON usage_daily (day);
INSERT INTO usage_daily (key_id, user_id, day, requests, prompt_tokens, completion_tokens)
	SELECT key_id, user_id, time - time % 86400000000, COUNT(*), SUM(prompt_tokens), SUM(completion_tokens)
	FROM usage_records GROUP BY 1, 2, 3;
`,
	// 3: the ids of the batches Append applied, so that a retried batch is applied once
	// (store.BatchMemory); pruned by time.
	`
CREATE TABLE record_batches (
	id   TEXT PRIMARY KEY,
	time INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX record_batches_time ON record_batches (time);
`,
}

// migrate applies the pending migrations in one IMMEDIATE transaction on the writer, so a
// second process opening the same file waits for the first and then finds nothing to do.
func migrate(ctx context.Context, db *sql.DB) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	defer func() { _ = tx.Rollback() }() // no-op after Commit
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		applied_at INTEGER NOT NULL
	)`); err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	var current int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	if current > len(migrations) {
		return fmt.Errorf("sqlite: database schema version %d is newer than this binary knows (%d); upgrade autoglm", current, len(migrations))
	}
	for v := current + 1; v <= len(migrations); v++ {
		if _, err := tx.ExecContext(ctx, migrations[v-1]); err != nil {
			return fmt.Errorf("sqlite: migration %d: %w", v, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`,
			v, time.Now().UnixMicro()); err != nil {
			return fmt.Errorf("sqlite: migration %d: %w", v, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	return nil
}
