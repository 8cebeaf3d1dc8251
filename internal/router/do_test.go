package router

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/open-autoglm/autoglm/internal/apierr"
	"github.com/open-autoglm/autoglm/internal/backend"
	"github.com/open-autoglm/autoglm/internal/config"
	"github.com/open-autoglm/autoglm/internal/wire"
)

// fake is a hand-written backend whose behaviour is a function field.
type fake struct {
	calls atomic.Int64
	do    func(ctx context.Context, req *backend.Request) (*backend.Response, error)
}

func (f *fake) Do(ctx context.Context, req *backend.Request) (*backend.Response, error) {
	f.calls.Add(1)
	if tr, ok := ctx.Value(traceKey{}).(*trace); ok {
		tr.add(f)
	}
	return f.do(ctx, req)
}

// trace records which fakes one request reached.
type traceKey struct{}

type trace struct {
	mu   sync.Mutex
	hits map[*fake]int
}

func (tr *trace) add(f *fake) {
	tr.mu.Lock()
	tr.hits[f]++
	tr.mu.Unlock()
}

func jsonOK(_ context.Context, _ *backend.Request) (*backend.Response, error) {
	return &backend.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(strings.NewReader(`{"ok":true}`))}, nil
}

func status(code int, hdr ...string) func(context.Context, *backend.Request) (*backend.Response, error) {
	return func(context.Context, *backend.Request) (*backend.Response, error) {
		h := http.Header{"Content-Type": {"application/json"}}
		for i := 0; i+1 < len(hdr); i += 2 {
			h.Set(hdr[i], hdr[i+1])
		}
		return &backend.Response{StatusCode: code, Header: h, Body: io.NopCloser(strings.NewReader(`{"error":{}}`))}, nil
	}
}

func refused(context.Context, *backend.Request) (*backend.Response, error) {
	return nil, errors.New("dial tcp: connection refused")
}

// sse answers a stream: first after ttft, then the rest of chunks every gap; when broken, the
// body fails after the chunks instead of ending. The writer goroutine stops with ctx.
func sse(ttft, gap time.Duration, chunks int, broken bool) func(context.Context, *backend.Request) (*backend.Response, error) {
	return func(ctx context.Context, _ *backend.Request) (*backend.Response, error) {
		pr, pw := io.Pipe()
		go func() {
			wait := ttft
			for i := range chunks {
				select {
				case <-ctx.Done():
					pw.CloseWithError(ctx.Err())
					return
				case <-time.After(wait):
				}
				if _, err := fmt.Fprintf(pw, "data: {\"i\":%d}\n\n", i); err != nil {
					return
				}
				wait = gap
			}
			if broken {
				pw.CloseWithError(io.ErrUnexpectedEOF)
				return
			}
			fmt.Fprint(pw, "data: [DONE]\n\n")
			pw.Close()
		}()
		go func() { <-ctx.Done(); pw.CloseWithError(ctx.Err()) }()
		return &backend.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"text/event-stream"}}, Body: pr}, nil
	}
}

// newTestRegistry parses a configuration whose backends are named after the fakes.
func newTestRegistry(t testing.TB, yaml string, fakes map[string]*fake) *Registry {
	t.Helper()
	bs := make(map[string]backend.Backend, len(fakes))
	for k, f := range fakes {
		bs[k] = f
	}
	return newTestRegistryOf(t, yaml, bs)
}

