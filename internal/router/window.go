package router

import "sync"

// windowBuckets is how many buckets a sliding window is cut into: outcomes age out of the
// window one bucket (a tenth of its length) at a time.
const windowBuckets = 10

// window counts two quantities (a and b) over a sliding time window. It is safe for
// concurrent use; each call takes a short mutex, which is cheaper than a request by several
// orders of magnitude and keeps the counts exact.
type window struct {
	mu      sync.Mutex
	width   int64 // nanoseconds per bucket
	buckets [windowBuckets]bucket
}

type bucket struct {
	epoch int64 // which width-long slice of time the counts belong to
	a, b  uint64
}

func newWindow(length int64) window {
	w := length / windowBuckets
	if w <= 0 {
		w = 1
	}
	return window{width: w}
}

// add counts da and db at time now (Unix nanoseconds) and returns the sums over the window.
func (w *window) add(now int64, da, db uint64) (a, b uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	e := now / w.width
	bk := &w.buckets[e%windowBuckets]
	if bk.epoch != e {
		*bk = bucket{epoch: e}
	}
	bk.a += da
	bk.b += db
	return w.sumLocked(e)
}

// addIf adds da and db at now only if ok(sums before the addition) holds, and reports
// whether it did.
func (w *window) addIf(now int64, da, db uint64, ok func(a, b uint64) bool) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	e := now / w.width
	if !ok(w.sumLocked(e)) {
		return false
	}
	bk := &w.buckets[e%windowBuckets]
	if bk.epoch != e {
		*bk = bucket{epoch: e}
	}
	bk.a += da
	bk.b += db
	return true
}

// sums returns the sums over the window ending at now.
func (w *window) sums(now int64) (a, b uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.sumLocked(now / w.width)
}

func (w *window) sumLocked(e int64) (a, b uint64) {
	for i := range w.buckets {
		bk := &w.buckets[i]
		if bk.epoch > e-windowBuckets && bk.epoch <= e {
			a += bk.a
			b += bk.b
		}
	}
	return a, b
}

// reset forgets every count.
func (w *window) reset() {
	w.mu.Lock()
	w.buckets = [windowBuckets]bucket{}
	w.mu.Unlock()
}
