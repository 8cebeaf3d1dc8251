package task

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/open-autoglm/autoglm/internal/apierr"
	"github.com/open-autoglm/autoglm/internal/config"
	"github.com/open-autoglm/autoglm/internal/router"
	"github.com/open-autoglm/autoglm/internal/store/sqldb"
	"github.com/open-autoglm/autoglm/internal/telemetry"
)

// Causes a run's context is canceled with, besides errCanceled.
var (
	errLeaseLost = errors.New("task lease lost: another process took the task over")
	errShutdown  = errors.New("worker shutting down")
)

// Run starts the workers of every model, the recovery of tasks abandoned by dead processes,
// the webhook sender and (where the database has one: PostgreSQL) the listener for other replicas' notifications. It
// returns when ctx is canceled, after handing the tasks it was running back to the queue.
func (s *Service) Run(ctx context.Context) error {
	// Last out: the groups handed off by submitters that left are committed before Run
	// returns (their commits have their own timeout).
	defer s.handoffs.Wait()
	defer s.polls.Close()
	if !s.db.Dialect.IsPostgres() {
		// One process owns a SQLite file, so a task another instance left running died with
		// it: queue it again now rather than after its lease.
		if err := s.reap(ctx, true); err != nil {
			return err
		}
	}
	var wg sync.WaitGroup
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	if s.reg != nil {
		// One dispatcher per model name; a model a configuration reload adds gets its own
		// when the table changes. A removed model's dispatcher stops claiming (see dispatch).
		started := make(map[string]bool)
		startNew := func() {
			for _, m := range s.reg.Models() {
				if started[m.Name] {
					continue
				}
				started[m.Name] = true
				n := s.cfg.Workers
				if w, ok := s.cfg.ModelWorkers[m.Name]; ok {
					n = w
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					s.dispatch(runCtx, m.Name, n)
				}()
			}
		}
		changed := s.reg.Changed()
		startNew()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-runCtx.Done():
					return
				case <-changed:
					changed = s.reg.Changed()
					startNew()
				}
			}
		}()
	}
	wg.Add(3)
	go func() {
		defer wg.Done()
		s.reapLoop(runCtx)
	}()
	go func() {
		defer wg.Done()
		s.retentionLoop(runCtx)
	}()
	go func() {
		defer wg.Done()
		s.deliverLoop(runCtx)
	}()
	if s.db.Listener != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.listen(runCtx)
		}()
	}
	<-ctx.Done()
	wg.Wait()
	return nil
}

