package task

import (
	"context"
	"strings"
	"time"
)

// listen relays PostgreSQL notifications from every replica (sent with the transactions
// that change tasks, see DB.notify) to this process's hub, so a watcher connected to any
// replica hears of new events at once and idle dispatchers wake for new work. A lost
// connection is re-established; meanwhile everything still advances at the poll interval.
func (s *Service) listen(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := s.listenOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("task notifications: connection lost; retrying", "err", err, "in", backoff)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (s *Service) listenOnce(ctx context.Context) error {
	// Whatever was notified while the connection was down is picked up by polls; once
	// listening, every waiter is woken so nothing waits a whole interval.
	return s.db.Listen(ctx, "autoglm_tasks", s.hub.notifyAll, func(payload string) {
		if id, ok := strings.CutPrefix(payload, cancelPrefix); ok {
			s.cancelLocal(id)
			return
		}
		s.hub.notify(payload)
	})
}
