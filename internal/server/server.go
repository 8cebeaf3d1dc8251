// Package server is the access layer: the HTTP listener and the request chain every route
// passes through. It serves routes; it does not make them. Feature packages (openai, task,
// admin, grpcapi, ...) export their routes as httpapi.Route values, each carrying its
// handler, error shape, permission and limit policy, and `autoglm serve` composes them. The
// server's own routes are the ones about the server itself: health, readiness, metrics,
// profiles and the backends' scheduling state.
//
// The chain, outermost first (written once, in Server.chain and Server.stages):
//
//	trace id (and, for a browser's navigation, Cross-Origin-Opener-Policy) → access log → server span (tracing on) → panic recovery → admission (requests
//	from the listener: bounded in flight and queued, refused early past that) → compression
//	(zstd/gzip, never SSE) → body limit → authentication
//	→ route: method check → authorization (Route.Permission, then the model allow-list)
//	  → limit (Route.Limit: rate limits, quotas) → handler
//
// Authentication runs for every request and only establishes who is calling; authorization
// runs once the route is known, because what a request needs depends on its route. With
// authentication off, neither stage exists. Every stage after routing returns its refusal as
// an error, and one function (writeError) renders every error in the route's shape.
package server

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/open-autoglm/autoglm/internal/admission"
	"github.com/open-autoglm/autoglm/internal/apierr"
	"github.com/open-autoglm/autoglm/internal/auth"
	"github.com/open-autoglm/autoglm/internal/config"
	"github.com/open-autoglm/autoglm/internal/evloop"
	"github.com/open-autoglm/autoglm/internal/h1"
	"github.com/open-autoglm/autoglm/internal/httpapi"
	"github.com/open-autoglm/autoglm/internal/openapi"
	"github.com/open-autoglm/autoglm/internal/router"
	"github.com/open-autoglm/autoglm/internal/telemetry"

	"go.opentelemetry.io/otel/trace"
)

// Server is autoglm's HTTP server.
type Server struct {
	cfg      config.Server
	reg      *router.Registry
	log      *slog.Logger
	opts     Options
	mux      *routeMux
	handler  http.Handler
	routes   []httpapi.Route
	shapes   map[string]apierr.Shape                                                 // route pattern → error shape
	early    map[string]func(http.ResponseWriter, *http.Request, *apierr.Error) bool // route pattern → Route.Errors
	draining atomic.Bool

	// admitted is the chain with the admission stage (admit.go), for the listener; handler is
	// the chain without it, for requests made on behalf of an admitted one.
	admitted http.Handler
	inFlight atomic.Int64
	served   atomic.Uint64
	conns    atomic.Int64 // client connections open (OpenConns)
	// shedLog summarises overload refusals in the log (admit.go).
	shedLog shedLog

	// bodyLimits are the routes' own body limits (Route.MaxBody), by method and path.
	bodyLimits map[routeKey]int64

	// deprecations are server.deprecations by route; unknownDeprecations those that name
	// no route (reported once the routes are known).
	deprecations        map[string]config.Deprecation
	unknownDeprecations map[string]bool
}

// routeKey names a route by method and path, without building a string per request.
type routeKey struct{ method, path string }

// Options are the optional parts of a server.
type Options struct {
	// Auth authenticates requests. Nil, or an authenticator that is not Enabled, leaves every
	// route open: fine on loopback, refused elsewhere by `autoglm serve` unless --insecure.
	Auth *auth.Authenticator
	// Limit returns the limit stage (rate limits and quotas) for a route's limit policy. It
	// runs after authorization on every route that is Limited, and sees the principal
	// (auth.FromContext) when auth is on. Nil: no limits.
	Limit func(httpapi.Limit) httpapi.Stage
	// Denied, when set, is told of every request authorization refused (for the audit log).
	// It runs on the request path and must not block.
	Denied func(r *http.Request, p *auth.Principal, perm auth.Permission, err error)
	// Routes are the feature packages' routes, added after the server's own.
	Routes []httpapi.Route
	// Observe, when set, is told of every finished request: the route pattern that served it
	// ("" when none matched), method, status and duration. It runs on the request path.
	Observe func(route, method string, status int, d time.Duration)
	// Metrics, when set, is served at GET /metrics (permission metrics.read).
	Metrics httpapi.HandlerFunc
	// Admission bounds the requests served at once and queued (admit.go). Nil: unbounded.
	Admission *admission.Limiter
	// Tracing, when set, makes a server span for every request (continuing an incoming W3C
	// traceparent) under which each stage adds its own (telemetry.StartSpan). Nil: tracing
	// is off and the stage is not in the chain.
	Tracing trace.TracerProvider
	// Outer, when set, wraps the whole handler, middleware included: the tests check every
	// exchange against the API description with it (internal/openapi/openapitest).
	Outer func(http.Handler) http.Handler
}

