package sqlschema_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/open-autoglm/autoglm/internal/store/sqldb"
	"github.com/open-autoglm/autoglm/internal/store/sqlschema"
)

func TestMigrate(t *testing.T) {
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "m.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	s := sqlschema.Schema{Name: "thing", Table: "thing_schema", Migrations: []string{
		`CREATE TABLE things (id TEXT PRIMARY KEY); CREATE INDEX things_id ON things (id)`,
	}}
	if err := sqlschema.Migrate(ctx, db, sqldb.SQLite, s); err != nil {
		t.Fatal(err)
	}
	s.Migrations = append(s.Migrations, `ALTER TABLE things ADD COLUMN n BIGINT NOT NULL DEFAULT 0`)
	for range 2 { // the second run finds nothing to do
		if err := sqlschema.Migrate(ctx, db, sqldb.SQLite, s); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec(`INSERT INTO things (id, n) VALUES ('a', 1)`); err != nil {
		t.Fatalf("migration 2 not applied: %v", err)
	}
	var versions int
	if err := db.QueryRow(`SELECT COUNT(*) FROM thing_schema`).Scan(&versions); err != nil || versions != 2 {
		t.Fatalf("%d versions recorded (%v), want 2", versions, err)
	}
	s.Migrations = s.Migrations[:1]
	if err := sqlschema.Migrate(ctx, db, sqldb.SQLite, s); err == nil || !strings.Contains(err.Error(), "newer than this binary") {
		t.Errorf("older binary: %v", err)
	}
	bad := sqlschema.Schema{Name: "bad", Table: "bad_schema", Migrations: []string{`CREATE TABLE ok (id TEXT); CREATE TABLE ok (id TEXT)`}}
	if err := sqlschema.Migrate(ctx, db, sqldb.SQLite, bad); err == nil {
		t.Error("a failing migration was accepted")
	}
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM sqlite_master WHERE name = 'ok'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("a failed migration left table ok behind (%d, %v)", n, err)
	}
}
