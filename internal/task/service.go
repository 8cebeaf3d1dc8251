package task

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/open-autoglm/autoglm/internal/codecheck"
	"github.com/open-autoglm/autoglm/internal/config"
	"github.com/open-autoglm/autoglm/internal/router"
	"github.com/open-autoglm/autoglm/internal/store"
	"github.com/open-autoglm/autoglm/internal/store/sqldb"
	"github.com/open-autoglm/autoglm/internal/usage"
)

// Errors the service returns; the HTTP layer maps them to API errors.
var (
	// ErrNotFound: no task has the id (or the caller may not see it).
	ErrNotFound = errors.New("task: not found")
	// ErrIdempotencyMismatch: an Idempotency-Key was reused with a different request.
	ErrIdempotencyMismatch = errors.New("task: idempotency key reused with a different request")
	// ErrFinished: the task already reached a terminal state.
	ErrFinished = errors.New("task: already finished")
)

// Options configure a Service.
type Options struct {
	// Config is the tasks section, defaults applied.
	Config config.Task
	// DB holds the task tables (DBFor gives the store's).
	DB DB
	// Registry runs the models; workers call Registry.Do so tasks get the gateway's
	// balancing, retries and failover.
	Registry *router.Registry
	// Logger receives worker and delivery failures. Default: discarded.
	Logger *slog.Logger
	// PollInterval is how often idle dispatchers, event streams and the webhook sender look
	// at the database without being woken. Default 500ms.
	PollInterval time.Duration
	// Instance names this process in task leases. Default: random.
	Instance string
	// Usage, when set, receives the outcome of every model call a task run makes (repair
	// rounds included), as the request path's sink does for HTTP requests, so quotas, usage
	// records and model metrics count tasks. It must not block (usage.Recorder does not).
	Usage usage.Sink
	// CodeCheck is the code_check section, defaults applied: whether code tasks check their
	// answers and how many repair rounds they may run.
	CodeCheck config.CodeCheck
	// Checker checks the code blocks of code tasks. Nil: checks off.
	Checker *codecheck.Checker
	// CodeStats, when set, counts checks and repairs per language (for the metrics).
	CodeStats *codecheck.Stats
	// Tracing, when set, traces every task attempt (queue wait, run, and the model request
	// under it) and every webhook delivery attempt. Nil: no spans.
	Tracing trace.TracerProvider
}

// Service is the task system of one process: submission, queries, the workers of every
// model, crash recovery, webhooks and event streams. Several processes may share one
// PostgreSQL database; on SQLite there is one process per file.
type Service struct {
	cfg       config.Task
	codeCfg   config.CodeCheck
	checker   *codecheck.Checker
	codeStats *codecheck.Stats
	usage     usage.Sink
	count     usage.Counter // estimates usage for upstreams that report none
	db        DB
	reg       *router.Registry
	log       *slog.Logger
	poll      time.Duration
	instance  string
	hub       *hub
	dest      destinations
	tracer    trace.TracerProvider
	obs       *observer
	polls     *sqldb.Stmts // the queue's polls, prepared once (claim, due deliveries, reap)

	group groupCommit // submissions waiting to be committed together
	// handoffs are the group-commit leaders a submitter handed its group to when it left;
	// Run waits for them, so that no commit outlives the service's store.
	handoffs sync.WaitGroup

	watchers atomic.Int64 // event streams served now (SSE and WebSocket), at most cfg.MaxWatchers

	mu      sync.Mutex
	running map[string]context.CancelCauseFunc // tasks this process runs, to cancel them
	tps     map[string]float64                 // measured tokens per second by model (EWMA)
}

// New prepares the task tables (applying migrations) and returns the service. Call Run to
// start the workers.
func New(ctx context.Context, o Options) (*Service, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 500 * time.Millisecond
	}
	if o.Instance == "" {
		var b [6]byte
		_, _ = rand.Read(b[:])
		o.Instance = "w_" + hex.EncodeToString(b[:])
	}
	if o.DB.W == nil || o.DB.R == nil {
		return nil, errors.New("task: Options.DB is required")
	}
	if o.Config.MaxWatchers <= 0 {
		o.Config.MaxWatchers = config.DefaultTaskMaxWatchers
	}
	s := &Service{
		cfg: o.Config, usage: o.Usage, db: o.DB, reg: o.Registry, log: o.Logger, poll: o.PollInterval,
		instance: o.Instance, hub: newHub(), codeCfg: o.CodeCheck.WithDefaults(), checker: o.Checker, codeStats: o.CodeStats,
		running: make(map[string]context.CancelCauseFunc), tps: make(map[string]float64),
		tracer: o.Tracing, obs: newObserver(modelNames(o.Registry)), polls: sqldb.NewStmts(o.DB.R, o.DB.Dialect),
	}
	for _, c := range o.Config.WebhookAllow {
		a, err := config.ParseWebhookTarget(c)
		if err != nil {
			return nil, fmt.Errorf("task: webhook_allow: %w", err)
		}
		s.dest.allow = append(s.dest.allow, a)
	}
	if err := o.DB.migrate(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// RefuseListener tells the service one of the gateway's own listening addresses, which
// webhooks never reach, whatever tasks.webhook_allow says (a callback to the gateway would
// call its API from inside). An unspecified address (0.0.0.0, ::) stands for every address
// of this host on that port. Safe to call at any time.
func (s *Service) RefuseListener(addr net.Addr) {
	ap, err := netip.ParseAddrPort(addr.String())
	if err != nil {
		return
	}
	s.dest.refuseListener(ap)
}

// Caller is who asks: the owner new tasks are recorded under, and whether the caller sees
// every task. The zero Caller (authentication off) sees everything.
type Caller struct {
	// Owner identifies an API key ("key:<id>") or a user ("user:<id>"); empty with auth off.
	Owner string
	// All lets the caller see and cancel every task (admins, and everyone with auth off).
	All bool
	// KeyID and UserID are recorded with the caller's tasks for usage records.
	KeyID, UserID string
}

func (c Caller) sees(owner string) bool { return c.All || c.Owner == owner }

// Submission is one task to queue.
type Submission struct {
	Spec Spec
	// IdempotencyKey, when set, makes a repeated submission by the same owner return the
	// first task instead of queueing another.
	IdempotencyKey string
}

// Submit validates and queues a task. It returns the task and whether it already existed
// under the submission's idempotency key (then nothing new was queued). A reused key with a
// different request is ErrIdempotencyMismatch.
func (s *Service) Submit(ctx context.Context, c Caller, sub Submission) (Task, bool, error) {
	spec, err := s.normalize(sub.Spec)
	if err != nil {
		return Task{}, false, err
	}
	specJSON, err := json.Marshal(spec)
	if err != nil {
		return Task{}, false, err
	}
	sum := sha256.Sum256(specJSON)
	hash := hex.EncodeToString(sum[:])
	req := &pendingSubmit{
		id: store.NewID("task"), owner: c.Owner, keyID: c.KeyID, userID: c.UserID, idem: sub.IdempotencyKey, spec: spec,
		specJSON: string(specJSON), hash: hash, done: make(chan struct{}),
	}
	s.commitSubmit(ctx, req)
	if req.err != nil {
		return Task{}, false, fmt.Errorf("task: submit: %w", req.err)
	}
	if req.inserted {
		return req.created, false, nil
	}
	// An existing task under the same idempotency key: the same request gets it back.
	var existingID, existingHash string
	err = s.db.W.QueryRowContext(ctx, s.db.q(`SELECT id, req_hash FROM tasks WHERE owner = ? AND idem_key = ?`),
		c.Owner, sub.IdempotencyKey).Scan(&existingID, &existingHash)
	if err != nil {
		return Task{}, false, fmt.Errorf("task: submit: idempotency lookup: %w", err)
	}
	if existingHash != hash {
		return Task{}, false, ErrIdempotencyMismatch
	}
	t, _, err := s.db.loadTask(ctx, s.db.W, existingID)
	return t, true, err
}

// Get returns a task the caller may see, or ErrNotFound.
func (s *Service) Get(ctx context.Context, c Caller, id string) (Task, error) {
	t, _, err := s.db.loadTask(ctx, s.db.R, id)
	if err != nil {
		return Task{}, err
	}
	if !c.sees(t.Owner) {
		return Task{}, ErrNotFound
	}
	return t, nil
}

// Cancel cancels a task the caller may see. A queued task is canceled at once; a running one
// is asked to stop and reaches canceled as soon as its worker notices (at once in this
// process, within a heartbeat elsewhere). A finished task is ErrFinished; the task is
// returned in every case.
func (s *Service) Cancel(ctx context.Context, c Caller, id string) (Task, error) {
	t, _, err := s.db.loadTask(ctx, s.db.W, id)
	if err != nil {
		return Task{}, err
	}
	if !c.sees(t.Owner) {
		return Task{}, ErrNotFound
	}
	if t.Status.Terminal() {
		return t, ErrFinished
	}
	done, err := s.terminate(ctx, id, StatusQueued, nil, StatusCanceled, nil,
		errCanceledByClient())
	if err != nil {
		return Task{}, err
	}
	if !done {
		// Running (or it started a moment ago): flag it, then stop it if it runs here.
		if err := s.db.requestCancel(ctx, s.db.W, id, time.Now().UnixMicro()); err != nil {
			return Task{}, fmt.Errorf("task: cancel: %w", err)
		}
		s.cancelLocal(id)
		if s.db.Listener != nil {
			// The replica running it stops at once instead of at its next heartbeat.
			if err := s.db.notify(ctx, s.db.W, cancelTopic(id)); err != nil {
				s.log.Warn("task cancel: notify failed; the run stops at its next heartbeat", "task", id, "err", err)
			}
		}
		// A task queued again between the two statements is still canceled here.
		if _, err := s.terminate(ctx, id, StatusQueued, nil, StatusCanceled, nil,
			errCanceledByClient()); err != nil {
			return Task{}, err
		}
	}
	t, _, err = s.db.loadTask(ctx, s.db.W, id)
	return t, err
}

// cancelLocal stops the run of task id if this process runs it.
func (s *Service) cancelLocal(id string) {
	s.mu.Lock()
	stop := s.running[id]
	s.mu.Unlock()
	if stop != nil {
		stop(errCanceled)
	}
}

// ListParams select tasks; the zero value lists the newest 20 the caller may see.
type ListParams struct {
	Status string
	Model  string
	Kind   string
	// Limit is the page size, 1 to 100. Default 20.
	Limit int
	// Cursor continues a previous page (its Next).
	Cursor string
}

// List returns tasks newest first and the cursor of the next page ("" on the last).
func (s *Service) List(ctx context.Context, c Caller, p ListParams) ([]Task, string, error) {
	if p.Limit <= 0 {
		p.Limit = 20
	}
	p.Limit = min(p.Limit, 100)
	where := "1 = 1"
	var args []any
	if !c.All {
		where += " AND owner = ?"
		args = append(args, c.Owner)
	}
	if p.Status != "" {
		if !validStatus(p.Status) {
			return nil, "", fmt.Errorf("%w: unknown status %q", errInvalid, p.Status)
		}
		where += " AND status = ?"
		args = append(args, p.Status)
	}
	if p.Model != "" {
		where += " AND model = ?"
		args = append(args, p.Model)
	}
	if p.Kind != "" {
		where += " AND kind = ?"
		args = append(args, p.Kind)
	}
	if p.Cursor != "" {
		cur, err := store.ParseCursor(p.Cursor)
		if err != nil || cur.ID == "" {
			return nil, "", fmt.Errorf("%w: malformed cursor", errInvalid)
		}
		us := cur.Time.UnixMicro()
		where += " AND (created_at < ? OR (created_at = ? AND id < ?))"
		args = append(args, us, us, cur.ID)
	}
	args = append(args, p.Limit+1)
	rows, err := s.db.R.QueryContext(ctx, s.db.q(`SELECT `+taskColumns+` FROM tasks WHERE `+where+
		` ORDER BY created_at DESC, id DESC LIMIT ?`), args...)
	if err != nil {
		return nil, "", fmt.Errorf("task: list: %w", err)
	}
	defer rows.Close()
	out := []Task{}
	for rows.Next() {
		t, _, err := scanTask(rows)
		if err != nil {
			return nil, "", fmt.Errorf("task: list: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("task: list: %w", err)
	}
	next := ""
	if len(out) > p.Limit {
		out = out[:p.Limit]
		last := out[len(out)-1]
		next = store.Cursor{Time: last.CreatedAt, ID: last.ID}.String()
	}
	return out, next, nil
}

// Events returns up to limit events of a task after seq after, oldest first.
func (s *Service) Events(ctx context.Context, id string, after int64, limit int) ([]Event, error) {
	rows, err := s.db.R.QueryContext(ctx, s.db.q(`SELECT seq, type, data, created_at FROM task_events
		WHERE task_id = ? AND seq > ? ORDER BY seq LIMIT ?`), id, after, limit)
	if err != nil {
		return nil, fmt.Errorf("task: events: %w", err)
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		var e Event
		var data string
		var at int64
		if err := rows.Scan(&e.Seq, &e.Type, &data, &at); err != nil {
			return nil, fmt.Errorf("task: events: %w", err)
		}
		e.Data = json.RawMessage(data)
		e.At = fromMicros(at)
		out = append(out, e)
	}
	return out, rows.Err()
}

// terminate moves a task to a terminal status in one transaction, if it is in state from
// (queued, or running with the lease held by *leaseOwner; see DB.finish):
// the row, its terminal event with the whole task, and its webhook delivery when it has a
// callback. It reports whether it did; false means the task was not in that state, and
// nothing changed. This is the only way into a terminal status, which is why a task reaches
// exactly one.
func (s *Service) terminate(ctx context.Context, id string, from Status, leaseOwner *string, st Status, res *Result, e *Error) (bool, error) {
	now := time.Now().UnixMicro()
	var resJSON, errJSON any
	if res != nil {
		b, _ := json.Marshal(res)
		resJSON = string(b)
	}
	if e != nil {
		b, _ := json.Marshal(e)
		errJSON = string(b)
	}
	p := finishParams{id: id, from: from, to: st, result: resJSON, errJSON: errJSON, now: now}
	if leaseOwner != nil {
		p.owner = *leaseOwner
	}
	done := false
	err := s.db.inTx(ctx, func(tx *sql.Tx) error {
		seq, ok, err := s.db.finish(ctx, tx, p)
		if !ok {
			return err
		}
		t, spec, err := s.db.loadTask(ctx, tx, id)
		if err != nil {
			return err
		}
		var dl *Delivery
		var body []byte
		if spec.CallbackURL != "" {
			dl = &Delivery{ID: store.NewID("dlv"), Status: "pending", Attempts: []Attempt{}}
			t.Webhook = dl
			body, _ = json.Marshal(t)
			if err := s.db.insertDelivery(ctx, tx, id, dl.ID, spec.CallbackURL, string(body), now,
				now+s.cfg.WebhookRetryFor.D().Microseconds()); err != nil {
				return err
			}
			if err := s.db.notify(ctx, tx, deliveryTopic); err != nil {
				return err
			}
		}
		data, _ := json.Marshal(statusEvent{Status: st, Attempt: t.Attempts, Task: &t})
		if err := s.db.insertEvent(ctx, tx, id, seq, EventStatus, data, now); err != nil {
			return err
		}
		if err := s.db.notify(ctx, tx, taskTopic(id)); err != nil {
			return err
		}
		done = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("task: finish %s: %w", id, err)
	}
	if done {
		s.hub.notify(taskTopic(id))
		s.hub.notify(deliveryTopic) // cheap when nothing is due: one indexed query
	}
	return done, nil
}

// estimateTokens is the size of a task for shortest_first: the tokens it may generate plus a
// rough count of its prompt (four bytes a token).
func estimateTokens(sp Spec) int64 {
	n := len(sp.Prompt) + len(sp.Input)
	for _, m := range sp.Messages {
		n += len(m.Content)
	}
	return int64(sp.MaxTokens) + int64(n/4)
}

var (
	errInvalid  = errors.New("invalid task")
	errCanceled = errors.New("task canceled by the client")
)

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