// New builds the server for cfg over reg with authentication off, serving routes after its
// own.
func New(cfg config.Server, reg *router.Registry, log *slog.Logger, routes ...httpapi.Route) *Server {
	return NewWith(cfg, reg, log, Options{Routes: routes})
}

// NewWith builds the server for cfg over reg with opts.
func NewWith(cfg config.Server, reg *router.Registry, log *slog.Logger, opts Options) *Server {
	if opts.Auth != nil && !opts.Auth.Enabled() {
		opts.Auth = nil
	}
	s := &Server{cfg: cfg, reg: reg, log: log, opts: opts, mux: newRouteMux()}
	env := apierr.ShapeEnvelope
	routes := []httpapi.Route{
		{Method: "GET", Pattern: "/healthz", Shape: env, Permission: httpapi.Public, Handler: s.healthz},
		{Method: "GET", Pattern: "/readyz", Shape: env, Permission: httpapi.Public, Handler: s.readyz},
		{Method: "GET", Pattern: "/v1/admin/backends", Shape: env, Permission: auth.AdminBackends, Handler: s.adminBackends},
		{Method: "GET", Pattern: "/debug/pprof/{name...}", Shape: env, Permission: auth.AdminDebug, Handler: debugPprof},
		{Method: "GET", Pattern: "/metrics", Shape: env, Permission: auth.MetricsRead, Handler: s.metrics},
		{Method: "GET", Pattern: openapi.Path, Shape: env, Permission: httpapi.Public, Handler: serveOpenAPI},
	}
	routes = append(routes, opts.Routes...)
	s.routes = routes
	byPattern := map[string][]httpapi.Route{}
	var order []string
	for _, rt := range routes {
		if rt.MaxBody != 0 {
			if s.bodyLimits == nil {
				s.bodyLimits = map[routeKey]int64{}
			}
			s.bodyLimits[routeKey{rt.Method, rt.Pattern}] = rt.MaxBody
		}
		if _, ok := byPattern[rt.Pattern]; !ok {
			order = append(order, rt.Pattern)
		}
		byPattern[rt.Pattern] = append(byPattern[rt.Pattern], rt)
	}
	s.deprecations = map[string]config.Deprecation{}
	s.unknownDeprecations = map[string]bool{}
	for _, d := range cfg.Deprecations {
		s.deprecations[d.Route] = d
		s.unknownDeprecations[d.Route] = true
	}
	s.shapes = make(map[string]apierr.Shape, len(order))
	s.early = map[string]func(http.ResponseWriter, *http.Request, *apierr.Error) bool{}
	for _, p := range order {
		s.mux.Handle(p, s.dispatch(byPattern[p]))
		s.shapes[p] = byPattern[p][0].Shape
		if f := byPattern[p][0].Errors; f != nil {
			s.early[p] = f
		}
	}
	for r := range s.unknownDeprecations {
		log.Error("server.deprecations names a route the server does not serve; ignored", "route", r)
	}
	s.mux.Handle("/", s.route(apierr.ShapeEnvelope, func(w http.ResponseWriter, r *http.Request) error {
		return apierr.New(apierr.CodeRouteNotFound, "no route for "+r.Method+" "+r.URL.Path)
	}))
	// Unknown routes under /v1/ answer as OpenAI does, so that SDKs show a real error rather
	// than "404 (no body)" or a misleading code.
	s.mux.Handle("/v1/", s.route(apierr.ShapeOpenAI, unknownV1))
	s.shapes["/v1/"] = apierr.ShapeOpenAI
	s.handler = s.chain(s.mux, false)
	s.admitted = s.chain(s.mux, true)
	if opts.Outer != nil {
		// Tests only: one wrapper around the whole handler, admission outside it.
		s.handler = opts.Outer(s.handler)
		s.admitted = s.admit(s.handler)
	}
	return s
}

