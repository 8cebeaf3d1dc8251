package task

import (
	"context"
	"database/sql"
	"encoding/json"
	"sync"
	"time"
)

// maxGroup is the most submissions committed in one transaction.
const maxGroup = 128

// groupCommitTimeout bounds one group's transaction. A group is committed by whichever
// submitter arrived first (the leader), on behalf of others whose requests may outlive the
// leader's, so the leader's own cancellation does not apply.
const groupCommitTimeout = 30 * time.Second

// pendingSubmit is one submission waiting for its group's commit.
type pendingSubmit struct {
	id, owner, idem, specJSON, hash string
	keyID, userID                   string
	spec                            Spec

	done     chan struct{}
	inserted bool // false: the idempotency key's task already existed
	created  Task
	err      error
}

// groupCommit gathers submissions that arrive while a commit is in progress and commits them
// together: one transaction, one fsync, for up to maxGroup tasks. A single writer (SQLite)
// otherwise commits submissions one by one in whatever order its waiters are woken, which
// caps throughput and stretches the tail of submit latency.
type groupCommit struct {
	mu      sync.Mutex
	pending []*pendingSubmit
	leading bool
}

// commitSubmit queues r and returns once r's group committed (or failed). The first
// submitter to find no commit in progress leads: it commits groups until its own is done,
// then hands what is still waiting to a goroutine that leads on, so no submitter waits for
// more than the groups ahead of it.
func (s *Service) commitSubmit(ctx context.Context, r *pendingSubmit) {
	g := &s.group
	g.mu.Lock()
	g.pending = append(g.pending, r)
	if g.leading {
		g.mu.Unlock()
		<-r.done
		return
	}
	g.leading = true
	g.mu.Unlock()
	s.lead(ctx, r.done)
	<-r.done
}

// lead commits waiting groups until none is left or until (when not nil) stop is closed;
// what is left then is led on by a new goroutine.
func (s *Service) lead(ctx context.Context, stop <-chan struct{}) {
	g := &s.group
	g.mu.Lock()
	for len(g.pending) > 0 {
		if stop != nil {
			select {
			case <-stop:
				g.mu.Unlock()
				s.handoffs.Go(func() { s.lead(context.WithoutCancel(ctx), nil) })
				return
			default:
			}
		}
		n := min(len(g.pending), maxGroup)
		batch := g.pending[:n:n]
		g.pending = g.pending[n:]
		g.mu.Unlock()
		s.commitGroup(ctx, batch)
		g.mu.Lock()
	}
	g.pending = nil
	g.leading = false
	g.mu.Unlock()
}

// commitGroup inserts a group in one transaction. When that fails, each submission is
// retried in a transaction of its own, so one bad submission fails alone.
func (s *Service) commitGroup(ctx context.Context, batch []*pendingSubmit) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), groupCommitTimeout)
	defer cancel()
	err := s.insertSubmits(ctx, batch)
	if err != nil && len(batch) > 1 {
		for _, r := range batch {
			r.err = s.insertSubmits(ctx, []*pendingSubmit{r})
		}
	} else if err != nil {
		batch[0].err = err
	}
	models := map[string]bool{}
	for _, r := range batch {
		if r.err == nil && r.inserted {
			models[r.spec.Model] = true
		}
		close(r.done)
	}
	for m := range models {
		s.hub.notify(modelTopic(m))
	}
}

// insertSubmits writes the tasks, their first events and the wake-up of their models'
// dispatchers in one transaction, and reads each task back as accepted (a worker may take it
// the moment the transaction commits). A submission whose idempotency key exists is left
// for the caller to resolve.
func (s *Service) insertSubmits(ctx context.Context, batch []*pendingSubmit) error {
	for _, r := range batch {
		r.inserted, r.created, r.err = false, Task{}, nil
	}
	now := time.Now().UnixMicro()
	queued, _ := json.Marshal(statusEvent{Status: StatusQueued})
	return s.db.inTx(ctx, func(tx *sql.Tx) error {
		models := map[string]bool{}
		for _, r := range batch {
			ok, err := s.db.insertTask(ctx, tx, newTask{id: r.id, kind: r.spec.Kind, model: r.spec.Model, owner: r.owner,
				keyID: r.keyID, userID: r.userID, idem: r.idem, reqHash: r.hash, spec: r.specJSON,
				priority: r.spec.Priority, estTokens: estimateTokens(r.spec), maxAttempts: s.cfg.MaxAttempts}, now)
			if err != nil {
				return err
			}
			if !ok {
				continue // the idempotency key's task exists
			}
			if err := s.db.insertEvent(ctx, tx, r.id, 1, EventStatus, queued, now); err != nil {
				return err
			}
			if r.created, _, err = s.db.loadTask(ctx, tx, r.id); err != nil {
				return err
			}
			r.inserted = true
			models[r.spec.Model] = true
		}
		for m := range models {
			if err := s.db.notify(ctx, tx, modelTopic(m)); err != nil {
				return err
			}
		}
		return nil
	})
}
