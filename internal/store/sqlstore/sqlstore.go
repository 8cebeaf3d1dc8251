// Package sqlstore is the one implementation of store.Store's users, keys, usage and audit
// methods, written once over internal/store/sqldb and shared by the SQLite and PostgreSQL
// drivers. A driver opens its database, applies its migrations and embeds a *Store made by
// New; it keeps only what truly differs between the databases (see the drivers' package
// docs).
//
// # Style
//
// The project keeps one persistence style, the same here as in the task queue
// (internal/task): SQL is written once, with ? placeholders, through database/sql; the
// sqldb.Dialect carries what differs (placeholders, stored times and lists, keyset
// comparisons, row locks, the database clock and the meaning of driver errors). Every
// change of a row is a named statement (the stmt* constants) run by a method named for
// the change, and every method that writes more than one statement runs them in one
// transaction (sqldb.DB.InTx). Driver errors are returned raw from inside a transaction
// and classified once, at the method's edge, by Dialect.Err, so each method reports
// store.ErrNotFound, ErrConflict, ErrInvalid (an unknown user) or ErrUnavailable the same
// way on both databases.
//
// Why one text for both: the two drivers had grown two implementations of every method
// (one over pgx's native API, one over database/sql) that had to be kept in step by hand,
// and the conformance suite (internal/store/storetest) was the only thing keeping them so.
// Written once, a fix or a new column is made once, and the suite checks one
// implementation on two databases. Reads and writes go through database/sql on both; on
// PostgreSQL that is pgx's stdlib adapter over the same pool, with pgx's statement cache.
package sqlstore

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/open-autoglm/autoglm/internal/store"
	"github.com/open-autoglm/autoglm/internal/store/sqldb"
)

// Store implements every method of store.Store except Close, which belongs to the driver
// that opened the database. Its methods are safe for concurrent use.
type Store struct {
	db sqldb.DB
	d  sqldb.Dialect
	// selectKey reads keyCols: built once, as its list column is read per dialect.
	selectKey string
	// prepared holds the statements of Append (its multi-row INSERTs, its batch claim),
	// prepared once on the writer, before Append's transaction.
	prepared *sqldb.Stmts
	// now is the clock of Append (record times it fills in, batch ids' times).
	now func() time.Time
	// lastPrune is when Append last pruned the batch ids, in Unix nanoseconds.
	lastPrune atomic.Int64
}

// New returns the store over db, whose tables the driver's migrations have created.
func New(db sqldb.DB) *Store {
	return &Store{db: db, d: db.Dialect, selectKey: `SELECT ` + keyCols(db.Dialect) + keyFrom, now: time.Now,
		prepared: sqldb.NewStmts(db.W, db.Dialect)}
}

// Ping checks that the database answers, on the writer and on the readers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.W.PingContext(ctx); err != nil {
		return fmt.Errorf("%s: %w", s.d.Name(), err)
	}
	if s.db.R != s.db.W {
		if err := s.db.R.PingContext(ctx); err != nil {
			return fmt.Errorf("%s: %w", s.d.Name(), err)
		}
	}
	return nil
}

// Close releases the prepared statements; the driver closes the database afterwards.
func (s *Store) Close() error { return s.prepared.Close() }

// q rewrites a statement written with ? placeholders for the dialect.
func (s *Store) q(stmt string) string { return s.d.Rebind(stmt) }

type scanner interface{ Scan(dest ...any) error }

var _ interface {
	store.Users
	store.Keys
	store.Usage
	store.Audit
	Append(context.Context, string, []store.UsageRecord, []store.AuditRecord) error
	Ping(context.Context) error
} = (*Store)(nil)
