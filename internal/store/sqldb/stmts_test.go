package sqldb

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	_ "modernc.org/sqlite"
)

// openSQLite opens a SQLite file of the test's own, closed when it ends.
func openSQLite(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "test.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func kept(s *Stmts) int {
	n := 0
	s.m.Range(func(any, any) bool { n++; return true })
	return n
}

// TestStmts: on SQLite a repeated query runs as one statement prepared at its first use,
// with each call's own arguments; a text that does not parse reports its error from the
// query; Close lets the statements go and later queries prepare again; a statement prepared
// ahead runs inside a transaction. On PostgreSQL nothing is kept.
func TestStmts(t *testing.T) {
	db := openSQLite(t)
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, `CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER); INSERT INTO t VALUES ('a', 1), ('b', 2), ('c', 3)`); err != nil {
		t.Fatal(err)
	}
	s := NewStmts(db, SQLite)
	for _, tc := range []struct {
		k    string
		want int
	}{{"a", 1}, {"c", 3}, {"b", 2}} {
		var v int
		if err := s.QueryRowContext(ctx, `SELECT v FROM t WHERE k = ?`, tc.k).Scan(&v); err != nil || v != tc.want {
			t.Errorf("k %s: %d, %v; want %d", tc.k, v, err, tc.want)
		}
	}
	rows, err := s.QueryContext(ctx, `SELECT k FROM t WHERE v >= ? ORDER BY k`, 2)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			t.Fatal(err)
		}
		got = append(got, k)
	}
	rows.Close()
	if len(got) != 2 || got[0] != "b" || got[1] != "c" {
		t.Errorf("rows %q, want [b c]", got)
	}
	if n := kept(s); n != 2 {
		t.Errorf("%d statements kept, want 2 (one per text)", n)
	}
	if err := s.QueryRowContext(ctx, `SELEC v FROM t`).Scan(new(int)); err == nil {
		t.Error("a text that does not parse ran")
	}
	if n := kept(s); n != 2 {
		t.Errorf("%d statements kept after a failed one, want 2", n)
	}
	if err := s.Close(); err != nil || kept(s) != 0 {
		t.Errorf("Close: %v, %d left", err, kept(s))
	}
	var v int
	if err := s.QueryRowContext(ctx, `SELECT v FROM t WHERE k = ?`, "b").Scan(&v); err != nil || v != 2 {
		t.Errorf("after Close: %d, %v", v, err)
	}

	// Prepare ahead, then run in a transaction as that statement; a text not prepared runs
	// parsed; a text that does not parse is refused by Prepare.
	w := NewStmts(db, SQLite)
	ins := `INSERT INTO t VALUES (?, ?)`
	if err := w.Prepare(ctx, ins); err != nil || kept(w) != 1 {
		t.Fatalf("Prepare: %v, %d kept", err, kept(w))
	}
	if err := w.Prepare(ctx, `INSER INTO t`); err == nil || kept(w) != 1 {
		t.Errorf("Prepare of a bad text: %v, %d kept", err, kept(w))
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.ExecTx(ctx, tx, ins, "d", 4); err != nil {
		t.Fatal(err)
	}
	if _, err := w.ExecTx(ctx, tx, `UPDATE t SET v = ? WHERE k = ?`, 5, "d"); err != nil || kept(w) != 1 {
		t.Fatalf("ExecTx of a text not prepared: %v, %d kept", err, kept(w))
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := s.QueryRowContext(ctx, `SELECT v FROM t WHERE k = ?`, "d").Scan(&v); err != nil || v != 5 {
		t.Errorf("after the transaction: %d, %v", v, err)
	}
	if err := w.Close(); err != nil {
		t.Error(err)
	}

	pg := NewStmts(db, Postgres) // the text goes through unprepared (run here on SQLite)
	if err := pg.QueryRowContext(ctx, `SELECT v FROM t WHERE k = ?`, "c").Scan(&v); err != nil || v != 3 || kept(pg) != 0 {
		t.Errorf("postgres dialect: %d, %v, %d kept", v, err, kept(pg))
	}
}