// newTestRegistryOf is newTestRegistry for any backends.
func newTestRegistryOf(t testing.TB, yaml string, fakes map[string]backend.Backend) *Registry {
	t.Helper()
	cfg, err := config.Parse([]byte(yaml), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	r, err := build(cfg.Models, func(bc config.Backend) (backend.Backend, error) {
		f, ok := fakes[bc.Name]
		if !ok {
			return nil, fmt.Errorf("no fake named %s", bc.Name)
		}
		return f, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// backends writes YAML for backends named after names, with extra keys per backend.
func backends(names ...string) string {
	var b strings.Builder
	b.WriteString("    backends:\n")
	for _, n := range names {
		fmt.Fprintf(&b, "      - {type: openai, name: %s, base_url: \"http://127.0.0.1:9/v1\"}\n", n)
	}
	return b.String()
}

func chatRequest(stream bool) *Request {
	body := []byte(`{"model":"m","messages":[]}`)
	if stream {
		body = []byte(`{"model":"m","stream":true,"messages":[]}`)
	}
	f, err := wire.Peek(body)
	if err != nil {
		panic(err)
	}
	return &Request{Op: backend.OpChat, Body: body, Fields: f, Stream: stream, Client: http.Header{}}
}

// call schedules one request and reads its answer to the end.
func call(t testing.TB, r *Registry, model string, req *Request) (string, *Target, []byte, error) {
	t.Helper()
	m, ok := r.Lookup(model)
	if !ok {
		t.Fatalf("no model %s", model)
	}
	resp, tg, err := r.Do(context.Background(), m, req)
	if err != nil {
		return "", tg, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return tg.Name, tg, b, err
}

func TestRetryNeverSameBackendTwice(t *testing.T) {
	fakes := map[string]*fake{"a": {do: refused}, "b": {do: status(502)}, "c": {do: jsonOK}}
	r := newTestRegistry(t, "models:\n  - name: m\n    breaker: {failures: 1000}\n    retry: {budget: 1, min_retries: 1000}\n"+backends("a", "b", "c"), fakes)
	for i := range 30 {
		tr := &trace{hits: map[*fake]int{}}
		m, _ := r.Lookup("m")
		resp, tg, err := r.Do(context.WithValue(context.Background(), traceKey{}, tr), m, chatRequest(false))
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		io.ReadAll(resp.Body)
		resp.Body.Close()
		if tg.Name != "c" {
			t.Fatalf("request %d served by %s", i, tg.Name)
		}
		for f, n := range tr.hits {
			if n > 1 {
				t.Fatalf("request %d reached one backend %d times", i, n)
			}
			_ = f
		}
	}
	st := r.Status()[0]
	if st.Backends[0].Errors["connect"] == 0 || st.Backends[1].Errors["status_5xx"] == 0 {
		t.Errorf("errors not counted by kind: %+v", st.Backends)
	}
	if st.Backends[2].Successes != 30 {
		t.Errorf("c successes = %d, want 30", st.Backends[2].Successes)
	}
}

func TestClientErrorsAreNotRetried(t *testing.T) {
	fakes := map[string]*fake{"a": {do: status(400)}, "b": {do: status(400)}}
	r := newTestRegistry(t, "models:\n  - name: m\n"+backends("a", "b"), fakes)
	_, _, body, err := call(t, r, "m", chatRequest(false))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(body), "error") || fakes["a"].calls.Load()+fakes["b"].calls.Load() != 1 {
		t.Fatalf("a 400 was retried: a=%d b=%d", fakes["a"].calls.Load(), fakes["b"].calls.Load())
	}
}

func TestRetryAfterKeepsBackendAway(t *testing.T) {
	fakes := map[string]*fake{"a": {do: status(429, "Retry-After", "30")}, "b": {do: jsonOK}}
	r := newTestRegistry(t, "models:\n  - name: m\n"+backends("a", "b"), fakes)
	for range 10 {
		if _, _, _, err := call(t, r, "m", chatRequest(false)); err != nil {
			t.Fatal(err)
		}
	}
	if n := fakes["a"].calls.Load(); n != 1 {
		t.Fatalf("backend with Retry-After: 30 was called %d times, want 1", n)
	}
	if cd := r.Status()[0].Backends[0].CooldownSeconds; cd < 25 {
		t.Errorf("cooldown = %v s", cd)
	}
	// Alone, the model answers 429 with the upstream's Retry-After on the first try, then 503
	// while the backend cools down.
	fakes2 := map[string]*fake{"a": {do: status(429, "Retry-After", "7")}}
	r2 := newTestRegistry(t, "models:\n  - name: m\n"+backends("a"), fakes2)
	_, _, _, err := call(t, r2, "m", chatRequest(false))
	var e *apierr.Error
	if !errors.As(err, &e) || e.Kind != apierr.RateLimited || e.RetryAfter != 7*time.Second {
		t.Fatalf("err = %#v", err)
	}
	_, _, _, err = call(t, r2, "m", chatRequest(false))
	if !errors.As(err, &e) || e.Kind != apierr.Unavailable || e.RetryAfter < 5*time.Second {
		t.Fatalf("while cooling down: %#v", err)
	}
}

func TestTTFTTimeoutMovesElsewhere(t *testing.T) {
	fakes := map[string]*fake{"slow": {do: sse(2*time.Second, 0, 3, false)}, "fast": {do: sse(0, 0, 3, false)}}
	r := newTestRegistry(t, "models:\n  - name: m\n    timeouts: {ttft: 50ms}\n"+
		"    backends:\n      - {type: openai, name: slow, base_url: \"http://127.0.0.1:9/v1\", weight: 100}\n"+
		"      - {type: openai, name: fast, base_url: \"http://127.0.0.1:9/v1\"}\n", fakes)
	name, _, body, err := call(t, r, "m", chatRequest(true))
	if err != nil {
		t.Fatal(err)
	}
	if name != "fast" || !strings.HasSuffix(string(body), "data: [DONE]\n\n") {
		t.Fatalf("served by %s: %q", name, body)
	}
	if n := r.Status()[0].Backends[0].Errors["ttft_timeout"]; n != 1 {
		t.Errorf("ttft_timeout count = %d", n)
	}
}

func TestIdleTimeoutAndBrokenStream(t *testing.T) {
	fakes := map[string]*fake{"stall": {do: sse(0, 5*time.Second, 3, false)}, "broken": {do: sse(0, 0, 2, true)}}
	r := newTestRegistry(t, "models:\n  - name: m\n    timeouts: {idle: 50ms}\n    retry: {attempts: 1}\n"+
		backends("stall")+"  - name: n\n"+backends("broken"), fakes)
	_, _, body, err := call(t, r, "m", chatRequest(true))
	if !errors.Is(err, ErrIdleTimeout) || !strings.Contains(string(body), `"i":0`) {
		t.Fatalf("stalled stream: err=%v body=%q", err, body)
	}
	_, _, body, err = call(t, r, "n", chatRequest(true))
	if !errors.Is(err, ErrBroken) || !strings.Contains(string(body), `"i":1`) {
		t.Fatalf("broken stream: err=%v body=%q", err, body)
	}
	st := r.Status()
	if st[0].Backends[0].Errors["idle_timeout"] != 1 || st[1].Backends[0].Errors["stream_broken"] != 1 {
		t.Errorf("errors: %+v %+v", st[0].Backends[0].Errors, st[1].Backends[0].Errors)
	}
	if st[0].Backends[0].Inflight != 0 || st[1].Backends[0].Inflight != 0 {
		t.Error("in-flight slot not released")
	}
}

// TestIdleTimeoutWithoutAttemptContext: an attempt with no total timeout and no first-token
// timer (a non-streamed request) runs on the request's own context, and its idle timeout
// ends the answer by interrupting the body: the read reports ErrIdleTimeout, the backend
// sees its body closed although no context was canceled, and the outcome is counted. A
// stream, whose first-token timer needs a context of the attempt's own, still gets one.
func TestIdleTimeoutWithoutAttemptContext(t *testing.T) {
	type key struct{}
	writeErr := make(chan error, 1)
	var sawOwn []bool
	stall := func(ctx context.Context, req *backend.Request) (*backend.Response, error) {
		sawOwn = append(sawOwn, ctx.Done() != ctx.Value(key{}).(context.Context).Done())
		if req.Stream {
			return sse(0, 0, 2, false)(ctx, req)
		}
		pr, pw := io.Pipe()
		go func() {
			_, _ = io.WriteString(pw, `{"choices":[`)
			time.Sleep(300 * time.Millisecond) // far past the idle gap; the request's context is never canceled
			_, err := io.WriteString(pw, `]}`)
			writeErr <- err
		}()
		return &backend.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}}, Body: pr}, nil
	}
	r := newTestRegistry(t, "models:\n  - name: m\n    timeouts: {idle: 50ms}\n    retry: {attempts: 1}\n"+backends("stall"),
		map[string]*fake{"stall": {do: stall}})
	m, _ := r.Lookup("m")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ctx = context.WithValue(ctx, key{}, ctx)
	resp, _, err := r.Do(ctx, m, chatRequest(false))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !errors.Is(err, ErrIdleTimeout) || string(body) != `{"choices":[` {
		t.Fatalf("stalled answer: %q, %v; want its first bytes and the idle timeout", body, err)
	}
	if d := time.Since(start); d > 250*time.Millisecond {
		t.Errorf("the idle timeout took %v; want it near the 50 ms gap", d)
	}
	if err := <-writeErr; !errors.Is(err, io.ErrClosedPipe) {
		t.Errorf("the backend's next write: %v; want its body closed", err)
	}
	if ctx.Err() != nil {
		t.Error("the request's context was canceled")
	}
	if st := r.Status()[0].Backends[0]; st.Errors["idle_timeout"] != 1 || st.Inflight != 0 {
		t.Errorf("errors %+v, in flight %d", st.Errors, st.Inflight)
	}
	resp, _, err = r.Do(ctx, m, chatRequest(true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(resp.Body); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(sawOwn) != 2 || sawOwn[0] || !sawOwn[1] {
		t.Errorf("own attempt context (non-streamed, streamed) = %v; want [false true]", sawOwn)
	}
}

// TestIdleClockOnlyWhileWaiting: the idle gap is measured from the start of each wait for
// the upstream. Gaps shorter than it never end an answer however long the whole answer
// takes, and time the caller spends between reads (writing to a slow client) is not counted.
func TestIdleClockOnlyWhileWaiting(t *testing.T) {
	fakes := map[string]*fake{"steady": {do: sse(0, 30*time.Millisecond, 12, false)}, "quick": {do: sse(0, 0, 4, false)}}
	r := newTestRegistry(t, "models:\n  - name: m\n    timeouts: {idle: 80ms}\n    retry: {attempts: 1}\n"+
		backends("steady")+"  - name: n\n    timeouts: {idle: 80ms}\n    retry: {attempts: 1}\n"+backends("quick"), fakes)
	if _, _, body, err := call(t, r, "m", chatRequest(true)); err != nil || !strings.Contains(string(body), "[DONE]") {
		t.Fatalf("12 chunks 30 ms apart under an 80 ms idle gap: err=%v body=%q", err, body)
	}
	m, _ := r.Lookup("n")
	resp, _, err := r.Do(context.Background(), m, chatRequest(true))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got []byte
	buf := make([]byte, 8)
	for range 3 {
		n, err := resp.Body.Read(buf)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		got = append(got, buf[:n]...)
		time.Sleep(200 * time.Millisecond) // a slow client: longer than the idle gap
	}
	rest, err := io.ReadAll(resp.Body)
	if err != nil || !strings.Contains(string(got)+string(rest), "[DONE]") {
		t.Fatalf("a caller slow between reads: err=%v body=%q", err, string(got)+string(rest))
	}
}

// TestIdleWatchAfterAPause: a wait for the upstream that begins after the caller paused
// longer than the idle gap (so the idle watch, armed at an earlier wait, has fired with no
// wait in progress) is still ended by the idle timeout.
func TestIdleWatchAfterAPause(t *testing.T) {
	twoThenStall := func(ctx context.Context, _ *backend.Request) (*backend.Response, error) {
		pr, pw := io.Pipe()
		go func() {
			fmt.Fprint(pw, "data: {\"i\":0}\n\n")
			time.Sleep(20 * time.Millisecond)
			fmt.Fprint(pw, "data: {\"i\":1}\n\n")
			<-ctx.Done()
			pw.CloseWithError(ctx.Err())
		}()
		return &backend.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"text/event-stream"}}, Body: pr}, nil
	}
	r := newTestRegistry(t, "models:\n  - name: m\n    timeouts: {idle: 60ms}\n    retry: {attempts: 1}\n"+backends("stall"),
		map[string]*fake{"stall": {do: twoThenStall}})
	m, _ := r.Lookup("m")
	resp, _, err := r.Do(context.Background(), m, chatRequest(true))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 4096)
	for i := range 2 { // the first event, held by Do; the second, waited for
		if n, err := resp.Body.Read(buf); err != nil || !strings.Contains(string(buf[:n]), fmt.Sprintf(`"i":%d`, i)) {
			t.Fatalf("event %d: %q, %v", i, buf[:n], err)
		}
	}
	time.Sleep(250 * time.Millisecond) // the watch fires about four times with no wait in progress
	n, err := resp.Body.Read(buf)
	if !errors.Is(err, ErrIdleTimeout) {
		t.Fatalf("read %q, err = %v: want the idle timeout", buf[:n], err)
	}
	if st := r.Status()[0].Backends[0]; st.Errors["idle_timeout"] != 1 || st.Inflight != 0 {
		t.Errorf("errors %+v, in flight %d", st.Errors, st.Inflight)
	}
}

