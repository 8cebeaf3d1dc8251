package admission

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestLimiter(t *testing.T) {
	l := New(Config{MaxInFlight: 2, QueueDepth: 1, MaxWait: time.Minute})
	ctx := context.Background()
	for i := range 2 {
		if r, err := l.Acquire(ctx); r != 0 || err != nil {
			t.Fatalf("slot %d: %v %v", i, r, err)
		}
	}
	queued := make(chan Reason, 1)
	go func() {
		r, _ := l.Acquire(ctx)
		queued <- r
	}()
	waitFor(t, "a queued request", func() bool { return l.Stats().Waiting == 1 })
	if r, err := l.Acquire(ctx); r != QueueFull || err != nil {
		t.Errorf("with the slots taken and the queue full: %v %v", r, err)
	}
	l.Release()
	if r := <-queued; r != 0 {
		t.Errorf("queued request, after a release: %v", r)
	}
	l.Release()
	l.Release()
	st := l.Stats()
	if st != (Stats{Admitted: 3, Queued: 1, RefusedFull: 1}) {
		t.Errorf("stats %+v", st)
	}
	if w := l.Waits(); w[GotSlot].Count != 1 || w[TimedOut].Count != 0 || w[Left].Count != 0 {
		t.Errorf("waits: %+v (want the one queued request, admitted)", w)
	}
}

func TestLimiterWaitAndCancel(t *testing.T) {
	// max_wait is long enough that the third request is still queued when the test, polling
	// on a starved machine, sees it there and cancels it.
	const maxWait = 500 * time.Millisecond
	l := New(Config{MaxInFlight: 1, QueueDepth: 4, MaxWait: maxWait})
	ctx := context.Background()
	if r, _ := l.Acquire(ctx); r != 0 {
		t.Fatal(r)
	}
	if r, err := l.Acquire(ctx); r != WaitedTooLong || err != nil {
		t.Errorf("waiting past max_wait: %v %v", r, err)
	}
	cctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() {
		_, err := l.Acquire(cctx)
		errc <- err
	}()
	waitFor(t, "a queued request", func() bool { return l.Stats().Waiting == 1 })
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("canceled while queued: %v", err)
	}
	l.Release()
	if st := l.Stats(); st.InFlight != 0 || st.Waiting != 0 || st.RefusedWait != 1 || st.Abandoned != 1 {
		t.Errorf("stats %+v", st)
	}
	// Each queued request's wait is in the histogram of how it ended; the one that waited
	// max_wait is counted in a bucket at or above max_wait.
	waits := l.Waits()
	if len(waits) != 3 || waits[GotSlot].Count != 0 || waits[TimedOut].Count != 1 || waits[Left].Count != 1 {
		t.Fatalf("waits %+v", waits)
	}
	b := WaitBuckets()
	for i, n := range waits[TimedOut].Counts {
		if n != 0 && i < len(b) && b[i] < maxWait {
			t.Errorf("a wait of max_wait (%s) counted in the bucket up to %s", maxWait, b[i])
		}
	}
	if waits[TimedOut].Sum < maxWait || len(waits[TimedOut].Counts) != len(b)+1 {
		t.Errorf("timed-out wait: %+v", waits[TimedOut])
	}
}

// TestLimiterBounds runs many goroutines against a small limiter: no more than MaxInFlight
// are ever admitted at once, every refusal has a reason, and nothing is left held.
func TestLimiterBounds(t *testing.T) {
	const limit = 3
	l := New(Config{MaxInFlight: limit, QueueDepth: 2, MaxWait: 5 * time.Millisecond})
	var mu sync.Mutex
	in, peak := 0, 0
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			for range 20 {
				r, err := l.Acquire(context.Background())
				if err != nil {
					t.Error(err)
					return
				}
				if r != 0 {
					continue
				}
				mu.Lock()
				in++
				peak = max(peak, in)
				mu.Unlock()
				time.Sleep(100 * time.Microsecond)
				mu.Lock()
				in--
				mu.Unlock()
				l.Release()
			}
		})
	}
	wg.Wait()
	st := l.Stats()
	if peak > limit || st.InFlight != 0 || st.Waiting != 0 || st.Admitted+st.RefusedFull+st.RefusedWait != 1000 {
		t.Errorf("peak %d, stats %+v", peak, st)
	}
}

func TestNilLimiterAdmitsAll(t *testing.T) {
	l := New(Config{})
	if l != nil {
		t.Fatal("MaxInFlight 0 must turn admission off")
	}
	if r, err := l.Acquire(context.Background()); r != 0 || err != nil {
		t.Error(r, err)
	}
	l.Release()
	if l.Stats() != (Stats{}) {
		t.Error("stats of a nil limiter")
	}
}
