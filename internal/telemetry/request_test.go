package telemetry

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"
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

	// More goroutines afterwards would be one started for the child; fewer is another test's
	// or the runtime's goroutine ending meanwhile (seen once in CI), which says nothing.
	before := runtime.NumGoroutine()
	child, stop := context.WithCancel(ctx)
	defer stop()
	if n := runtime.NumGoroutine(); n > before {
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

// TestSpanKey: the key learnt at start-up is the one trace.ContextWithSpan stores a span
// under, and a span below or above WithRequest's layer is still found through it.
func TestSpanKey(t *testing.T) {
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2}, TraceFlags: trace.FlagsSampled})
	span := trace.SpanFromContext(trace.ContextWithSpanContext(context.Background(), sc))
	withSpan := trace.ContextWithSpan(context.Background(), span)
	if withSpan.Value(spanKey) == nil {
		t.Fatal("spanKey is not the key a span is stored under")
	}

	// No span below: the layer answers the search itself, and a span put above it is found.
	ctx := WithRequest(context.Background(), "", nil)
	if got := trace.SpanContextFromContext(ctx); got.IsValid() {
		t.Errorf("a span was found where none is: %v", got)
	}
	above := trace.ContextWithSpan(ctx, span)
	if got := trace.SpanContextFromContext(above); !got.Equal(sc) {
		t.Errorf("the span above the layer: %v, want %v", got, sc)
	}
	child, stop := context.WithCancel(above)
	defer stop()
	if got := trace.SpanContextFromContext(child); !got.Equal(sc) {
		t.Errorf("the span above the layer, from a context under it: %v", got)
	}

	// A span below: the search goes on to it.
	below := WithRequest(withSpan, "", nil)
	if got := trace.SpanContextFromContext(below); !got.Equal(sc) {
		t.Errorf("the span below the layer: %v, want %v", got, sc)
	}
}
