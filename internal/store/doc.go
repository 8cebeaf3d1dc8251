// Package store is where governance data lives: users, API keys, usage records and the audit
// log, behind one interface (Store) with two drivers.
//
// # Drivers
//
// internal/store/sqlite is the embedded default: one file under the data directory, WAL, a
// single writer connection and a pool of readers, so that it never answers "database is
// locked". internal/store/postgres (pgx) is for several replicas sharing one database. A
// driver registers itself when its package is imported; Open picks one by the "store.driver"
// setting. Both pass the conformance suite in internal/store/storetest.
//
// Each driver applies its versioned migrations at Open inside one transaction, recorded in a
// schema_migrations table; on PostgreSQL an advisory lock makes replicas that start together
// take turns.
//
// The methods themselves are written once, in internal/store/sqlstore, over one SQL layer,
// internal/store/sqldb: the dialect (placeholders, stored times and lists, keyset
// comparisons, row locks, the clock rows are stamped with), the classification of driver
// errors into ErrNotFound, ErrConflict, ErrInvalid and ErrUnavailable, the where-builder and
// page assembly. Each state change is a named statement, as in the task queue: the project
// keeps one persistence style for everything in the store's database (see sqlstore for why).
// A driver keeps only what truly differs: how it opens the database and its migrations' DDL.
// Both implement sqldb.Source, through which the components that keep their own tables in
// the same database (the task queue, stored responses, batches) find it, with no knowledge
// of which driver is underneath.
//
// # The request path
//
// Usage and audit records of model requests are not written by the request itself: it hands
// them to a Batcher, which queues them in memory (bounded) and writes them in batches, one
// transaction per batch. A slow or unavailable database therefore never slows or fails a
// request; when the queue is full, records are dropped and counted (see Batcher). A failed
// batch is retried under the same batch id, which the store claims in the records'
// transaction, so a batch whose commit went through while its attempt timed out is not
// counted twice (Store.Append, BatchMemory).
//
// # Quotas
//
// Besides the usage records, each driver keeps a daily rollup (one row per key, user and UTC
// day), updated in the same transaction as the records it sums. UsageTotals over whole days
// — a daily or monthly quota — reads the rollup, so its cost does not grow with traffic.
//
// # Keys across replicas
//
// Each replica keeps the keys in memory and follows changes with KeysChangedSince, whose
// timestamps come from the database so that replicas' clocks do not matter. A revocation (or
// disabling a user) is seen by every replica on its next poll.
//
// # Times
//
// Times are stored with microsecond precision and returned in UTC. Lists are newest first and
// paginated with opaque cursors (Page.Next).
package store
