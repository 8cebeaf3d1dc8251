package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/open-autoglm/autoglm/internal/store"
	"github.com/open-autoglm/autoglm/internal/store/sqldb"
)

// The writes of usage and audit records and of the daily rollup, each one named statement.
// Records are only appended and, by retention, deleted; the rollup row of a (key, user,
// day) is added to by each Append and subtracted from by each deletion, in the same
// transaction as the records it sums, and removed when it reaches zero.
const (
	stmtInsertUsage = `INSERT INTO usage_records (time, key_id, user_id, model, backend, prompt_tokens,
		completion_tokens, latency_us, status, trace_id) VALUES `
	stmtInsertAudit = `INSERT INTO audit_records (time, actor, action, target, client_addr, result, details) VALUES `
	// stmtAddDaily is followed by its VALUES rows and stmtAddDailyConflict.
	stmtAddDaily         = `INSERT INTO usage_daily (key_id, user_id, day, requests, prompt_tokens, completion_tokens) VALUES `
	stmtAddDailyConflict = ` ON CONFLICT (key_id, user_id, day) DO UPDATE SET
		requests = usage_daily.requests + excluded.requests,
		prompt_tokens = usage_daily.prompt_tokens + excluded.prompt_tokens,
		completion_tokens = usage_daily.completion_tokens + excluded.completion_tokens`
	// stmtDropEmptyDays removes the rollup rows a deletion emptied; only days up to the last
	// one touched can have emptied, and the day index finds them.
	stmtDropEmptyDays = `DELETE FROM usage_daily WHERE day <= ? AND requests <= 0`
	// stmtDeleteUsage deletes one chunk of old records and returns what the rollup must lose.
	stmtDeleteUsage = `DELETE FROM usage_records WHERE id IN (SELECT id FROM usage_records WHERE time < ? LIMIT ?)
		RETURNING time, key_id, user_id, prompt_tokens, completion_tokens`
	stmtDeleteAudit = `DELETE FROM audit_records WHERE id IN (SELECT id FROM audit_records WHERE time < ? LIMIT ?)`
	// stmtClaimBatch remembers a batch id in Append's transaction; no row inserted means
	// the batch was applied before.
	stmtClaimBatch = `INSERT INTO record_batches (id, time) VALUES (?, ?) ON CONFLICT (id) DO NOTHING`
	// stmtPruneBatches forgets the batch ids older than store.BatchMemory.
	stmtPruneBatches = `DELETE FROM record_batches WHERE time < ?`
)

// pruneEvery is how often Append prunes the batch ids, at most, per Store.
const pruneEvery = time.Minute

// errApplied ends Append's transaction, rolled back, when its batch id was applied before.
var errApplied = errors.New("batch applied before")

// Column counts of the multi-row inserts.
const (
	usageArgs = 10
	auditArgs = 7
	dailyArgs = 6
)

// deleteChunk is how many records one retention transaction deletes: a large backlog is
// many short transactions, so it neither holds SQLite's one writer for long (the request
// path's batches get in between) nor keeps a long transaction with many row locks and an
// old snapshot on PostgreSQL.
const deleteChunk = 5000

// Append implements store.Store: one transaction; records go in with multi-row INSERTs,
// and the rollup rows they add to are updated with them.
//
// A named batch first claims its id (stmtClaimBatch) in the same transaction, so the id is
// stored if and only if the records are. When the id is there already the batch was applied
// before, by an attempt whose caller saw an error (its deadline expired during COMMIT), and
// Append rolls back and returns nil. On PostgreSQL a retry that overlaps a first attempt
// still running waits on the uncommitted row's lock (the unique index), then sees the
// conflict if the first attempt committed, or claims the id if it rolled back: the two
// attempts are serialised by the claim, before either touches the records. On SQLite the
// one writer connection serialises them anyway.
func (s *Store) Append(ctx context.Context, batch string, usage []store.UsageRecord, audit []store.AuditRecord) error {
	if len(usage) == 0 && len(audit) == 0 {
		return nil
	}
	at := s.now()
	days := store.Daily(usage, at)
	for _, p := range []struct {
		head, tail  string
		ncols, rows int
	}{{stmtInsertUsage, "", usageArgs, len(usage)}, {stmtInsertAudit, "", auditArgs, len(audit)},
		{stmtAddDaily, stmtAddDailyConflict, dailyArgs, len(days)}} {
		if err := s.prepareInserts(ctx, p.head, p.tail, p.ncols, p.rows); err != nil {
			return s.d.Err("append", err)
		}
	}
	claim := s.q(stmtClaimBatch)
	if batch != "" {
		if err := s.prepared.Prepare(ctx, claim); err != nil {
			return s.d.Err("append", err)
		}
	}
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		if batch != "" {
			res, err := s.prepared.ExecTx(ctx, tx, claim, batch, s.d.Time(at))
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil {
				return err
			} else if n == 0 {
				return errApplied
			}
		}
		if err := s.insertUsage(ctx, tx, usage, at); err != nil {
			return err
		}
		if err := s.insertAudit(ctx, tx, audit, at); err != nil {
			return err
		}
		return s.addDaily(ctx, tx, days, 1)
	})
	switch {
	case errors.Is(err, errApplied):
		return nil
	case err != nil:
		return s.d.Err("append", err)
	}
	if batch != "" {
		s.pruneBatchesEvery(ctx, at)
	}
	return nil
}

