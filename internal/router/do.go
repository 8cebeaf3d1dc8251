package router

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	oteltrace "go.opentelemetry.io/otel/trace"

	"github.com/open-autoglm/autoglm/internal/apierr"
	"github.com/open-autoglm/autoglm/internal/backend"
	"github.com/open-autoglm/autoglm/internal/httphead"
	"github.com/open-autoglm/autoglm/internal/telemetry"
	"github.com/open-autoglm/autoglm/internal/wire"
)

// budgetWindow is the window over which the retry budget compares retries with requests.
const budgetWindow = 10 * time.Second

// maxRetryAfter caps how long an upstream's Retry-After keeps a backend out of rotation.
const maxRetryAfter = 5 * time.Minute

// queueFullRetryAfter is the Retry-After sent with a 429 when every queue is full.
const queueFullRetryAfter = time.Second

// Errors a body returned by Do may report mid-way. Nothing is retried once bytes have reached
// the client, so these end the response.
var (
	// ErrIdleTimeout: the backend sent nothing for longer than the idle timeout.
	ErrIdleTimeout = errors.New("upstream idle timeout: no data within the idle gap")
	// ErrTotalTimeout: the request reached its total timeout.
	ErrTotalTimeout = errors.New("request total timeout reached")
	// ErrBroken: the backend's answer broke off before its end.
	ErrBroken = errors.New("upstream answer broke off")
)

// Request is one client request to schedule.
type Request struct {
	Op backend.Op
	// Body is the client's JSON body; Fields locate its "model" value, which is rewritten to
	// each backend's model name. The body is never modified.
	Body   []byte
	Fields wire.Fields
	// Stream reports whether the client asked for a stream.
	Stream bool
	// Header holds the client headers forwarded upstream (never Authorization).
	Header http.Header
	// Client holds the client's own request headers; only sticky routing reads them.
	Client http.Header
	// Meta is what the caller knows about the request that is not in its body (the task
	// kind, a code task's language); the Hook reads it. It is never sent upstream.
	Meta map[string]string
}

// Hook wraps every Registry.Do: it is where the plugin chain runs, the one point every
// model request passes (HTTP, gRPC, Anthropic Messages and Responses translated to chat, and
// the task system), for remote and local backends alike. It may change req, answer without
// calling next, or return an error; next sends a request on to m's backends (m may be another
// model of the registry). Implementations are safe for concurrent use.
type Hook interface {
	Do(ctx context.Context, m *Model, req *Request, next DoFunc) (*backend.Response, *Target, error)
}

// DoFunc sends a request to a model's backends without the Hook.
type DoFunc func(ctx context.Context, m *Model, req *Request) (*backend.Response, *Target, error)

// SetHook installs h around every later Do (nil removes it). Safe to call while requests
// run: each request uses the hook that was installed when it started.
func (r *Registry) SetHook(h Hook) {
	if h == nil {
		r.hook.Store(nil)
		return
	}
	r.hook.Store(&h)
}

// Do sends req through the Hook, when one is installed, and then to a backend of m (see
// dispatch).
func (r *Registry) Do(ctx context.Context, m *Model, req *Request) (*backend.Response, *Target, error) {
	if h := r.hook.Load(); h != nil {
		return (*h).Do(ctx, m, req, r.dispatch)
	}
	return r.dispatch(ctx, m, req)
}

// failure is what one model's tries ended with, kept to answer the client when every try
// failed. The first real upstream failure is the answer: a later fallback's error is logged,
// not surfaced.
type failure struct {
	first     *apierr.Error // first upstream failure
	queueFull bool          // a backend was left out because its queue was full
	soonest   int64         // Unix nanoseconds when some unavailable backend may be tried again
}

