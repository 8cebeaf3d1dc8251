package batch

import (
	"context"
	"database/sql"
	"errors"
)

// The state changes of batches and their lines, each one named statement, conditional on the
// state it leaves, so that two workers (or replicas) racing for the same change cannot both
// make it: the loser's statement matches no row. Lease times are Unix milliseconds.
//
//	line:  open ──take──▶ leased by a worker ──renew──▶ leased (same worker)
//	       leased ──release──▶ open (due again at lease_until; 0 is now)
//	       open | leased ──answer──▶ done (once; only while its batch runs)
//	batch: validating | in_progress ──cancel──▶ cancelling
//	       in_progress | cancelling ──finish──▶ completed | cancelled | expired (with its files)
const (
	stmtTakeLine = `UPDATE batch_lines SET lease_owner = ?, lease_until = ?
		WHERE batch_id = ? AND idx = ? AND done = 0 AND lease_until < ?`
	stmtRenewLine = `UPDATE batch_lines SET lease_until = ?
		WHERE batch_id = ? AND idx = ? AND done = 0 AND lease_owner = ?`
	stmtReleaseLine = `UPDATE batch_lines SET lease_until = ?, lease_owner = ''
		WHERE batch_id = ? AND idx = ? AND done = 0 AND lease_owner = ?`
	// stmtReleaseAllLines frees every lease at start on SQLite, whose one process held them
	// all.
	stmtReleaseAllLines = `UPDATE batch_lines SET lease_until = 0, lease_owner = '' WHERE done = 0 AND lease_until <> 0`
	stmtAnswerLine      = `UPDATE batch_lines SET done = 1, ok = ?, result = ?, lease_owner = '', lease_until = 0
		WHERE batch_id = ? AND idx = ? AND done = 0`
	// stmtCountCompleted and stmtCountFailed count an answer on its batch while it runs; on
	// PostgreSQL they hold the batch row, which finish takes first too, so a batch's files
	// are never written while one of its lines is being answered.
	stmtCountCompleted = `UPDATE batches SET completed = completed + 1 WHERE id = ? AND status IN ('in_progress', 'cancelling')`
	stmtCountFailed    = `UPDATE batches SET failed = failed + 1 WHERE id = ? AND status IN ('in_progress', 'cancelling')`
	stmtCancelBatch    = `UPDATE batches SET status = 'cancelling', cancelling_at = ?
		WHERE id = ? AND owner = ? AND status IN ('validating', 'in_progress')`
	stmtFinishCompleted = `UPDATE batches SET status = 'completed', finalizing_at = ?, completed_at = ?
		WHERE id = ? AND status = ? RETURNING owner`
	stmtFinishCancelled = `UPDATE batches SET status = 'cancelled', finalizing_at = ?, cancelled_at = ?
		WHERE id = ? AND status = ? RETURNING owner`
	stmtFinishExpired = `UPDATE batches SET status = 'expired', finalizing_at = ?, expired_at = ?
		WHERE id = ? AND status = ? RETURNING owner`
	stmtSetBatchFiles = `UPDATE batches SET output_file_id = ?, error_file_id = ? WHERE id = ?`
)

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// changed runs a conditional statement and reports whether it changed a row.
func (s *Service) changed(ctx context.Context, db execer, stmt string, args ...any) (bool, error) {
	res, err := db.ExecContext(ctx, s.q(stmt), args...)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// takeLine leases an open line to this worker until leaseUntil; false when another took it.
func (s *Service) takeLine(ctx context.Context, l *claimed, leaseUntil, now int64) (bool, error) {
	return s.changed(ctx, s.w, stmtTakeLine, s.worker, leaseUntil, l.batchID, l.idx, now)
}

// renewLine extends this worker's lease on a line it holds.
func (s *Service) renewLine(ctx context.Context, l *claimed, leaseUntil int64) error {
	_, err := s.changed(ctx, s.w, stmtRenewLine, leaseUntil, l.batchID, l.idx, s.worker)
	return err
}

// releaseLine gives a line this worker holds back, due again at until (0: now).
func (s *Service) releaseLine(ctx context.Context, l *claimed, until int64) error {
	_, err := s.changed(ctx, s.w, stmtReleaseLine, until, l.batchID, l.idx, s.worker)
	return err
}

// countAnswer counts an answer on the line's batch; false when the batch has ended.
func (s *Service) countAnswer(ctx context.Context, tx *sql.Tx, l *claimed, ok bool) (bool, error) {
	stmt := stmtCountFailed
	if ok {
		stmt = stmtCountCompleted
	}
	return s.changed(ctx, tx, stmt, l.batchID)
}

// answerLine marks a line done with its result; false when it was answered already.
func (s *Service) answerLine(ctx context.Context, tx *sql.Tx, l *claimed, ok bool, result string) (bool, error) {
	okv := 0
	if ok {
		okv = 1
	}
	return s.changed(ctx, tx, stmtAnswerLine, okv, result, l.batchID, l.idx)
}

// finishBatch moves batch id from status from to its terminal status to, stamped at (Unix
// seconds), and returns its owner; ok is false when the batch is no longer in from.
func (s *Service) finishBatch(ctx context.Context, tx *sql.Tx, id, from, to string, at int64) (owner string, ok bool, err error) {
	stmt := map[string]string{"completed": stmtFinishCompleted, "cancelled": stmtFinishCancelled, "expired": stmtFinishExpired}[to]
	if stmt == "" {
		return "", false, errors.New("batch: unknown terminal status " + to)
	}
	err = tx.QueryRowContext(ctx, s.q(stmt), at, at, id, from).Scan(&owner)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	return owner, err == nil, err
}
