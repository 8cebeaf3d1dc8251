// Package admission bounds the work a server takes on: at most MaxInFlight requests are
// served at once, at most QueueDepth more wait for a slot, and none waits longer than MaxWait.
// Past that a request is refused at once, before its body is read, so that an overloaded
// server answers the excess cheaply instead of queueing it without bound — the latency of the
// requests it admits stays bounded, and so does the memory the queue holds.
package admission

import (
	"context"
	"slices"
	"sync/atomic"
	"time"

	"github.com/open-autoglm/autoglm/internal/evloop"
)

// Config sizes a Limiter.
type Config struct {
	// MaxInFlight is how many requests are served at once. 0 turns admission off.
	MaxInFlight int
	// QueueDepth is how many requests may wait for a slot; 0 refuses every request that
	// finds none.
	QueueDepth int
	// MaxWait is the longest a request waits in the queue before it is refused.
	MaxWait time.Duration
}

// Reason says why a request was refused.
type Reason uint8

const (
	// QueueFull: every slot was taken and the queue was full.
	QueueFull Reason = iota + 1
	// WaitedTooLong: the request waited MaxWait without getting a slot.
	WaitedTooLong
)

func (r Reason) String() string {
	switch r {
	case QueueFull:
		return "queue_full"
	case WaitedTooLong:
		return "wait_exceeded"
	}
	return "none"
}

// Limiter admits requests. It is safe for concurrent use.
type Limiter struct {
	cfg     Config
	slots   chan struct{} // a token per request being served
	waiting atomic.Int64

	admitted, queued, refusedFull, refusedWait, abandoned atomic.Uint64

	// waits is the queue wait of every request that queued, by how its wait ended. Only the
	// queued path records it: a request that finds a free slot pays nothing.
	waits [numWaitEnds]waitHistogram
}

// WaitEnd is how a request's wait in the queue ended.
type WaitEnd uint8

const (
	// GotSlot: a slot came free and the request was admitted.
	GotSlot WaitEnd = iota
	// TimedOut: MaxWait passed first and the request was refused.
	TimedOut
	// Left: the client went away first.
	Left
	numWaitEnds
)

func (e WaitEnd) String() string {
	switch e {
	case GotSlot:
		return "admitted"
	case TimedOut:
		return "wait_exceeded"
	case Left:
		return "client_left"
	}
	return "unknown"
}

// waitBuckets are the upper bounds of the queue wait histogram.
var waitBuckets = [...]time.Duration{100 * time.Microsecond, 250 * time.Microsecond, 500 * time.Microsecond,
	time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond, 10 * time.Millisecond, 25 * time.Millisecond,
	50 * time.Millisecond, 100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond, time.Second,
	2500 * time.Millisecond, 5 * time.Second}

// WaitBuckets returns the upper bounds of the queue wait histogram's buckets.
func WaitBuckets() []time.Duration { return slices.Clone(waitBuckets[:]) }

// waitHistogram counts waits per bucket of waitBuckets (the last count: longer than all).
type waitHistogram struct {
	counts [len(waitBuckets) + 1]atomic.Uint64
	sum    atomic.Int64 // nanoseconds
}

func (h *waitHistogram) observe(d time.Duration) {
	i := 0
	for i < len(waitBuckets) && d > waitBuckets[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sum.Add(int64(d))
}

// WaitStats is the queue wait histogram of the requests whose wait ended one way.
type WaitStats struct {
	End WaitEnd
	// Counts[i] is how many waits were at most WaitBuckets()[i] and longer than the bucket
	// before; the last element counts the waits longer than every bucket.
	Counts []uint64
	Count  uint64
	Sum    time.Duration
}

// New returns a Limiter for cfg, or nil when cfg.MaxInFlight is 0 (admission off). A nil
// *Limiter admits everything.
func New(cfg Config) *Limiter {
	if cfg.MaxInFlight <= 0 {
		return nil
	}
	return &Limiter{cfg: cfg, slots: make(chan struct{}, cfg.MaxInFlight)}
}

// Acquire takes a slot for one request, waiting in the queue when none is free. On success
// the caller must call Release once the request is done. It returns a Reason when the request
// is refused, and ctx's error when ctx ends first.
func (l *Limiter) Acquire(ctx context.Context) (Reason, error) {
	if l == nil {
		return 0, nil
	}
	select {
	case l.slots <- struct{}{}:
		l.admitted.Add(1)
		return 0, nil
	default:
	}
	if l.waiting.Add(1) > int64(l.cfg.QueueDepth) {
		l.waiting.Add(-1)
		l.refusedFull.Add(1)
		return QueueFull, nil
	}
	defer l.waiting.Add(-1)
	l.queued.Add(1)
	// On an event loop the wait goes to a goroutine of its own (evloop.Block): the loop goes
	// on serving the requests whose ends free the slots.
	var reason Reason
	var err error
	evloop.Block(ctx, func() { reason, err = l.wait(ctx) })
	return reason, err
}

// wait is Acquire's wait in the queue for a slot.
func (l *Limiter) wait(ctx context.Context) (Reason, error) {
	start := time.Now()
	t := time.NewTimer(l.cfg.MaxWait)
	defer t.Stop()
	select {
	case l.slots <- struct{}{}:
		l.admitted.Add(1)
		l.waits[GotSlot].observe(time.Since(start))
		return 0, nil
	case <-t.C:
		l.refusedWait.Add(1)
		l.waits[TimedOut].observe(time.Since(start))
		return WaitedTooLong, nil
	case <-ctx.Done():
		l.abandoned.Add(1)
		l.waits[Left].observe(time.Since(start))
		return 0, ctx.Err()
	}
}

// Release gives back a slot taken by Acquire.
func (l *Limiter) Release() {
	if l != nil {
		<-l.slots
	}
}

// Stats are a Limiter's counters since it was made, and its state now.
type Stats struct {
	InFlight, Waiting                          int
	Admitted, Queued, RefusedFull, RefusedWait uint64
	// Abandoned counts the requests whose client went away while they were queued.
	Abandoned uint64
}

// Stats returns the counters.
func (l *Limiter) Stats() Stats {
	if l == nil {
		return Stats{}
	}
	return Stats{InFlight: len(l.slots), Waiting: int(l.waiting.Load()), Admitted: l.admitted.Load(),
		Queued: l.queued.Load(), RefusedFull: l.refusedFull.Load(), RefusedWait: l.refusedWait.Load(),
		Abandoned: l.abandoned.Load()}
}

// Waits returns the queue wait histogram of each way a wait can end, in WaitEnd order.
func (l *Limiter) Waits() []WaitStats {
	if l == nil {
		return nil
	}
	out := make([]WaitStats, numWaitEnds)
	for e := range numWaitEnds {
		h := &l.waits[e]
		ws := WaitStats{End: e, Counts: make([]uint64, len(waitBuckets)+1), Sum: time.Duration(h.sum.Load())}
		for i := range ws.Counts {
			ws.Counts[i] = h.counts[i].Load()
			ws.Count += ws.Counts[i]
		}
		out[e] = ws
	}
	return out
}