// dispatch sends req to a backend of m, retrying on other backends and then on the model's
// fallbacks while that is safe: after a connection error, a 429 or 5xx answer, or a TTFT
// timeout, never after a byte of the answer was handed out. It returns the answer, whose
// body the caller must close as soon as it is done with it (an answer read to its end is
// accounted to its backend, and its connection pooled, at Close), and the backend that gave
// it. For a stream, the first chunk has already arrived when Do returns.
//
// The error is an *apierr.Error ready for the client: the first upstream failure when every
// try failed, 429 with Retry-After when every backend's queue is full, 503 when no backend is
// available, or the cancellation or deadline of ctx.
func (r *Registry) dispatch(ctx context.Context, m *Model, req *Request) (*backend.Response, *Target, error) {
	now := time.Now()
	m.requests.Add(1)
	m.budget.add(now.UnixNano(), 1, 0)
	key, sticky := m.stickyKey(req.Client)

	var chainBuf [8]*Model
	chain := chainBuf[:0]
	if len(m.split) > 0 {
		chain = m.chooseSplit(key, sticky, chain)
	} else {
		chain = append(chain, m)
	}
	for _, f := range m.fallbacks {
		if len(f.split) > 0 {
			chain = f.chooseSplit(key, sticky, chain)
		} else {
			chain = append(chain, f)
		}
	}

	clientCtx := ctx
	cancelTotal := context.CancelFunc(noCancel)
	if total := m.cfg.Timeouts.Total.D(); total > 0 {
		ctx, cancelTotal = context.WithTimeout(ctx, total)
	}

	var fail failure
	attempts := 0
	maxAttempts := max(m.cfg.Retry.Attempts, 1)
chain:
	for ci, cm := range chain {
		if slices.Contains(chain[:ci], cm) {
			continue
		}
		var tried uint64
		for attempts < maxAttempts {
			if attempts > 0 {
				now := time.Now().UnixNano()
				if mask, _, full := cm.candidates(tried, now); mask == 0 {
					fail.noteUnavailable(cm, tried, now, full)
					break // nothing left here: do not spend a retry on it
				}
				if !m.spendRetry(now) {
					m.budgetDenied.Add(1)
					r.log.DebugContext(ctx, "retry refused by the budget", "model", m.Name)
					break chain
				}
				if err := sleep(ctx, backoff(m, attempts)); err != nil {
					break chain
				}
			}
			_, rspan := telemetry.StartSpan(ctx, telemetry.SpanRoute)
			t, trial, err := r.acquire(ctx, cm, tried, req.Stream, key, sticky && attempts == 0 && ci == 0, &fail)
			if rspan.IsRecording() {
				rspan.SetAttributes(telemetry.GenAIRequestModel.String(cm.Name), attribute.Bool("autoglm.route.fallback", ci > 0),
					attribute.String("autoglm.route.strategy", cm.cfg.Strategy))
				if t != nil {
					rspan.SetAttributes(telemetry.AttrBackend.String(t.Name), attribute.Bool("autoglm.route.trial", trial))
				} else if err == nil {
					telemetry.Fail(rspan, string(apierr.CodeNoBackend), "no backend of "+cm.Name+" left to try")
				}
			}
			rspan.End()
			if err != nil {
				break chain // ctx done
			}
			if t == nil {
				break // nothing more to try in this model
			}
			tried |= 1 << t.idx
			if attempts > 0 {
				m.retries.Add(1)
			}
			attempts++
			resp, aerr, retry := r.attempt(ctx, clientCtx, cm, t, trial, req, cancelTotal, attempts)
			if aerr == nil {
				return resp, t, nil
			}
			if !retry {
				cancelTotal()
				return nil, t, aerr
			}
			if fail.first == nil {
				fail.first = aerr
			}
		}
	}
	cancelTotal()
	if err := clientCtx.Err(); err != nil {
		return nil, nil, apierr.From(err)
	}
	if ctx.Err() != nil {
		return nil, nil, &apierr.Error{Kind: apierr.Timeout, Code: apierr.CodeRequestTimeout,
			Message: "the request reached its total timeout", Err: ctx.Err()}
	}
	return nil, nil, fail.answer(m)
}

// spendRetry takes one retry from the model's budget if it has room: retries in the window
// stay within budget × requests + min_retries. The check and the count are one step, so
// concurrent requests cannot overdraw it.
func (m *Model) spendRetry(now int64) bool {
	ratio, floor := m.cfg.Retry.Budget, float64(m.cfg.Retry.MinRetries)
	return m.budget.addIf(now, 0, 1, func(reqs, retries uint64) bool {
		return float64(retries+1) <= ratio*float64(reqs)+floor
	})
}

