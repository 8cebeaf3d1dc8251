package task

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/open-autoglm/autoglm/internal/store/sqldb"
	"github.com/open-autoglm/autoglm/internal/store/sqlschema"

	"github.com/open-autoglm/autoglm/internal/store"
)

// DB is where task rows live: the store's own database, so a task and the records around it
// share one durability story. W, R, Dialect and Listener are the store's (see sqldb.DB);
// on SQLite W is the store's single writer, so task writes queue behind the store's in Go.
type DB struct {
	sqldb.DB
}

// DBFor returns the task database of a store that keeps a SQL database (a sqldb.Source:
// both drivers store.Open knows).
func DBFor(st store.Store) (DB, error) {
	db, err := sqldb.From(st, "task")
	if err != nil {
		return DB{}, err
	}
	return DB{db}, nil
}

// q rewrites a query written with ? placeholders for the dialect.
func (d DB) q(query string) string { return d.Dialect.Rebind(query) }

// migrations are applied in order, each once, recorded in task_schema. They are the task
// system's own: the store's migrations never touch these tables. The SQL is written to be
// valid on both SQLite and PostgreSQL; BIGINT is an INTEGER on SQLite.
var migrations = []string{
	`CREATE TABLE tasks (
		id               TEXT PRIMARY KEY,
		kind             TEXT NOT NULL,
		model            TEXT NOT NULL,
		owner            TEXT NOT NULL,
		idem_key         TEXT,
		req_hash         TEXT NOT NULL,
		spec             TEXT NOT NULL,
		status           TEXT NOT NULL,
		priority         BIGINT NOT NULL,
		est_tokens       BIGINT NOT NULL,
		attempts         BIGINT NOT NULL DEFAULT 0,
		max_attempts     BIGINT NOT NULL,
		run_after        BIGINT NOT NULL,
		lease_owner      TEXT NOT NULL DEFAULT '',
		lease_until      BIGINT NOT NULL DEFAULT 0,
		cancel_requested BIGINT NOT NULL DEFAULT 0,
		progress_tokens  BIGINT NOT NULL DEFAULT 0,
		last_seq         BIGINT NOT NULL DEFAULT 0,
		result           TEXT,
		error            TEXT,
		created_at       BIGINT NOT NULL,
		started_at       BIGINT,
		finished_at      BIGINT,
		updated_at       BIGINT NOT NULL
	);
	CREATE UNIQUE INDEX tasks_idem ON tasks (owner, idem_key) WHERE idem_key IS NOT NULL;
	CREATE INDEX tasks_queue ON tasks (model, status, run_after);
	CREATE INDEX tasks_running ON tasks (status, lease_until);
	CREATE INDEX tasks_created ON tasks (created_at, id);
	CREATE INDEX tasks_owner_created ON tasks (owner, created_at, id);
	CREATE TABLE task_events (
		task_id    TEXT NOT NULL,
		seq        BIGINT NOT NULL,
		type       TEXT NOT NULL,
		data       TEXT NOT NULL,
		created_at BIGINT NOT NULL,
		PRIMARY KEY (task_id, seq)
	);
	CREATE TABLE task_deliveries (
		task_id     TEXT PRIMARY KEY,
		delivery_id TEXT NOT NULL,
		url         TEXT NOT NULL,
		body        TEXT NOT NULL,
		status      TEXT NOT NULL,
		attempts    BIGINT NOT NULL DEFAULT 0,
		next_at     BIGINT NOT NULL,
		lease_until BIGINT NOT NULL DEFAULT 0,
		deadline    BIGINT NOT NULL,
		created_at  BIGINT NOT NULL,
		updated_at  BIGINT NOT NULL
	);
	CREATE INDEX task_deliveries_due ON task_deliveries (status, next_at);
	CREATE TABLE task_delivery_attempts (
		task_id     TEXT NOT NULL,
		n           BIGINT NOT NULL,
		at          BIGINT NOT NULL,
		status_code BIGINT NOT NULL,
		error       TEXT NOT NULL,
		duration_ms BIGINT NOT NULL,
		PRIMARY KEY (task_id, n)
	)`,
	// 2: who submitted the task, for usage records.
	`ALTER TABLE tasks ADD COLUMN key_id TEXT NOT NULL DEFAULT '';
	ALTER TABLE tasks ADD COLUMN user_id TEXT NOT NULL DEFAULT ''`,
	// 3: one index per policy order, so each owner's head is found by a seek.
	`CREATE INDEX tasks_head_fifo ON tasks (model, status, owner, created_at, id);
	CREATE INDEX tasks_head_priority ON tasks (model, status, owner, priority DESC, created_at, id);
	CREATE INDEX tasks_head_shortest ON tasks (model, status, owner, est_tokens, created_at, id);
	DROP INDEX tasks_queue`,
}

// migrationLock is the PostgreSQL advisory lock key held while migrating, so replicas
// starting together apply each migration once. ("autoglm-task" as a number.)
const migrationLock = 0x6175746f676c6d74

// migrate applies pending migrations in one transaction.
func (d DB) migrate(ctx context.Context) error {
	return sqlschema.Migrate(ctx, d.W, d.Dialect, sqlschema.Schema{Name: "task", Table: "task_schema", Lock: int64(migrationLock), Migrations: migrations})
}

// inTx runs fn in a write transaction and commits it when fn returns nil.
func (d DB) inTx(ctx context.Context, fn func(*sql.Tx) error) error { return d.InTx(ctx, fn) }