// dispatch runs up to n tasks of model m at once: it claims the next task whenever a worker
// is free and runs it. When nothing can be claimed it waits for a wake-up, or for the poll
// interval on PostgreSQL and for the next task's run_after on SQLite (sqldb.PollWait).
//
// Each task runs on the model of that name in force when it is claimed, so that a reload's
// new backends serve it; while no model has the name (a reload removed it) nothing is claimed.
func (s *Service) dispatch(ctx context.Context, name string, n int) {
	wake, unsub := s.hub.subscribe(modelTopic(name))
	defer unsub()
	slots := make(chan struct{}, n)
	var wg sync.WaitGroup
	defer wg.Wait()
	tick := time.NewTimer(s.poll)
	defer tick.Stop()
	due := func() (time.Time, error) { return s.nextRunAfter(ctx, name) }
	for {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		var (
			c *claimed
			m *router.Model
		)
		for {
			// Without the model, or (load_aware) without room on its backends, nothing in
			// the database says when to look again: look every poll interval.
			wait := s.poll
			cur, ok := s.reg.Lookup(name)
			if ok && cur.Name == name && (s.cfg.Policy != config.PolicyLoadAware || hasRoom(cur, n)) {
				var err error
				c, err = s.claim(ctx, name)
				if err != nil && ctx.Err() == nil {
					s.log.Warn("task claim failed", "model", name, "err", err)
				}
				m = cur
				if c != nil {
					break
				}
				wait = sqldb.PollWait(s.db.Dialect, s.poll, due)
			}
			tick.Reset(wait)
			select {
			case <-wake:
			case <-tick.C:
			case <-ctx.Done():
				return
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			s.execute(ctx, m, c)
		}()
	}
}

// hasRoom reports whether one of m's backends has fewer requests in flight (from tasks and
// from ordinary gateway traffic alike) than its share of the model's n workers. Under
// load_aware a task waits in the task queue, where policy and fairness still apply, while
// every backend is busy, instead of in a backend's queue.
func hasRoom(m *router.Model, n int) bool {
	if len(m.Targets) == 0 {
		return true
	}
	share := (n + len(m.Targets) - 1) / len(m.Targets)
	for _, t := range m.Targets {
		if t.Inflight() < share {
			return true
		}
	}
	return false
}

// claimed is a task this process holds the lease of.
type claimed struct {
	id       string
	spec     Spec
	attempt  int
	attempts int // the most attempts the task may have

	keyID, userID string // who submitted it, for usage records
	queuedAt      int64  // Unix microseconds the task was created, when known (claim)
}

// head is the first queued task of one owner, a candidate for the next claim.
type head struct {
	id        string
	owner     string
	priority  int64
	est       int64
	createdAt int64
}

// policyOrder is the SQL order of each policy within one owner's queue; better compares
// heads of different owners the same way.
var policyOrder = map[string]string{
	config.PolicyFIFO:          "created_at, id",
	config.PolicyLoadAware:     "created_at, id",
	config.PolicyPriority:      "priority DESC, created_at, id",
	config.PolicyShortestFirst: "est_tokens, created_at, id",
}

func better(policy string, a, b head) bool {
	switch policy {
	case config.PolicyPriority:
		if a.priority != b.priority {
			return a.priority > b.priority
		}
	case config.PolicyShortestFirst:
		if a.est != b.est {
			return a.est < b.est
		}
	}
	if a.createdAt != b.createdAt {
		return a.createdAt < b.createdAt
	}
	return a.id < b.id
}

// claim takes the next task of model for this process, or returns nil when none is due.
//
// Fairness comes first: among owners with queued tasks, the one with the fewest tasks
// running (on every replica) goes next, so a key that queued thousands of tasks cannot
// starve one that queued a single task. The policy orders each owner's queue and breaks
// ties between owners. The claim itself is a conditional UPDATE, so two replicas racing for
// a task cannot both get it; the loser tries the next candidate.
func (s *Service) claim(ctx context.Context, model string) (*claimed, error) {
	now := time.Now().UnixMicro()
	order := policyOrder[s.cfg.Policy]
	if order == "" {
		order = policyOrder[config.PolicyFIFO]
	}
	// Each owner's head is one index seek (an index per policy order, migration 3); the
	// owners themselves come from a scan of the same index.
	rows, err := s.polls.QueryContext(ctx, s.db.q(`SELECT t.id, t.owner, t.priority, t.est_tokens, t.created_at
		FROM (SELECT DISTINCT owner FROM tasks WHERE model = ? AND status = 'queued') AS o
		JOIN tasks AS t ON t.id = (SELECT h.id FROM tasks AS h WHERE h.model = ? AND h.status = 'queued' AND h.owner = o.owner
			AND h.run_after <= ? ORDER BY `+order+` LIMIT 1)`), model, model, now)
	if err != nil {
		return nil, err
	}
	var heads []head
	for rows.Next() {
		var h head
		if err := rows.Scan(&h.id, &h.owner, &h.priority, &h.est, &h.createdAt); err != nil {
			rows.Close()
			return nil, err
		}
		heads = append(heads, h)
	}
	rows.Close()
	if err := rows.Err(); err != nil || len(heads) == 0 {
		return nil, err
	}
	runningBy := map[string]int{}
	if len(heads) > 1 {
		rows, err := s.polls.QueryContext(ctx, s.db.q(`SELECT owner, COUNT(*) FROM tasks WHERE model = ? AND status = 'running' GROUP BY owner`), model)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var o string
			var n int
			if err := rows.Scan(&o, &n); err != nil {
				rows.Close()
				return nil, err
			}
			runningBy[o] = n
		}
		rows.Close()
	}
	// Try heads best first; a head another replica took in the meantime is skipped.
	for len(heads) > 0 {
		bi := 0
		for i := 1; i < len(heads); i++ {
			a, b := heads[i], heads[bi]
			if ra, rb := runningBy[a.owner], runningBy[b.owner]; ra != rb {
				if ra < rb {
					bi = i
				}
				continue
			}
			if better(s.cfg.Policy, a, b) {
				bi = i
			}
		}
		h := heads[bi]
		heads = append(heads[:bi], heads[bi+1:]...)
		c, err := s.take(ctx, h.id)
		if c != nil && c.attempt == 1 {
			c.queuedAt = h.createdAt
		}
		if err != nil || c != nil {
			return c, err
		}
	}
	return nil, nil
}