// pruneBatchesEvery deletes the batch ids older than store.BatchMemory, if this Store last
// did so pruneEvery ago or more: each replica prunes once a minute, and the table holds
// about an hour of batches. It runs after Append's commit as a statement of its own,
// rather than in the retention path (which runs hourly, and not at all when no retention
// is configured) or in Append's transaction (where a lock wait between two replicas'
// prunes, or a deadlock, would delay or fail the batch). A failed prune does not fail the
// Append, whose records are in; the next Append tries again.
func (s *Store) pruneBatchesEvery(ctx context.Context, at time.Time) {
	prev := s.lastPrune.Load()
	now := at.UnixNano()
	if now-prev < int64(pruneEvery) || !s.lastPrune.CompareAndSwap(prev, now) {
		return
	}
	if _, err := s.PruneBatches(ctx, at.Add(-store.BatchMemory)); err != nil {
		s.lastPrune.CompareAndSwap(now, prev)
	}
}

// PruneBatches deletes the batch ids Append remembered before t and returns how many.
// Append calls it itself, at most once a minute, with store.BatchMemory ago.
func (s *Store) PruneBatches(ctx context.Context, t time.Time) (int64, error) {
	res, err := s.db.W.ExecContext(ctx, s.q(stmtPruneBatches), s.d.Time(t))
	if err != nil {
		return 0, s.d.Err("prune batches", err)
	}
	n, err := res.RowsAffected()
	return n, s.d.Err("prune batches", err)
}

// insertUsage inserts usage records; a record without a time gets at.
func (s *Store) insertUsage(ctx context.Context, tx *sql.Tx, usage []store.UsageRecord, at time.Time) error {
	return s.insertRows(ctx, tx, stmtInsertUsage, "", usageArgs, len(usage), func(i int, args []any) []any {
		u := &usage[i]
		return append(args, s.d.Time(recordTime(u.Time, at)), u.KeyID, u.UserID, u.Model, u.Backend,
			u.PromptTokens, u.CompletionTokens, u.Latency.Microseconds(), u.Status, u.TraceID)
	})
}

// insertAudit inserts audit records; a record without a time gets at.
func (s *Store) insertAudit(ctx context.Context, tx *sql.Tx, audit []store.AuditRecord, at time.Time) error {
	return s.insertRows(ctx, tx, stmtInsertAudit, "", auditArgs, len(audit), func(i int, args []any) []any {
		a := &audit[i]
		return append(args, s.d.Time(recordTime(a.Time, at)), a.Actor, a.Action, a.Target, a.ClientAddr,
			a.Result, string(store.Details(a.Details)))
	})
}

// addDaily adds (sign 1) or subtracts (sign -1) rollup rows, and removes rows left empty.
// days is sorted (store.Daily), so concurrent transactions lock rows in the same order.
func (s *Store) addDaily(ctx context.Context, tx *sql.Tx, days []store.DayTotal, sign int64) error {
	if len(days) == 0 {
		return nil
	}
	var last time.Time
	err := s.insertRows(ctx, tx, stmtAddDaily, stmtAddDailyConflict, dailyArgs, len(days), func(i int, args []any) []any {
		d := &days[i]
		if d.Day.After(last) {
			last = d.Day
		}
		return append(args, d.KeyID, d.UserID, s.d.Time(d.Day), sign*d.Requests, sign*d.PromptTokens, sign*d.CompletionTokens)
	})
	if err != nil || sign > 0 {
		return err
	}
	_, err = tx.ExecContext(ctx, s.q(stmtDropEmptyDays), s.d.Time(last))
	return err
}

