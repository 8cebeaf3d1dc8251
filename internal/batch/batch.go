// Package batch is the OpenAI Batch API on the gateway: JSONL files uploaded with
// POST /v1/files, batches created from them with POST /v1/batches, and a small pool of
// workers that runs each line through the gateway's own HTTP handler as the caller that
// created the batch, so authentication, limits, quotas, usage, the response cache and
// routing apply to every line as to an interactive request.
//
// # Durability
//
// Files, batches and their lines live in the store's database (SQLite or PostgreSQL), in
// tables of this package's own migrations (batch_schema). A batch's lines are copied into
// batch_lines when it is created. A worker takes a line with a conditional update that
// gives it a lease, and commits the line's answer with an update conditional on the line
// being unanswered and its batch still running, together with the batch's counters. So a
// line is answered once: a process killed at any moment loses only the lines it had not
// answered, which run again when the lease is released (at start on SQLite, whose file has
// one process; when the lease runs out on PostgreSQL). The output and error files are
// written in the same transaction that moves the batch to its terminal status.
//
// # Statuses
//
// The input file is checked when it is uploaded and again when the batch is created (every
// line must call the batch's endpoint), and a bad one is refused then with a 400, so a batch
// starts in_progress; validating and failed are never seen. It ends completed (every line
// answered), cancelled (after POST /v1/batches/{id}/cancel, once its running lines have
// finished) or expired (past its 24h window, with the lines answered so far).
//
// # Sharing the gateway
//
// Each process runs at most batch.concurrency lines at once (default 2), across all
// batches, so that batch work yields to interactive traffic. A line refused by a rate limit
// is not answered: it waits for the time the limit names and runs again. A line refused by
// a quota, or by any other error, is answered with that error and goes to the error file;
// it does not fail the batch.
package batch

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/open-autoglm/autoglm/internal/store/sqldb"
	"github.com/open-autoglm/autoglm/internal/store/sqlschema"

	"github.com/open-autoglm/autoglm/internal/auth"
	"github.com/open-autoglm/autoglm/internal/config"
	"github.com/open-autoglm/autoglm/internal/store"
)

// Options configure a Service.
type Options struct {
	// Config is the batch section.
	Config config.Batch
	// Handler returns the gateway's HTTP handler; each line is served by it. It is called
	// only once the workers run.
	Handler func() http.Handler
	// Principal returns the principal a batch's lines run as, from what was kept of its
	// creator. Nil: authentication is off and lines run anonymous.
	Principal func(auth.Identity) (*auth.Principal, error)
	// Logger receives the workers' failures. Default: slog.Default().
	Logger *slog.Logger
	// Poll is how often idle workers look for work (a new batch wakes one at once).
	// Default 500ms.
	Poll time.Duration
	// Lease is how long a taken line stays taken without renewal. Default 1m.
	Lease time.Duration
}

// Service serves the Files and Batch APIs and runs batches.
type Service struct {
	opts     Options
	w, r     *sql.DB
	polls    *sqldb.Stmts // the workers' polls, prepared once (claim, finished batches)
	dialect  sqldb.Dialect
	log      *slog.Logger
	worker   string        // this process's lease owner name
	wake     chan struct{} // a batch was created or cancelled
	answered chan struct{} // a line was answered: a batch may be done
	// finalizing serialises finalization attempts in this process.
	finalizing sync.Mutex
}

