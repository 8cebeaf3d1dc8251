package sqlite_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
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
	for _, name := range []string{"autoglm.db", "autoglm.db-wal"} {
		if fi, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Error(err)
		} else if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", name, fi.Mode().Perm())
		}
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
	for _, bad := range []string{"", ":memory:", "file:x.db", filepath.Join(dir, "x.db?mode=ro")} {
		if s, err := sqlite.Open(ctx, bad, sqlite.Options{}); err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded", bad)
		}
	}
	if _, err := store.Open(ctx, config.Store{Driver: "nope"}, dir); err == nil || !strings.Contains(err.Error(), "not linked") {
		t.Errorf("unknown driver: %v", err)
	}
}

func TestAuditAppendOnly(t *testing.T) {
	ctx := context.Background()
	s := newDB(t)(t).(*sqlite.Store)
	if err := s.Append(ctx, "", nil, []store.AuditRecord{{Time: time.Now(), Actor: "a", Action: "x", Result: "ok"}}); err != nil {
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

// TestNoDatabaseLocked: 50 clients read and write at once through one store while a second
// store on the same file (another process, as far as SQLite can tell) writes too and
// retention deletes run: not one call may fail, "database is locked" least of all.
func TestNoDatabaseLocked(t *testing.T) {
	ctx := context.Background()
	open := newDB(t)
	s, other := open(t), open(t)
	b := store.NewBatcher(s, store.BatcherOptions{Size: 64, Interval: 2 * time.Millisecond})
	var errs atomic.Int64
	var first sync.Once
	check := func(err error) {
		if err != nil {
			errs.Add(1)
			first.Do(func() { t.Errorf("call failed: %v", err) })
		}
	}
	stop := make(chan struct{})
	var bg sync.WaitGroup
	bg.Go(func() { // the other writer, at a modest pace: SQLite's busy handler sleeps coarsely
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			check(other.Append(ctx, "", []store.UsageRecord{{Time: time.Now(), KeyID: "other", Model: "m"}}, nil))
			if i%10 == 0 {
				_, err := other.DeleteAuditBefore(ctx, time.Now().Add(-time.Hour))
				check(err)
			}
		}
	})
	// Few rounds: the race detector makes the transpiled SQLite about ten times slower.
	const clients, rounds = 50, 5
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			u, err := s.CreateUser(ctx, store.User{Name: fmt.Sprintf("client%d", c), Role: "user"})
			check(err)
			for i := range rounds {
				id := fmt.Sprintf("c%d-%d", c, i)
				h := sha256.Sum256([]byte(id))
				_, err := s.CreateKey(ctx, store.Key{ID: id, Hash: h[:], UserID: u.ID, Role: "user"})
				check(err)
				b.Usage(store.UsageRecord{KeyID: id, UserID: u.ID, Model: "m", PromptTokens: 1})
				b.Audit(store.AuditRecord{Actor: u.ID, Action: "key.create", Target: id, Result: "ok"})
				_, err = s.KeyByHash(ctx, h[:])
				check(err)
				_, _, err = s.KeysChangedSince(ctx, time.Now().Add(-time.Second))
				check(err)
				_, err = s.ListAudit(ctx, store.AuditQuery{Actor: u.ID, ListParams: store.ListParams{Limit: 5}})
				check(err)
				if i%5 == 0 {
					_, err = s.RevokeKey(ctx, id)
					check(err)
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	bg.Wait()
	check(b.Close(ctx))
	if n := errs.Load(); n != 0 {
		t.Fatalf("%d calls failed", n)
	}
	if st := b.Stats(); st.Written != clients*rounds*2 || st.Failed != 0 || st.Dropped != 0 {
		t.Errorf("batcher: %+v", st)
	}
	tot, err := s.UsageTotals(ctx, store.UsageFilter{UserID: ""})
	if err != nil || tot.PromptTokens != clients*rounds {
		t.Errorf("totals %+v, %v", tot, err)
	}
}

// TestRollupBackfill: migration 2 fills the daily rollup from records written before it.
func TestRollupBackfill(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "autoglm.db")
	s, err := sqlite.Open(ctx, path, sqlite.Options{})
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
	if _, err := s.WriteDB().ExecContext(ctx, "DROP TABLE usage_daily; DROP TABLE record_batches; DELETE FROM schema_migrations WHERE version >= 2"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = sqlite.Open(ctx, path, sqlite.Options{})
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

// TestBatcherStall holds the one writer connection in a transaction, as a long task-queue
// transaction would.
func TestBatcherStall(t *testing.T) {
	s := newDB(t)(t).(*sqlite.Store)
	storetest.BatcherStall(t, s, func(t *testing.T) func() {
		tx, err := s.WriteDB().BeginTx(context.Background(), nil)
		if err != nil {
			t.Fatal(err)
		}
		return func() { _ = tx.Rollback() }
	})
}