// take claims one queued task: status running, this process's lease, one more attempt, and
// the "running" event that starts the attempt, in one transaction.
func (s *Service) take(ctx context.Context, id string) (*claimed, error) {
	now := time.Now().UnixMicro()
	lease := now + s.cfg.Lease.D().Microseconds()
	var c *claimed
	err := s.db.inTx(ctx, func(tx *sql.Tx) error {
		r, ok, err := s.db.claim(ctx, tx, id, s.instance, lease, now)
		if !ok {
			return err
		}
		var spec Spec
		if err := json.Unmarshal([]byte(r.spec), &spec); err != nil {
			return err
		}
		data, _ := json.Marshal(statusEvent{Status: StatusRunning, Attempt: int(r.attempt)})
		if err := s.db.insertEvent(ctx, tx, id, r.seq, EventStatus, data, now); err != nil {
			return err
		}
		if err := s.db.notify(ctx, tx, taskTopic(id)); err != nil {
			return err
		}
		c = &claimed{id: id, spec: spec, attempt: int(r.attempt), attempts: int(r.maxAttempts), keyID: r.keyID, userID: r.userID}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("task: claim %s: %w", id, err)
	}
	if c != nil {
		s.hub.notify(taskTopic(id))
	}
	return c, nil
}

// execute runs one claimed task to its end: a terminal status, a retry (queued again), or,
// when the lease was lost or the process is stopping, nothing (another process or a restart
// finishes it).
func (s *Service) execute(ctx context.Context, m *router.Model, c *claimed) {
	runCtx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	defer cancel(nil)
	s.mu.Lock()
	s.running[c.id] = cancel
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.running, c.id)
		s.mu.Unlock()
	}()
	// Stopping the process does not cancel the run's context directly: the run is handed
	// back below instead, with its cause recorded.
	stopWatch := context.AfterFunc(ctx, func() { cancel(errShutdown) })
	defer stopWatch()

	spanCtx, taskSpan, runSpan := s.startRun(runCtx, c, m.Name, time.Now())
	var timeoutCtx = spanCtx
	if d := s.cfg.Timeout.D(); d > 0 {
		var stop context.CancelFunc
		timeoutCtx, stop = context.WithTimeout(spanCtx, d)
		defer stop()
	}
	ev := newEmitter(s, c, cancel)
	hbDone := make(chan struct{})
	go func() {
		defer close(hbDone)
		ev.heartbeat(runCtx)
	}()
	start := time.Now()
	runAcct := context.WithValue(timeoutCtx, runAccountKey{}, runAccount{keyID: c.keyID, userID: c.userID, taskID: c.id})
	res, backendName, err := s.runSpec(runAcct, m, c.spec, ev)
	flushErr := ev.flush(context.WithoutCancel(ctx))
	cause := context.Cause(runCtx)
	cancel(nil)
	<-hbDone

	bg := context.WithoutCancel(ctx)
	owner := s.instance
	outcome := runOutcome(err, cause, flushErr, timeoutCtx.Err())
	s.obs.run.WithLabelValues(m.Name, outcome).Observe(time.Since(start).Seconds())
	if runSpan.IsRecording() {
		if outcome != "succeeded" {
			telemetry.Fail(runSpan, outcome, "the attempt ended: "+outcome)
		}
		if res != nil && res.Usage != nil {
			runSpan.SetAttributes(telemetry.GenAIUsageInputTokens.Int(res.Usage.PromptTokens),
				telemetry.GenAIUsageOutputTokens.Int(res.Usage.CompletionTokens), telemetry.AttrBackend.String(backendName))
		}
	}
	runSpan.End()
	taskSpan.End()
	switch {
	case errors.Is(cause, errLeaseLost) || errors.Is(flushErr, errLeaseLost):
		s.log.Warn("task lease lost; leaving it to its new owner", "task", c.id)
	case err == nil:
		if res.Usage != nil && res.Usage.CompletionTokens > 0 {
			s.noteSpeed(m.Name, res.Usage.CompletionTokens, time.Since(start))
		}
		s.finish(bg, c.id, &owner, StatusSucceeded, res, nil)
	case errors.Is(cause, errShutdown):
		s.requeue(bg, c, 0, reasonShutdown)
	case errors.Is(cause, errCanceled):
		s.finish(bg, c.id, &owner, StatusCanceled, nil, errCanceledByClient())
	case errors.Is(timeoutCtx.Err(), context.DeadlineExceeded):
		s.finish(bg, c.id, &owner, StatusFailed, nil, &Error{Code: string(apierr.CodeTaskTimeout), Message: fmt.Sprintf("the task ran longer than its time limit (%s)", s.cfg.Timeout.D())})
	default:
		e := apierr.From(err)
		retry := e.Kind == apierr.Unavailable || e.Kind == apierr.Upstream || e.Kind == apierr.RateLimited || e.Kind == apierr.Timeout
		if retry && c.attempt < c.attempts {
			backoff := s.cfg.RetryBackoff.D() << min(c.attempt-1, 16)
			s.requeue(bg, c, backoff, e.PublicCode())
			return
		}
		s.finish(bg, c.id, &owner, StatusFailed, nil, &Error{Code: string(failureCode(e)), Message: e.PublicMessage()})
	}
}