func TestQueueRefusesWhenFull(t *testing.T) {
	release := make(chan struct{})
	hold := func(ctx context.Context, _ *backend.Request) (*backend.Response, error) {
		select {
		case <-release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return jsonOK(ctx, nil)
	}
	fakes := map[string]*fake{"a": {do: hold}}
	r := newTestRegistry(t, "models:\n  - name: m\n    max_inflight: 1\n    queue: 1\n"+backends("a"), fakes)
	m, _ := r.Lookup("m")
	errs := make(chan error, 2)
	for range 2 {
		go func() {
			resp, _, err := r.Do(context.Background(), m, chatRequest(false))
			if err == nil {
				resp.Body.Close()
			}
			errs <- err
		}()
	}
	deadline := time.Now().Add(5 * time.Second)
	for m.Targets[0].queued.Load() != 1 || m.Targets[0].inflight.Load() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("requests did not take the slot and the queue place")
		}
		time.Sleep(time.Millisecond)
	}
	_, _, err := r.Do(context.Background(), m, chatRequest(false))
	var e *apierr.Error
	if !errors.As(err, &e) || e.Kind != apierr.RateLimited || e.Code != "backend_queue_full" || e.RetryAfter <= 0 {
		t.Fatalf("third request: %#v", err)
	}
	close(release)
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatalf("queued request failed: %v", err)
		}
	}
	if got := r.Status()[0].QueueRefusals; got != 1 {
		t.Errorf("queue refusals = %d", got)
	}
}