// backoff is the wait before retry n (n ≥ 1): uniform in [0, min(max, base·2^(n-1))], the
// "full jitter" that spreads the retries of many clients.
func backoff(m *Model, n int) time.Duration {
	base, ceil := m.cfg.Retry.Backoff.D(), m.cfg.Retry.MaxBackoff.D()
	if base <= 0 {
		return 0
	}
	d := base << min(n-1, 30)
	if d > ceil || d <= 0 {
		d = ceil
	}
	return rand.N(d + 1)
}

// acquire picks a backend of cm not in tried and takes an in-flight slot on it, waiting in its
// queue when every candidate is at its cap. It returns a nil target when cm has nothing more
// to offer, noting why in fail, and an error only when ctx is done.
func (r *Registry) acquire(ctx context.Context, cm *Model, tried uint64, stream bool, key uint64, sticky bool, fail *failure) (*Target, bool, error) {
	for {
		now := time.Now().UnixNano()
		mask, queued, full := cm.candidates(tried, now)
		if mask == 0 {
			if full {
				cm.queueRefusals.Add(1)
			}
			fail.noteUnavailable(cm, tried, now, full)
			return nil, false, nil
		}
		t, trial := cm.pick(mask, stream, now, key, sticky)
		if t == nil {
			fail.noteUnavailable(cm, tried, now, false)
			return nil, false, nil
		}
		var err error
		if queued {
			err = t.acquire(ctx)
		} else if !t.tryAcquire() {
			if trial {
				t.br.releaseTrial()
			}
			continue // a slot went between the look and the take: look again
		}
		if err == nil {
			return t, trial, nil
		}
		if trial {
			t.br.releaseTrial()
		}
		if ctx.Err() != nil {
			return nil, false, ctx.Err()
		}
		// Queue full or waited too long: refuse here, try the others.
		t.countError(FailQueueFull)
		cm.queueRefusals.Add(1)
		fail.queueFull = true
		tried |= 1 << t.idx
	}
}

// noteUnavailable records when the soonest backend of cm that was left out for its circuit
// or a Retry-After may be tried again, and whether one was left out for a full queue.
func (f *failure) noteUnavailable(cm *Model, tried uint64, now int64, full bool) {
	if full {
		f.queueFull = true
	}
	for _, t := range cm.Targets {
		if tried&(1<<t.idx) != 0 {
			continue
		}
		var at int64
		if c := t.cooldown.Load(); c > now {
			at = c
		}
		if Circuit(t.br.state.Load()) == CircuitOpen {
			at = max(at, t.br.openUntil.Load())
		}
		if at > now && (f.soonest == 0 || at < f.soonest) {
			f.soonest = at
		}
	}
}

// answer is the error the client sees when no try succeeded.
func (f *failure) answer(m *Model) *apierr.Error {
	if f.first != nil {
		return f.first
	}
	if f.queueFull {
		return &apierr.Error{Kind: apierr.RateLimited, Code: apierr.CodeBackendQueueFull, RetryAfter: queueFullRetryAfter,
			Message: "every backend of model " + m.Name + " is at its in-flight limit and its queue is full; retry later"}
	}
	e := &apierr.Error{Kind: apierr.Unavailable, Code: apierr.CodeNoBackend,
		Message: "model " + m.Name + " has no backend available"}
	if f.soonest > 0 {
		e.RetryAfter = max(time.Until(time.Unix(0, f.soonest)), time.Second)
	}
	return e
}

