package sqlite_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/open-autoglm/autoglm/internal/config"
	"github.com/open-autoglm/autoglm/internal/store"
	"github.com/open-autoglm/autoglm/internal/store/sqlite"
	"github.com/open-autoglm/autoglm/internal/store/storetest"
)

// newDB gives each test its own database file.
func newDB(tb testing.TB) func(testing.TB) store.Store {
	path := filepath.Join(tb.TempDir(), "data", "autoglm.db")
	return func(tb testing.TB) store.Store {
		s, err := sqlite.Open(context.Background(), path, sqlite.Options{})
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { _ = s.Close() })
		return s
	}
}

func TestConformance(t *testing.T) { storetest.Run(t, newDB) }

func TestOpenFromConfig(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cfg := config.Store{Driver: "sqlite", ReadConns: 2}
	s, err := store.Open(ctx, cfg, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ss, ok := s.(*sqlite.Store)
	if !ok {
		t.Fatalf("store.Open returned %T", s)
	}
	if ss.ReadDB().Stats().MaxOpenConnections != 2 || ss.WriteDB().Stats().MaxOpenConnections != 1 {
		t.Errorf("pools: %d readers, %d writers", ss.ReadDB().Stats().MaxOpenConnections, ss.WriteDB().Stats().MaxOpenConnections)
	}
	var mode string
	if err := ss.WriteDB().QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q, %v; want wal", mode, err)
	}
	if _, err := filepath.Glob(filepath.Join(dir, "autoglm.db")); err != nil {
		t.Error(err)
	}
	var version int
	if err := ss.ReadDB().QueryRowContext(ctx, "SELECT MAX(version) FROM schema_migrations").Scan(&version); err != nil || version < 1 {
		t.Errorf("schema version %d, %v", version, err)
	}
	// Readers cannot write.
	if _, err := ss.ReadDB().ExecContext(ctx, "DELETE FROM users"); err == nil {
		t.Error("a reader connection could write")
	}
	// An absolute path is used as is.
	abs := filepath.Join(t.TempDir(), "elsewhere.db")
	s2, err := store.Open(ctx, config.Store{Driver: "sqlite", Path: abs}, dir)
	if err != nil {
		t.Fatal(err)
	}
	s2.Close()
	if m, _ := filepath.Glob(abs); len(m) != 1 {
		t.Errorf("absolute path not used")
	}
	if _, err := store.Open(ctx, config.Store{Driver: "nope"}, dir); err == nil || !strings.Contains(err.Error(), "not linked") {
		t.Errorf("unknown driver: %v", err)
	}
}

func TestAuditAppendOnly(t *testing.T) {
	ctx := context.Background()
	s := newDB(t)(t).(*sqlite.Store)
	if err := s.Append(ctx, nil, []store.AuditRecord{{Time: time.Now(), Actor: "a", Action: "x", Result: "ok"}}); err != nil {
		t.Fatal(err)
	}
	_, err := s.WriteDB().ExecContext(ctx, "UPDATE audit_records SET result = 'forged'")
	if err == nil || !strings.Contains(err.Error(), "append-only") {
		t.Errorf("UPDATE of an audit record: %v, want refusal", err)
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "autoglm.db")
	s, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.WriteDB().ExecContext(ctx, "INSERT INTO schema_migrations VALUES (999, 0)"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err := sqlite.Open(ctx, path, sqlite.Options{}); err == nil || !strings.Contains(err.Error(), "newer") {
		if s != nil {
			s.Close()
		}
		t.Errorf("opening a database from a newer version: %v, want refusal", err)
	}
}

func BenchmarkStore(b *testing.B) { storetest.Bench(b, newDB) }
