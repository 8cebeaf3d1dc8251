package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/open-autoglm/autoglm/internal/store"
	"github.com/open-autoglm/autoglm/internal/store/sqldb"
)

var (
	usageCols = []string{"time", "key_id", "user_id", "model", "backend", "prompt_tokens", "completion_tokens",
		"latency_us", "status", "trace_id"}
	auditCols = []string{"time", "actor", "action", "target", "client_addr", "result", "details"}
)

// Append implements store.Store: one transaction, each table filled with COPY.
func (s *Store) Append(ctx context.Context, usage []store.UsageRecord, audit []store.AuditRecord) error {
	if len(usage) == 0 && len(audit) == 0 {
		return nil
	}
	at := time.Now()
	return dialect.Err("append", pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if len(usage) > 0 {
			_, err := tx.CopyFrom(ctx, pgx.Identifier{"usage_records"}, usageCols,
				pgx.CopyFromSlice(len(usage), func(i int) ([]any, error) {
					u := &usage[i]
					return []any{recordTime(u.Time, at), u.KeyID, u.UserID, u.Model, u.Backend, u.PromptTokens,
						u.CompletionTokens, u.Latency.Microseconds(), int32(u.Status), u.TraceID}, nil
				}))
			if err != nil {
				return err
			}
		}
		if err := addDaily(ctx, tx, store.Daily(usage, at), 1); err != nil {
			return err
		}
		if len(audit) > 0 {
			_, err := tx.CopyFrom(ctx, pgx.Identifier{"audit_records"}, auditCols,
				pgx.CopyFromSlice(len(audit), func(i int) ([]any, error) {
					a := &audit[i]
					return []any{recordTime(a.Time, at), a.Actor, a.Action, a.Target, a.ClientAddr, a.Result,
						string(store.Details(a.Details))}, nil
				}))
			if err != nil {
				return err
			}
		}
		return nil
	}))
}

// recordTime is a record's stored time: its own, or the time of Append when it has none.
func recordTime(t, at time.Time) time.Time {
	if t.IsZero() {
		return store.Micro(at)
	}
	return store.Micro(t)
}

