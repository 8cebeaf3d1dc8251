// Package sqldb is the one SQL layer under the SQLite and PostgreSQL stores and the
// components that keep their tables in the store's database (tasks, stored responses,
// batches). A query is written once, with ? placeholders; a Dialect value carries what
// differs between the two databases: placeholder syntax, how a time is stored, how a keyset
// comparison is written, and what a driver error means (not found, conflict, unknown
// reference, unavailable).
//
// Stores expose their database through Source, so a component finds its tables with a type
// assertion on the store.Store it is given, never by switching on a store's concrete type.
package sqldb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/open-autoglm/autoglm/internal/store"
)

// Dialect is what differs between the two databases. The zero value is not usable; use
// SQLite or Postgres.
type Dialect struct {
	name     string
	postgres bool
}

// The two dialects.
var (
	SQLite   = Dialect{name: "sqlite"}
	Postgres = Dialect{name: "postgres", postgres: true}
)

// Name is "sqlite" or "postgres"; it prefixes the errors Err returns.
func (d Dialect) Name() string { return d.name }

// IsPostgres reports whether d is PostgreSQL, for the few statements that exist only there
// (SKIP LOCKED, NOTIFY, advisory locks).
func (d Dialect) IsPostgres() bool { return d.postgres }

// Rebind rewrites a query written with ? placeholders into the dialect's: unchanged on
// SQLite, $1, $2, ... on PostgreSQL. Queries must not contain a literal question mark.
func (d Dialect) Rebind(query string) string {
	if !d.postgres || strings.IndexByte(query, '?') < 0 {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 8)
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(query[i])
	}
	return b.String()
}

// Time is the argument that compares t with a stored time column: microseconds since the
// epoch on SQLite (INTEGER columns), the time truncated to microseconds on PostgreSQL
// (timestamptz columns).
func (d Dialect) Time(t time.Time) any {
	if d.postgres {
		return store.Micro(t)
	}
	return t.UnixMicro()
}

// Class is what a driver error means to a caller.
type Class int

// Classes of errors, as Classify finds them.
const (
	// Other is any error not listed below, including nil.
	Other Class = iota
	// NotFound: the query returned no row.
	NotFound
	// Conflict: a unique or primary-key constraint refused the row.
	Conflict
	// UnknownRef: a foreign-key constraint refused the row (it names a missing parent).
	UnknownRef
	// Unavailable: the database could not run the statement now (connection lost or
	// refused, database locked by another process, server shutting down); trying again
	// later may succeed.
	Unavailable
)

// Classify says what err means, on either driver.
func Classify(err error) Class {
	switch {
	case err == nil:
		return Other
	case errors.Is(err, sql.ErrNoRows), errors.Is(err, pgx.ErrNoRows):
		return NotFound
	case errors.Is(err, driver.ErrBadConn), errors.Is(err, sql.ErrConnDone):
		return Unavailable
	}
	var se *msqlite.Error
	if errors.As(err, &se) {
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return Conflict
		case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
			return UnknownRef
		}
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
			return Unavailable
		}
		return Other
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code == "23505": // unique_violation
			return Conflict
		case pe.Code == "23503": // foreign_key_violation
			return UnknownRef
		case strings.HasPrefix(pe.Code, "08"), // connection_exception
			strings.HasPrefix(pe.Code, "53"),                           // insufficient_resources
			pe.Code == "57P01", pe.Code == "57P02", pe.Code == "57P03": // shutdown, crash, cannot connect now
			return Unavailable
		}
		return Other
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return Unavailable
	}
	return Other
}

