package ratelimit

import (
	"context"
	"sync"
	"time"
)

// bucket is one rate bucket an admission takes from.
type bucket struct {
	id    bucketID
	limit int64 // units per period, > 0
	cost  int64 // units to take, 0..limit
	// Filled in by the store:
	refused   bool
	remaining int64
	reset     time.Duration
}

// slot is one concurrency counter an admission increments.
type slot struct {
	id    bucketID
	limit int64 // > 0
	// Filled in by the store:
	full  bool
	count int64 // in flight before this request
}

// admission is one atomic check: every bucket and slot passes and is taken, or none is.
type admission struct {
	buckets []bucket
	slots   []slot
	lease   string // names this request's concurrency slots in a shared store
	// Filled in by the store:
	ok    bool
	retry time.Duration // when refused: the longest wait among the refusing buckets
}

// adjustment settles one token bucket by delta units (see gcraAdjust).
type adjustment struct {
	id    bucketID
	limit int64
	delta int64
}

// release is what a finished request gives back: token adjustments and its slots.
type release struct {
	adjust []adjustment
	slots  []bucketID
	lease  string
}

// store keeps bucket and slot state. Implementations are safe for concurrent use; admit is
// atomic across all of an admission's buckets and slots.
type store interface {
	admit(ctx context.Context, a *admission) error
	finish(ctx context.Context, r *release) error
	close() error
}

// localStore keeps state in this process. One mutex guards everything: a check holds it for a
// few hundred nanoseconds, and an admission spans two subjects (key and user) that sharding
// would have to lock in order anyway.
type localStore struct {
	now func() time.Time

	mu        sync.Mutex
	tat       map[bucketID]int64
	inflight  map[bucketID]int64
	lastSweep int64
}

func newLocalStore(now func() time.Time) *localStore {
	return &localStore{now: now, tat: make(map[bucketID]int64), inflight: make(map[bucketID]int64)}
}

var _ store = (*localStore)(nil)

func (s *localStore) admit(_ context.Context, a *admission) error {
	now := s.now().UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweep(now)
	a.ok, a.retry = true, 0
	var next [maxBuckets]int64
	for i := range a.buckets {
		b := &a.buckets[i]
		r := gcraTake(s.tat[b.id], now, b.limit, b.cost)
		b.refused, b.remaining, b.reset = !r.ok, r.remaining, r.reset
		if i < len(next) {
			next[i] = r.tat
		}
		if !r.ok {
			a.ok = false
			a.retry = max(a.retry, r.retry)
		}
	}
	for i := range a.slots {
		sl := &a.slots[i]
		sl.count = s.inflight[sl.id]
		sl.full = sl.count >= sl.limit
		if sl.full {
			a.ok = false
			a.retry = max(a.retry, concurrencyRetry)
		}
	}
	if !a.ok {
		// Nothing is taken: report every bucket as it stands.
		for i := range a.buckets {
			b := &a.buckets[i]
			r := gcraTake(s.tat[b.id], now, b.limit, 0)
			b.remaining, b.reset = r.remaining, r.reset
		}
		return nil
	}
	for i, b := range a.buckets {
		if b.cost > 0 {
			s.tat[b.id] = next[i]
		}
	}
	for _, sl := range a.slots {
		s.inflight[sl.id]++
	}
	return nil
}

func (s *localStore) finish(_ context.Context, r *release) error {
	now := s.now().UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, adj := range r.adjust {
		t := gcraAdjust(s.tat[adj.id], now, adj.limit, adj.delta)
		if t <= now {
			delete(s.tat, adj.id) // full: the same as absent
		} else {
			s.tat[adj.id] = t
		}
	}
	for _, id := range r.slots {
		if n := s.inflight[id]; n > 1 {
			s.inflight[id] = n - 1
		} else {
			delete(s.inflight, id)
		}
	}
	return nil
}

func (s *localStore) close() error { return nil }

// sweep drops full buckets (a full bucket is the same as no entry) at most once a period, so
// memory follows the subjects active in the last minute. The caller holds mu.
func (s *localStore) sweep(now int64) {
	if now-s.lastSweep < int64(period) {
		return
	}
	s.lastSweep = now
	for id, t := range s.tat {
		if t <= now {
			delete(s.tat, id)
		}
	}
}
