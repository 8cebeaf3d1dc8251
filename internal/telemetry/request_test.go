package telemetry

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"
)

type otherKey struct{}

// TestWithRequest: one layer carries the trace id and the request info, passes every other
// value and the cancellation of its parent through, and a context made under it is canceled
// with the parent without a goroutine of its own to watch it.
func TestWithRequest(t *testing.T) {
	parent, cancel := context.WithCancel(context.WithValue(context.Background(), otherKey{}, "kept"))
	info := &RequestInfo{}
	ctx := WithRequest(parent, "4bf92f3577b34da6a3ce929d0e0e4736", info)
	if got := TraceID(ctx); got != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Errorf("TraceID = %q", got)
	}
	if Info(ctx) != info {
		t.Error("Info does not return the request's info")
	}
	if ctx.Value(otherKey{}) != "kept" {
		t.Error("a value of the parent is lost")
	}
	if got := TraceID(context.Background()); got != "" {
		t.Errorf("TraceID without one = %q", got)
	}
	if allocs := testing.AllocsPerRun(100, func() { _ = TraceID(ctx) }); allocs != 0 {
		t.Errorf("TraceID allocates %v times", allocs)
	}

	before := runtime.NumGoroutine()
	child, stop := context.WithCancel(ctx)
	defer stop()
	if n := runtime.NumGoroutine(); n != before {
		t.Errorf("a context made under WithRequest started %d goroutines", n-before)
	}
	cancel()
	select {
	case <-child.Done():
	case <-time.After(time.Second):
		t.Fatal("the child was not canceled with the parent")
	}
	if !errors.Is(ctx.Err(), context.Canceled) || !errors.Is(child.Err(), context.Canceled) {
		t.Errorf("errors after cancel: %v, %v", ctx.Err(), child.Err())
	}
}