// finish is terminate for a task this process runs. A failing database is tried a few times
// over about the lease's length; after that the lease runs out and recovery runs the task
// again (its result is lost, never recorded twice).
func (s *Service) finish(ctx context.Context, id string, owner *string, st Status, res *Result, e *Error) {
	wait := 100 * time.Millisecond
	deadline := time.Now().Add(s.cfg.Lease.D() / 2)
	for {
		done, err := s.terminate(ctx, id, StatusRunning, owner, st, res, e)
		if err == nil {
			if !done {
				s.log.Warn("task was no longer ours to finish", "task", id, "status", st)
			}
			return
		}
		if time.Now().Add(wait).After(deadline) {
			s.log.Warn("task finish failed; recovery will run it again", "task", id, "status", st, "err", err)
			return
		}
		s.log.Warn("task finish failed; retrying", "task", id, "status", st, "err", err, "in", wait)
		time.Sleep(wait)
		wait *= 2
	}
}

// reasonShutdown is the requeue reason of a run handed back by a process stopping
// gracefully; such a run does not count as an attempt.
const reasonShutdown = "shutdown"

// requeue hands a task this process holds back to the queue, due after delay, with a
// "queued" event saying why.
func (s *Service) requeue(ctx context.Context, c *claimed, delay time.Duration, reason string) {
	now := time.Now().UnixMicro()
	refund := 0
	if reason == reasonShutdown {
		refund = 1
	}
	err := s.db.inTx(ctx, func(tx *sql.Tx) error {
		seq, ok, err := s.db.release(ctx, tx, c.id, s.instance, now+delay.Microseconds(), int64(refund), now)
		if !ok {
			return err
		}
		data, _ := json.Marshal(statusEvent{Status: StatusQueued, Attempt: c.attempt, Reason: reason})
		if err := s.db.insertEvent(ctx, tx, c.id, seq, EventStatus, data, now); err != nil {
			return err
		}
		if err := s.db.notify(ctx, tx, taskTopic(c.id)); err != nil {
			return err
		}
		return s.db.notify(ctx, tx, modelTopic(c.spec.Model))
	})
	if err != nil {
		s.log.Warn("task requeue failed; recovery will retry it", "task", c.id, "err", err)
		return
	}
	s.hub.notify(taskTopic(c.id))
	s.hub.notify(modelTopic(c.spec.Model))
}

// reapLoop recovers tasks whose process died: every quarter lease (at most every second) on
// PostgreSQL, and on SQLite when the earliest lease runs out (sqldb.PollWait).
func (s *Service) reapLoop(ctx context.Context) {
	every := min(max(s.cfg.Lease.D()/4, 100*time.Millisecond), time.Second)
	t := time.NewTimer(every)
	defer t.Stop()
	due := func() (time.Time, error) { return s.nextLeaseEnd(ctx) }
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.reap(ctx, false); err != nil && ctx.Err() == nil {
				s.log.Warn("task recovery failed", "err", err)
			}
		}
		t.Reset(sqldb.PollWait(s.db.Dialect, every, due))
	}
}

// nextRunAfter is when the earliest queued task of model may run (the zero time: none is
// queued), for the dispatcher's wait on SQLite (sqldb.PollWait). Every task that becomes
// queued wakes the dispatcher (submission, release, recovery), so only a retry's backoff
// ends unannounced.
func (s *Service) nextRunAfter(ctx context.Context, model string) (time.Time, error) {
	return sqldb.ScanDue(s.polls.QueryRowContext(ctx, s.db.q(`SELECT MIN(run_after) FROM tasks WHERE model = ? AND status = 'queued'`), model),
		time.UnixMicro)
}

