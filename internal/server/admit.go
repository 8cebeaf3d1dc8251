package server

import (
	"context"
	"log/slog"
	"net/http"
	"runtime"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	"github.com/open-autoglm/autoglm/internal/admission"
	"github.com/open-autoglm/autoglm/internal/apierr"
)

// overloadRetryAfter is the Retry-After of a request refused for overload.
const overloadRetryAfter = time.Second

// admit is the admission stage (Options.Admission): it runs before the body is read or the
// caller authenticated, so a refusal costs a few microseconds. Probes and scrapes (/healthz,
// /readyz, /metrics, /debug/pprof/) are never refused: an overloaded server must still say so.
// It also counts requests in flight for releaseIdleMemory.
func (s *Server) admit(next http.Handler) http.Handler {
	l := s.opts.Admission
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.inFlight.Add(1)
		defer func() { s.inFlight.Add(-1); s.served.Add(1) }()
		if l == nil || exemptFromAdmission(r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		reason, err := l.Acquire(r.Context())
		if err != nil {
			return // the client left while queued
		}
		if reason != 0 {
			// A refusal writes no log line of its own: under overload a line per refused
			// request would cost more than the refusal. shedLog writes one a second instead.
			if rec := recorderOf(w); rec != nil {
				rec.shed = true
			}
			s.shedLog.note(r.Context(), s.log, reason)
			s.writeEarly(w, r, &apierr.Error{Kind: apierr.Unavailable, Code: apierr.CodeServerOverloaded,
				RetryAfter: overloadRetryAfter, Err: errOverload(reason)})
			return
		}
		defer l.Release()
		next.ServeHTTP(w, r)
	})
}

// shedLog turns overload refusals into at most one warning a second, with the counts since
// the last one.
type shedLog struct {
	full, wait atomic.Uint64
	last       atomic.Int64 // unix nanoseconds of the last line
}

func (l *shedLog) note(ctx context.Context, log *slog.Logger, reason admission.Reason) {
	if reason == admission.QueueFull {
		l.full.Add(1)
	} else {
		l.wait.Add(1)
	}
	now := time.Now().UnixNano()
	last := l.last.Load()
	if now-last < int64(time.Second) || !l.last.CompareAndSwap(last, now) {
		return
	}
	full, wait := l.full.Swap(0), l.wait.Swap(0)
	log.LogAttrs(ctx, slog.LevelWarn, "overloaded: refusing requests with 503",
		slog.Uint64("queue_full", full), slog.Uint64("wait_exceeded", wait))
}

type errOverload admission.Reason

func (e errOverload) Error() string { return "admission refused: " + admission.Reason(e).String() }

func exemptFromAdmission(path string) bool {
	switch path {
	case "/healthz", "/readyz", "/metrics":
		return true
	}
	return strings.HasPrefix(path, "/debug/pprof/")
}

// idleMemoryAfter is how long the server must have had nothing in flight, after serving
// something, before it hands its free heap back to the operating system.
const idleMemoryAfter = 10 * time.Second

// releaseIdleMemory returns the heap freed after a burst to the operating system once the
// server has been idle for idleMemoryAfter (ReleaseMemory). With the GC tuned for throughput (a
// high GOGC and a memory limit), the heap a burst grew is otherwise kept until the next
// collection, which an idle server does not run for minutes, and the runtime's scavenger gives
// it back slowly.
func releaseIdleMemory(ctx context.Context, inFlight *atomic.Int64, served *atomic.Uint64) {
	t := time.NewTicker(idleMemoryAfter / 2)
	defer t.Stop()
	var last uint64
	idleTicks := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n := served.Load()
		if n != last || inFlight.Load() != 0 {
			last, idleTicks = n, 0
			continue
		}
		idleTicks++
		if idleTicks == 2 { // idle for a whole idleMemoryAfter, once per quiet spell
			ReleaseMemory()
		}
	}
}

// ReleaseMemory collects garbage twice and hands the free heap back to the operating system.
//
// Twice, because one collection does not empty the sync.Pools: it only moves their contents to
// a victim cache that the next collection frees. After a burst those pools hold the buffers of
// every connection that closed — net/http's 4 KiB bufio reader and writer per client connection
// among them, tens of megabytes after a few thousand connections — and an idle server runs no
// further collection for minutes (the runtime forces one only every two minutes, and with
// GOGC=400 the scavenger keeps up to five times the live heap). debug.FreeOSMemory alone
// therefore left that memory resident. The second collection costs about as much as the
// first, on a server that has just been idle for idleMemoryAfter.
func ReleaseMemory() {
	runtime.GC()
	debug.FreeOSMemory()
}
