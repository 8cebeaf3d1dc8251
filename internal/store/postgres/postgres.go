// Package postgres is the store driver for replicas sharing one PostgreSQL database, through
// pgx's connection pool.
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
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/open-autoglm/autoglm/internal/config"
	"github.com/open-autoglm/autoglm/internal/store"
)

func init() {
	store.Register("postgres", func(ctx context.Context, cfg config.Store, _ string) (store.Store, error) {
		return Open(ctx, cfg.DSN)
	})
}

// Store is the PostgreSQL store. Its methods implement store.Store.
type Store struct {
	pool *pgxpool.Pool
}

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
	return &Store{pool: pool}, nil
}

// Pool is the connection pool, for components that keep their own tables in the same
// database (River's pgx driver takes it). Closing the Store closes it.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

var _ store.Sharer = (*Store)(nil)

// Share implements store.Sharer: a database/sql view of the pool (closed by Close) and
// LISTEN on a connection taken out of the pool for good, since one that listens must not
// serve queries for others.
func (s *Store) Share() store.Shared {
	db := stdlib.OpenDBFromPool(s.pool)
	return store.Shared{W: db, R: db, Postgres: true, Listen: s.listen, Close: db.Close}
}

func (s *Store) listen(ctx context.Context, channel string, ready func(), fn func(payload string)) error {
	pc, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	conn := pc.Hijack()
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{channel}.Sanitize()); err != nil {
		return err
	}
	if ready != nil {
		ready()
	}
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		fn(n.Payload)
	}
}

// Ping implements store.Store.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	return nil
}

// Close implements store.Store.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// mapErr turns missing rows and constraint violations into the store's sentinel errors.
func mapErr(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("postgres: %s: %w", op, store.ErrNotFound)
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "23505": // unique_violation
			return fmt.Errorf("postgres: %s: %w (%s)", op, store.ErrConflict, pe.ConstraintName)
		case "23503": // foreign_key_violation
			return fmt.Errorf("postgres: %s: %w: unknown user (%s)", op, store.ErrInvalid, pe.ConstraintName)
		}
	}
	return fmt.Errorf("postgres: %s: %w", op, err)
}

// ts converts a time for a nullable column: the zero time is NULL.
func ts(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = store.Micro(t)
	return &t
}

// fromTS converts a nullable column back; NULL is the zero time.
func fromTS(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

// where builds a WHERE clause of ANDed conditions with $n placeholders.
type where struct {
	conds []string
	args  []any
}

// add appends cond, whose placeholders are written "?" and numbered here.
func (w *where) add(cond string, args ...any) {
	var b strings.Builder
	n := len(w.args)
	for _, r := range cond {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	w.conds = append(w.conds, b.String())
	w.args = append(w.args, args...)
}

func (w *where) eq(col, v string) {
	if v != "" {
		w.add(col+" = ?", v)
	}
}

func (w *where) period(col string, from, to time.Time) {
	if !from.IsZero() {
		w.add(col+" >= ?", store.Micro(from))
	}
	if !to.IsZero() {
		w.add(col+" < ?", store.Micro(to))
	}
}

// after continues a (time DESC, id DESC) listing after cursor.
func (w *where) after(cursor, timeCol, idCol string) error {
	if cursor == "" {
		return nil
	}
	c, err := store.ParseCursor(cursor)
	if err != nil || c.Time.IsZero() {
		return fmt.Errorf("postgres: %w: malformed cursor", store.ErrInvalid)
	}
	w.add("("+timeCol+", "+idCol+") < (?, ?)", c.Time, c.ID)
	return nil
}

// afterSeq continues an id DESC listing after cursor.
func (w *where) afterSeq(cursor string) error {
	if cursor == "" {
		return nil
	}
	c, err := store.ParseCursor(cursor)
	if err != nil || !c.Time.IsZero() || c.ID != "" {
		return fmt.Errorf("postgres: %w: malformed cursor", store.ErrInvalid)
	}
	w.add("id < ?", c.Seq)
	return nil
}

func (w *where) String() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}

// limit returns the placeholder for a LIMIT argument appended after the conditions'.
func (w *where) limit(n int) string {
	w.args = append(w.args, n)
	return " LIMIT $" + strconv.Itoa(len(w.args))
}