// taskColumns are the columns scanTask reads, in order.
const taskColumns = `id, kind, model, owner, spec, status, priority, attempts, max_attempts,
	progress_tokens, result, error, created_at, started_at, finished_at, updated_at`

type rowScanner interface{ Scan(dest ...any) error }

// scanTask reads one row of taskColumns.
func scanTask(r rowScanner) (Task, Spec, error) {
	var (
		t                    Task
		specJSON             string
		status               string
		result, errJSON      sql.NullString
		created, updated     int64
		started, finished    sql.NullInt64
		priority, att, maxAt int64
		progress             int64
	)
	if err := r.Scan(&t.ID, &t.Kind, &t.Model, &t.Owner, &specJSON, &status, &priority, &att, &maxAt,
		&progress, &result, &errJSON, &created, &started, &finished, &updated); err != nil {
		return Task{}, Spec{}, err
	}
	var spec Spec
	if err := jsonUnmarshal([]byte(specJSON), &spec); err != nil {
		return Task{}, Spec{}, fmt.Errorf("task %s: spec: %w", t.ID, err)
	}
	t.Status = Status(status)
	t.Priority = int(priority)
	t.Attempts = int(att)
	t.MaxAttempts = int(maxAt)
	t.Progress.Tokens = int(progress)
	t.CreatedAt = fromMicros(created)
	t.UpdatedAt = fromMicros(updated)
	if started.Valid {
		v := fromMicros(started.Int64)
		t.StartedAt = &v
	}
	if finished.Valid {
		v := fromMicros(finished.Int64)
		t.FinishedAt = &v
	}
	if result.Valid && result.String != "" {
		t.Result = new(Result)
		if err := jsonUnmarshal([]byte(result.String), t.Result); err != nil {
			return Task{}, Spec{}, fmt.Errorf("task %s: result: %w", t.ID, err)
		}
	}
	if errJSON.Valid && errJSON.String != "" {
		t.Error = new(Error)
		if err := jsonUnmarshal([]byte(errJSON.String), t.Error); err != nil {
			return Task{}, Spec{}, fmt.Errorf("task %s: error: %w", t.ID, err)
		}
	}
	t.Metadata = spec.Metadata
	t.CallbackURL = spec.CallbackURL
	return t, spec, nil
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// loadTask reads one task with its webhook delivery, or ErrNotFound.
func (d DB) loadTask(ctx context.Context, q querier, id string) (Task, Spec, error) {
	t, spec, err := scanTask(q.QueryRowContext(ctx, d.q(`SELECT `+taskColumns+` FROM tasks WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return Task{}, Spec{}, ErrNotFound
	}
	if err != nil {
		return Task{}, Spec{}, err
	}
	if spec.CallbackURL != "" {
		dl, err := d.loadDelivery(ctx, q, id)
		if err != nil {
			return Task{}, Spec{}, err
		}
		t.Webhook = dl
	}
	return t, spec, nil
}

// loadDelivery reads the webhook delivery of a task and its attempts; nil when the task has
// none yet (it is not terminal).
func (d DB) loadDelivery(ctx context.Context, q querier, id string) (*Delivery, error) {
	var dl Delivery
	err := q.QueryRowContext(ctx, d.q(`SELECT delivery_id, status FROM task_deliveries WHERE task_id = ?`), id).Scan(&dl.ID, &dl.Status)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	rows, err := q.QueryContext(ctx, d.q(`SELECT at, status_code, error, duration_ms FROM task_delivery_attempts WHERE task_id = ? ORDER BY n`), id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	dl.Attempts = []Attempt{}
	for rows.Next() {
		var a Attempt
		var at, code int64
		if err := rows.Scan(&at, &code, &a.Error, &a.DurationMS); err != nil {
			return nil, err
		}
		a.At = fromMicros(at)
		a.StatusCode = int(code)
		dl.Attempts = append(dl.Attempts, a)
	}
	return &dl, rows.Err()
}

// appendEvent adds the next event of a task inside tx: it bumps tasks.last_seq and inserts
// the event under the new number. Callers that already bumped last_seq in their own UPDATE
// use insertEvent.
func (d DB) appendEvent(ctx context.Context, tx *sql.Tx, id, typ string, data []byte, now int64) (int64, error) {
	var seq int64
	if err := tx.QueryRowContext(ctx, d.q(stmtNextSeq), id).Scan(&seq); err != nil {
		return 0, err
	}
	return seq, d.insertEvent(ctx, tx, id, seq, typ, data, now)
}

func (d DB) insertEvent(ctx context.Context, tx *sql.Tx, id string, seq int64, typ string, data []byte, now int64) error {
	_, err := tx.ExecContext(ctx, d.q(stmtInsertEvent), id, seq, typ, string(data), now)
	return err
}

// notify tells every replica listening on PostgreSQL that something changed: "e:<task id>"
// (new events), "q:<model>" (new queued work), a cancel or a due delivery. Sent through a
// transaction, it goes out when the transaction commits; through W, at once. A no-op on
// SQLite, whose one process is told in memory.
func (d DB) notify(ctx context.Context, q querier, payload string) error {
	if d.Listener == nil {
		return nil
	}
	_, err := q.ExecContext(ctx, `SELECT pg_notify('`+notifyChannel+`', $1)`, payload)
	return err
}

// notifyChannel is the PostgreSQL channel task changes are announced on.
const notifyChannel = "autoglm_tasks"

func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }
