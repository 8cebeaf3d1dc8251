// Package task is autoglm's asynchronous task system: code generation (and chat completions
// and embeddings) taken off the request path. A client submits a task, gets its id at once,
// and follows it by polling, by a server-sent event stream, or by a signed webhook.
//
// # Durability
//
// Task rows live in the store's database (SQLite by default, PostgreSQL for replicas), in
// tables of this package's own migrations (task_schema). A task is accepted only once its
// row and its first event are committed. From then on every change is one transaction that
// is conditional on the state it leaves, each a named statement in transitions.go:
//
//   - claim: queued → running, with this process's lease (lease_owner, lease_until);
//   - recordProgress / renewLease: a tokens event or a heartbeat, renewing the lease, only
//     while the lease is held;
//   - release (retry): running → queued, only while the lease is held (or, in recovery,
//     while the expired lease is the one seen);
//   - finish: running (or queued, for a cancel) → one terminal status, with the terminal
//     event and the webhook delivery row written in the same transaction.
//
// A process killed at any moment leaves its tasks running with a lease that stops being
// renewed. Recovery (every process, every quarter lease; and at start on SQLite, whose file
// has one process) queues them again, or fails them when they used up their attempts.
// Because each transition names the state it comes from, two processes can never both move
// a task out of a state, so a task reaches exactly one terminal status, once. The webhook is
// an outbox row committed with that status, so it is sent at least once, with one delivery
// id, even across crashes.
//
// # Why not River
//
// The design names River as the queue. This package uses its own queue in the same tables
// instead, for three reasons: the invariant that matters (exactly one terminal status per
// task, and its webhook committed with it) needs the status change, the event log and the
// outbox in one conditional transaction, which is simplest when the queue row is the task
// row; on SQLite every write shares the store's single writer connection, and a second
// scheduler (River's producers, leader election and maintenance services) polling on it
// competes with the request path; and the whole queue is a few statements that both
// dialects run, with no extra modules. The price is that retries, rescue and scheduling are
// ours to test, which the tests in this package do, with real processes killed by SIGKILL.
//
// # Scheduling
//
// Each model has a pool of workers (tasks.workers, tasks.model_workers). When a worker is
// free, the next task comes from the owner (API key) with the fewest running tasks of the
// model, so one key cannot starve others; within an owner, and between owners with as many
// running, tasks.policy orders the queue: fifo, priority, shortest_first (estimated tokens)
// or load_aware (fifo, but a task starts only while one of the model's backends has fewer
// requests in flight than its share of the workers). Workers call router.Registry.Do, so
// tasks get the gateway's balancing, retries and failover.
//
// # Events
//
// Every change appends to the task's event log with the next sequence number (1, 2, 3, …
// without gaps): status changes, and the generated text in "tokens" events written every
// tasks.event_flush. GET /v1/task/{id}/events streams the log as server-sent events with the
// sequence number as the id, so a reconnect with Last-Event-ID resumes exactly after the
// last event seen. Waiting streams are woken in process, or through PostgreSQL LISTEN/NOTIFY
// from other replicas, and poll the log as a fallback.
package task
