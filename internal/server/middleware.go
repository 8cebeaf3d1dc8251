package server

import (
	"context"
	"log/slog"
	"net/http"
	"net/textproto"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/open-autoglm/autoglm/internal/apierr"
	"github.com/open-autoglm/autoglm/internal/auth"
	"github.com/open-autoglm/autoglm/internal/httpapi"
	"github.com/open-autoglm/autoglm/internal/httphead"
	"github.com/open-autoglm/autoglm/internal/reqbody"
	"github.com/open-autoglm/autoglm/internal/telemetry"
)

// chain wraps h in the middleware every request passes through. This is the only place the
// order is written down. Admission (admit.go) comes before anything that reads the body or
// checks a credential, for requests from the listener only.
func (s *Server) chain(h http.Handler, admit bool) http.Handler {
	if s.opts.Auth != nil {
		h = s.authenticate(h)
	}
	h = s.limitBody(h)
	h = compress(h)
	if admit {
		h = s.admit(h)
	}
	h = s.recoverPanics(h)
	if s.opts.Tracing != nil {
		h = s.serverSpan(h)
	}
	return s.observe(h)
}

// observe is the first stage: the request's trace id and its access log line.
//
// It accepts a well-formed X-Trace-Id (or W3C traceparent) or makes one, puts it in the
// context and echoes it in the response header, and again as X-Request-Id, the header OpenAI's
// and Anthropic's SDKs read as the request id (so a client's request id is the trace id). A
// browser's navigation (Sec-Fetch-Dest: document) also gets Cross-Origin-Opener-Policy:
// same-origin, whatever the route.
//
// Once the handler has returned it writes one JSON line per request: trace id, method, path,
// status, duration, model, backend, bytes written and client address. Both facts go into the
// context as one layer (telemetry.WithRequest), with one copy of the request.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := telemetry.TraceIDFromRequest(r)
		// Both headers carry one value: one read-only slice serves both (the canonical keys
		// are written directly; a later Set replaces the slice rather than writing into it).
		v := []string{id}
		h := w.Header()
		h[traceHeaderKey] = v
		h[requestIDHeaderKey] = v
		if httphead.Get(r.Header, "Sec-Fetch-Dest") == "document" {
			// A browser shows this answer as a page: it goes in a browsing context group of
			// its own, so that a page of another site that opened a window on this server
			// keeps no handle on it. The console's page relies on it: it leaves the header
			// out for a navigation the user starts (web.severOpener), which keeps an
			// opener's handle only when the window's previous page was of the same origin
			// and without the header.
			h[coopHeaderKey] = coopSameOrigin
		}
		// The recorder and the request's info in one allocation.
		st := &struct {
			rec  recorder
			info telemetry.RequestInfo
		}{rec: recorder{ResponseWriter: w}}
		rec, info := &st.rec, &st.info
		ctx := telemetry.WithRequest(r.Context(), id, info)
		next.ServeHTTP(rec, r.WithContext(ctx))
		status := rec.status
		if rec.canceled || r.Context().Err() != nil {
			// The client went away before the answer was complete, even if a stream had begun.
			status = apierr.StatusClientClosed
		} else if status == 0 {
			status = http.StatusOK
		}
		model, backend := info.Snapshot()
		if s.opts.Observe != nil {
			s.opts.Observe(info.Route(), r.Method, status, time.Since(start))
		}
		level := slog.LevelInfo
		if status >= 500 && status != apierr.StatusClientClosed {
			level = slog.LevelWarn
		}
		if rec.shed {
			level = slog.LevelDebug
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

// RequestIDHeader carries the trace id under the name OpenAI's SDKs read as the request id.
const RequestIDHeader = "X-Request-Id"

// The header map keys of the trace id headers, as Header.Set would write them.
var (
	traceHeaderKey     = textproto.CanonicalMIMEHeaderKey(httpapi.TraceHeader)
	requestIDHeaderKey = textproto.CanonicalMIMEHeaderKey(RequestIDHeader)
	coopHeaderKey      = textproto.CanonicalMIMEHeaderKey("Cross-Origin-Opener-Policy")
	coopSameOrigin     = []string{"same-origin"}
)

func traceIDOf(ctx context.Context) string { return telemetry.TraceID(ctx) }

// recorder wraps the ResponseWriter to learn the status and byte count for the access log,
// and whether the response has started (after which an error can only be logged).
type recorder struct {
	http.ResponseWriter
	status      int
	bytes       int64
	wroteHeader bool
	canceled    bool
	shed        bool // refused for overload by the admission stage: counted, not logged (admit.go)
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
			s.writeEarly(w, r, &apierr.Error{Kind: apierr.Internal, Code: apierr.CodeInternalError})
		}()
		next.ServeHTTP(w, r)
	})
}