// unknownV1 answers a path under /v1/ that no route serves, in OpenAI's words.
func unknownV1(w http.ResponseWriter, r *http.Request) error {
	return &apierr.Error{Kind: apierr.NotFound, Code: apierr.CodeInvalidURL, NullCode: true,
		Message: "Invalid URL (" + r.Method + " " + r.URL.Path + ")"}
}

// serveOpenAPI serves the API description (internal/openapi).
func serveOpenAPI(w http.ResponseWriter, r *http.Request) error {
	openapi.ServeHTTP(w, r)
	return nil
}

// metrics serves Options.Metrics, or 404 when the server has none.
func (s *Server) metrics(w http.ResponseWriter, r *http.Request) error {
	if s.opts.Metrics == nil {
		return apierr.New(apierr.CodeMetricsOff, "metrics are not enabled on this server")
	}
	return s.opts.Metrics(w, r)
}

// Handler returns the server's full handler, middleware included, but for admission: for
// requests made on behalf of one already admitted (gRPC calls, batch lines), which must not
// wait for a slot their caller holds.
func (s *Server) Handler() http.Handler { return s.handler }

// Routes returns the route table, the server's own routes first.
func (s *Server) Routes() []httpapi.Route { return append([]httpapi.Route(nil), s.routes...) }

// dispatch serves one path pattern, choosing the route by method. Method mismatches answer
// 405 in the route's shape with an Allow header (ServeMux's own 405 is plain text).
func (s *Server) dispatch(routes []httpapi.Route) http.Handler {
	handlers := make(map[string]http.Handler, len(routes))
	allow := ""
	for i, rt := range routes {
		h := s.versioned(rt, s.route(rt.Shape, s.stages(rt)))
		if d, ok := s.deprecations[rt.Method+" "+rt.Pattern]; ok {
			h = deprecated(d, h)
			delete(s.unknownDeprecations, rt.Method+" "+rt.Pattern)
		}
		pattern := rt.Pattern
		handlers[rt.Method] = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			telemetry.Info(r.Context()).SetRoute(pattern)
			h.ServeHTTP(w, r)
		})
		if rt.Method == "GET" {
			handlers["HEAD"] = handlers["GET"]
		}
		if i > 0 {
			allow += ", "
		}
		allow += rt.Method
	}
	shape := routes[0].Shape
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h, ok := handlers[r.Method]; ok {
			h.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Allow", allow)
		s.writeError(w, r, shape, apierr.New(apierr.CodeMethodNotAllowed,
			fmt.Sprintf("%s is not allowed on %s (allowed: %s)", r.Method, r.URL.Path, allow)))
	})
}

// route adapts a HandlerFunc: its error is logged and written in shape.
func (s *Server) route(shape apierr.Shape, h httpapi.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.writeError(w, r, shape, err)
		}
	})
}

// writeError is the one place an error becomes a response. The internal cause is logged;
// the client sees the public message. If the response has already started (a stream), the
// error is only logged.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, shape apierr.Shape, err error) {
	e := apierr.From(err)
	ctx := r.Context()
	rec := recorderOf(w)
	if e.Kind == apierr.Canceled {
		if rec != nil {
			rec.noteCanceled()
		}
		return
	}
	level := slog.LevelDebug
	if (e.Kind == apierr.Internal || e.Kind == apierr.Upstream || e.Kind == apierr.Unavailable) &&
		e.Code != apierr.CodeServerOverloaded { // overload refusals are summarised by admit
		level = slog.LevelWarn
	}
	if e.Err != nil || level > slog.LevelDebug {
		s.log.Log(ctx, level, "request failed", "kind", e.Kind.String(), "code", e.PublicCode(), "err", e.Err)
	}
	if rec != nil && rec.wroteHeader {
		return
	}
	apierr.Write(w, shape, traceIDOf(ctx), e)
}