// attempt sends req to t. On success it returns the answer with a body that accounts for
// the rest of the exchange. On failure it returns the client's error, whether another
// backend may be tried, and has already released t.
func (r *Registry) attempt(ctx, clientCtx context.Context, cm *Model, t *Target, trial bool, req *Request, cancelTotal context.CancelFunc, n int) (*backend.Response, *apierr.Error, bool) {
	t.requests.Add(1)
	start := time.Now()
	// The attempt's span is the parent of the upstream request: its traceparent names it.
	ctx, span := telemetry.StartSpan(ctx, telemetry.SpanUpstream, clientKind)
	if span.IsRecording() {
		span.SetAttributes(telemetry.GenAIOperationName.String(telemetry.GenAIOperation(req.Op.String())),
			telemetry.GenAIRequestModel.String(t.Model), telemetry.GenAIProviderName.String(t.Type),
			telemetry.GenAISystem.String(t.Type), telemetry.AttrBackend.String(t.Name),
			attribute.String("autoglm.model", cm.Name), telemetry.AttrAttempt.Int(n), telemetry.AttrStream.Bool(req.Stream))
	}
	// The attempt has a context of its own only when a timer of its own may have to end it
	// while the backend call waits: a total timeout, or a stream's first-token timeout.
	// Otherwise the request's context is the attempt's (the client leaving ends both), and
	// the idle watch, the one thing left that ends an attempt early, interrupts the answer's
	// body itself (body.abort). Most requests then pay for no cancel context, no child
	// registration in the request's and no done channel: 5 allocations and 460 bytes fewer
	// per non-streamed request (BenchmarkListener/lean).
	var actx context.Context
	var cancel context.CancelFunc
	own := true
	switch d := t.timeouts.Total.D(); {
	case d > 0:
		actx, cancel = context.WithTimeout(ctx, d)
	case req.Stream && t.timeouts.TTFT.D() > 0:
		actx, cancel = context.WithCancel(ctx)
	default:
		actx, cancel, own = ctx, noCancel, false
	}
	var ttftFired atomic.Bool
	var ttft *time.Timer
	if d := t.timeouts.TTFT.D(); req.Stream && d > 0 {
		ttft = time.AfterFunc(d, func() { ttftFired.Store(true); cancel() })
	}
	stopTTFT := func() bool { return ttft == nil || ttft.Stop() }

	fail := func(kind ErrorKind, e *apierr.Error, retry bool) (*backend.Response, *apierr.Error, bool) {
		stopTTFT()
		cancel()
		t.release()
		if ctx.Err() != nil {
			// The client left or the request ran out of time: not the backend's fault.
			if trial {
				t.br.releaseTrial()
			}
			if err := clientCtx.Err(); err != nil {
				telemetry.Fail(span, string(apierr.CodeCanceled), "the client went away")
				span.End()
				return nil, apierr.From(err), false
			}
			telemetry.Fail(span, string(apierr.CodeRequestTimeout), "the request reached its total timeout")
			span.End()
			return nil, &apierr.Error{Kind: apierr.Timeout, Code: apierr.CodeRequestTimeout,
				Message: "the request reached its total timeout", Err: ctx.Err()}, false
		}
		t.countError(kind)
		if kind != FailStatus429 {
			t.ewmaTotal.observe(max(float64(time.Since(start)), failurePenalty))
			if req.Stream {
				t.ewmaTTFT.observe(max(float64(time.Since(start)), failurePenalty))
			}
			r.recordOutcome(cm, t, false, trial)
		} else if trial {
			t.br.releaseTrial()
		}
		r.log.WarnContext(ctx, "backend attempt failed", "model", cm.Name, "backend", t.Name,
			"kind", kind.String(), "err", e.Err, "retry", retry)
		endAttempt(span, kind, e, retry)
		return nil, e, retry
	}

	breq := &backend.Request{Op: req.Op, Body: wire.SetModel(req.Body, req.Fields, t.Model), Stream: req.Stream, Header: req.Header}
	resp, err := t.Backend.Do(actx, breq)
	if err != nil {
		if ttftFired.Load() {
			return fail(FailTTFT, ttftError(t, err), true)
		}
		if actx.Err() == context.DeadlineExceeded && ctx.Err() == nil {
			return fail(FailTotal, &apierr.Error{Kind: apierr.Timeout, Code: apierr.CodeUpstreamTimeout,
				Message: "the model's upstream did not answer in time", Err: err}, true)
		}
		return fail(FailConnect, &apierr.Error{Kind: apierr.Upstream, Code: apierr.CodeUpstreamUnreachable,
			Message: "no backend of model " + cm.Name + " could be reached", Err: err}, true)
	}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
		ra := retryAfter(resp.Header.Get("Retry-After"), start)
		if ra > 0 {
			t.cooldown.Store(start.Add(ra).UnixNano())
		}
		drain(resp.Body)
		if resp.StatusCode == http.StatusTooManyRequests {
			e := &apierr.Error{Kind: apierr.RateLimited, Code: apierr.CodeUpstreamRateLimited, RetryAfter: ra,
				Message: "the model's upstream is rate limiting requests; retry later", Err: errors.New("upstream status 429")}
			return fail(FailStatus429, e, true)
		}
		return fail(FailStatus5xx, &apierr.Error{Kind: apierr.Upstream, Code: apierr.CodeUpstreamError,
			Message: fmt.Sprintf("the model's upstream failed (status %d)", resp.StatusCode),
			Err:     fmt.Errorf("upstream status %d", resp.StatusCode)}, true)
	}

	if span.IsRecording() {
		span.SetAttributes(attribute.Int("http.response.status_code", resp.StatusCode))
	}
	b := &body{rc: resp.Body, rr: readierOf(resp.Body), r: r, m: cm, t: t, trial: trial, start: start, status: resp.StatusCode, span: span,
		idle: t.timeouts.Idle.D(), actx: actx, client: clientCtx, cancel: cancel, ownCtx: own, cancelTotal: cancelTotal}
	if req.Stream && resp.StatusCode/100 == 2 && strings.HasPrefix(httphead.Get(resp.Header, "Content-Type"), "text/event-stream") {
		// Hold the answer until its first bytes arrive: until then another backend can
		// still be tried if this one is too slow or breaks.
		fb := firstChunks.Get().(*[]byte)
		buf := *fb
		var n int
		var rerr error
		for n == 0 && rerr == nil {
			n, rerr = resp.Body.Read(buf)
		}
		if n > 0 {
			b.pending, b.first = buf[:n], fb
		} else {
			firstChunks.Put(fb)
		}
		if !stopTTFT() {
			b.dropFirst()
			_ = resp.Body.Close()
			return fail(FailTTFT, ttftError(t, rerr), true)
		}
		if n == 0 && rerr != io.EOF {
			_ = resp.Body.Close()
			if actx.Err() == context.DeadlineExceeded && ctx.Err() == nil {
				return fail(FailTotal, &apierr.Error{Kind: apierr.Timeout, Code: apierr.CodeUpstreamTimeout,
					Message: "the model's upstream did not answer in time", Err: rerr}, true)
			}
			return fail(FailBroken, &apierr.Error{Kind: apierr.Upstream, Code: apierr.CodeUpstreamError,
				Message: "the model's upstream closed the stream before sending anything", Err: rerr}, true)
		}
		t.ewmaTTFT.observe(float64(time.Since(start)))
		if span.IsRecording() {
			span.AddEvent(telemetry.EventFirstToken, oteltrace.WithAttributes(
				attribute.Float64("gen_ai.server.time_to_first_token", time.Since(start).Seconds())))
		}
		if rerr == io.EOF {
			b.eof = true
		}
	} else {
		stopTTFT()
	}
	resp.Body = b
	return resp, nil, false
}