func TestRetryBudget(t *testing.T) {
	fakes := map[string]*fake{"a": {do: status(500)}, "b": {do: status(500)}, "c": {do: status(500)}}
	r := newTestRegistry(t, "models:\n  - name: m\n    retry: {attempts: 3, backoff: 1ms, max_backoff: 1ms, budget: 0.1, min_retries: 2}\n"+
		"    breaker: {failures: 100000}\n"+backends("a", "b", "c"), fakes)
	const n = 100
	for range n {
		if _, _, _, err := call(t, r, "m", chatRequest(false)); err == nil {
			t.Fatal("a failing model answered")
		}
	}
	st := r.Status()[0]
	limit := uint64(0.1*n + 2)
	if st.Retries > limit {
		t.Fatalf("retries = %d, budget allows %d", st.Retries, limit)
	}
	if st.RetriesDenied == 0 || st.Retries == 0 {
		t.Fatalf("retries %d, denied %d", st.Retries, st.RetriesDenied)
	}
	sent := fakes["a"].calls.Load() + fakes["b"].calls.Load() + fakes["c"].calls.Load()
	if sent != n+int64(st.Retries) {
		t.Errorf("backends saw %d requests, want %d + %d retries", sent, n, st.Retries)
	}
}

func TestFallbackAndSplit(t *testing.T) {
	fakes := map[string]*fake{"down": {do: refused}, "v1": {do: jsonOK}, "v2": {do: jsonOK}}
	r := newTestRegistry(t, `models:
  - name: primary
    fallbacks: [v1]
`+backends("down")+`  - name: v1
`+backends("v1")+`  - name: v2
`+backends("v2")+`  - name: canary
    split: [{model: v1, weight: 9}, {model: v2, weight: 1}]
  - name: sticky
    split: [{model: v1, weight: 1}, {model: v2, weight: 1}]
    sticky: {by: header, header: X-User}
`, fakes)
	name, _, _, err := call(t, r, "primary", chatRequest(false))
	if err != nil || name != "v1" {
		t.Fatalf("fallback: %s %v", name, err)
	}
	counts := map[string]int{}
	for range 1000 {
		name, _, _, err := call(t, r, "canary", chatRequest(false))
		if err != nil {
			t.Fatal(err)
		}
		counts[name]++
	}
	if counts["v2"] < 50 || counts["v2"] > 160 {
		t.Errorf("canary split 9:1 gave %v", counts)
	}
	for _, user := range []string{"alice", "bob", "carol", "dave"} {
		req := chatRequest(false)
		req.Client.Set("X-User", user)
		first, _, _, _ := call(t, r, "sticky", req)
		for range 20 {
			if name, _, _, _ := call(t, r, "sticky", req); name != first {
				t.Fatalf("user %s moved from %s to %s", user, first, name)
			}
		}
	}
}