// Err wraps a driver error for op as the store reports it: "<dialect>: <op>: ..." with the
// store's sentinel (store.ErrNotFound, ErrConflict, ErrInvalid for an unknown reference,
// ErrUnavailable) where Classify finds one. The driver's error stays reachable through
// errors.As. Nil stays nil.
func (d Dialect) Err(op string, err error) error {
	if err == nil {
		return nil
	}
	switch Classify(err) {
	case NotFound:
		return fmt.Errorf("%s: %s: %w", d.name, op, store.ErrNotFound)
	case Conflict:
		return fmt.Errorf("%s: %s: %w (%w)", d.name, op, store.ErrConflict, err)
	case UnknownRef:
		return fmt.Errorf("%s: %s: %w: unknown user (%w)", d.name, op, store.ErrInvalid, err)
	case Unavailable:
		return fmt.Errorf("%s: %s: %w (%w)", d.name, op, store.ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %s: %w", d.name, op, err)
}

// Invalid is the store's error for a bad argument to op.
func (d Dialect) Invalid(op, why string) error {
	if op == "" {
		return fmt.Errorf("%s: %w: %s", d.name, store.ErrInvalid, why)
	}
	return fmt.Errorf("%s: %s: %w: %s", d.name, op, store.ErrInvalid, why)
}

// DB is a store's database as a component that keeps its own tables there sees it.
type DB struct {
	// W runs every write (and reads inside write transactions). On SQLite it is the store's
	// single writer connection, so other components' writes queue behind the store's in Go
	// instead of meeting them inside SQLite as SQLITE_BUSY. Do not change its pool limits.
	W *sql.DB
	// R runs reads outside transactions. On SQLite it is the query-only reader pool; on
	// PostgreSQL it is W.
	R *sql.DB
	// Dialect is the database's dialect.
	Dialect Dialect
	// Listener receives notifications sent by other processes; nil where the database has
	// none (SQLite, whose one process tells itself in memory).
	Listener Listener
}

// Listener receives notifications that transactions send on a channel (PostgreSQL NOTIFY).
type Listener interface {
	// Listen subscribes to channel on a connection of its own, calls ready once subscribed,
	// then calls fn with each payload, in order, from the calling goroutine. It returns
	// when ctx ends (ctx.Err()) or the connection fails; notifications sent while no
	// Listen is running are lost, which is why ready exists: the caller catches up there.
	Listen(ctx context.Context, channel string, ready func(), fn func(payload string)) error
}

// Source is implemented by stores that keep their data in a SQL database other
// components may share. The DB stays valid until the store is closed; the store owns it.
type Source interface {
	SQLDB() DB
}

// From returns the database of st, or an error naming what needed it when st is not a
// Source (an in-memory test store, say).
func From(st store.Store, what string) (DB, error) {
	src, ok := st.(Source)
	if !ok {
		return DB{}, fmt.Errorf("%s: store %T keeps no SQL database", what, st)
	}
	return src.SQLDB(), nil
}

// InTx runs fn in a write transaction on db.W and commits when fn returns nil; any error
// rolls it back.
func (db DB) InTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := db.W.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// Stmts runs the queries a component repeats all the time (its queue polls, its batched
// inserts) as statements prepared once per text. On SQLite, whose database/sql driver parses
// the text of every query, parsing was most of what a poll cost, and the polls were most of
// what an idle process did (two thirds of its CPU while idle was SQLite's parser). On
// PostgreSQL, where pgx already keeps one prepared statement per text and connection and a
// database/sql statement prepared besides it measured slower (Dialect.PrepareOnce), the text
// is passed through.
//
// Only texts from a fixed set belong here: each one is kept until Close.
type Stmts struct {
	db *sql.DB
	on bool
	m  sync.Map // text → *sql.Stmt
}

// NewStmts returns the statements of queries run on db.
func NewStmts(db *sql.DB, d Dialect) *Stmts { return &Stmts{db: db, on: d.PrepareOnce()} }

// QueryContext is db.QueryContext, run as the text's statement, prepared at its first use.
func (s *Stmts) QueryContext(ctx context.Context, text string, args ...any) (*sql.Rows, error) {
	if st := s.stmt(ctx, text); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return s.db.QueryContext(ctx, text, args...)
}

// QueryRowContext is db.QueryRowContext, run as the text's statement, prepared at its first
// use.
func (s *Stmts) QueryRowContext(ctx context.Context, text string, args ...any) *sql.Row {
	if st := s.stmt(ctx, text); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return s.db.QueryRowContext(ctx, text, args...)
}

// Prepare prepares text now, unless it is kept already or statements are not kept, so that
// ExecTx can run it as a statement. It runs outside any transaction: on SQLite a
// transaction holds the writer's one connection.
func (s *Stmts) Prepare(ctx context.Context, text string) error {
	if !s.on {
		return nil
	}
	if _, ok := s.m.Load(text); ok {
		return nil
	}
	_, err := s.prepare(ctx, text)
	return err
}

// ExecTx runs text in tx: as its statement, when one is kept (Prepare), else parsed.
func (s *Stmts) ExecTx(ctx context.Context, tx *sql.Tx, text string, args ...any) (sql.Result, error) {
	if v, ok := s.m.Load(text); ok {
		return tx.StmtContext(ctx, v.(*sql.Stmt)).ExecContext(ctx, args...)
	}
	return tx.ExecContext(ctx, text, args...)
}

// stmt is text's statement, prepared at its first use; nil where statements are not kept,
// or when preparing failed: the query then runs unprepared and reports its own error.
func (s *Stmts) stmt(ctx context.Context, text string) *sql.Stmt {
	if !s.on {
		return nil
	}
	if v, ok := s.m.Load(text); ok {
		return v.(*sql.Stmt)
	}
	st, _ := s.prepare(ctx, text)
	return st
}

// prepare prepares text and keeps it; when another caller kept it first, that statement is
// the one returned.
func (s *Stmts) prepare(ctx context.Context, text string) (*sql.Stmt, error) {
	st, err := s.db.PrepareContext(ctx, text)
	if err != nil {
		return nil, err
	}
	if v, loaded := s.m.LoadOrStore(text, st); loaded {
		_ = st.Close()
		return v.(*sql.Stmt), nil
	}
	return st, nil
}

// Close closes the statements kept; the database stays open.
func (s *Stmts) Close() error {
	var errs []error
	s.m.Range(func(k, v any) bool {
		errs = append(errs, v.(*sql.Stmt).Close())
		s.m.Delete(k)
		return true
	})
	return errors.Join(errs...)
}