// clientKind marks an attempt's span as the client side of the upstream call; made once, as
// the option is the same for every attempt.
var clientKind = oteltrace.WithSpanKind(oteltrace.SpanKindClient)

// noCancel is the cancel of a context that was not made: a request without a total timeout,
// an attempt without a context of its own.
func noCancel() {}

func ttftError(t *Target, err error) *apierr.Error {
	return &apierr.Error{Kind: apierr.Timeout, Code: apierr.CodeUpstreamTimeout,
		Message: "the model's upstream sent no first token in time",
		Err:     fmt.Errorf("backend %s: no first byte within %s: %w", t.Name, t.timeouts.TTFT.D(), err)}
}

// retryAfter parses a Retry-After value (delay seconds or an HTTP date), capped at
// maxRetryAfter.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
		if s <= 0 {
			return 0
		}
		return time.Duration(min(s, int(maxRetryAfter/time.Second))) * time.Second
	}
	if at, err := http.ParseTime(v); err == nil {
		return min(max(at.Sub(now), 0), maxRetryAfter)
	}
	return 0
}

// recordOutcome feeds one outcome to t's breaker and logs circuit changes.
func (r *Registry) recordOutcome(cm *Model, t *Target, ok, trial bool) {
	if ok {
		t.successes.Add(1)
	}
	if changed, to := t.br.record(time.Now().UnixNano(), ok, trial); changed {
		if to == CircuitOpen {
			r.log.Warn("circuit opened", "model", cm.Name, "backend", t.Name, "trial", trial)
		} else {
			r.log.Info("circuit closed", "model", cm.Name, "backend", t.Name)
		}
	}
}