// shapeFor is the error shape of a request for errors raised before its route runs (panics,
// body limits, authentication): the shape of the route the mux would choose, from the same
// route table, or the envelope when no route matches.
func (s *Server) shapeFor(r *http.Request) apierr.Shape {
	if _, pattern := s.mux.Handler(r); pattern != "" {
		if shape, ok := s.shapes[pattern]; ok {
			return shape
		}
	}
	return apierr.ShapeEnvelope
}

// writeEarly answers an error raised before the route runs: through the route's own error
// writer when it has one (Route.Errors), otherwise in its shape (shapeFor).
func (s *Server) writeEarly(w http.ResponseWriter, r *http.Request, err error) {
	if _, pattern := s.mux.Handler(r); pattern != "" {
		if f := s.early[pattern]; f != nil {
			e := apierr.From(err)
			if e.Kind != apierr.Canceled && f(w, r, e) {
				return
			}
		}
	}
	s.writeError(w, r, s.shapeFor(r), err)
}

// limitBody refuses bodies over the configured size: at once when Content-Length says so,
// otherwise when reading passes the limit.
func (s *Server) limitBody(next http.Handler) http.Handler {
	def := s.cfg.MaxBodyBytes
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		max := def
		if n, ok := s.bodyLimits[routeKey{r.Method, r.URL.Path}]; ok {
			max = n
		}
		if r.ContentLength > max {
			s.writeEarly(w, r, &apierr.Error{Kind: apierr.TooLarge, Code: apierr.CodeBodyTooLarge,
				Message: "request body exceeds the limit of " + strconv.FormatInt(max, 10) + " bytes"})
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, max)
		next.ServeHTTP(w, r)
	})
}

// authenticate establishes who is calling and puts the principal in the context. A request
// without a credential goes on anonymous (the route decides whether that is enough); a bad
// credential is refused here, whatever the route.
func (s *Server) authenticate(next http.Handler) http.Handler {
	a := s.opts.Auth
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, span := telemetry.StartSpan(r.Context(), telemetry.SpanAuth)
		p, err := a.Authenticate(r)
		if err != nil {
			telemetry.Fail(span, apierr.From(err).PublicCode(), "credential refused")
			span.End()
			s.writeEarly(w, r, err)
			return
		}
		if span.IsRecording() && p != nil {
			span.SetAttributes(telemetry.AttrPrincipal.String(string(p.Method)))
		}
		span.End()
		if p != nil {
			r = r.WithContext(auth.NewContext(r.Context(), p))
		}
		next.ServeHTTP(w, r)
	})
}

// stages is one route's chain after routing, outermost first: authorization (the route's
// permission, then the model allow-list), then the limit stage, then the handler. Each stage
// returns its refusal as an error, which the caller renders in the route's shape. A route
// without a permission is refused to everyone while auth is on: failing closed is the only
// safe default, and the route-table test catches it first.
func (s *Server) stages(rt httpapi.Route) httpapi.HandlerFunc {
	h := rt.Handler
	if s.opts.Limit != nil && rt.Limited() {
		h = limitSpan(s.opts.Limit(rt.Limit), h)
	}
	if s.opts.Auth == nil || rt.Permission == httpapi.Public {
		return h
	}
	if rt.Permission == "" {
		s.log.Error("route has no permission; refusing it to everyone", "method", rt.Method, "pattern", rt.Pattern)
		return func(w http.ResponseWriter, r *http.Request) error {
			return apierr.New(apierr.CodeRouteNotMapped, "this route is not open to any role")
		}
	}
	return s.authorize(rt.Permission)(h)
}

// authorize is the authorization stage for routes that need perm.
func (s *Server) authorize(perm auth.Permission) httpapi.Stage {
	return func(next httpapi.HandlerFunc) httpapi.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) error {
			p, _ := auth.FromContext(r.Context())
			err := auth.Authorize(p, perm)
			if err == nil && perm == auth.ModelsUse && len(p.Models) > 0 {
				err = s.checkModel(r, p)
			}
			if err != nil {
				if s.opts.Denied != nil {
					s.opts.Denied(r, p, perm, err)
				}
				return err
			}
			return next(w, r)
		}
	}
}

// checkModel enforces a principal's model allow-list on a request whose body names a model.
// The body is read here and handed on unchanged. The model is found the way the handler finds
// it (wire.Peek, which refuses a repeated key), so the two cannot disagree; a body Peek refuses
// is passed on for the handler to refuse with its usual error. The body is read and scanned
// once for this stage, the rate limiter and the handler (package reqbody). An alias is allowed when either
// the name sent or the model it resolves to is on the list.
func (s *Server) checkModel(r *http.Request, p *auth.Principal) error {
	if _, err := reqbody.Read(r); err != nil {
		return apierr.From(err)
	}
	f, err := reqbody.Peek(r)
	if err != nil || !f.HasModel || f.Model == "" || p.AllowsModel(f.Model) {
		return nil
	}
	if m, ok := s.reg.Lookup(f.Model); ok && p.AllowsModel(m.Name) {
		return nil
	}
	return p.CheckModel(f.Model)
}
