package store

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/open-autoglm/autoglm/internal/config"
)

// Appender writes records in one transaction, applying a batch id at most once (see
// Store.Append); Store implements it.
type Appender interface {
	Append(ctx context.Context, batch string, usage []UsageRecord, audit []AuditRecord) error
}

// BatcherOptions tunes a Batcher; zero fields take the defaults of the store.batch settings.
type BatcherOptions struct {
	// Size is the most records in one transaction; reaching it starts a write at once.
	Size int
	// Interval is how often whatever is queued is written.
	Interval time.Duration
	// Queue bounds the records waiting in memory. The writer takes the whole queue at once
	// and writes it in batches, so at most 2×Queue records are held in all.
	Queue int
	// Attempts is how many times a batch is tried before it is given up. Default 5, with
	// backoff from 100 ms doubling up to 2 s between tries. Whatever Attempts says, no
	// attempt starts whose WriteTimeout would end more than 30 minutes (half of
	// BatchMemory) after the batch's first attempt began; the defaults end within
	// 5×30 s + 4×2 s, under 3 minutes.
	Attempts int
	// WriteTimeout bounds one attempt. Default 30 s.
	WriteTimeout time.Duration
	// Logger gets a line when records are dropped or a batch is given up (at most one line
	// per kind every 10 s). Default slog.Default().
	Logger *slog.Logger
}

// BatcherOptionsFrom returns the options the "store.batch" settings give.
func BatcherOptionsFrom(c config.StoreBatch) BatcherOptions {
	return BatcherOptions{Size: c.Size, Interval: c.Interval.D(), Queue: c.Queue}
}

// BatcherStats counts records since the Batcher started. Queued = Written + Failed + Pending
// (+ any in the batch being written); Dropped were never queued.
type BatcherStats struct {
	// Queued records were accepted.
	Queued int64
	// Written records are in the store.
	Written int64
	// Dropped records were refused because the queue was full or the Batcher closed.
	Dropped int64
	// Failed records were accepted but given up after every attempt to write them failed.
	Failed int64
	// Pending records wait in memory now.
	Pending int64
}

// Batcher takes usage and audit records from the request path and writes them to the store
// in batches, from one goroutine, each batch in one transaction.
//
// Usage and Audit never block and never fail: they append to an in-memory queue under a
// mutex (tens of nanoseconds). A batch is written when Size records are queued, or every
// Interval. If the store is slow or down, records accumulate up to Queue; beyond that they
// are dropped, counted in Stats().Dropped and reported by a log line at most every 10 s. A
// batch whose write fails is retried (Attempts) and then given up, counted as Failed. The
// request path is therefore never slowed or failed by the store, and the cost is that
// accounting can miss records during a long outage — which the counters make visible.
//
// Flush writes everything queued so far; Close does the same and stops the Batcher. Records
// handed to a closed Batcher are dropped.
type Batcher struct {
	app Appender
	opt BatcherOptions

	mu      sync.Mutex
	usage   []UsageRecord // queued, oldest first
	audit   []AuditRecord
	closing bool
	// resting: the writer's clock is stopped because nothing was queued at its last tick;
	// the next record queued wakes it (run).
	resting bool

	wake    chan struct{}      // Size reached, or a record queued while resting; capacity 1
	flushes chan chan struct{} // Flush requests; closed when done
	stop    chan struct{}      // closed by Close
	done    chan struct{}      // closed when the writer goroutine has returned
	ctx     context.Context    // the writer's; canceled when Close gives up waiting
	cancel  context.CancelFunc

	queued, written, dropped, failed atomic.Int64
	lastDropLog, lastFailLog         atomic.Int64 // unix nanoseconds
}

