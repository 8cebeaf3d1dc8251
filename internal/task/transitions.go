package task

import (
	"context"
	"database/sql"
	"errors"
)

// The state changes of a task row, each one named statement. Every one is conditional on
// the state it leaves (and, for a running task, on who holds its lease), so two replicas
// racing for the same change cannot both make it: the loser's statement matches no row and
// the method reports ok = false. Each change that a watcher should see also bumps last_seq;
// the caller appends the event under the returned number in the same transaction.
//
//	queued  ──claim──▶ running ──release──▶ queued
//	queued  ──finish─▶ canceled
//	running ──finish─▶ succeeded | failed | canceled
//	running ──recordProgress / renewLease──▶ running (same holder)
//	queued | running ──requestCancel──▶ (flag only; the holder or a later claim finishes it)
const (
	stmtClaim = `UPDATE tasks SET status = 'running', attempts = attempts + 1, lease_owner = ?, lease_until = ?,
		started_at = COALESCE(started_at, ?), updated_at = ?, progress_tokens = 0, last_seq = last_seq + 1
		WHERE id = ? AND status = 'queued' RETURNING spec, attempts, max_attempts, last_seq, key_id, user_id`
	stmtRelease = `UPDATE tasks SET status = 'queued', lease_owner = '', lease_until = 0, run_after = ?,
		attempts = attempts - ?, updated_at = ?, last_seq = last_seq + 1
		WHERE id = ? AND status = 'running' AND lease_owner = ? RETURNING last_seq`
	stmtFinishQueued = `UPDATE tasks SET status = ?, result = ?, error = ?, finished_at = ?, updated_at = ?,
		lease_owner = '', lease_until = 0, last_seq = last_seq + 1 WHERE id = ? AND status = 'queued' RETURNING last_seq`
	stmtFinishRunning = `UPDATE tasks SET status = ?, result = ?, error = ?, finished_at = ?, updated_at = ?,
		lease_owner = '', lease_until = 0, last_seq = last_seq + 1 WHERE id = ? AND status = 'running' AND lease_owner = ?
		RETURNING last_seq`
	stmtRequestCancel  = `UPDATE tasks SET cancel_requested = 1, updated_at = ? WHERE id = ? AND status IN ('queued', 'running')`
	stmtRecordProgress = `UPDATE tasks SET last_seq = last_seq + 1, progress_tokens = ?, lease_until = ?, updated_at = ?
		WHERE id = ? AND status = 'running' AND lease_owner = ? RETURNING last_seq, cancel_requested`
	stmtRenewLease = `UPDATE tasks SET lease_until = ? WHERE id = ? AND status = 'running' AND lease_owner = ?
		RETURNING cancel_requested`
	stmtNextSeq     = `UPDATE tasks SET last_seq = last_seq + 1 WHERE id = ? RETURNING last_seq`
	stmtInsertEvent = `INSERT INTO task_events (task_id, seq, type, data, created_at) VALUES (?, ?, ?, ?, ?)`
)

// claimedRow is what a claim returns about the task it took.
type claimedRow struct {
	spec                 string
	attempt, maxAttempts int64
	seq                  int64
	keyID, userID        string
}

// claim moves a queued task to running under owner's lease until leaseUntil, counting one
// more attempt.
func (d DB) claim(ctx context.Context, tx *sql.Tx, id, owner string, leaseUntil, now int64) (claimedRow, bool, error) {
	var r claimedRow
	ok, err := noRow(tx.QueryRowContext(ctx, d.q(stmtClaim), owner, leaseUntil, now, now, id).
		Scan(&r.spec, &r.attempt, &r.maxAttempts, &r.seq, &r.keyID, &r.userID))
	return r, ok, err
}

// release moves a running task that owner holds back to queued, due at runAfter, giving
// back refund attempts (1 when the attempt did not really happen, as at shutdown).
func (d DB) release(ctx context.Context, tx *sql.Tx, id, owner string, runAfter, refund, now int64) (int64, bool, error) {
	var seq int64
	ok, err := noRow(tx.QueryRowContext(ctx, d.q(stmtRelease), runAfter, refund, now, id, owner).Scan(&seq))
	return seq, ok, err
}

// finishParams describe the terminal state change of a task.
type finishParams struct {
	id string
	// from is the state left: StatusQueued, or StatusRunning held by owner.
	from  Status
	owner string
	to    Status
	// result and errJSON are the JSON of the Result and Error, or nil.
	result, errJSON any
	now             int64
}

// finish moves a task from p.from to its terminal state p.to.
func (d DB) finish(ctx context.Context, tx *sql.Tx, p finishParams) (int64, bool, error) {
	var seq int64
	var row *sql.Row
	switch p.from {
	case StatusQueued:
		row = tx.QueryRowContext(ctx, d.q(stmtFinishQueued), string(p.to), p.result, p.errJSON, p.now, p.now, p.id)
	case StatusRunning:
		if p.owner == "" {
			return 0, false, errors.New("task: finish a running task without its lease owner")
		}
		row = tx.QueryRowContext(ctx, d.q(stmtFinishRunning), string(p.to), p.result, p.errJSON, p.now, p.now, p.id, p.owner)
	default:
		return 0, false, errors.New("task: finish from " + string(p.from))
	}
	ok, err := noRow(row.Scan(&seq))
	return seq, ok, err
}

// requestCancel flags a task that is not finished for cancellation; the holder of a running
// task sees the flag at its next progress write or lease renewal.
func (d DB) requestCancel(ctx context.Context, q querier, id string, now int64) error {
	_, err := q.ExecContext(ctx, d.q(stmtRequestCancel), now, id)
	return err
}

// recordProgress counts tokens on a running task that owner holds and renews its lease,
// returning the number of the event that reports it and whether a cancel was requested.
func (d DB) recordProgress(ctx context.Context, tx *sql.Tx, id, owner string, tokens int, leaseUntil, now int64) (seq int64, cancelRequested, ok bool, err error) {
	var flag int
	ok, err = noRow(tx.QueryRowContext(ctx, d.q(stmtRecordProgress), tokens, leaseUntil, now, id, owner).Scan(&seq, &flag))
	return seq, flag != 0, ok, err
}

// renewLease extends owner's lease on a running task; ok is false when the lease was lost.
func (d DB) renewLease(ctx context.Context, q querier, id, owner string, leaseUntil int64) (cancelRequested, ok bool, err error) {
	var flag int
	ok, err = noRow(q.QueryRowContext(ctx, d.q(stmtRenewLease), leaseUntil, id, owner).Scan(&flag))
	return flag != 0, ok, err
}

// noRow turns "no row matched" into ok = false.
func noRow(err error) (bool, error) {
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}