// ListenAndServe listens on the configured address and serves until ctx is canceled, then
// shuts down gracefully. ready, if not nil, receives the bound address once listening.
func (s *Server) ListenAndServe(ctx context.Context, ready func(net.Addr)) error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return err
	}
	if ready != nil {
		ready(ln.Addr())
	}
	return s.Serve(ctx, ln)
}

// Serve serves on ln until ctx is canceled. Shutdown then stops accepting, marks the server
// not ready, lets in-flight requests and streams finish for up to ShutdownTimeout, and closes
// what is left.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	var tc *tls.Config
	if s.cfg.TLS.Enabled() {
		var err error
		if tc, err = tlsConfig(s.cfg.TLS, s.log); err != nil {
			_ = ln.Close()
			return err
		}
		protocols.SetHTTP2(true)
	} else {
		protocols.SetUnencryptedHTTP2(true)
	}
	hs := &http.Server{
		TLSConfig:         tc,
		Handler:           s.admitted,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout.D(),
		ReadTimeout:       s.cfg.ReadTimeout.D(),
		WriteTimeout:      s.cfg.WriteTimeout.D(),
		IdleTimeout:       s.cfg.IdleTimeout.D(),
		MaxHeaderBytes:    64 << 10,
		Protocols:         &protocols,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
		ConnState:         s.countConn,
	}
	// Plain HTTP/1.1 without TLS goes to the lean server unless the configuration asks for
	// net/http's; what the lean server does not serve (h2c, Upgrade, Expect) it hands to hs.
	var lean *h1.Server
	var handOff *h1.HandOff
	if tc == nil && s.cfg.HTTP1 != config.HTTP1Net {
		handOff = h1.NewHandOff(ln.Addr())
		lean = &h1.Server{
			Handler:           s.admitted,
			ReadHeaderTimeout: s.cfg.ReadHeaderTimeout.D(),
			ReadTimeout:       s.cfg.ReadTimeout.D(),
			WriteTimeout:      s.cfg.WriteTimeout.D(),
			IdleTimeout:       s.cfg.IdleTimeout.D(),
			MaxHeaderBytes:    64 << 10,
			BaseContext:       func() context.Context { return context.WithoutCancel(ctx) },
			Fallback:          handOff.Deliver,
			ConnState:         s.countConn,
			Log:               s.log,
		}
		if s.cfg.HTTP1 == config.HTTP1Loop {
			if evloop.Supported {
				lean.Inline = s.onLoop()
				if s.localModels() {
					// The built-in engine's workers need the CPUs a waiting loop would hold.
					lean.LoopSpin = -1
				}
			} else {
				s.log.Warn("server.http1 is loop, but this platform has no event loops; serving lean")
			}
		}
	}
	errc := make(chan error, 2)
	serving := 1
	go func() {
		switch {
		case tc != nil:
			// The certificate comes from TLSConfig.GetCertificate.
			errc <- hs.ServeTLS(ln, "", "")
		case lean != nil:
			errc <- hs.Serve(handOff)
		default:
			errc <- hs.Serve(ln)
		}
	}()
	if lean != nil {
		serving++
		if lean.Inline != nil {
			go func() { errc <- lean.ServeLoops(ln, s.cfg.EventLoops) }()
		} else {
			go func() { errc <- lean.Serve(ln) }()
		}
	}
	mctx, stopMemory := context.WithCancel(ctx)
	memDone := make(chan struct{})
	go func() { defer close(memDone); releaseIdleMemory(mctx, &s.inFlight, &s.served) }()
	defer func() { stopMemory(); <-memDone }()
	select {
	case err := <-errc:
		if lean != nil {
			_ = lean.Close()
			_ = hs.Close()
			<-errc
		}
		return err
	case <-ctx.Done():
	}
	s.draining.Store(true)
	s.log.Info("shutting down: no new connections; waiting for in-flight requests", "timeout", s.cfg.ShutdownTimeout.D().String())
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout.D())
	defer cancel()
	var err error
	if lean != nil {
		err = lean.Shutdown(sctx)
	}
	if herr := hs.Shutdown(sctx); err == nil {
		err = herr
	}
	if errors.Is(err, context.DeadlineExceeded) {
		s.log.Warn("shutdown deadline passed; closing remaining connections")
		if lean != nil {
			_ = lean.Close()
		}
		err = hs.Close()
	}
	for range serving {
		<-errc
	}
	if err == nil {
		s.log.Info("shutdown complete")
	}
	return err
}

