// Package postgres is the store driver for replicas sharing one PostgreSQL database, through
// pgx's connection pool.
//
// The store's methods are the shared implementation (internal/store/sqlstore), run through
// database/sql over the pool (pgx's stdlib adapter). What this package keeps is what only
// PostgreSQL has: opening the pool, the migrations' DDL and their advisory lock, and LISTEN
// for the components that share the database. (Append used COPY here; measured against the
// shared multi-row INSERTs it did not win clearly, so it went: docs/BENCHMARKS.md.)
//
// Times the store sets come from the database (clock_timestamp()), so KeysChangedSince works
// across replicas whose clocks disagree. Migrations are serialised between replicas by an
// advisory lock. The pool's size and other settings come from the DSN (pool_max_conns=…).
// Queries use pgx's per-connection statement cache; behind a pooler that cannot keep
// prepared statements (PgBouncer in transaction mode before 1.21) add
// default_query_exec_mode=exec to the DSN.
//
// Importing the package registers the driver as "postgres" with store.Open.
package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/open-autoglm/autoglm/internal/config"
	"github.com/open-autoglm/autoglm/internal/store"
	"github.com/open-autoglm/autoglm/internal/store/sqldb"
	"github.com/open-autoglm/autoglm/internal/store/sqlstore"
)

func init() {
	store.Register("postgres", func(ctx context.Context, cfg config.Store, _ string) (store.Store, error) {
		return Open(ctx, cfg.DSN)
	})
}

// Store is the PostgreSQL store. Its methods implement store.Store: all but Close are the
// shared implementation (sqlstore), through database/sql over the pool.
type Store struct {
	*sqlstore.Store
	pool *pgxpool.Pool
	db   *sql.DB // database/sql over pool, for components sharing the database
}

var _ sqldb.Source = (*Store)(nil)

var _ store.Store = (*Store)(nil)

// Open connects to the database dsn names (a URL or key=value string, with pgxpool's pool_*
// settings if wanted) and applies pending migrations.
func Open(ctx context.Context, dsn string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// The DSN may hold a password; pgx's parse errors redact it.
		return nil, fmt.Errorf("postgres: %w", err)
	}
	return OpenConfig(ctx, cfg)
}

// OpenConfig is Open with a pool configuration built by the caller.
func OpenConfig(ctx context.Context, cfg *pgxpool.Config) (*Store, error) {
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	if err := migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	st := &Store{pool: pool, db: stdlib.OpenDBFromPool(pool)}
	st.Store = sqlstore.New(st.SQLDB())
	return st, nil
}

// Pool is the connection pool. Closing the Store closes it.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// SQLDB implements sqldb.Source: W and R are one database/sql handle over the pool, and the
// Listener takes a connection out of the pool for LISTEN.
func (s *Store) SQLDB() sqldb.DB {
	return sqldb.DB{W: s.db, R: s.db, Dialect: dialect, Listener: listener{s.pool}}
}

// listener implements sqldb.Listener with LISTEN on a connection of its own.
type listener struct{ pool *pgxpool.Pool }

func (l listener) Listen(ctx context.Context, channel string, ready func(), fn func(string)) error {
	pc, err := l.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	// The connection leaves the pool for good: one that LISTENs must not serve queries
	// for others.
	conn := pc.Hijack()
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{channel}.Sanitize()); err != nil {
		return err
	}
	ready()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		fn(n.Payload)
	}
}

// Close implements store.Store.
func (s *Store) Close() error {
	err := errors.Join(s.Store.Close(), s.db.Close())
	s.pool.Close()
	return err
}

// dialect is the store's SQL dialect: placeholders, stored times and error classes.
var dialect = sqldb.Postgres
