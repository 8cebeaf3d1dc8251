package model

import (
	"sync"
	"sync/atomic"
)

// pool runs data-parallel loops on a fixed set of goroutines. The calling
// goroutine takes part as worker 0, so a pool of size 1 starts no
// goroutines at all. Worker ids are stable, which lets callers keep
// per-worker scratch buffers indexed by id.
//
// Hand-offs block instead of spinning: an idle worker sleeps on its
// channel. On a machine whose cores are shared (a small VM, a busy host) a
// woken worker may not get a core for a while, so the caller never waits
// for a worker to start: chunks are claimed from a shared counter, the
// caller claims them too, and it waits only for chunks a worker has
// actually begun. A late worker finds nothing left and goes back to
// sleep. This is what keeps N threads from being slower than one.
//
// run is not re-entrant and must not be called concurrently; the Model
// serialises Forward calls, which are its only users.
type pool struct {
	size  int
	wake  []chan struct{}
	cur   atomic.Pointer[task] // the loop run is running; workers take chunks of it
	close sync.Once
}

// task is one parallel loop: chunks of [0, n) of grain elements are handed
// out through next; left counts the chunks not yet finished, and the
// worker that finishes the last one while the caller waits signals done.
type task struct {
	fn      func(worker, lo, hi int)
	n       int
	grain   int
	next    atomic.Int64
	left    atomic.Int64
	waiting atomic.Bool
	done    chan struct{}
}

func newPool(size int) *pool {
	p := &pool{size: max(size, 1)}
	for w := 1; w < p.size; w++ {
		// One slot: a wake-up for a loop the worker has not reached yet
		// is never needed twice, and run must not block on it.
		// A wake-up carries no loop: the worker joins whichever loop is
		// current when it gets a core, so a wake-up left over from a loop
		// that finished without it still brings it into the next one.
		ch := make(chan struct{}, 1)
		p.wake = append(p.wake, ch)
		go func() {
			for range ch {
				if t := p.cur.Load(); t != nil {
					t.work(w)
				}
			}
		}()
	}
	return p
}

// work claims and runs chunks until none are left.
func (t *task) work(w int) {
	for {
		lo := int(t.next.Add(int64(t.grain))) - t.grain
		if lo >= t.n {
			return
		}
		t.fn(w, lo, min(lo+t.grain, t.n))
		if t.left.Add(-1) == 0 && w != 0 && t.waiting.Load() {
			t.done <- struct{}{}
		}
	}
}

// run calls fn over [0, n) in chunks of at least grain elements spread over
// the workers, and returns when all calls have returned. If a call panics,
// run panics on the calling goroutine with a *PanicError once all calls
// have returned.
func (p *pool) run(n, grain int, fn func(worker, lo, hi int)) {
	if n <= 0 {
		return
	}
	var caught panicBox
	fn = caught.guard(fn)
	defer caught.rethrow()
	grain = max(grain, 1)
	chunks := (n + grain - 1) / grain
	if p.size == 1 || chunks == 1 {
		fn(0, 0, n)
		return
	}
	t := &task{fn: fn, n: n, grain: grain, done: make(chan struct{}, 1)}
	t.left.Store(int64(chunks))
	p.cur.Store(t)
	for w := range min(p.size, chunks) - 1 {
		select {
		case p.wake[w] <- struct{}{}:
		default: // a wake-up is pending already: the worker will find this loop
		}
	}
	t.work(0)
	if t.left.Load() == 0 {
		return
	}
	// Some chunks are still running on workers: sleep until the last one
	// finishes. waiting is set before left is read again, and a worker
	// reads waiting after its decrement, so one of the two sees the other.
	t.waiting.Store(true)
	if t.left.Load() == 0 {
		// The last chunk finished in between; its worker may or may not
		// have seen waiting and signalled, so drain without blocking.
		select {
		case <-t.done:
		default:
		}
		return
	}
	<-t.done
}

// grainFor picks a chunk size that gives each worker a few chunks, for load
// balance, rounded up to a multiple of align.
func (p *pool) grainFor(n, align int) int {
	align = max(align, 1)
	g := (n + 4*p.size - 1) / (4 * p.size)
	g = (g + align - 1) / align * align
	return max(g, align)
}

// stop ends the worker goroutines; the pool must not be used afterwards.
func (p *pool) stop() {
	p.close.Do(func() {
		for _, ch := range p.wake {
			close(ch)
		}
	})
}