// migrations are applied in order, each once, recorded in batch_schema. Append only.
var migrations = []string{
	`CREATE TABLE batch_files (
		id         TEXT PRIMARY KEY,
		owner      TEXT NOT NULL,
		filename   TEXT NOT NULL,
		purpose    TEXT NOT NULL,
		bytes      BIGINT NOT NULL,
		created_us BIGINT NOT NULL,
		content    TEXT NOT NULL
	);
	CREATE INDEX batch_files_owner ON batch_files (owner, created_us);
	CREATE TABLE batches (
		id                TEXT PRIMARY KEY,
		owner             TEXT NOT NULL,
		identity          TEXT NOT NULL,
		endpoint          TEXT NOT NULL,
		input_file_id     TEXT NOT NULL,
		completion_window TEXT NOT NULL,
		metadata          TEXT NOT NULL,
		status            TEXT NOT NULL,
		created_us        BIGINT NOT NULL,
		in_progress_at    BIGINT NOT NULL DEFAULT 0,
		expires_at        BIGINT NOT NULL DEFAULT 0,
		finalizing_at     BIGINT NOT NULL DEFAULT 0,
		completed_at      BIGINT NOT NULL DEFAULT 0,
		failed_at         BIGINT NOT NULL DEFAULT 0,
		expired_at        BIGINT NOT NULL DEFAULT 0,
		cancelling_at     BIGINT NOT NULL DEFAULT 0,
		cancelled_at      BIGINT NOT NULL DEFAULT 0,
		output_file_id    TEXT NOT NULL DEFAULT '',
		error_file_id     TEXT NOT NULL DEFAULT '',
		total             BIGINT NOT NULL,
		completed         BIGINT NOT NULL DEFAULT 0,
		failed            BIGINT NOT NULL DEFAULT 0
	);
	CREATE INDEX batches_owner ON batches (owner, created_us);
	CREATE INDEX batches_status ON batches (status, created_us);
	CREATE TABLE batch_lines (
		batch_id    TEXT NOT NULL,
		idx         BIGINT NOT NULL,
		custom_id   TEXT NOT NULL,
		body        TEXT NOT NULL,
		lease_owner TEXT NOT NULL DEFAULT '',
		lease_until BIGINT NOT NULL DEFAULT 0,
		done        INTEGER NOT NULL DEFAULT 0,
		ok          INTEGER NOT NULL DEFAULT 0,
		result      TEXT NOT NULL DEFAULT '',
		PRIMARY KEY (batch_id, idx)
	);
	CREATE INDEX batch_lines_open ON batch_lines (batch_id, done, lease_until)`,
}

const migrationLock = 0x62617463 // "batc"

// Open opens the batch tables in st's database, creating them when needed. On SQLite,
// whose file only this process uses, the leases of lines a previous process was running
// are released at once, so those lines run again.
func Open(ctx context.Context, st store.Store, opts Options) (*Service, error) {
	s := &Service{opts: opts, log: opts.Logger, wake: make(chan struct{}, 1), answered: make(chan struct{}, 1), worker: "w-" + randHex(8)}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.opts.Config.Concurrency <= 0 {
		s.opts.Config.Concurrency = config.DefaultBatchConcurrency
	}
	if s.opts.Config.MaxFileBytes <= 0 {
		s.opts.Config.MaxFileBytes = config.DefaultBatchMaxFileBytes
	}
	if s.opts.Poll <= 0 {
		s.opts.Poll = 500 * time.Millisecond
	}
	if s.opts.Lease <= 0 {
		s.opts.Lease = time.Minute
	}
	db, err := sqldb.From(st, "batch")
	if err != nil {
		return nil, err
	}
	s.w, s.r, s.dialect = db.W, db.R, db.Dialect
	s.polls = sqldb.NewStmts(db.R, db.Dialect)
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, err
	}
	if !s.dialect.IsPostgres() {
		if _, err := s.w.ExecContext(ctx, stmtReleaseAllLines); err != nil {
			s.Close()
			return nil, fmt.Errorf("batch: release leases: %w", err)
		}
	}
	return s, nil
}

// Close releases what Open made (the polls' prepared statements); the store, which owns the
// database, stays open. Stop Run first.
func (s *Service) Close() error { return s.polls.Close() }

func (s *Service) q(query string) string {
	return s.dialect.Rebind(query)
}

func (s *Service) migrate(ctx context.Context) error {
	return sqlschema.Migrate(ctx, s.w, s.dialect, sqlschema.Schema{Name: "batch", Table: "batch_schema", Lock: int64(migrationLock), Migrations: migrations})
}

// ownerOf names the owner of files and batches: the caller's user, else its key; "" when
// authentication is off.
func ownerOf(ctx context.Context) (string, *auth.Principal) {
	p, ok := auth.FromContext(ctx)
	if !ok || p == nil {
		return "", nil
	}
	if p.UserID != "" {
		return "user:" + p.UserID, p
	}
	return "key:" + p.KeyID, p
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
