package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
)

// migrations are applied in order; migration i has version i+1. Append only: a released
// migration is never edited, a change is a new one.
var migrations = []string{
	// 1: users, API keys, usage and the audit log.
	`
CREATE TABLE users (
	id         text PRIMARY KEY,
	name       text NOT NULL UNIQUE,
	email      text NOT NULL DEFAULT '',
	role       text NOT NULL,
	disabled   boolean NOT NULL DEFAULT false,
	created_at timestamptz NOT NULL,
	updated_at timestamptz NOT NULL
);
CREATE INDEX users_created ON users (created_at, id);

CREATE TABLE api_keys (
	id         text PRIMARY KEY,
	prefix     text NOT NULL,
	hash       bytea NOT NULL UNIQUE,
	user_id    text REFERENCES users (id),
	role       text NOT NULL,
	name       text NOT NULL DEFAULT '',
	models     text[],
	expires_at timestamptz,
	revoked_at timestamptz,
	created_at timestamptz NOT NULL,
	updated_at timestamptz NOT NULL
);
CREATE INDEX api_keys_created ON api_keys (created_at, id);
CREATE INDEX api_keys_user ON api_keys (user_id, created_at, id);
CREATE INDEX api_keys_updated ON api_keys (updated_at);

CREATE TABLE usage_records (
	id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	time              timestamptz NOT NULL,
	key_id            text NOT NULL,
	user_id           text NOT NULL,
	model             text NOT NULL,
	backend           text NOT NULL,
	prompt_tokens     bigint NOT NULL,
	completion_tokens bigint NOT NULL,
	latency_us        bigint NOT NULL,
	status            integer NOT NULL,
	trace_id          text NOT NULL
);
-- Quota totals are index-only scans of these.
CREATE INDEX usage_key_time ON usage_records (key_id, time) INCLUDE (prompt_tokens, completion_tokens);
CREATE INDEX usage_user_time ON usage_records (user_id, time) INCLUDE (prompt_tokens, completion_tokens);
CREATE INDEX usage_time ON usage_records (time);

CREATE TABLE audit_records (
	id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	time        timestamptz NOT NULL,
	actor       text NOT NULL,
	action      text NOT NULL,
	target      text NOT NULL,
	client_addr text NOT NULL,
	result      text NOT NULL,
	details     jsonb NOT NULL
);
CREATE INDEX audit_time ON audit_records (time);
CREATE INDEX audit_actor ON audit_records (actor, id);
CREATE INDEX audit_action ON audit_records (action, id);
CREATE INDEX audit_target ON audit_records (target, id);
CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'audit records are append-only';
END
$$;
CREATE TRIGGER audit_append_only BEFORE UPDATE ON audit_records
	FOR EACH ROW EXECUTE FUNCTION audit_append_only();
`,
	// 2: the daily usage rollup (see store.Daily), filled from the records already there.
	`
CREATE TABLE usage_daily (
	key_id            text NOT NULL,
	user_id           text NOT NULL,
	day               timestamptz NOT NULL,
	requests          bigint NOT NULL,
	prompt_tokens     bigint NOT NULL,
	completion_tokens bigint NOT NULL,
	PRIMARY KEY (key_id, user_id, day)
);
CREATE INDEX usage_daily_user ON usage_daily (user_id, day);
CREATE INDEX usage_daily_day ON usage_daily (day);
INSERT INTO usage_daily (key_id, user_id, day, requests, prompt_tokens, completion_tokens)
	SELECT key_id, user_id, date_trunc('day', time, 'UTC'), COUNT(*), SUM(prompt_tokens), SUM(completion_tokens)
	FROM usage_records GROUP BY 1, 2, 3;
`,
	// 3: the ids of the batches Append applied, so that a retried batch is applied once
	// (store.BatchMemory); pruned by time.
	`
CREATE TABLE record_batches (
	id   text PRIMARY KEY,
	time timestamptz NOT NULL
);
CREATE INDEX record_batches_time ON record_batches (time);
`,
}

// migrate applies the pending migrations in one transaction. The transaction first takes an
// advisory lock keyed by the schema, so replicas starting together take turns: the first
// applies the migrations, the others then find them applied. The lock is released at
// commit or rollback.
func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }() // no-op after Commit
	if _, err := tx.Exec(ctx,
		`SELECT pg_advisory_xact_lock(hashtext('autoglm.migrate.' || COALESCE(current_schema(), '')))`); err != nil {
		return fmt.Errorf("postgres: migrate: lock: %w", err)
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    integer PRIMARY KEY,
		applied_at timestamptz NOT NULL DEFAULT now()
	)`); err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	var current int
	if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	if current > len(migrations) {
		return fmt.Errorf("postgres: database schema version %d is newer than this binary knows (%d); upgrade autoglm", current, len(migrations))
	}
	for v := current + 1; v <= len(migrations); v++ {
		// Without arguments pgx uses the simple protocol, which runs several statements.
		if _, err := tx.Exec(ctx, migrations[v-1]); err != nil {
			return fmt.Errorf("postgres: migration %d: %w", v, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version) VALUES ($1)`, v); err != nil {
			return fmt.Errorf("postgres: migration %d: %w", v, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	return nil
}