func TestCircuitOpensAndCloses(t *testing.T) {
	var healthy atomic.Bool
	flaky := func(ctx context.Context, req *backend.Request) (*backend.Response, error) {
		if healthy.Load() {
			return jsonOK(ctx, req)
		}
		return status(500)(ctx, req)
	}
	fakes := map[string]*fake{"flaky": {do: flaky}, "ok": {do: jsonOK}}
	r := newTestRegistry(t, "models:\n  - name: m\n    breaker: {failures: 3, failure_ratio: 0.5, open_for: 100ms}\n"+
		"    retry: {backoff: 1ms, max_backoff: 1ms}\n"+backends("flaky", "ok"), fakes)
	for range 20 {
		if _, _, _, err := call(t, r, "m", chatRequest(false)); err != nil {
			t.Fatal(err)
		}
	}
	if n := fakes["flaky"].calls.Load(); n != 3 {
		t.Fatalf("flaky called %d times before its circuit opened, want exactly 3", n)
	}
	if c := r.Status()[0].Backends[0].Circuit; c != "open" {
		t.Fatalf("circuit %s", c)
	}
	healthy.Store(true)
	time.Sleep(120 * time.Millisecond)
	for range 20 {
		if _, _, _, err := call(t, r, "m", chatRequest(false)); err != nil {
			t.Fatal(err)
		}
	}
	if c := r.Status()[0].Backends[0].Circuit; c != "closed" {
		t.Fatalf("circuit after healing: %s", c)
	}
	if n := fakes["flaky"].calls.Load(); n < 5 {
		t.Fatalf("healed backend got %d requests in total", n)
	}
}

