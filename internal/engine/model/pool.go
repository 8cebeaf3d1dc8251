package model

import (
	"sync"
	"sync/atomic"
	"time"
)

// pool runs data-parallel loops on a fixed set of goroutines. The calling
// goroutine takes part as worker 0, so a pool of size 1 starts no
// goroutines at all. Worker ids are stable, which lets callers keep
// per-worker scratch buffers indexed by id.
//
// A forward pass is a chain of a few hundred short loops (a one-token step
// of a 0.5B model runs about two hundred, many shorter than the time the
// OS takes to wake a sleeping thread), so a worker that finished a loop
// first watches for the next one for a short while (spinFor) and only then
// sleeps on its channel; a loop that starts while it sleeps wakes it. On a
// machine whose cores are shared (a small VM, a busy host) a woken or
// spinning worker may not get a core for a while, so the caller never
// waits for a worker to start: chunks are claimed from a shared counter,
// the caller claims them too, and it waits only for chunks a worker has
// actually begun. A late worker finds nothing left and goes back to
// watching. This is what keeps N threads from being slower than one, and
// the bounded watch keeps an idle model from holding a core.
//
// run is not re-entrant and must not be called concurrently; the Model
// serialises Forward calls, which are its only users.
type pool struct {
	size    int
	workers []*poolWorker
	cur     atomic.Pointer[task] // the loop run is running; workers take chunks of it
	closed  atomic.Bool
	close   sync.Once
}

// spinFor is how long a worker watches for the next loop before it sleeps,
// and how long the caller watches for a worker's last chunk before it
// sleeps: longer than the gaps between the loops of one step (norms, rope,
// the hand-back of a token), far shorter than a step.
const spinFor = 50 * time.Microsecond

// poolWorker is one worker goroutine's hand-off state, padded to its own
// cache line so that the caller's store that wakes one worker does not
// disturb the line another is watching.
type poolWorker struct {
	// asleep is set by the worker before it blocks on wake; whoever
	// clears it (run, to wake it, or the worker itself, on finding a loop
	// after all) owns the wake-up, so exactly one token is sent per sleep.
	asleep atomic.Bool
	wake   chan struct{}
	_      [64]byte
}

// task is one parallel loop: chunks of [0, n) of grain elements are handed
// out through next; left counts the chunks not yet finished, and the
// worker that finishes the last one while the caller sleeps signals done.
type task struct {
	fn      func(worker, lo, hi int)
	n       int
	grain   int
	_       [40]byte // next and left on their own line, away from the read-only fields
	next    atomic.Int64
	left    atomic.Int64
	waiting atomic.Bool
	done    chan struct{}
}

func newPool(size int) *pool {
	p := &pool{size: max(size, 1)}
	for w := 1; w < p.size; w++ {
		pw := &poolWorker{wake: make(chan struct{}, 1)}
		p.workers = append(p.workers, pw)
		go p.loop(w, pw)
	}
	return p
}

// loop is worker w's life: run the chunks of each new loop, watch for the
// next for spinFor, sleep until woken, until the pool stops.
func (p *pool) loop(w int, pw *poolWorker) {
	var last *task
	for {
		start := time.Now()
		for i := 0; ; i++ {
			if t := p.cur.Load(); t != last {
				last = t
				t.work(w)
				start = time.Now()
				continue
			}
			if p.closed.Load() {
				return
			}
			if i%64 == 63 && time.Since(start) > spinFor {
				break
			}
		}
		pw.asleep.Store(true)
		if p.cur.Load() != last || p.closed.Load() {
			// A loop began (or the pool stopped) between the last look
			// and asleep: take it back, unless run already took it and
			// is sending a wake-up, which must then be received.
			if !pw.asleep.CompareAndSwap(true, false) {
				if _, ok := <-pw.wake; !ok {
					return
				}
			}
			continue
		}
		if _, ok := <-pw.wake; !ok {
			return
		}
	}
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
	for _, pw := range p.workers[:min(p.size, chunks)-1] {
		// A watching worker sees cur; a sleeping one is woken, by whoever
		// clears asleep first (see loop).
		if pw.asleep.Load() && pw.asleep.CompareAndSwap(true, false) {
			pw.wake <- struct{}{}
		}
	}
	t.work(0)
	if t.left.Load() == 0 {
		return
	}
	// Some chunks are still running on workers: watch for a while, then
	// sleep until the last one finishes.
	start := time.Now()
	for i := 0; t.left.Load() != 0; i++ {
		if i%64 == 63 && time.Since(start) > spinFor {
			break
		}
	}
	if t.left.Load() == 0 {
		return
	}
	// waiting is set before left is read again, and a worker reads
	// waiting after its decrement, so one of the two sees the other.
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
		p.closed.Store(true)
		for _, pw := range p.workers {
			close(pw.wake)
		}
	})
}