// body is the answer handed to the caller. It enforces the idle gap between chunks, turns
// timeouts into ErrIdleTimeout and ErrTotalTimeout, and on the end of the answer (or Close)
// accounts the outcome to the backend and releases its in-flight slot.
type body struct {
	rc      io.ReadCloser
	rr      readier // rc, when it can tell that its next read will not wait; else nil
	r       *Registry
	m       *Model
	t       *Target
	trial   bool
	start   time.Time
	status  int
	pending []byte         // first chunk, read ahead while waiting for the first token
	first   *[]byte        // the firstChunks buffer pending lies in, until handed back
	eof     bool           // rc already returned io.EOF
	span    oteltrace.Span // the attempt's span, ended with the answer

	// The idle watch: one timer for the whole answer, armed at the first wait for the
	// upstream. A read only notes when its wait began (waitStart); the timer, when it fires,
	// ends a wait that has reached the idle gap, or sets itself for when the wait in progress
	// (or, with none, one starting then) would reach it. A stream of many events so costs one
	// timer, not a reset and a stop at every read.
	idle      time.Duration
	timer     atomic.Pointer[time.Timer]
	waitStart atomic.Int64 // nanoseconds since start, plus one, when the wait in progress began; 0: none
	ended     atomic.Bool  // the answer is accounted: the watch stops
	idleFired atomic.Bool

	actx, client        context.Context // the attempt (with the total timeouts) and the client's own
	cancel, cancelTotal context.CancelFunc
	ownCtx              bool // actx is the attempt's own, which cancel ends; else the request's

	err      error // sticky read error
	closed   bool
	complete bool          // read to its end: Close accounts it as a success (end)
	took     time.Duration // from the attempt's start to the end of the answer, once complete
}

// Read implements io.Reader.
func (b *body) Read(p []byte) (int, error) {
	if len(b.pending) > 0 {
		n := copy(p, b.pending)
		b.pending = b.pending[n:]
		if len(b.pending) == 0 {
			b.dropFirst()
		}
		if len(b.pending) == 0 && b.eof {
			// The answer ended with its first bytes: say so with them, so the caller can
			// end its own answer in the same write.
			b.end()
			return n, io.EOF
		}
		return n, nil
	}
	if b.err != nil {
		return 0, b.err
	}
	if b.eof {
		b.end()
		return 0, io.EOF
	}
	// The idle clock runs only while waiting for the upstream, not while the caller is busy
	// writing to a slow client.
	if b.idle > 0 && (b.rr == nil || !b.rr.Ready()) {
		b.waitStart.Store(int64(time.Since(b.start)) + 1)
		if b.timer.Load() == nil {
			b.timer.Store(time.AfterFunc(b.idle, b.watchIdle))
		}
	}
	n, err := b.rc.Read(p)
	if b.idle > 0 {
		b.waitStart.Store(0)
	}
	if err == nil {
		return n, nil
	}
	if err == io.EOF {
		b.end()
		return n, io.EOF
	}
	switch {
	case b.idleFired.Load():
		b.err = ErrIdleTimeout
		b.finish(false, FailIdle)
	case b.client.Err() != nil:
		b.err = err
		b.finish(false, -1)
	case errors.Is(b.actx.Err(), context.DeadlineExceeded):
		b.err = ErrTotalTimeout
		b.finish(false, FailTotal)
	default:
		b.err = fmt.Errorf("%w: %w", ErrBroken, err)
		b.finish(false, FailBroken)
	}
	return n, b.err
}

// end notes the answer's end, after which every read reports io.EOF. The answer is
// accounted as a success at Close, not here: the caller's last read is followed by its own
// last write (the relay's flush to the client), which should not wait for the bookkeeping,
// and every caller closes the body at once. Its duration is taken now.
func (b *body) end() {
	b.err = io.EOF
	if !b.closed && !b.complete {
		b.complete = true
		b.took = time.Since(b.start)
		b.ended.Store(true) // the idle watch has nothing more to watch
	}
}

// A readier says whether its next read returns without waiting for the upstream (its bytes
// are already buffered; the transport's body says so): such a read needs no idle watch. A
// non-streamed answer usually arrives whole with its head, and its one read then costs no
// timer.
type readier interface{ Ready() bool }

func readierOf(r io.Reader) readier {
	rr, _ := r.(readier)
	return rr
}