func TestClientCancelIsNotABackendFailure(t *testing.T) {
	fakes := map[string]*fake{"a": {do: sse(0, time.Hour, 3, false)}}
	r := newTestRegistry(t, "models:\n  - name: m\n    breaker: {failures: 1, failure_ratio: 0.01}\n"+backends("a"), fakes)
	m, _ := r.Lookup("m")
	for range 5 {
		ctx, cancel := context.WithCancel(context.Background())
		resp, _, err := r.Do(ctx, m, chatRequest(true))
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 64)
		resp.Body.Read(buf)
		cancel()
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil {
			t.Fatal("read after cancel succeeded")
		}
	}
	st := r.Status()[0].Backends[0]
	if st.Circuit != "closed" || st.Inflight != 0 {
		t.Fatalf("client cancellations counted against the backend: %+v", st)
	}
}

func TestStrategies(t *testing.T) {
	t.Run("weighted", func(t *testing.T) {
		fakes := map[string]*fake{"a": {do: jsonOK}, "b": {do: jsonOK}}
		r := newTestRegistry(t, "models:\n  - name: m\n    backends:\n"+
			"      - {type: openai, name: a, base_url: \"http://127.0.0.1:9/v1\", weight: 3}\n"+
			"      - {type: openai, name: b, base_url: \"http://127.0.0.1:9/v1\"}\n", fakes)
		var seq []string
		for range 8 {
			name, _, _, _ := call(t, r, "m", chatRequest(false))
			seq = append(seq, name)
		}
		if got := strings.Join(seq, ""); got != "aabaaaba" && got != "abaaabaa" && got != "aaba"+"aaba" {
			t.Errorf("smooth weighted order = %s", got)
		}
	})
	t.Run("least_outstanding", func(t *testing.T) {
		r := newTestRegistry(t, "models:\n  - name: m\n    strategy: least_outstanding\n"+backends("a", "b", "c"),
			map[string]*fake{"a": {do: jsonOK}, "b": {do: jsonOK}, "c": {do: jsonOK}})
		m, _ := r.Lookup("m")
		m.Targets[0].inflight.Store(5)
		m.Targets[2].inflight.Store(2)
		for range 50 {
			if i := m.pickLeastOutstanding(0b111); i != 1 {
				t.Fatalf("picked %d", i)
			}
		}
	})
	t.Run("latency", func(t *testing.T) {
		r := newTestRegistry(t, "models:\n  - name: m\n    strategy: latency\n"+backends("fast", "slow"),
			map[string]*fake{"fast": {do: jsonOK}, "slow": {do: jsonOK}})
		m, _ := r.Lookup("m")
		now := time.Now().UnixNano()
		m.Targets[0].ewmaTotal.observe(float64(10 * time.Millisecond))
		m.Targets[1].ewmaTotal.observe(float64(300 * time.Millisecond))
		for _, t := range m.Targets {
			t.lastPick.Store(now)
		}
		for range 100 {
			if i := m.pickLatency(0b11, false, now); i != 0 {
				t.Fatalf("picked the slow backend while the fast one is idle")
			}
		}
		// Load on the fast one shifts traffic.
		m.Targets[0].inflight.Store(100)
		if i := m.pickLatency(0b11, false, now); i != 1 {
			t.Fatalf("a loaded fast backend still won")
		}
		// A backend not picked for a while is probed once.
		m.Targets[0].inflight.Store(0)
		m.Targets[1].lastPick.Store(now - int64(3*latencyProbeEvery))
		if tg, _ := m.pick(0b11, false, now, 0, false); tg.Name != "slow" {
			t.Fatalf("stale backend not probed")
		}
		if tg, _ := m.pick(0b11, false, now, 0, false); tg.Name != "fast" {
			t.Fatalf("probe repeated")
		}
	})
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"0", 0},
		{"-3", 0},
		{"12", 12 * time.Second},
		{" 3 ", 3 * time.Second},
		{"999999", maxRetryAfter},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{"soon", 0},
	} {
		if got := retryAfter(tc.in, now); got != tc.want {
			t.Errorf("retryAfter(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

// TestFirstChunkBufferReuse: a stream's first chunk, read ahead into a buffer that is reused,
// reaches its reader whole however it is read; an answer closed with part of its first chunk
// unread gives nothing more, and the next stream's first chunk is its own.
func TestFirstChunkBufferReuse(t *testing.T) {
	chunk := func(tag string) func(context.Context, *backend.Request) (*backend.Response, error) {
		return func(context.Context, *backend.Request) (*backend.Response, error) {
			return &backend.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"text/event-stream"}},
				Body: io.NopCloser(strings.NewReader("data: " + strings.Repeat(tag, 300) + "\n\ndata: [DONE]\n\n"))}, nil
		}
	}
	fakes := map[string]*fake{"a": {do: chunk("a")}, "b": {do: chunk("b")}}
	r := newTestRegistry(t, "models:\n  - name: a\n"+backends("a")+"  - name: b\n"+backends("b"), fakes)
	for i := range 20 {
		name, tag := "a", "a"
		if i%2 == 1 {
			name, tag = "b", "b"
		}
		m, _ := r.Lookup(name)
		resp, _, err := r.Do(context.Background(), m, chatRequest(true))
		if err != nil {
			t.Fatal(err)
		}
		if i%4 == 3 {
			// Read a little of the first chunk, then give up on the answer.
			p := make([]byte, 10)
			if _, err := resp.Body.Read(p); err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			if n, err := resp.Body.Read(p); n != 0 || err == nil {
				t.Fatalf("a read after Close gave %d bytes (%q), err %v", n, p[:n], err)
			}
			continue
		}
		var got bytes.Buffer
		p := make([]byte, 7) // smaller than the first chunk: it is read out in pieces
		for {
			n, err := resp.Body.Read(p)
			got.Write(p[:n])
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		_ = resp.Body.Close()
		if want := "data: " + strings.Repeat(tag, 300) + "\n\ndata: [DONE]\n\n"; got.String() != want {
			t.Fatalf("stream %d of %s: got %q", i, name, got.String())
		}
	}
}

// readyBody is an answer whose bytes are all at hand: its reads never wait.
type readyBody struct{ *strings.Reader }

func (readyBody) Close() error { return nil }
func (readyBody) Ready() bool  { return true }

// TestAnswerAccountedAtClose: an answer read to its end is accounted when the caller closes
// it (after the caller's own last write), with the time it took up to its end; a read of
// bytes already at hand arms no idle watch.
func TestAnswerAccountedAtClose(t *testing.T) {
	f := &fake{do: func(context.Context, *backend.Request) (*backend.Response, error) {
		return &backend.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}},
			Body: readyBody{strings.NewReader(`{"ok":true}`)}}, nil
	}}
	r := newTestRegistry(t, "models:\n  - name: m\n    timeouts: {idle: 1s}\n"+backends("b"), map[string]*fake{"b": f})
	m, _ := r.Lookup("m")
	resp, tg, err := r.Do(context.Background(), m, chatRequest(false))
	if err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(resp.Body); err != nil || string(b) != `{"ok":true}` {
		t.Fatalf("answer %q, %v", b, err)
	}
	if resp.Body.(*body).timer.Load() != nil {
		t.Error("the idle watch was armed for reads that could not wait")
	}
	if n := tg.Inflight(); n != 1 || tg.successes.Load() != 0 {
		t.Fatalf("before Close: %d in flight, %d successes; want the answer still held", n, tg.successes.Load())
	}
	time.Sleep(100 * time.Millisecond) // the caller's own work after the last read
	if err := resp.Body.Close(); err != nil {
		t.Fatal(err)
	}
	if n := tg.Inflight(); n != 0 || tg.successes.Load() != 1 {
		t.Fatalf("after Close: %d in flight, %d successes; want 0 and 1", n, tg.successes.Load())
	}
	if took := time.Duration(tg.ewmaTotal.get()); took <= 0 || took >= 100*time.Millisecond {
		t.Errorf("latency recorded %v: want the time to the answer's end, not to Close", took)
	}
}
