package router

import (
	"testing"
	"time"
)

func TestBreakerOpensOnCountAndRatio(t *testing.T) {
	const sec = int64(time.Second)
	b := newBreaker(3, 0.5, 10*sec, 5*sec)
	now := 100 * sec
	// Two failures among many successes: below both thresholds.
	for range 10 {
		b.record(now, true, false)
	}
	b.record(now, false, false)
	b.record(now, false, false)
	if c := b.circuit(now); c != CircuitClosed {
		t.Fatalf("after 2 failures: %v", c)
	}
	// A third failure reaches the count but not the ratio (3/13).
	b.record(now, false, false)
	if c := b.circuit(now); c != CircuitClosed {
		t.Fatalf("3 of 13 failed: circuit %v, want closed (ratio 0.5)", c)
	}
	// Once the successes age out of the window, failures dominate.
	later := now + 11*sec
	for i := range 3 {
		changed, to := b.record(later, false, false)
		if i < 2 && changed {
			t.Fatalf("opened after %d failures in the new window", i+1)
		}
		if i == 2 && (!changed || to != CircuitOpen) {
			t.Fatalf("third failure: changed=%v to=%v, want open", changed, to)
		}
	}
	if b.available(later + sec) {
		t.Fatal("open circuit admits a request")
	}
	if _, ok := b.claim(later + sec); ok {
		t.Fatal("claim succeeded on an open circuit")
	}
	// After open_for, exactly one trial goes through.
	after := later + 5*sec
	if c := b.circuit(after); c != CircuitHalfOpen {
		t.Fatalf("after open_for: %v, want half_open", c)
	}
	trial, ok := b.claim(after)
	if !ok || !trial {
		t.Fatalf("first claim after open_for: trial=%v ok=%v", trial, ok)
	}
	if _, ok := b.claim(after); ok {
		t.Fatal("a second request went through while the trial is out")
	}
	// The trial fails: open again.
	if changed, to := b.record(after, false, true); !changed || to != CircuitOpen {
		t.Fatalf("failed trial: changed=%v to=%v", changed, to)
	}
	// Next trial succeeds: closed, with a clean window.
	again := after + 5*sec
	trial, ok = b.claim(again)
	if !ok || !trial {
		t.Fatal("no trial after the second open period")
	}
	if changed, to := b.record(again, true, true); !changed || to != CircuitClosed {
		t.Fatalf("successful trial: changed=%v to=%v", changed, to)
	}
	b.record(again, false, false)
	b.record(again, false, false)
	if c := b.circuit(again); c != CircuitClosed {
		t.Fatalf("window not reset on close: %v", c)
	}
	if got := b.opens.Load(); got != 2 {
		t.Errorf("opens = %d, want 2", got)
	}
}

func TestBreakerReleasedTrial(t *testing.T) {
	const sec = int64(time.Second)
	b := newBreaker(1, 0.1, 10*sec, sec)
	b.record(0, false, false)
	trial, ok := b.claim(2 * sec)
	if !ok || !trial {
		t.Fatal("no trial")
	}
	b.releaseTrial()
	if trial, ok := b.claim(2 * sec); !ok || !trial {
		t.Fatal("a released trial was not offered again")
	}
}

func TestWindowAgesOut(t *testing.T) {
	const sec = int64(time.Second)
	w := newWindow(10 * sec)
	w.add(0, 1, 1)
	w.add(5*sec, 1, 0)
	if a, b := w.sums(9 * sec); a != 2 || b != 1 {
		t.Fatalf("sums at 9s = %d,%d", a, b)
	}
	if a, _ := w.sums(12 * sec); a != 1 {
		t.Fatalf("sums at 12s = %d, want the 0s bucket gone", a)
	}
	if a, _ := w.sums(30 * sec); a != 0 {
		t.Fatalf("sums at 30s = %d", a)
	}
	ok := w.addIf(30*sec, 0, 1, func(_, b uint64) bool { return b < 1 })
	if !ok || w.addIf(30*sec, 0, 1, func(_, b uint64) bool { return b < 1 }) {
		t.Fatal("addIf did not respect its condition")
	}
}
