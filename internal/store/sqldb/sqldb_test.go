package sqldb_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/open-autoglm/autoglm/internal/store"
	"github.com/open-autoglm/autoglm/internal/store/sqldb"
)

func TestRebind(t *testing.T) {
	q := `SELECT a FROM t WHERE b = ? AND c IN (?, ?)`
	if got := sqldb.SQLite.Rebind(q); got != q {
		t.Errorf("sqlite changed the query: %q", got)
	}
	if got, want := sqldb.Postgres.Rebind(q), `SELECT a FROM t WHERE b = $1 AND c IN ($2, $3)`; got != want {
		t.Errorf("postgres: got %q, want %q", got, want)
	}
}

func TestWhere(t *testing.T) {
	from := time.Date(2026, 1, 2, 3, 4, 5, 6789, time.UTC)
	cursor := store.Cursor{Time: from, ID: "k9"}.String()
	for _, tc := range []struct {
		d        sqldb.Dialect
		wantSQL  string
		wantArgs []any
	}{
		{sqldb.SQLite,
			`SELECT x FROM t WHERE a = ? AND time >= ? AND (created_at < ? OR (created_at = ? AND id < ?)) ORDER BY id LIMIT ?`,
			[]any{"va", from.UnixMicro(), from.UnixMicro(), from.UnixMicro(), "k9", 11}},
		{sqldb.Postgres,
			`SELECT x FROM t WHERE a = $1 AND time >= $2 AND (created_at, id) < ($3, $4) ORDER BY id LIMIT $5`,
			[]any{"va", store.Micro(from), store.Micro(from), "k9", 11}},
	} {
		t.Run(tc.d.Name(), func(t *testing.T) {
			w := tc.d.Where()
			w.Eq("a", "va")
			w.Eq("b", "") // empty: no condition
			w.Period("time", from, time.Time{})
			if err := w.After(cursor, "created_at", "id"); err != nil {
				t.Fatal(err)
			}
			q, args := w.SQL(`SELECT x FROM t`, ` ORDER BY id LIMIT ?`, 11)
			if q != tc.wantSQL {
				t.Errorf("sql:\n got %s\nwant %s", q, tc.wantSQL)
			}
			if diff := cmp.Diff(tc.wantArgs, args); diff != "" {
				t.Errorf("args (-want +got):\n%s", diff)
			}
			if err := w.After("bm90IGEgY3Vyc29y", "created_at", "id"); !errors.Is(err, store.ErrInvalid) {
				t.Errorf("malformed cursor: %v, want ErrInvalid", err)
			}
			if err := w.AfterSeq(cursor); !errors.Is(err, store.ErrInvalid) {
				t.Errorf("a (time, id) cursor given to a record listing: %v, want ErrInvalid", err)
			}
		})
	}
}

func TestPageOf(t *testing.T) {
	at := func(n int) store.Cursor { return store.Cursor{Seq: int64(n)} }
	p := sqldb.PageOf([]int{9, 8, 7}, 2, at)
	if diff := cmp.Diff(store.Page[int]{Items: []int{9, 8}, Next: at(8).String()}, p); diff != "" {
		t.Errorf("full page (-want +got):\n%s", diff)
	}
	p = sqldb.PageOf([]int{9, 8}, 2, at)
	if p.Next != "" || len(p.Items) != 2 {
		t.Errorf("last page: %+v", p)
	}
}

func TestClassifySQLite(t *testing.T) {
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "c.db")+"?_foreign_keys=1")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	for _, q := range []string{
		`CREATE TABLE p (id TEXT PRIMARY KEY, name TEXT UNIQUE)`,
		`CREATE TABLE c (id TEXT PRIMARY KEY, p TEXT REFERENCES p (id))`,
		`INSERT INTO p VALUES ('a', 'x')`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	_, dupKey := db.ExecContext(ctx, `INSERT INTO p VALUES ('a', 'y')`)
	_, dupName := db.ExecContext(ctx, `INSERT INTO p VALUES ('b', 'x')`)
	_, badRef := db.ExecContext(ctx, `INSERT INTO c VALUES ('c', 'nobody')`)
	noRow := db.QueryRowContext(ctx, `SELECT id FROM p WHERE id = 'zz'`).Scan(new(string))
	_, syntax := db.ExecContext(ctx, `SELEC 1`)
	checkClasses(t, sqldb.SQLite, []classCase{
		{"duplicate primary key", dupKey, sqldb.Conflict, store.ErrConflict},
		{"duplicate unique column", dupName, sqldb.Conflict, store.ErrConflict},
		{"unknown reference", badRef, sqldb.UnknownRef, store.ErrInvalid},
		{"no row", noRow, sqldb.NotFound, store.ErrNotFound},
		{"syntax error", syntax, sqldb.Other, nil},
	})
}

func TestClassifyPostgres(t *testing.T) {
	// Errors as pgx returns them; the conformance suite meets the real ones.
	checkClasses(t, sqldb.Postgres, []classCase{
		{"unique_violation", &pgconn.PgError{Code: "23505"}, sqldb.Conflict, store.ErrConflict},
		{"foreign_key_violation", &pgconn.PgError{Code: "23503"}, sqldb.UnknownRef, store.ErrInvalid},
		{"no row", pgx.ErrNoRows, sqldb.NotFound, store.ErrNotFound},
		{"admin_shutdown", &pgconn.PgError{Code: "57P01"}, sqldb.Unavailable, store.ErrUnavailable},
		{"connection_failure", &pgconn.PgError{Code: "08006"}, sqldb.Unavailable, store.ErrUnavailable},
		{"too_many_connections", &pgconn.PgError{Code: "53300"}, sqldb.Unavailable, store.ErrUnavailable},
		{"undefined_table", &pgconn.PgError{Code: "42P01"}, sqldb.Other, nil},
	})
}

type classCase struct {
	name     string
	err      error
	class    sqldb.Class
	sentinel error
}

func checkClasses(t *testing.T, d sqldb.Dialect, cases []classCase) {
	t.Helper()
	sentinels := []error{store.ErrNotFound, store.ErrConflict, store.ErrInvalid, store.ErrUnavailable}
	for _, tc := range cases {
		if tc.err == nil {
			t.Errorf("%s: the database accepted the statement", tc.name)
			continue
		}
		if got := sqldb.Classify(tc.err); got != tc.class {
			t.Errorf("%s: class %d, want %d (%v)", tc.name, got, tc.class, tc.err)
		}
		err := d.Err("op", tc.err)
		for _, s := range sentinels {
			if errors.Is(err, s) != (s == tc.sentinel) {
				t.Errorf("%s: errors.Is(%v, %v) = %v", tc.name, err, s, !(s == tc.sentinel))
			}
		}
		if tc.class != sqldb.NotFound && !errors.Is(err, tc.err) {
			t.Errorf("%s: the driver's error is not reachable from %v", tc.name, err)
		}
	}
	if d.Err("op", nil) != nil {
		t.Error("Err(nil) is not nil")
	}
}