// localModels reports whether a model (as configured at start) runs on the built-in engine.
func (s *Server) localModels() bool {
	if s.reg == nil {
		return false
	}
	for _, m := range s.reg.Models() {
		for _, t := range m.Targets {
			if t.Type == config.BackendLocal {
				return true
			}
		}
	}
	return false
}

// onLoop is the predicate for h1.Server.Inline: the routes marked OnLoop, by method and
// exact path.
func (s *Server) onLoop() func(*http.Request) bool {
	paths := map[string][]string{}
	for _, rt := range s.routes {
		if rt.OnLoop && !strings.Contains(rt.Pattern, "{") {
			paths[rt.Pattern] = append(paths[rt.Pattern], rt.Method)
		}
	}
	return func(r *http.Request) bool {
		for _, m := range paths[r.URL.Path] {
			if m == r.Method {
				return true
			}
		}
		return false
	}
}

// countConn keeps the count of open client connections that OpenConns reports.
func (s *Server) countConn(_ net.Conn, state http.ConnState) {
	switch state {
	case http.StateNew:
		s.conns.Add(1)
	case http.StateClosed, http.StateHijacked:
		s.conns.Add(-1)
	}
}

// OpenConns is the number of client connections open now, idle keep-alive ones included.
func (s *Server) OpenConns() int64 { return s.conns.Load() }

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) error {
	httpapi.WriteEnvelope(w, http.StatusOK, []byte(`{"status":"alive"}`))
	return nil
}

// readyz is ready when the configuration is loaded, the server is not shutting down, and every
// model has a backend not known to be down. The body lists each backend's state.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) error {
	ready := !s.draining.Load() && s.reg.Ready()
	b := []byte(`{"ready":`)
	b = strconv.AppendBool(b, ready)
	b = append(b, `,"draining":`...)
	b = strconv.AppendBool(b, s.draining.Load())
	b = append(b, `,"models":[`...)
	for i, m := range s.reg.Models() {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"name":`...)
		b = apierr.AppendJSONString(b, m.Name)
		b = append(b, `,"ready":`...)
		b = strconv.AppendBool(b, m.Ready())
		b = append(b, `,"backends":[`...)
		for j, t := range m.Targets {
			if j > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"name":`...)
			b = apierr.AppendJSONString(b, t.Name)
			b = append(b, `,"type":`...)
			b = apierr.AppendJSONString(b, t.Type)
			b = append(b, `,"health":`...)
			b = apierr.AppendJSONString(b, t.Health().String())
			b = append(b, `,"circuit":`...)
			b = apierr.AppendJSONString(b, t.Circuit().String())
			b = append(b, '}')
		}
		b = append(b, "]}"...)
	}
	b = append(b, "]}"...)
	status := http.StatusOK
	if !ready {
		status = http.StatusServiceUnavailable
	}
	httpapi.WriteEnvelope(w, status, b)
	return nil
}

// adminBackends lists every model's scheduling state and per-backend figures: health,
// circuit, load, counters and moving latencies (router.ModelStatus).
func (s *Server) adminBackends(w http.ResponseWriter, r *http.Request) error {
	data, err := json.Marshal(struct {
		Models []router.ModelStatus `json:"models"`
	}{s.reg.Status()})
	if err != nil {
		return err
	}
	httpapi.WriteEnvelope(w, http.StatusOK, data)
	return nil
}

// Ready reports what /readyz reports.
func (s *Server) Ready() bool { return !s.draining.Load() && s.reg.Ready() }
