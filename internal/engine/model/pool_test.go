package model

import (
	"sync/atomic"
	"testing"
	"time"
)

// Every index is visited exactly once, and run returns only after every
// call has returned, whatever the sizes and however slow a chunk is.
func TestPoolRunCoversOnce(t *testing.T) {
	for _, size := range []int{1, 2, 3, 8} {
		p := newPool(size)
		for _, n := range []int{1, 2, 7, 64, 1000} {
			for _, grain := range []int{1, 3, 64} {
				for iter := range 20 {
					seen := make([]atomic.Int32, n)
					var active atomic.Int32
					p.run(n, grain, func(w, lo, hi int) {
						if w < 0 || w >= size {
							t.Errorf("worker id %d of %d", w, size)
						}
						active.Add(1)
						if iter%5 == 0 && lo == 0 {
							time.Sleep(time.Millisecond)
						}
						for i := lo; i < hi; i++ {
							seen[i].Add(1)
						}
						active.Add(-1)
					})
					if a := active.Load(); a != 0 {
						t.Fatalf("size %d n %d: run returned with %d calls still running", size, n, a)
					}
					for i := range seen {
						if c := seen[i].Load(); c != 1 {
							t.Fatalf("size %d n %d grain %d: index %d visited %d times", size, n, grain, i, c)
						}
					}
				}
			}
		}
		p.stop()
	}
}

// A worker that went to sleep after the pool was idle longer than it
// watches for work is woken by the next loop and takes part in it: the
// caller's first chunk waits for another worker to run a chunk, which
// only a woken worker can do.
func TestPoolWakesSleepingWorker(t *testing.T) {
	p := newPool(2)
	defer p.stop()
	for round := range 5 {
		time.Sleep(spinFor + 5*time.Millisecond) // past the watch: the worker sleeps
		var byWorker atomic.Int32
		p.run(4, 1, func(w, lo, hi int) {
			if w != 0 {
				byWorker.Add(1)
				return
			}
			deadline := time.Now().Add(10 * time.Second)
			for byWorker.Load() == 0 && time.Now().Before(deadline) {
				time.Sleep(100 * time.Microsecond)
			}
		})
		if byWorker.Load() == 0 {
			t.Fatalf("round %d: the sleeping worker never joined the loop", round)
		}
	}
}
