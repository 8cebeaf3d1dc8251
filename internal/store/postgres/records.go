package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/open-autoglm/autoglm/internal/store"
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
	return mapErr("append", pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
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

func usageWhere(f store.UsageFilter) *where {
	w := new(where)
	w.eq("key_id", f.KeyID)
	w.eq("user_id", f.UserID)
	w.eq("model", f.Model)
	w.period("time", f.From, f.To)
	return w
}

// UsageTotals implements store.Usage.
func (s *Store) UsageTotals(ctx context.Context, f store.UsageFilter) (store.UsageTotals, error) {
	w := usageWhere(f)
	var t store.UsageTotals
	err := s.pool.QueryRow(ctx, `SELECT COUNT(*), COALESCE(SUM(prompt_tokens), 0)::bigint,
		COALESCE(SUM(completion_tokens), 0)::bigint FROM usage_records`+w.String(), w.args...).
		Scan(&t.Requests, &t.PromptTokens, &t.CompletionTokens)
	return t, mapErr("usage totals", err)
}

// ListUsage implements store.Usage.
func (s *Store) ListUsage(ctx context.Context, q store.UsageQuery) (store.Page[store.UsageRecord], error) {
	w := usageWhere(q.UsageFilter)
	if err := w.afterSeq(q.Cursor); err != nil {
		return store.Page[store.UsageRecord]{}, err
	}
	limit := store.PageLimit(q.Limit)
	rows, err := s.pool.Query(ctx, `SELECT id, time, key_id, user_id, model, backend, prompt_tokens,
		completion_tokens, latency_us, status, trace_id FROM usage_records`+w.String()+` ORDER BY id DESC`+
		w.limit(limit+1), w.args...)
	if err != nil {
		return store.Page[store.UsageRecord]{}, mapErr("list usage", err)
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
		return store.Page[store.UsageRecord]{}, mapErr("list usage", err)
	}
	page := store.Page[store.UsageRecord]{Items: recs}
	if len(recs) > limit {
		page.Items = recs[:limit]
		page.Next = store.Cursor{Seq: page.Items[limit-1].ID}.String()
	}
	return page, nil
}

// ListAudit implements store.Audit.
func (s *Store) ListAudit(ctx context.Context, q store.AuditQuery) (store.Page[store.AuditRecord], error) {
	w := new(where)
	w.eq("actor", q.Actor)
	w.eq("action", q.Action)
	w.eq("target", q.Target)
	w.eq("result", q.Result)
	w.period("time", q.From, q.To)
	if err := w.afterSeq(q.Cursor); err != nil {
		return store.Page[store.AuditRecord]{}, err
	}
	limit := store.PageLimit(q.Limit)
	rows, err := s.pool.Query(ctx, `SELECT id, time, actor, action, target, client_addr, result, details::text
		FROM audit_records`+w.String()+` ORDER BY id DESC`+w.limit(limit+1), w.args...)
	if err != nil {
		return store.Page[store.AuditRecord]{}, mapErr("list audit", err)
	}
	recs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.AuditRecord, error) {
		var a store.AuditRecord
		var details string
		err := r.Scan(&a.ID, &a.Time, &a.Actor, &a.Action, &a.Target, &a.ClientAddr, &a.Result, &details)
		a.Time, a.Details = a.Time.UTC(), []byte(details)
		return a, err
	})
	if err != nil {
		return store.Page[store.AuditRecord]{}, mapErr("list audit", err)
	}
	page := store.Page[store.AuditRecord]{Items: recs}
	if len(recs) > limit {
		page.Items = recs[:limit]
		page.Next = store.Cursor{Seq: page.Items[limit-1].ID}.String()
	}
	return page, nil
}

// DeleteUsageBefore implements store.Usage.
func (s *Store) DeleteUsageBefore(ctx context.Context, t time.Time) (int64, error) {
	return s.deleteBefore(ctx, "usage_records", t)
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
			return total, mapErr("delete "+table, err)
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < chunk {
			return total, nil
		}
	}
}
