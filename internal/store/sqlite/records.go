package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/open-autoglm/autoglm/internal/store"
	"github.com/open-autoglm/autoglm/internal/store/sqldb"
)

// Append implements store.Store: one IMMEDIATE transaction with a prepared statement per
// table.
func (s *Store) Append(ctx context.Context, usage []store.UsageRecord, audit []store.AuditRecord) error {
	if len(usage) == 0 && len(audit) == 0 {
		return nil
	}
	at := time.Now()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return dialect.Err("append", err)
	}
	defer func() { _ = tx.Rollback() }()
	if len(usage) > 0 {
		st, err := tx.PrepareContext(ctx, `INSERT INTO usage_records (time, key_id, user_id, model, backend,
			prompt_tokens, completion_tokens, latency_us, status, trace_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return dialect.Err("append usage", err)
		}
		defer st.Close()
		for i := range usage {
			u := &usage[i]
			if _, err := st.ExecContext(ctx, recordTime(u.Time, at), u.KeyID, u.UserID, u.Model, u.Backend,
				u.PromptTokens, u.CompletionTokens, u.Latency.Microseconds(), u.Status, u.TraceID); err != nil {
				return dialect.Err("append usage", err)
			}
		}
	}
	if err := addDaily(ctx, tx, store.Daily(usage, at), 1); err != nil {
		return dialect.Err("append usage", err)
	}
	if len(audit) > 0 {
		st, err := tx.PrepareContext(ctx, `INSERT INTO audit_records (time, actor, action, target, client_addr,
			result, details) VALUES (?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return dialect.Err("append audit", err)
		}
		defer st.Close()
		for i := range audit {
			a := &audit[i]
			if _, err := st.ExecContext(ctx, recordTime(a.Time, at), a.Actor, a.Action, a.Target, a.ClientAddr,
				a.Result, string(store.Details(a.Details))); err != nil {
				return dialect.Err("append audit", err)
			}
		}
	}
	return dialect.Err("append", tx.Commit())
}

// addDaily adds (sign 1) or subtracts (sign -1) rollup rows, and removes rows left empty.
func addDaily(ctx context.Context, tx *sql.Tx, days []store.DayTotal, sign int64) error {
	if len(days) == 0 {
		return nil
	}
	st, err := tx.PrepareContext(ctx, `INSERT INTO usage_daily (key_id, user_id, day, requests, prompt_tokens,
		completion_tokens) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (key_id, user_id, day) DO UPDATE SET
		requests = requests + excluded.requests, prompt_tokens = prompt_tokens + excluded.prompt_tokens,
		completion_tokens = completion_tokens + excluded.completion_tokens`)
	if err != nil {
		return err
	}
	defer st.Close()
	var last time.Time
	for _, d := range days {
		if d.Day.After(last) {
			last = d.Day
		}
		if _, err := st.ExecContext(ctx, d.KeyID, d.UserID, d.Day.UnixMicro(), sign*d.Requests,
			sign*d.PromptTokens, sign*d.CompletionTokens); err != nil {
			return err
		}
	}
	if sign < 0 {
		// Only days up to the last one touched can have emptied; the day index finds them.
		_, err = tx.ExecContext(ctx, `DELETE FROM usage_daily WHERE day <= ? AND requests <= 0`, last.UnixMicro())
	}
	return err
}

func usageWhere(f store.UsageFilter) *sqldb.Where {
	w := dialect.Where()
	w.Eq("key_id", f.KeyID)
	w.Eq("user_id", f.UserID)
	w.Eq("model", f.Model)
	w.Period("time", f.From, f.To)
	return w
}

// UsageTotals implements store.Usage, from the daily rollup when it covers f.
func (s *Store) UsageTotals(ctx context.Context, f store.UsageFilter) (store.UsageTotals, error) {
	var t store.UsageTotals
	var err error
	if store.RollupCovers(f) {
		w := dialect.Where()
		w.Eq("key_id", f.KeyID)
		w.Eq("user_id", f.UserID)
		w.Period("day", f.From, f.To)
		q, args := w.SQL(`SELECT COALESCE(SUM(requests), 0), COALESCE(SUM(prompt_tokens), 0),
			COALESCE(SUM(completion_tokens), 0) FROM usage_daily`, "")
		err = s.r.QueryRowContext(ctx, q, args...).Scan(&t.Requests, &t.PromptTokens, &t.CompletionTokens)
	} else {
		w := usageWhere(f)
		q, args := w.SQL(`SELECT COUNT(*), COALESCE(SUM(prompt_tokens), 0), COALESCE(SUM(completion_tokens), 0)
			FROM usage_records`, "")
		err = s.r.QueryRowContext(ctx, q, args...).Scan(&t.Requests, &t.PromptTokens, &t.CompletionTokens)
	}
	return t, dialect.Err("usage totals", err)
}

