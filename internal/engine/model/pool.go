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
// run is not re-entrant and must not be called concurrently; the Model
// serialises Forward calls, which are its only users.
type pool struct {
	size  int
	wake  []chan *task
	close sync.Once
}

// task is one parallel loop: chunks of [0, n) of grain elements are handed
// out through next.
type task struct {
	fn    func(worker, lo, hi int)
	n     int
	grain int
	next  atomic.Int64
	wg    sync.WaitGroup
}

func newPool(size int) *pool {
	p := &pool{size: max(size, 1)}
	for w := 1; w < p.size; w++ {
		ch := make(chan *task)
		p.wake = append(p.wake, ch)
		go func() {
			for t := range ch {
				t.work(w)
				t.wg.Done()
			}
		}()
	}
	return p
}

func (t *task) work(w int) {
	for {
		lo := int(t.next.Add(int64(t.grain))) - t.grain
		if lo >= t.n {
			return
		}
		t.fn(w, lo, min(lo+t.grain, t.n))
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
	t := &task{fn: fn, n: n, grain: grain}
	helpers := min(p.size, chunks) - 1
	t.wg.Add(helpers)
	for w := range helpers {
		p.wake[w] <- t
	}
	t.work(0)
	t.wg.Wait()
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
