package bench

import (
	"context"
	"testing"
	"time"
)

// TestSchedule checks the open loop's send times: start + i/rate, each computed from the start
// (a late wake-up does not shift the rest), and none at or after the end. The times are in the
// past, so nothing waits.
func TestSchedule(t *testing.T) {
	start := time.Now().Add(-time.Hour)
	s := newSchedule(start, 250)
	end := start.Add(2 * time.Second)
	n := 0
	for {
		next, ok := s.wait(context.Background(), end)
		if !ok {
			break
		}
		if want := start.Add(time.Duration(n) * 4 * time.Millisecond); !next.Equal(want) {
			t.Fatalf("send %d at %v after the start, want %v", n, next.Sub(start), want.Sub(start))
		}
		n++
	}
	if n != 500 {
		t.Errorf("%d sends in 2 s at 250/s, want 500", n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, ok := newSchedule(time.Now().Add(time.Hour), 1).wait(ctx, time.Now().Add(2*time.Hour)); ok {
		t.Error("a canceled run still waits for its next send")
	}
}
