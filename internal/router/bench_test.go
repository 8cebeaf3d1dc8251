package router

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/open-autoglm/autoglm/internal/backend"
)

// BenchmarkPick measures what the balancer costs per request: finding the candidates,
// choosing one by the strategy and claiming its breaker admission, over four backends.
func BenchmarkPick(b *testing.B) {
	fakes := map[string]*fake{"a": {do: jsonOK}, "b": {do: jsonOK}, "c": {do: jsonOK}, "d": {do: jsonOK}}
	for _, strategy := range []string{"weighted", "latency", "least_outstanding", "sticky"} {
		b.Run(strategy, func(b *testing.B) {
			yaml := "models:\n  - name: m\n    strategy: " + strategy + "\n"
			if strategy == "sticky" {
				yaml = "models:\n  - name: m\n    sticky: {by: header, header: X-User}\n"
			}
			r := newTestRegistry(b, yaml+backends("a", "b", "c", "d"), fakes)
			m, _ := r.Lookup("m")
			for i, t := range m.Targets {
				t.ewmaTotal.observe(float64(time.Duration(i+1) * time.Millisecond))
				t.ewmaTTFT.observe(float64(time.Duration(i+1) * time.Millisecond))
			}
			key := hashKey("user-42")
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					now := time.Now().UnixNano()
					mask, _, _ := m.candidates(0, now)
					t, _ := m.pick(mask, true, now, key, strategy == "sticky")
					if t == nil {
						b.Fatal("no pick")
					}
				}
			})
		})
	}
}

// BenchmarkDo measures the whole scheduling of a non-streamed request around a backend that
// answers at once: pick, slot, attempt context, timers, the accounting body and its close.
func BenchmarkDo(b *testing.B) {
	body := &reusableBody{}
	fakes := map[string]*fake{}
	for _, n := range []string{"a", "b", "c", "d"} {
		fakes[n] = &fake{do: func(context.Context, *backend.Request) (*backend.Response, error) {
			return &backend.Response{StatusCode: 200, Header: jsonHeader, Body: body}, nil
		}}
	}
	r := newTestRegistry(b, "models:\n  - name: m\n    strategy: latency\n"+backends("a", "b", "c", "d"), fakes)
	benchDo(b, r, chatRequest(false))
}

// benchDo sends req to model m of r b.N times, reading each answer to its end.
func benchDo(b *testing.B, r *Registry, req *Request) {
	m, _ := r.Lookup("m")
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		resp, _, err := r.Do(ctx, m, req)
		if err != nil {
			b.Fatal(err)
		}
		var buf [64]byte
		for {
			if _, err := resp.Body.Read(buf[:]); err != nil {
				break
			}
		}
		resp.Body.Close()
	}
}

var jsonHeader = http.Header{"Content-Type": {"application/json"}}

// reusableBody is an empty answer body that can be read and closed any number of times.
type reusableBody struct{}

func (*reusableBody) Read([]byte) (int, error) { return 0, io.EOF }
func (*reusableBody) Close() error             { return nil }

// BenchmarkDoStream is BenchmarkDo for a streamed answer of 16 events and its end, each its
// own read, under the default idle timeout: what the answer's body costs per event.
func BenchmarkDoStream(b *testing.B) {
	fakes := map[string]*fake{"a": {do: func(context.Context, *backend.Request) (*backend.Response, error) {
		return &backend.Response{StatusCode: 200, Header: sseHeader, Body: &eventBody{left: 17}}, nil
	}}}
	r := newTestRegistry(b, "models:\n  - name: m\n"+backends("a"), fakes)
	benchDo(b, r, chatRequest(true))
}

var sseHeader = http.Header{"Content-Type": {"text/event-stream"}}

// eventBody is a stream of left events, one per read.
type eventBody struct{ left int }

func (e *eventBody) Read(p []byte) (int, error) {
	if e.left == 0 {
		return 0, io.EOF
	}
	e.left--
	return copy(p, "data: {\"i\":0}\n\n"), nil
}
func (*eventBody) Close() error { return nil }
