package server

import (
	"context"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/open-autoglm/autoglm/internal/apierr"
	"github.com/open-autoglm/autoglm/internal/telemetry"
)

// chain wraps h in the middleware every request passes through. This is the only place the
// order is written down.
func (s *Server) chain(h http.Handler) http.Handler {
	h = s.limitBody(h)
	h = compress(h)
	h = s.recoverPanics(h)
	h = s.accessLog(h)
	return s.traceID(h)
}

// traceID accepts a well-formed X-Trace-Id (or W3C traceparent) or makes one, puts it in the
// context and echoes it in the response header.
func (s *Server) traceID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := telemetry.TraceIDFromRequest(r)
		w.Header().Set(telemetry.TraceHeader, id)
		ctx := telemetry.WithTraceID(r.Context(), id)
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

func traceIDOf(ctx context.Context) string { return telemetry.TraceID(ctx) }

// recorder wraps the ResponseWriter to learn the status and byte count for the access log,
// and whether the response has started (after which an error can only be logged).
type recorder struct {
	http.ResponseWriter
	status      int
	bytes       int64
	wroteHeader bool
	canceled    bool
}

func (rw *recorder) WriteHeader(code int) {
	if !rw.wroteHeader {
		rw.status = code
		rw.wroteHeader = code >= 200 // 1xx informational headers do not start the response
	}
	rw.ResponseWriter.WriteHeader(code)
}

func (rw *recorder) Write(p []byte) (int, error) {
	if !rw.wroteHeader {
		rw.status, rw.wroteHeader = http.StatusOK, true
	}
	n, err := rw.ResponseWriter.Write(p)
	rw.bytes += int64(n)
	return n, err
}

// Flush lets handlers flush without a ResponseController.
func (rw *recorder) Flush() {
	if !rw.wroteHeader {
		rw.status, rw.wroteHeader = http.StatusOK, true
	}
	if f, ok := rw.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap exposes the underlying writer to http.ResponseController.
func (rw *recorder) Unwrap() http.ResponseWriter { return rw.ResponseWriter }

func (rw *recorder) noteCanceled() { rw.canceled = true }

func recorderOf(w http.ResponseWriter) *recorder {
	for {
		switch v := w.(type) {
		case *recorder:
			return v
		case interface{ Unwrap() http.ResponseWriter }:
			w = v.Unwrap()
		default:
			return nil
		}
	}
}

// accessLog writes one JSON line per request: trace id, method, path, status, duration, model,
// backend, bytes written and client address.
func (s *Server) accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		info := &telemetry.RequestInfo{}
		rec := &recorder{ResponseWriter: w}
		ctx := telemetry.WithRequestInfo(r.Context(), info)
		next.ServeHTTP(rec, r.WithContext(ctx))
		status := rec.status
		if rec.canceled || r.Context().Err() != nil {
			// The client went away before the answer was complete, even if a stream had begun.
			status = apierr.StatusClientClosed
		} else if status == 0 {
			status = http.StatusOK
		}
		model, backend := info.Snapshot()
		level := slog.LevelInfo
		if status >= 500 && status != apierr.StatusClientClosed {
			level = slog.LevelWarn
		}
		if !s.log.Enabled(ctx, level) {
			return
		}
		attrs := make([]slog.Attr, 0, 9)
		attrs = append(attrs,
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", status),
			slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
			slog.Int64("bytes", rec.bytes),
			slog.String("client", r.RemoteAddr),
		)
		if model != "" {
			attrs = append(attrs, slog.String("model", model))
		}
		if backend != "" {
			attrs = append(attrs, slog.String("backend", backend))
		}
		s.log.LogAttrs(ctx, level, "request", attrs...)
	})
}

// recoverPanics turns a handler panic into a 500 (when nothing was written yet) and keeps the
// server running. The stack goes to the log, never to the client.
func (s *Server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.ErrorContext(r.Context(), "panic in handler", "panic", v, "stack", string(debug.Stack()))
			rec := recorderOf(w)
			if rec != nil && rec.wroteHeader {
				// Too late for an error response: abort the connection so the client sees a
				// broken response rather than a truncated one that looks complete.
				panic(http.ErrAbortHandler)
			}
			apierr.Write(w, shapeFor(r), telemetry.TraceID(r.Context()), &apierr.Error{Kind: apierr.Internal, Code: "internal_error"})
		}()
		next.ServeHTTP(w, r)
	})
}

// shapeFor is the error shape of a path for errors raised before a route is known.
func shapeFor(r *http.Request) apierr.Shape {
	switch r.URL.Path {
	case "/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/models":
		return apierr.ShapeOpenAI
	}
	if len(r.URL.Path) > len("/v1/models/") && r.URL.Path[:len("/v1/models/")] == "/v1/models/" {
		return apierr.ShapeOpenAI
	}
	return apierr.ShapeEnvelope
}

// limitBody refuses bodies over the configured size: at once when Content-Length says so,
// otherwise when reading passes the limit.
func (s *Server) limitBody(next http.Handler) http.Handler {
	max := s.cfg.MaxBodyBytes
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > max {
			apierr.Write(w, shapeFor(r), telemetry.TraceID(r.Context()), &apierr.Error{Kind: apierr.TooLarge, Code: "body_too_large",
				Message: "request body exceeds the limit of " + strconv.FormatInt(max, 10) + " bytes"})
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, max)
		next.ServeHTTP(w, r)
	})
}
