package task

import (
	"context"
	"database/sql"
	"time"
)

// Retention timing.
const (
	// retentionEvery is how often finished tasks past tasks.retention are deleted.
	retentionEvery = 10 * time.Minute
	// retentionBatch is how many tasks one delete transaction removes, so that a large
	// backlog never holds the (single, on SQLite) writer for long.
	retentionBatch = 500
)

// retentionLoop deletes old finished tasks at start and then every retentionEvery.
func (s *Service) retentionLoop(ctx context.Context) {
	t := time.NewTicker(retentionEvery)
	defer t.Stop()
	for {
		if n, err := s.DeleteFinishedBefore(ctx, time.Now().Add(-s.cfg.Retention.D())); err != nil && ctx.Err() == nil {
			s.log.Warn("task retention failed", "err", err)
		} else if n > 0 {
			s.log.Info("task retention: deleted finished tasks", "tasks", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// DeleteFinishedBefore deletes tasks that finished before t, with their events and webhook
// records, in batches, and returns how many tasks it deleted. Live tasks are never deleted.
func (s *Service) DeleteFinishedBefore(ctx context.Context, t time.Time) (int64, error) {
	cutoff := t.UnixMicro()
	var total int64
	for {
		var n int64
		err := s.db.inTx(ctx, func(tx *sql.Tx) error {
			sel := `SELECT id FROM tasks WHERE finished_at IS NOT NULL AND finished_at < ? ORDER BY finished_at LIMIT ?`
			for _, table := range []string{"task_events", "task_delivery_attempts", "task_deliveries"} {
				if _, err := tx.ExecContext(ctx, s.db.q(`DELETE FROM `+table+` WHERE task_id IN (`+sel+`)`), cutoff, retentionBatch); err != nil {
					return err
				}
			}
			res, err := tx.ExecContext(ctx, s.db.q(`DELETE FROM tasks WHERE id IN (`+sel+`)`), cutoff, retentionBatch)
			if err != nil {
				return err
			}
			n, _ = res.RowsAffected()
			return nil
		})
		if err != nil {
			return total, err
		}
		total += n
		if n < retentionBatch {
			return total, nil
		}
	}
}