// maxRowsPerInsert bounds one multi-row INSERT (10 columns: 1,280 arguments, far below
// either database's limit).
const maxRowsPerInsert = 128

// insertRows inserts n rows with head + VALUES rows + tail, each row's ncols arguments
// appended by row. The rows go in statements of maxRowsPerInsert rows, then one statement
// of each power of two in the rest, so that at most eight texts per table exist however the
// batches vary (PostgreSQL's statement cache keeps one per text). A text that prepareInserts
// prepared runs as that statement, not parsed again.
func (s *Store) insertRows(ctx context.Context, tx *sql.Tx, head, tail string, ncols, n int, row func(i int, args []any) []any) error {
	args := make([]any, 0, ncols*min(n, maxRowsPerInsert))
	for i := 0; i < n; {
		k := chunkRows(n - i)
		args = args[:0]
		for j := i; j < i+k; j++ {
			args = row(j, args)
		}
		if _, err := s.prepared.ExecTx(ctx, tx, s.q(insertText(head, tail, ncols, k)), args...); err != nil {
			return err
		}
		i += k
	}
	return nil
}

// chunkRows is how many of n rows left the next statement of insertRows inserts.
func chunkRows(n int) int {
	k := maxRowsPerInsert
	for k > n {
		k /= 2
	}
	return k
}

// prepareInserts prepares, before Append's transaction, the statements insertRows will run
// for n rows (sqldb.Stmts.Prepare).
func (s *Store) prepareInserts(ctx context.Context, head, tail string, ncols, n int) error {
	for i := 0; i < n; {
		k := chunkRows(n - i)
		if err := s.prepared.Prepare(ctx, s.q(insertText(head, tail, ncols, k))); err != nil {
			return err
		}
		i += k
	}
	return nil
}

// insertText is head followed by rows tuples of ncols placeholders and tail.
func insertText(head, tail string, ncols, rows int) string {
	tuple := "(" + strings.Repeat("?, ", ncols-1) + "?)"
	var b strings.Builder
	b.Grow(len(head) + rows*(len(tuple)+2) + len(tail))
	b.WriteString(head)
	for i := range rows {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(tuple)
	}
	b.WriteString(tail)
	return b.String()
}

// recordTime is a record's stored time: its own, or the time of Append, at, when it has
// none; to the microsecond, in UTC.
func recordTime(t, at time.Time) time.Time {
	if t.IsZero() {
		t = at
	}
	return store.Micro(t)
}

func usageWhere(w *sqldb.Where, f store.UsageFilter, timeCol string) *sqldb.Where {
	w.Eq("key_id", f.KeyID)
	w.Eq("user_id", f.UserID)
	w.Eq("model", f.Model)
	w.Period(timeCol, f.From, f.To)
	return w
}

// UsageTotals implements store.Usage, from the daily rollup when it covers f (no model is
// named, so usageWhere adds no model condition there).
func (s *Store) UsageTotals(ctx context.Context, f store.UsageFilter) (store.UsageTotals, error) {
	var q string
	var w *sqldb.Where
	if store.RollupCovers(f) {
		w = usageWhere(s.d.Where(), f, "day")
		q = `SELECT CAST(COALESCE(SUM(requests), 0) AS BIGINT), CAST(COALESCE(SUM(prompt_tokens), 0) AS BIGINT),
			CAST(COALESCE(SUM(completion_tokens), 0) AS BIGINT) FROM usage_daily`
	} else {
		w = usageWhere(s.d.Where(), f, "time")
		q = `SELECT COUNT(*), CAST(COALESCE(SUM(prompt_tokens), 0) AS BIGINT),
			CAST(COALESCE(SUM(completion_tokens), 0) AS BIGINT) FROM usage_records`
	}
	q, args := w.SQL(q, "")
	var t store.UsageTotals
	err := s.db.R.QueryRowContext(ctx, q, args...).Scan(&t.Requests, &t.PromptTokens, &t.CompletionTokens)
	return t, s.d.Err("usage totals", err)
}

