// Package admission bounds the work a server takes on: at most MaxInFlight requests are
// served at once, at most QueueDepth more wait for a slot, and none waits longer than MaxWait.
// Past that a request is refused at once, before its body is read, so that an overloaded
// server answers the excess cheaply instead of queueing it without bound — the latency of the
// requests it admits stays bounded, and so does the memory the queue holds.
package admission

import (
	"context"
	"sync/atomic"
	"time"
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

	admitted, queued, refusedFull, refusedWait atomic.Uint64
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
	t := time.NewTimer(l.cfg.MaxWait)
	defer t.Stop()
	select {
	case l.slots <- struct{}{}:
		l.admitted.Add(1)
		return 0, nil
	case <-t.C:
		l.refusedWait.Add(1)
		return WaitedTooLong, nil
	case <-ctx.Done():
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
}

// Stats returns the counters.
func (l *Limiter) Stats() Stats {
	if l == nil {
		return Stats{}
	}
	return Stats{InFlight: len(l.slots), Waiting: int(l.waiting.Load()), Admitted: l.admitted.Load(),
		Queued: l.queued.Load(), RefusedFull: l.refusedFull.Load(), RefusedWait: l.refusedWait.Load()}
}