// NewBatcher starts a Batcher writing to app. Close it to stop its goroutine.
func NewBatcher(app Appender, o BatcherOptions) *Batcher {
	if o.Size <= 0 {
		o.Size = config.DefaultBatchSize
	}
	if o.Interval <= 0 {
		o.Interval = config.DefaultBatchInterval
	}
	if o.Queue <= 0 {
		o.Queue = config.DefaultBatchQueue
	}
	if o.Attempts <= 0 {
		o.Attempts = 5
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 30 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &Batcher{
		app:     app,
		opt:     o,
		wake:    make(chan struct{}, 1),
		flushes: make(chan chan struct{}),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
		ctx:     ctx,
		cancel:  cancel,
	}
	go b.run()
	return b
}

// Usage queues a usage record; a zero Time is set to now.
func (b *Batcher) Usage(r UsageRecord) {
	if r.Time.IsZero() {
		r.Time = time.Now()
	}
	enqueue(b, &b.usage, r)
}

// Audit queues an audit record; a zero Time is set to now. The Batcher keeps r.Details as
// it is: do not modify its bytes afterwards.
func (b *Batcher) Audit(r AuditRecord) {
	if r.Time.IsZero() {
		r.Time = time.Now()
	}
	enqueue(b, &b.audit, r)
}

// enqueue appends r to q, one of b's queues, unless b is closing or full (then r is
// dropped), and wakes the writer when a batch is full or the writer rests.
func enqueue[R any](b *Batcher, q *[]R, r R) {
	b.mu.Lock()
	n := len(b.usage) + len(b.audit)
	if b.closing || n >= b.opt.Queue {
		b.mu.Unlock()
		b.drop()
		return
	}
	*q = append(*q, r)
	rouse := b.resting
	b.resting = false
	b.mu.Unlock()
	b.queued.Add(1)
	if rouse || n+1 >= b.opt.Size {
		select {
		case b.wake <- struct{}{}:
		default:
		}
	}
}

func (b *Batcher) drop() {
	n := b.dropped.Add(1)
	if b.rateLimited(&b.lastDropLog) {
		b.opt.Logger.Warn("store: usage/audit queue full or closed, dropping records", "dropped_total", n, "queue", b.opt.Queue)
	}
}

// rateLimited reports whether a log line of this kind may be written now (one per 10 s).
func (b *Batcher) rateLimited(last *atomic.Int64) bool {
	now := time.Now().UnixNano()
	prev := last.Load()
	return now-prev >= int64(10*time.Second) && last.CompareAndSwap(prev, now)
}

// Flush writes everything queued before the call and returns when it is written or given up,
// or when ctx is done.
func (b *Batcher) Flush(ctx context.Context) error {
	ch := make(chan struct{})
	select {
	case b.flushes <- ch:
	case <-b.done:
		return errors.New("store: batcher closed")
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops accepting records, writes those queued and stops the writer. If ctx ends
// first, the writes still in progress are abandoned (counted as Failed) and ctx's error is
// returned. Close is idempotent.
func (b *Batcher) Close(ctx context.Context) error {
	b.mu.Lock()
	if !b.closing {
		b.closing = true
		close(b.stop)
	}
	b.mu.Unlock()
	select {
	case <-b.done:
		b.cancel()
		return nil
	case <-ctx.Done():
		b.cancel()
		<-b.done
		return ctx.Err()
	}
}

// Stats returns the counters.
func (b *Batcher) Stats() BatcherStats {
	b.mu.Lock()
	pending := int64(len(b.usage) + len(b.audit))
	b.mu.Unlock()
	return BatcherStats{
		Queued:  b.queued.Load(),
		Written: b.written.Load(),
		Dropped: b.dropped.Load(),
		Failed:  b.failed.Load(),
		Pending: pending,
	}
}

// run is the writer goroutine.
func (b *Batcher) run() {
	defer close(b.done)
	tick := time.NewTicker(b.opt.Interval)
	defer tick.Stop()
	// The writer's buffers: swapped with the queue's so that taking the queue costs the
	// request path nothing but the mutex.
	var usage []UsageRecord
	var audit []AuditRecord
	// While nothing is queued the clock rests, so that an idle server's writer does not
	// wake every Interval; the first record queued after that restarts it, and is written
	// at the next tick with those that follow it.
	resting := false
	for {
		var flushed chan struct{}
		select {
		case <-b.wake:
			if resting {
				resting = false
				tick.Reset(b.opt.Interval)
				continue
			}
		case <-tick.C:
			if b.rest() {
				tick.Stop()
				resting = true
				continue
			}
		case flushed = <-b.flushes:
		case <-b.stop:
			usage, audit = b.writeQueued(usage, audit)
			return
		}
		usage, audit = b.writeQueued(usage, audit)
		if flushed != nil {
			close(flushed)
		}
	}
}

// rest reports whether the queue is empty, and if so marks the writer resting, under the
// lock that queuing a record takes: the next record queued then wakes the writer.
func (b *Batcher) rest() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.usage)+len(b.audit) > 0 {
		return false
	}
	b.resting = true
	return true
}

// writeQueued takes everything queued and writes it in batches of at most Size, then hands
// back the emptied buffers for reuse.
func (b *Batcher) writeQueued(usage []UsageRecord, audit []AuditRecord) ([]UsageRecord, []AuditRecord) {
	b.mu.Lock()
	usage, b.usage = b.usage, usage[:0]
	audit, b.audit = b.audit, audit[:0]
	b.mu.Unlock()
	u, a := usage, audit
	for len(u) > 0 || len(a) > 0 {
		// Audit records first: they are fewer and matter more.
		na := min(len(a), b.opt.Size)
		nu := min(len(u), b.opt.Size-na)
		b.write(u[:nu], a[:na])
		u, a = u[nu:], a[na:]
	}
	clear(usage) // drop references held by strings
	clear(audit)
	// A burst can grow the buffers to thousands of records (up to Queue); keep them for the
	// next batch only when they are a few batches long, so that the memory a burst took is
	// given back once it has been written.
	if cap(usage) > 4*b.opt.Size {
		usage = nil
	}
	if cap(audit) > 4*b.opt.Size {
		audit = nil
	}
	return usage[:0], audit[:0]
}

// retryFor bounds how long after a batch's first attempt its last attempt may end. A retry
// is safe because every attempt carries the batch's id and the store applies an id once;
// the store remembers ids for BatchMemory, so retries must end well within that, with room
// to spare for clocks of replicas that disagree (one replica's clock stamps an id, another's
// may prune it).
const retryFor = BatchMemory / 2

// write writes one batch, retrying with backoff, and counts the outcome. Every attempt
// passes the same batch id: an attempt whose deadline expired while the database committed
// it looks failed here, and the retry then writes nothing (Store.Append).
func (b *Batcher) write(usage []UsageRecord, audit []AuditRecord) {
	n := int64(len(usage) + len(audit))
	id := NewBatchID()
	last := time.Now().Add(retryFor) // no attempt's deadline later than this
	backoff := 100 * time.Millisecond
	var err error
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(b.ctx, b.opt.WriteTimeout)
		err = b.app.Append(ctx, id, usage, audit)
		cancel()
		if err == nil {
			b.written.Add(n)
			return
		}
		if attempt >= b.opt.Attempts || b.ctx.Err() != nil {
			break
		}
		select {
		case <-time.After(backoff):
		case <-b.ctx.Done():
		}
		if b.ctx.Err() != nil || time.Now().Add(b.opt.WriteTimeout).After(last) {
			break
		}
		backoff = min(2*backoff, 2*time.Second)
	}
	total := b.failed.Add(n)
	if b.rateLimited(&b.lastFailLog) {
		b.opt.Logger.Error("store: giving up a batch of usage/audit records", "records", n,
			"failed_total", total, "err", err)
	}
}