func scanUsage(sc scanner) (store.UsageRecord, error) {
	var u store.UsageRecord
	var lat int64
	err := sc.Scan(&u.ID, sqldb.ScanTime(&u.Time), &u.KeyID, &u.UserID, &u.Model, &u.Backend, &u.PromptTokens,
		&u.CompletionTokens, &lat, &u.Status, &u.TraceID)
	u.Latency = time.Duration(lat) * time.Microsecond
	return u, err
}

// ListUsage implements store.Usage.
func (s *Store) ListUsage(ctx context.Context, q store.UsageQuery) (store.Page[store.UsageRecord], error) {
	w := usageWhere(s.d.Where(), q.UsageFilter, "time")
	if err := w.AfterSeq(q.Cursor); err != nil {
		return store.Page[store.UsageRecord]{}, err
	}
	limit := store.PageLimit(q.Limit)
	query, args := w.SQL(`SELECT id, time, key_id, user_id, model, backend, prompt_tokens,
		completion_tokens, latency_us, status, trace_id FROM usage_records`, ` ORDER BY id DESC LIMIT ?`, limit+1)
	items, err := queryAll(ctx, s.db.R, scanUsage, query, args...)
	if err != nil {
		return store.Page[store.UsageRecord]{}, s.d.Err("list usage", err)
	}
	return sqldb.PageOf(items, limit, func(u store.UsageRecord) store.Cursor { return store.Cursor{Seq: u.ID} }), nil
}

func scanAudit(sc scanner) (store.AuditRecord, error) {
	var a store.AuditRecord
	var details string
	err := sc.Scan(&a.ID, sqldb.ScanTime(&a.Time), &a.Actor, &a.Action, &a.Target, &a.ClientAddr, &a.Result, &details)
	a.Details = []byte(details)
	return a, err
}

// ListAudit implements store.Audit.
func (s *Store) ListAudit(ctx context.Context, q store.AuditQuery) (store.Page[store.AuditRecord], error) {
	w := s.d.Where()
	w.Eq("actor", q.Actor)
	w.Eq("action", q.Action)
	w.Eq("target", q.Target)
	w.Eq("result", q.Result)
	w.Period("time", q.From, q.To)
	if err := w.AfterSeq(q.Cursor); err != nil {
		return store.Page[store.AuditRecord]{}, err
	}
	limit := store.PageLimit(q.Limit)
	query, args := w.SQL(`SELECT id, time, actor, action, target, client_addr, result, CAST(details AS TEXT)
		FROM audit_records`, ` ORDER BY id DESC LIMIT ?`, limit+1)
	items, err := queryAll(ctx, s.db.R, scanAudit, query, args...)
	if err != nil {
		return store.Page[store.AuditRecord]{}, s.d.Err("list audit", err)
	}
	return sqldb.PageOf(items, limit, func(a store.AuditRecord) store.Cursor { return store.Cursor{Seq: a.ID} }), nil
}

// DeleteUsageBefore implements store.Usage. Each chunk of deleted records is subtracted from
// the daily rollup in the same transaction, so the two always agree.
func (s *Store) DeleteUsageBefore(ctx context.Context, t time.Time) (int64, error) {
	var total int64
	for {
		var n int
		err := s.db.InTx(ctx, func(tx *sql.Tx) error {
			gone, err := queryAll(ctx, tx, func(sc scanner) (store.UsageRecord, error) {
				var u store.UsageRecord
				err := sc.Scan(sqldb.ScanTime(&u.Time), &u.KeyID, &u.UserID, &u.PromptTokens, &u.CompletionTokens)
				return u, err
			}, s.q(stmtDeleteUsage), s.d.Time(t), deleteChunk)
			if err != nil {
				return err
			}
			n = len(gone)
			return s.addDaily(ctx, tx, store.Daily(gone, time.Time{}), -1)
		})
		if err != nil {
			return total, s.d.Err("delete usage", err)
		}
		total += int64(n)
		if n < deleteChunk {
			return total, nil
		}
	}
}

// DeleteAuditBefore implements store.Audit, one chunk per statement.
func (s *Store) DeleteAuditBefore(ctx context.Context, t time.Time) (int64, error) {
	var total int64
	for {
		res, err := s.db.W.ExecContext(ctx, s.q(stmtDeleteAudit), s.d.Time(t), deleteChunk)
		if err != nil {
			return total, s.d.Err("delete audit", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, s.d.Err("delete audit", err)
		}
		total += n
		if n < deleteChunk {
			return total, nil
		}
	}
}
