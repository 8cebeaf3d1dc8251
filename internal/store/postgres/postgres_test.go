package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/open-autoglm/autoglm/internal/config"
	"github.com/open-autoglm/autoglm/internal/store"
	"github.com/open-autoglm/autoglm/internal/store/postgres"
	"github.com/open-autoglm/autoglm/internal/store/storetest"
	"github.com/open-autoglm/autoglm/internal/testenv"
)

// newDB gives each test its own schema in the test database, dropped at the end, and a DSN
// whose search_path selects it.
func newDB(tb testing.TB) func(testing.TB) store.Store {
	return newDBWith(tb, nil)
}

// newDBWith is newDB with extra DSN parameters.
func newDBWith(tb testing.TB, params map[string]string) func(testing.TB) store.Store {
	dsn := schemaDSN(tb)
	if len(params) > 0 {
		u, err := url.Parse(dsn)
		if err != nil {
			tb.Fatal(err)
		}
		q := u.Query()
		for k, v := range params {
			q.Set(k, v)
		}
		u.RawQuery = q.Encode()
		dsn = u.String()
	}
	return func(tb testing.TB) store.Store {
		s, err := postgres.Open(context.Background(), dsn)
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { _ = s.Close() })
		return s
	}
}

func schemaDSN(tb testing.TB) string {
	base := testenv.PostgresDSN(tb)
	ctx := context.Background()
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "storetest_" + hex.EncodeToString(b[:])
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			tb.Error(err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			tb.Error(err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		tb.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	q.Set("pool_max_conns", "20")
	u.RawQuery = q.Encode()
	return u.String()
}

func TestConformance(t *testing.T) { storetest.Run(t, newDB) }

// TestConformanceExecMode runs the suite without prepared statements, as behind a pooler
// that cannot keep them (the package doc recommends this mode there).
func TestConformanceExecMode(t *testing.T) {
	storetest.Run(t, func(tb testing.TB) func(testing.TB) store.Store {
		return newDBWith(tb, map[string]string{"default_query_exec_mode": "exec"})
	})
}

func TestOpenFromConfig(t *testing.T) {
	ctx := context.Background()
	dsn := schemaDSN(t)
	s, err := store.Open(ctx, config.Store{Driver: "postgres", DSN: dsn}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ps, ok := s.(*postgres.Store)
	if !ok {
		t.Fatalf("store.Open returned %T", s)
	}
	if got := ps.Pool().Config().MaxConns; got != 20 {
		t.Errorf("pool_max_conns from the DSN not applied: %d", got)
	}
	var version int
	if err := ps.Pool().QueryRow(ctx, "SELECT MAX(version) FROM schema_migrations").Scan(&version); err != nil || version < 1 {
		t.Errorf("schema version %d, %v", version, err)
	}
	if _, err := store.Open(ctx, config.Store{Driver: "postgres", DSN: "postgres://127.0.0.1:1/x?connect_timeout=1"}, ""); err == nil {
		t.Error("opening an unreachable database succeeded")
	}
}

func TestAuditAppendOnly(t *testing.T) {
	ctx := context.Background()
	s := newDB(t)(t).(*postgres.Store)
	if err := s.Append(ctx, "", nil, []store.AuditRecord{{Time: time.Now(), Actor: "a", Action: "x", Result: "ok"}}); err != nil {
		t.Fatal(err)
	}
	_, err := s.Pool().Exec(ctx, "UPDATE audit_records SET result = 'forged'")
	if err == nil || !strings.Contains(err.Error(), "append-only") {
		t.Errorf("UPDATE of an audit record: %v, want refusal", err)
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	ctx := context.Background()
	dsn := schemaDSN(t)
	s, err := postgres.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pool().Exec(ctx, "INSERT INTO schema_migrations (version) VALUES (999)"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err := postgres.Open(ctx, dsn); err == nil || !strings.Contains(err.Error(), "newer") {
		if s != nil {
			s.Close()
		}
		t.Errorf("opening a database from a newer version: %v, want refusal", err)
	}
}

func BenchmarkStore(b *testing.B) { storetest.Bench(b, newDB) }

// TestRollupBackfill: migration 2 fills the daily rollup from records written before it.
func TestRollupBackfill(t *testing.T) {
	ctx := context.Background()
	dsn := schemaDSN(t)
	s, err := postgres.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	day := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var recs []store.UsageRecord
	for i := range 50 {
		recs = append(recs, store.UsageRecord{Time: day.Add(time.Duration(i) * time.Hour), KeyID: fmt.Sprintf("k%d", i%2),
			UserID: "u", Model: "m", PromptTokens: int64(i), CompletionTokens: 1})
	}
	if err := s.Append(ctx, "", recs, nil); err != nil {
		t.Fatal(err)
	}
	// Back to schema version 1, as a database from before the rollup (and the batch ids).
	if _, err := s.Pool().Exec(ctx, "DROP TABLE usage_daily; DROP TABLE record_batches; DELETE FROM schema_migrations WHERE version >= 2"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = postgres.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, f := range []store.UsageFilter{{}, {KeyID: "k1"}, {KeyID: "k0", From: day.AddDate(0, 0, 1), To: day.AddDate(0, 0, 2)}} {
		got, err := s.UsageTotals(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		var want store.UsageTotals
		for _, r := range recs {
			if (f.KeyID == "" || r.KeyID == f.KeyID) && (f.From.IsZero() || !r.Time.Before(f.From)) && (f.To.IsZero() || r.Time.Before(f.To)) {
				want.Requests++
				want.PromptTokens += r.PromptTokens
				want.CompletionTokens += r.CompletionTokens
			}
		}
		if got != want {
			t.Errorf("totals for %+v after backfill: %+v, want %+v", f, got, want)
		}
	}
}

// TestBatcherStall locks the usage table from another connection.
func TestBatcherStall(t *testing.T) {
	s := newDB(t)(t).(*postgres.Store)
	storetest.BatcherStall(t, s, func(t *testing.T) func() {
		ctx := context.Background()
		tx, err := s.Pool().Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, "LOCK TABLE usage_records IN ACCESS EXCLUSIVE MODE"); err != nil {
			t.Fatal(err)
		}
		return func() { _ = tx.Rollback(ctx) }
	})
}