// nextLeaseEnd is when the earliest lease of a running task runs out, for the reaper's wait
// on SQLite (sqldb.PollWait). With no task running, no lease can run out before a lease's
// length from now: a task claimed later is leased from its claim.
func (s *Service) nextLeaseEnd(ctx context.Context) (time.Time, error) {
	// reap takes the leases that ended before now: one microsecond after the end.
	t, err := sqldb.ScanDue(s.polls.QueryRowContext(ctx, s.db.q(`SELECT MIN(lease_until) + 1 FROM tasks WHERE status = 'running'`)),
		time.UnixMicro)
	if err == nil && t.IsZero() {
		t = time.Now().Add(s.cfg.Lease.D())
	}
	return t, err
}

// reap recovers running tasks whose lease ran out (or, with all, every running task another
// instance holds): a task asked to cancel becomes canceled, one out of attempts fails as
// interrupted, any other is queued again. Each transition is conditional on the lease still
// being the expired one, so replicas reaping together recover a task once.
func (s *Service) reap(ctx context.Context, all bool) error {
	now := time.Now().UnixMicro()
	cond := `status = 'running' AND lease_until < ?`
	arg := any(now)
	if all {
		cond = `status = 'running' AND lease_owner <> ?`
		arg = s.instance
	}
	rows, err := s.polls.QueryContext(ctx, s.db.q(`SELECT id, model, attempts, max_attempts, cancel_requested, lease_owner FROM tasks WHERE `+cond), arg)
	if err != nil {
		return err
	}
	type stale struct {
		id, model, owner         string
		attempts, max, cancelReq int
	}
	var list []stale
	for rows.Next() {
		var x stale
		if err := rows.Scan(&x.id, &x.model, &x.attempts, &x.max, &x.cancelReq, &x.owner); err != nil {
			rows.Close()
			return err
		}
		list = append(list, x)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, x := range list {
		owner := x.owner
		switch {
		case x.cancelReq != 0:
			_, err = s.terminate(ctx, x.id, StatusRunning, &owner, StatusCanceled, nil,
				errCanceledByClient())
		case x.attempts >= x.max:
			_, err = s.terminate(ctx, x.id, StatusRunning, &owner, StatusFailed, nil,
				&Error{Code: string(apierr.CodeTaskInterrupted), Message: fmt.Sprintf("the task was interrupted on each of its %d attempts", x.attempts)})
		default:
			c := &claimed{id: x.id, spec: Spec{Model: x.model}, attempt: x.attempts}
			err = s.requeueFrom(ctx, c, owner)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// requeueFrom queues again a task whose lease another (dead) instance holds.
func (s *Service) requeueFrom(ctx context.Context, c *claimed, owner string) error {
	now := time.Now().UnixMicro()
	queued := false
	err := s.db.inTx(ctx, func(tx *sql.Tx) error {
		seq, ok, err := s.db.release(ctx, tx, c.id, owner, now, 0, now)
		if !ok {
			return err
		}
		data, _ := json.Marshal(statusEvent{Status: StatusQueued, Attempt: c.attempt, Reason: "interrupted"})
		if err := s.db.insertEvent(ctx, tx, c.id, seq, EventStatus, data, now); err != nil {
			return err
		}
		if err := s.db.notify(ctx, tx, taskTopic(c.id)); err != nil {
			return err
		}
		queued = true
		return s.db.notify(ctx, tx, modelTopic(c.spec.Model))
	})
	if err == nil && queued {
		s.log.Info("task interrupted; queued again", "task", c.id, "attempt", c.attempt)
		s.hub.notify(taskTopic(c.id))
		s.hub.notify(modelTopic(c.spec.Model))
	}
	return err
}

// noteSpeed updates the model's measured tokens per second (an EWMA), which
// EstimatedSeconds uses.
func (s *Service) noteSpeed(model string, tokens int, d time.Duration) {
	if d <= 0 {
		return
	}
	v := float64(tokens) / d.Seconds()
	s.mu.Lock()
	if old, ok := s.tps[model]; ok {
		v = 0.8*old + 0.2*v
	}
	s.tps[model] = v
	s.mu.Unlock()
}

// TokensPerSecond is the model's measured generation speed in tasks run by this process, 0
// before the first.
func (s *Service) TokensPerSecond(model string) float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tps[model]
}
