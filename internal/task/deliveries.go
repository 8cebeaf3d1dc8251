package task

import (
	"context"
	"database/sql"
)

// The rows a task adds besides its own state (transitions.go): its insertion at submit and
// its webhook delivery. A delivery's changes are, like a task's, each one named statement,
// conditional on the state they leave, so two replicas cannot both lease one delivery.
//
//	(task finished with a callback) ──insertDelivery──▶ pending
//	pending ──leaseDelivery──▶ pending, leased until lease_until (the attempt is being made)
//	leased ──recordAttempt──▶ delivered | failed | pending (retried at next_at)
//	a lease that runs out (a crash during the attempt) makes the delivery due again
const (
	// stmtInsertTask adds a queued task with its first event's number; a second submission
	// with the same idempotency key inserts nothing.
	stmtInsertTask = `INSERT INTO tasks (id, kind, model, owner, key_id, user_id, idem_key, req_hash, spec, status,
		priority, est_tokens, max_attempts, run_after, last_seq, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?, 1, ?, ?) ON CONFLICT DO NOTHING`
	stmtInsertDelivery = `INSERT INTO task_deliveries (task_id, delivery_id, url, body, status, next_at, deadline,
		created_at, updated_at) VALUES (?, ?, ?, ?, 'pending', ?, ?, ?, ?)`
	stmtLeaseDelivery = `UPDATE task_deliveries SET lease_until = ? WHERE task_id = ? AND status = 'pending' AND lease_until < ?
		RETURNING delivery_id, url, body, attempts, deadline`
	stmtInsertAttempt = `INSERT INTO task_delivery_attempts (task_id, n, at, status_code, error, duration_ms)
		VALUES (?, ?, ?, ?, ?, ?)`
	stmtRecordDelivery = `UPDATE task_deliveries SET status = ?, attempts = ?, next_at = ?, lease_until = 0, updated_at = ?
		WHERE task_id = ?`
)

// newTask is a submission as insertTask writes it.
type newTask struct {
	id, kind, model, owner, keyID, userID string
	// idem is the idempotency key; "" is none (NULL, never a conflict).
	idem, reqHash, spec string
	priority            int
	estTokens           int64
	maxAttempts         int
}

// insertTask adds t as queued, due at now; ok is false when a task with its idempotency key
// exists. The caller appends the first event (number 1) in the same transaction.
func (d DB) insertTask(ctx context.Context, tx *sql.Tx, t newTask, now int64) (ok bool, err error) {
	var idem any
	if t.idem != "" {
		idem = t.idem
	}
	res, err := tx.ExecContext(ctx, d.q(stmtInsertTask), t.id, t.kind, t.model, t.owner, t.keyID, t.userID, idem,
		t.reqHash, t.spec, t.priority, t.estTokens, t.maxAttempts, now, now, now)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// insertDelivery adds the pending webhook delivery of a task that just finished, due now
// and retried until deadline.
func (d DB) insertDelivery(ctx context.Context, tx *sql.Tx, taskID, deliveryID, url, body string, now, deadline int64) error {
	_, err := tx.ExecContext(ctx, d.q(stmtInsertDelivery), taskID, deliveryID, url, body, now, deadline, now, now)
	return err
}

// leasedDelivery is what a lease returns about the delivery to attempt.
type leasedDelivery struct {
	id, url, body      string
	attempts, deadline int64
}

// leaseDelivery takes a pending delivery that nobody holds until leaseUntil; ok is false
// when it is delivered, failed or held by another attempt.
func (d DB) leaseDelivery(ctx context.Context, q querier, taskID string, leaseUntil, now int64) (leasedDelivery, bool, error) {
	var l leasedDelivery
	ok, err := noRow(q.QueryRowContext(ctx, d.q(stmtLeaseDelivery), leaseUntil, taskID, now).
		Scan(&l.id, &l.url, &l.body, &l.attempts, &l.deadline))
	return l, ok, err
}

// recordAttempt keeps attempt n of a delivery and moves the delivery to status ("pending"
// is due again at next), releasing its lease.
func (d DB) recordAttempt(ctx context.Context, tx *sql.Tx, taskID string, n int64, a Attempt, status string, next, now int64) error {
	if _, err := tx.ExecContext(ctx, d.q(stmtInsertAttempt), taskID, n, a.At.UnixMicro(), a.StatusCode, a.Error, a.DurationMS); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, d.q(stmtRecordDelivery), status, n, next, now, taskID)
	return err
}