// watchIdle runs when the idle watch fires. A wait that has lasted the idle gap is ended:
// the attempt is aborted (abort), and the read it unblocks reports ErrIdleTimeout. Otherwise the
// watch is set for when the wait in progress would reach the gap, or, with no wait in
// progress, a full gap from now, so a wait that begins before then is still caught on time.
func (b *body) watchIdle() {
	if b.ended.Load() {
		return
	}
	next := b.idle
	if s := b.waitStart.Load(); s != 0 {
		waited := time.Since(b.start) - time.Duration(s-1)
		if waited >= b.idle {
			b.idleFired.Store(true)
			b.abort()
			return
		}
		next = b.idle - waited
	}
	// The answer may end between the check above and this reset: the watch then fires once
	// more, finds it ended, and stops.
	b.timer.Load().Reset(next)
}

// abort ends the read in progress from the idle watch's goroutine. With a context of its own
// the attempt is canceled, which unblocks the backend's read. Without one, the body is
// interrupted directly: the transport's body closes its connection (Interrupt, safe beside a
// read in progress); any other body is closed, which net/http's bodies and io.Pipe allow
// while a read waits. Either way the backend sees the answer abandoned, as when the client
// leaves.
func (b *body) abort() {
	if b.ownCtx {
		b.cancel()
		return
	}
	if i, ok := b.rc.(interrupter); ok {
		i.Interrupt()
		return
	}
	_ = b.rc.Close()
}

// An interrupter ends a read in progress on it from another goroutine.
type interrupter interface{ Interrupt() }

// finish accounts the outcome once: ok at the end of the answer; a failure of kind when
// kind ≥ 0; nothing (the client left) otherwise.
func (b *body) finish(ok bool, kind ErrorKind) {
	if b.closed {
		return
	}
	b.closed = true
	b.ended.Store(true)
	if t := b.timer.Load(); t != nil {
		t.Stop()
	}
	t := b.t
	defer b.span.End()
	switch {
	case ok:
		if b.status/100 == 2 {
			t.ewmaTotal.observe(float64(b.took))
		}
		b.r.recordOutcome(b.m, t, true, b.trial)
	case kind >= 0:
		t.countError(kind)
		if kind != FailTotal {
			b.r.recordOutcome(b.m, t, false, b.trial)
		} else if b.trial {
			t.br.releaseTrial()
		}
		b.r.log.Warn("backend answer ended early", "model", b.m.Name, "backend", t.Name, "kind", kind.String())
		telemetry.Fail(b.span, kind.String(), "the answer ended early")
	default:
		if b.trial {
			t.br.releaseTrial()
		}
	}
	b.cancel()
	t.release()
}

// dropFirst hands the first chunk's buffer back once nothing refers to it.
func (b *body) dropFirst() {
	b.pending = nil
	if b.first != nil {
		firstChunks.Put(b.first)
		b.first = nil
	}
}

// firstChunks holds the buffers a stream's first chunk is read ahead into. A fresh 4 KiB for
// every stream measured 13-16 µs more on its time to first token at 200 requests/s than a
// buffer taken back here; why is not known (an extra 4 KiB allocated elsewhere on the path
// cost nothing measurable). See docs/BENCHMARKS.md.
var firstChunks = sync.Pool{New: func() any { b := make([]byte, 4096); return &b }}

// Close implements io.Closer. Closing after the end accounts the answer (end); closing
// before it abandons the upstream request. The upstream's body is closed first, so that its
// connection goes back to the pool before the attempt's context is canceled.
func (b *body) Close() error {
	b.dropFirst()
	err := b.rc.Close()
	b.finish(b.complete, -1)
	b.cancelTotal()
	return err
}

// endAttempt records a failed attempt on its span: the failure's kind as error.type and, when
// another backend is tried next, a retry event naming the reason; then ends it.
func endAttempt(span oteltrace.Span, kind ErrorKind, e *apierr.Error, retry bool) {
	if span.IsRecording() {
		reason := kind.String()
		span.SetAttributes(telemetry.AttrRetry.Bool(retry), telemetry.AttrRetryReason.String(reason))
		telemetry.Fail(span, reason, e.Message)
		if retry {
			span.AddEvent(telemetry.EventRetry, oteltrace.WithAttributes(telemetry.AttrRetryReason.String(reason)))
		}
	}
	span.End()
}
