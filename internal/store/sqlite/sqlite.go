// Package sqlite is the embedded store driver: one SQLite file under the data directory,
// through the pure-Go modernc.org/sqlite.
//
// # Why "database is locked" cannot happen
//
// SQLite allows one writer at a time. A pool of connections that all write would collide
// and, once busy_timeout runs out, fail with SQLITE_BUSY ("database is locked"). This driver
// opens two pools on the file: a writer with exactly one connection, whose transactions
// start with BEGIN IMMEDIATE, and a pool of query-only readers. Writers in this process wait
// for the one connection in Go (honouring their context), never inside SQLite; in WAL mode
// readers never wait for the writer. busy_timeout remains as the guard against another
// process writing the same file.
//
// The store's methods are the shared implementation (internal/store/sqlstore) over the two
// pools; this package keeps only how the file is opened and its migrations' DDL.
//
// Importing the package registers the driver as "sqlite" with store.Open.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/open-autoglm/autoglm/internal/config"
	"github.com/open-autoglm/autoglm/internal/store"
	"github.com/open-autoglm/autoglm/internal/store/sqldb"
	"github.com/open-autoglm/autoglm/internal/store/sqlstore"
)

func init() {
	store.Register("sqlite", func(ctx context.Context, cfg config.Store, dataDir string) (store.Store, error) {
		path := cfg.Path
		if path == "" {
			path = config.DefaultStorePath
		}
		if !filepath.IsAbs(path) {
			path = filepath.Join(dataDir, path)
		}
		return Open(ctx, path, Options{ReadConns: cfg.ReadConns})
	})
}

// Options tunes Open.
type Options struct {
	// ReadConns is the size of the reader pool. Default config.DefaultStoreReadConns.
	ReadConns int
	// BusyTimeout is how long a connection waits for a lock held by another process.
	// Default 10s.
	BusyTimeout time.Duration
}

// Store is the SQLite store. Its methods implement store.Store: all but Close are the
// shared implementation (sqlstore), over the two pools.
type Store struct {
	*sqlstore.Store
	w *sql.DB // exactly one connection: every write goes through it
	r *sql.DB // query-only readers
}

var _ store.Store = (*Store)(nil)

// Open opens (creating if needed) the database file at path, switches it to WAL and applies
// pending migrations.
func Open(ctx context.Context, path string, o Options) (*Store, error) {
	// The driver reads options after '?' and treats "file:" names as URIs.
	if strings.ContainsAny(path, "?#") || strings.HasPrefix(path, "file:") || path == ":memory:" || path == "" {
		return nil, fmt.Errorf("sqlite: %q is not a plain file path", path)
	}
	if o.ReadConns <= 0 {
		o.ReadConns = config.DefaultStoreReadConns
	}
	if o.BusyTimeout <= 0 {
		o.BusyTimeout = 10 * time.Second
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("sqlite: %w", err)
		}
	}
	// Key hashes and user details live in the file: create it readable by the owner only.
	// SQLite gives the -wal and -shm files the database file's permissions.
	if f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600); err == nil {
		_ = f.Close()
	} else if !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	common := url.Values{}
	common.Set("_busy_timeout", fmt.Sprint(o.BusyTimeout.Milliseconds()))
	common.Set("_foreign_keys", "1")
	// FULL syncs the WAL at every commit, so a committed revocation survives a power cut.
	// The request path never waits for a commit (it goes through a Batcher), and batching
	// makes the sync cost per record small.
	common.Set("_synchronous", "FULL")

	wq := url.Values{}
	for k, v := range common {
		wq[k] = v
	}
	wq.Set("_txlock", "immediate")
	w, err := sql.Open("sqlite", path+"?"+wq.Encode())
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	// The writer switches the file to WAL (a lasting property of the file) before any reader
	// opens it. Switching needs an exclusive lock and SQLite answers SQLITE_BUSY at once,
	// without waiting, when another process (or a store opening the same file at the same
	// moment) holds one, so setup is retried for as long as busy_timeout.
	deadline := time.Now().Add(o.BusyTimeout)
	for delay := 5 * time.Millisecond; ; delay = min(2*delay, 200*time.Millisecond) {
		err = setup(ctx, w)
		if err == nil {
			break
		}
		if !isBusy(err) || time.Now().After(deadline) {
			_ = w.Close()
			return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
		}
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			_ = w.Close()
			return nil, fmt.Errorf("sqlite: open %s: %w", path, ctx.Err())
		}
	}

	rq := common
	rq.Set("_query_only", "1")
	r, err := sql.Open("sqlite", path+"?"+rq.Encode())
	if err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	r.SetMaxOpenConns(o.ReadConns)
	r.SetMaxIdleConns(o.ReadConns)
	if err := r.PingContext(ctx); err != nil {
		_ = w.Close()
		_ = r.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	st := &Store{w: w, r: r}
	st.Store = sqlstore.New(st.SQLDB())
	return st, nil
}

func setup(ctx context.Context, w *sql.DB) error {
	var mode string
	if err := w.QueryRowContext(ctx, "PRAGMA journal_mode = WAL").Scan(&mode); err != nil {
		return err
	}
	if mode != "wal" {
		return fmt.Errorf("journal_mode is %q, not wal", mode)
	}
	return migrate(ctx, w)
}

func isBusy(err error) bool { return sqldb.Classify(err) == sqldb.Unavailable }

var _ sqldb.Source = (*Store)(nil)

// SQLDB implements sqldb.Source: W is the single writer connection (its transactions are
// IMMEDIATE), R the query-only readers, and there is no Listener.
func (s *Store) SQLDB() sqldb.DB { return sqldb.DB{W: s.w, R: s.r, Dialect: dialect} }

// WriteDB is the single writer connection's pool. Transactions begun on it are IMMEDIATE.
// Do not change its pool limits.
func (s *Store) WriteDB() *sql.DB { return s.w }

// ReadDB is the query-only reader pool.
func (s *Store) ReadDB() *sql.DB { return s.r }

// Close releases the prepared statements and closes both pools.
func (s *Store) Close() error {
	return errors.Join(s.Store.Close(), s.r.Close(), s.w.Close())
}

// dialect is the store's SQL dialect: placeholders, stored times and error classes.
var dialect = sqldb.SQLite