// ListUsage implements store.Usage.
func (s *Store) ListUsage(ctx context.Context, q store.UsageQuery) (store.Page[store.UsageRecord], error) {
	w := usageWhere(q.UsageFilter)
	if err := w.AfterSeq(q.Cursor); err != nil {
		return store.Page[store.UsageRecord]{}, err
	}
	limit := store.PageLimit(q.Limit)
	query, args := w.SQL(`SELECT id, time, key_id, user_id, model, backend, prompt_tokens,
		completion_tokens, latency_us, status, trace_id FROM usage_records`, ` ORDER BY id DESC LIMIT ?`, limit+1)
	rows, err := s.r.QueryContext(ctx, query, args...)
	if err != nil {
		return store.Page[store.UsageRecord]{}, dialect.Err("list usage", err)
	}
	defer rows.Close()
	var items []store.UsageRecord
	for rows.Next() {
		var u store.UsageRecord
		var t, lat int64
		if err := rows.Scan(&u.ID, &t, &u.KeyID, &u.UserID, &u.Model, &u.Backend, &u.PromptTokens,
			&u.CompletionTokens, &lat, &u.Status, &u.TraceID); err != nil {
			return store.Page[store.UsageRecord]{}, dialect.Err("list usage", err)
		}
		u.Time, u.Latency = time.UnixMicro(t).UTC(), time.Duration(lat)*time.Microsecond
		items = append(items, u)
	}
	if err := rows.Err(); err != nil {
		return store.Page[store.UsageRecord]{}, dialect.Err("list usage", err)
	}
	return sqldb.PageOf(items, limit, func(u store.UsageRecord) store.Cursor { return store.Cursor{Seq: u.ID} }), nil
}

// ListAudit implements store.Audit.
func (s *Store) ListAudit(ctx context.Context, q store.AuditQuery) (store.Page[store.AuditRecord], error) {
	w := dialect.Where()
	w.Eq("actor", q.Actor)
	w.Eq("action", q.Action)
	w.Eq("target", q.Target)
	w.Eq("result", q.Result)
	w.Period("time", q.From, q.To)
	if err := w.AfterSeq(q.Cursor); err != nil {
		return store.Page[store.AuditRecord]{}, err
	}
	limit := store.PageLimit(q.Limit)
	query, args := w.SQL(`SELECT id, time, actor, action, target, client_addr, result, details
		FROM audit_records`, ` ORDER BY id DESC LIMIT ?`, limit+1)
	rows, err := s.r.QueryContext(ctx, query, args...)
	if err != nil {
		return store.Page[store.AuditRecord]{}, dialect.Err("list audit", err)
	}
	defer rows.Close()
	var items []store.AuditRecord
	for rows.Next() {
		var a store.AuditRecord
		var t int64
		var details string
		if err := rows.Scan(&a.ID, &t, &a.Actor, &a.Action, &a.Target, &a.ClientAddr, &a.Result, &details); err != nil {
			return store.Page[store.AuditRecord]{}, dialect.Err("list audit", err)
		}
		a.Time, a.Details = time.UnixMicro(t).UTC(), []byte(details)
		items = append(items, a)
	}
	if err := rows.Err(); err != nil {
		return store.Page[store.AuditRecord]{}, dialect.Err("list audit", err)
	}
	return sqldb.PageOf(items, limit, func(a store.AuditRecord) store.Cursor { return store.Cursor{Seq: a.ID} }), nil
}

// DeleteUsageBefore implements store.Usage. Each chunk of deleted records is subtracted from
// the daily rollup in the same transaction, so the two always agree.
func (s *Store) DeleteUsageBefore(ctx context.Context, t time.Time) (int64, error) {
	const chunk = 5000
	var total int64
	for {
		n, err := s.deleteUsageChunk(ctx, t, chunk)
		total += n
		if err != nil || n < chunk {
			return total, err
		}
	}
}

func (s *Store) deleteUsageChunk(ctx context.Context, t time.Time, limit int) (int64, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, dialect.Err("delete usage", err)
	}
	defer func() { _ = tx.Rollback() }()
	rows, err := tx.QueryContext(ctx, `DELETE FROM usage_records WHERE id IN (SELECT id FROM usage_records
		WHERE time < ? LIMIT ?) RETURNING time, key_id, user_id, prompt_tokens, completion_tokens`, t.UnixMicro(), limit)
	if err != nil {
		return 0, dialect.Err("delete usage", err)
	}
	var gone []store.UsageRecord
	for rows.Next() {
		var r store.UsageRecord
		var us int64
		if err := rows.Scan(&us, &r.KeyID, &r.UserID, &r.PromptTokens, &r.CompletionTokens); err != nil {
			rows.Close()
			return 0, dialect.Err("delete usage", err)
		}
		r.Time = time.UnixMicro(us)
		gone = append(gone, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, dialect.Err("delete usage", err)
	}
	if err := addDaily(ctx, tx, store.Daily(gone, time.Time{}), -1); err != nil {
		return 0, dialect.Err("delete usage", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, dialect.Err("delete usage", err)
	}
	return int64(len(gone)), nil
}

// DeleteAuditBefore implements store.Audit.
func (s *Store) DeleteAuditBefore(ctx context.Context, t time.Time) (int64, error) {
	return s.deleteBefore(ctx, "audit_records", t)
}

// deleteBefore deletes in chunks so that a large backlog does not hold the one writer for
// long: the request path's batches get in between chunks.
func (s *Store) deleteBefore(ctx context.Context, table string, t time.Time) (int64, error) {
	const chunk = 5000
	var total int64
	for {
		res, err := s.w.ExecContext(ctx, `DELETE FROM `+table+` WHERE id IN (SELECT id FROM `+table+
			` WHERE time < ? LIMIT ?)`, t.UnixMicro(), chunk)
		if err != nil {
			return total, dialect.Err("delete "+table, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, dialect.Err("delete "+table, err)
		}
		total += n
		if n < chunk {
			return total, nil
		}
	}
}

// recordTime is a record's stored time: its own, or the time of Append when it has none.
func recordTime(t, at time.Time) int64 {
	if t.IsZero() {
		return at.UnixMicro()
	}
	return t.UnixMicro()
}
