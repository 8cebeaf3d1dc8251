package task

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/open-autoglm/autoglm/internal/store/sqlite"
	"github.com/open-autoglm/autoglm/internal/testenv"
)

// TestTransitions checks each named state change against the state it must leave, on both
// databases: a change from the wrong state, or by a process that does not hold the lease,
// changes nothing and says so.
func TestTransitions(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "t.db"), sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		db, err := DBFor(st)
		if err != nil {
			t.Fatal(err)
		}
		testTransitions(t, db)
	})
	t.Run("postgres", func(t *testing.T) {
		testenv.PostgresDSN(t)
		testTransitions(t, pgDB(t, pgSchemaDSN(t)))
	})
}

func testTransitions(t *testing.T, db DB) {
	ctx := context.Background()
	if err := db.migrate(ctx); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UnixMicro()
	if _, err := db.W.ExecContext(ctx, db.q(`INSERT INTO tasks (id, kind, model, owner, req_hash, spec, status, priority,
		est_tokens, max_attempts, run_after, created_at, updated_at) VALUES ('t1', 'code', 'm', 'o', 'h', '{}', 'queued', 0, 1, 3, ?, ?, ?)`),
		now, now, now); err != nil {
		t.Fatal(err)
	}
	tx := func(fn func(*sql.Tx) error) {
		t.Helper()
		if err := db.inTx(ctx, fn); err != nil {
			t.Fatal(err)
		}
	}
	status := func(want Status) {
		t.Helper()
		var got string
		if err := db.R.QueryRowContext(ctx, db.q(`SELECT status FROM tasks WHERE id = ?`), "t1").Scan(&got); err != nil {
			t.Fatal(err)
		}
		if Status(got) != want {
			t.Fatalf("status %s, want %s", got, want)
		}
	}
	var lastSeq int64
	seqAdvanced := func(seq int64) {
		t.Helper()
		if seq != lastSeq+1 {
			t.Errorf("event number %d, want %d", seq, lastSeq+1)
		}
		lastSeq = seq
	}

	// A running task cannot be released or finished before anyone claims it.
	tx(func(tx *sql.Tx) error {
		if _, ok, err := db.release(ctx, tx, "t1", "a", now, 0, now); ok || err != nil {
			t.Errorf("release of a queued task: ok=%v err=%v", ok, err)
		}
		if _, ok, err := db.finish(ctx, tx, finishParams{id: "t1", from: StatusRunning, owner: "a", to: StatusSucceeded, now: now}); ok || err != nil {
			t.Errorf("finish of a queued task as running: ok=%v err=%v", ok, err)
		}
		return nil
	})
	// Claimed once: a second claim finds nothing.
	tx(func(tx *sql.Tx) error {
		r, ok, err := db.claim(ctx, tx, "t1", "a", now+1e6, now)
		if !ok || err != nil {
			t.Fatalf("claim: ok=%v err=%v", ok, err)
		}
		if r.attempt != 1 || r.maxAttempts != 3 || r.spec != "{}" {
			t.Errorf("claimed %+v", r)
		}
		seqAdvanced(r.seq)
		if _, ok, err := db.claim(ctx, tx, "t1", "b", now+1e6, now); ok || err != nil {
			t.Errorf("second claim: ok=%v err=%v", ok, err)
		}
		return nil
	})
	status(StatusRunning)
	// Only the holder renews, records progress, or releases.
	if _, ok, err := db.renewLease(ctx, db.W, "t1", "b", now+2e6); ok || err != nil {
		t.Errorf("renewal by another process: ok=%v err=%v", ok, err)
	}
	if cancel, ok, err := db.renewLease(ctx, db.W, "t1", "a", now+2e6); !ok || cancel || err != nil {
		t.Errorf("renewal by the holder: ok=%v cancel=%v err=%v", ok, cancel, err)
	}
	if err := db.requestCancel(ctx, db.W, "t1", now); err != nil {
		t.Fatal(err)
	}
	tx(func(tx *sql.Tx) error {
		if _, _, ok, err := db.recordProgress(ctx, tx, "t1", "b", 5, now+2e6, now); ok || err != nil {
			t.Errorf("progress by another process: ok=%v err=%v", ok, err)
		}
		seq, cancel, ok, err := db.recordProgress(ctx, tx, "t1", "a", 5, now+2e6, now)
		if !ok || !cancel || err != nil {
			t.Errorf("progress by the holder after a cancel request: ok=%v cancel=%v err=%v", ok, cancel, err)
		}
		seqAdvanced(seq)
		if _, ok, err := db.release(ctx, tx, "t1", "b", now, 0, now); ok || err != nil {
			t.Errorf("release by another process: ok=%v err=%v", ok, err)
		}
		seq, ok, err = db.release(ctx, tx, "t1", "a", now, 1, now)
		if !ok || err != nil {
			t.Fatalf("release by the holder: ok=%v err=%v", ok, err)
		}
		seqAdvanced(seq)
		return nil
	})
	status(StatusQueued)
	if _, ok, err := db.renewLease(ctx, db.W, "t1", "a", now+2e6); ok || err != nil {
		t.Errorf("renewal after release: ok=%v err=%v", ok, err)
	}
	// The refunded attempt is counted again by the next claim; finishing happens once.
	tx(func(tx *sql.Tx) error {
		r, ok, err := db.claim(ctx, tx, "t1", "b", now+1e6, now)
		if !ok || err != nil || r.attempt != 1 {
			t.Fatalf("claim after a refunded release: %+v ok=%v err=%v", r, ok, err)
		}
		seqAdvanced(r.seq)
		if _, _, err := db.finish(ctx, tx, finishParams{id: "t1", from: StatusRunning, to: StatusSucceeded, now: now}); err == nil {
			t.Error("finish of a running task without its lease owner was accepted")
		}
		seq, ok, err := db.finish(ctx, tx, finishParams{id: "t1", from: StatusRunning, owner: "b", to: StatusSucceeded, result: `{}`, now: now})
		if !ok || err != nil {
			t.Fatalf("finish: ok=%v err=%v", ok, err)
		}
		seqAdvanced(seq)
		for _, from := range []Status{StatusQueued, StatusRunning} {
			if _, ok, err := db.finish(ctx, tx, finishParams{id: "t1", from: from, owner: "b", to: StatusFailed, now: now}); ok || err != nil {
				t.Errorf("second finish from %s: ok=%v err=%v", from, ok, err)
			}
		}
		return nil
	})
	status(StatusSucceeded)
}