// addDaily adds (sign 1) or subtracts (sign -1) rollup rows in one statement, and removes
// rows left empty. days is sorted (store.Daily), so concurrent transactions lock rows in the
// same order.
func addDaily(ctx context.Context, tx pgx.Tx, days []store.DayTotal, sign int64) error {
	if len(days) == 0 {
		return nil
	}
	keys, users := make([]string, len(days)), make([]string, len(days))
	dayTimes := make([]time.Time, len(days))
	reqs, prompt, completion := make([]int64, len(days)), make([]int64, len(days)), make([]int64, len(days))
	var last time.Time
	for i, d := range days {
		keys[i], users[i], dayTimes[i] = d.KeyID, d.UserID, d.Day
		reqs[i], prompt[i], completion[i] = sign*d.Requests, sign*d.PromptTokens, sign*d.CompletionTokens
		if d.Day.After(last) {
			last = d.Day
		}
	}
	_, err := tx.Exec(ctx, `INSERT INTO usage_daily (key_id, user_id, day, requests, prompt_tokens, completion_tokens)
		SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::bigint[], $5::bigint[], $6::bigint[])
		ON CONFLICT (key_id, user_id, day) DO UPDATE SET
			requests = usage_daily.requests + excluded.requests,
			prompt_tokens = usage_daily.prompt_tokens + excluded.prompt_tokens,
			completion_tokens = usage_daily.completion_tokens + excluded.completion_tokens`,
		keys, users, dayTimes, reqs, prompt, completion)
	if err != nil || sign > 0 {
		return err
	}
	// Only days up to the last one touched can have emptied; the day index finds them.
	_, err = tx.Exec(ctx, `DELETE FROM usage_daily WHERE day <= $1 AND requests <= 0`, last)
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
	var q string
	var w *sqldb.Where
	if store.RollupCovers(f) {
		w = dialect.Where()
		w.Eq("key_id", f.KeyID)
		w.Eq("user_id", f.UserID)
		w.Period("day", f.From, f.To)
		q = `SELECT COALESCE(SUM(requests), 0)::bigint, COALESCE(SUM(prompt_tokens), 0)::bigint,
			COALESCE(SUM(completion_tokens), 0)::bigint FROM usage_daily`
	} else {
		w = usageWhere(f)
		q = `SELECT COUNT(*), COALESCE(SUM(prompt_tokens), 0)::bigint, COALESCE(SUM(completion_tokens), 0)::bigint
			FROM usage_records`
	}
	q, args := w.SQL(q, "")
	err := s.pool.QueryRow(ctx, q, args...).Scan(&t.Requests, &t.PromptTokens, &t.CompletionTokens)
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
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return store.Page[store.UsageRecord]{}, dialect.Err("list usage", err)
	}
	recs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.UsageRecord, error) {
		var u store.UsageRecord
		var lat int64
		var status int32
		err := r.Scan(&u.ID, &u.Time, &u.KeyID, &u.UserID, &u.Model, &u.Backend, &u.PromptTokens,
			&u.CompletionTokens, &lat, &status, &u.TraceID)
		u.Time, u.Latency, u.Status = u.Time.UTC(), time.Duration(lat)*time.Microsecond, int(status)
		return u, err
	})
	if err != nil {
		return store.Page[store.UsageRecord]{}, dialect.Err("list usage", err)
	}
	return sqldb.PageOf(recs, limit, func(u store.UsageRecord) store.Cursor { return store.Cursor{Seq: u.ID} }), nil
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
	query, args := w.SQL(`SELECT id, time, actor, action, target, client_addr, result, details::text
		FROM audit_records`, ` ORDER BY id DESC LIMIT ?`, limit+1)
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return store.Page[store.AuditRecord]{}, dialect.Err("list audit", err)
	}
	recs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.AuditRecord, error) {
		var a store.AuditRecord
		var details string
		err := r.Scan(&a.ID, &a.Time, &a.Actor, &a.Action, &a.Target, &a.ClientAddr, &a.Result, &details)
		a.Time, a.Details = a.Time.UTC(), []byte(details)
		return a, err
	})
	if err != nil {
		return store.Page[store.AuditRecord]{}, dialect.Err("list audit", err)
	}
	return sqldb.PageOf(recs, limit, func(a store.AuditRecord) store.Cursor { return store.Cursor{Seq: a.ID} }), nil
}

// DeleteUsageBefore implements store.Usage. Each chunk of deleted records is subtracted from
// the daily rollup in the same transaction, so the two always agree.
func (s *Store) DeleteUsageBefore(ctx context.Context, t time.Time) (int64, error) {
	const chunk = 10000
	var total int64
	for {
		var n int64
		err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			rows, err := tx.Query(ctx, `DELETE FROM usage_records WHERE id IN (SELECT id FROM usage_records
				WHERE time < $1 LIMIT $2) RETURNING time, key_id, user_id, prompt_tokens, completion_tokens`,
				store.Micro(t), chunk)
			if err != nil {
				return err
			}
			gone, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.UsageRecord, error) {
				var u store.UsageRecord
				err := r.Scan(&u.Time, &u.KeyID, &u.UserID, &u.PromptTokens, &u.CompletionTokens)
				return u, err
			})
			if err != nil {
				return err
			}
			n = int64(len(gone))
			return addDaily(ctx, tx, store.Daily(gone, time.Time{}), -1)
		})
		if err != nil {
			return total, dialect.Err("delete usage_records", err)
		}
		total += n
		if n < chunk {
			return total, nil
		}
	}
}

// DeleteAuditBefore implements store.Audit.
func (s *Store) DeleteAuditBefore(ctx context.Context, t time.Time) (int64, error) {
	return s.deleteBefore(ctx, "audit_records", t)
}

// deleteBefore deletes in chunks so that a large backlog is not one long transaction holding
// many row locks and a long-lived snapshot.
func (s *Store) deleteBefore(ctx context.Context, table string, t time.Time) (int64, error) {
	const chunk = 10000
	var total int64
	for {
		tag, err := s.pool.Exec(ctx, `DELETE FROM `+table+` WHERE id IN (SELECT id FROM `+table+
			` WHERE time < $1 LIMIT $2)`, store.Micro(t), chunk)
		if err != nil {
			return total, dialect.Err("delete "+table, err)
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < chunk {
			return total, nil
		}
	}
}
