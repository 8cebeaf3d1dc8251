// Package server is the access layer: the HTTP listener, the middleware chain every request
// passes through, the route table, and the one place errors become responses.
//
// The chain, outermost first (written once, in Server.chain and Server.guard):
//
//	trace id → access log → panic recovery → compression (zstd/gzip, never SSE) → body limit
//	→ authentication
//	→ route: method check → authorization (role, model allow-list) → limit (rate limits,
//	  quotas: Options.Limit) → handler
//
// Authentication runs for every request and only establishes who is calling; authorization
// runs once the route is known, because what a request needs depends on its route
// (auth.RoutePermission). With authentication off, neither stage exists.
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
	"sync/atomic"
	"time"

	"github.com/open-autoglm/autoglm/internal/apierr"
	"github.com/open-autoglm/autoglm/internal/auth"
	"github.com/open-autoglm/autoglm/internal/cache"
	"github.com/open-autoglm/autoglm/internal/config"
	"github.com/open-autoglm/autoglm/internal/openai"
	"github.com/open-autoglm/autoglm/internal/openapi"
	"github.com/open-autoglm/autoglm/internal/router"
	"github.com/open-autoglm/autoglm/internal/telemetry"
)

// HandlerFunc is a route handler. It returns an error instead of writing one; the route's
// error shape decides how the error is answered.
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// Route is one entry of the route table.
type Route struct {
	Method  string
	Pattern string // net/http ServeMux pattern without the method
	Shape   apierr.Shape
	Handler HandlerFunc
	// Errors, when set, answers the errors raised for this route before its handler runs
	// (a body over the limit, a refused credential, a panic) in the route's own protocol and
	// reports true; false leaves them to Shape. The gRPC routes answer in gRPC, gRPC-Web or
	// Connect, whichever the caller speaks.
	Errors func(w http.ResponseWriter, r *http.Request, e *apierr.Error) bool
	// MaxBody, when not zero, replaces server.max_body_bytes for requests to this route
	// (file uploads). Only routes whose pattern has no wildcard may set it.
	MaxBody int64
}

// Server is autoglm's HTTP server.
type Server struct {
	cfg      config.Server
	reg      *router.Registry
	log      *slog.Logger
	opts     Options
	mux      *http.ServeMux
	handler  http.Handler
	routes   []Route
	oa       *openai.Handler
	shapes   map[string]apierr.Shape                                                 // route pattern → error shape
	early    map[string]func(http.ResponseWriter, *http.Request, *apierr.Error) bool // route pattern → Route.Errors
	draining atomic.Bool

	// bodyLimits are the routes' own body limits (Route.MaxBody), by "METHOD /path".
	bodyLimits map[string]int64

	// deprecations are server.deprecations by route; unknownDeprecations those that name
	// no route (reported once the routes are known).
	deprecations        map[string]config.Deprecation
	unknownDeprecations map[string]bool
}

// Options are the optional parts of a server.
type Options struct {
	// Auth authenticates requests. Nil, or an authenticator that is not Enabled, leaves every
	// route open: fine on loopback, refused elsewhere by `autoglm serve` unless --insecure.
	Auth *auth.Authenticator
	// Limit is the admission stage after authorization: rate limits and quotas. It wraps the
	// handler of every non-public route, and sees the principal (auth.FromContext) when auth
	// is on. Nil: no limits.
	Limit func(http.Handler) http.Handler
	// Denied, when set, is told of every request authorization refused (for the audit log).
	// It runs on the request path and must not block.
	Denied func(r *http.Request, p *auth.Principal, perm auth.Permission, err error)
	// Routes are added after the built-in ones (the admin API, tests, later subsystems).
	Routes []Route
	// Cache, when not nil, is the response cache of the OpenAI-compatible routes.
	Cache *cache.Cache
	// Usage, when set, is told what each model request consumed (see openai.Options.OnDone).
	Usage func(ctx context.Context, o openai.Outcome)
	// Observe, when set, is told of every finished request: the route pattern that served it
	// ("" when none matched), method, status and duration. It runs on the request path.
	Observe func(route, method string, status int, d time.Duration)
	// Metrics, when set, is served at GET /metrics (permission metrics.read).
	Metrics HandlerFunc
	// Responses keeps the stored responses of POST /v1/responses (see openai.Options).
	Responses openai.ResponseStore
	// Outer, when set, wraps the whole handler, middleware included: the tests check every
	// exchange against the API description with it (internal/openapi/openapitest).
	Outer func(http.Handler) http.Handler
}

// New builds the server for cfg over reg with authentication off. extra routes (used by
// tests and later subsystems) are added after the built-in ones.
func New(cfg config.Server, reg *router.Registry, log *slog.Logger, extra ...Route) *Server {
	return NewWith(cfg, reg, log, Options{Routes: extra})
}

// NewWith builds the server for cfg over reg with opts.
func NewWith(cfg config.Server, reg *router.Registry, log *slog.Logger, opts Options) *Server {
	if opts.Auth != nil && !opts.Auth.Enabled() {
		opts.Auth = nil
	}
	s := &Server{cfg: cfg, reg: reg, log: log, opts: opts, mux: http.NewServeMux()}
	oaOpts := openai.Options{StreamWriteTimeout: cfg.StreamWriteTimeout.D(), Logger: log, Cache: opts.Cache, OnDone: opts.Usage}
	if opts.Auth != nil {
		oaOpts.ModelVisible = modelVisible
		oaOpts.Owner = ownerOf
		oaOpts.CacheOwner = cacheOwner
	}
	oaOpts.Responses = opts.Responses
	oa := openai.New(reg, oaOpts)
	s.oa = oa
	routes := []Route{
		{Method: "POST", Pattern: "/v1/chat/completions", Shape: apierr.ShapeOpenAI, Handler: oa.ChatCompletions},
		{Method: "POST", Pattern: "/v1/completions", Shape: apierr.ShapeOpenAI, Handler: oa.Completions},
		{Method: "POST", Pattern: "/v1/embeddings", Shape: apierr.ShapeOpenAI, Handler: oa.Embeddings},
		{Method: "GET", Pattern: "/v1/models", Shape: apierr.ShapeOpenAI, Handler: oa.ListModels},
		{Method: "GET", Pattern: "/v1/models/{id...}", Shape: apierr.ShapeOpenAI, Handler: oa.GetModel},
		{Method: "POST", Pattern: "/v1/responses", Shape: apierr.ShapeOpenAI, Handler: oa.Responses},
		{Method: "GET", Pattern: "/v1/responses/{id}", Shape: apierr.ShapeOpenAI, Handler: oa.GetResponse},
		{Method: "DELETE", Pattern: "/v1/responses/{id}", Shape: apierr.ShapeOpenAI, Handler: oa.DeleteResponse},
		{Method: "GET", Pattern: "/v1/responses/{id}/input_items", Shape: apierr.ShapeOpenAI, Handler: oa.ResponseInputItems},
		{Method: "POST", Pattern: "/v1/messages", Shape: apierr.ShapeAnthropic, Handler: oa.Messages},
		{Method: "POST", Pattern: "/v1/messages/count_tokens", Shape: apierr.ShapeAnthropic, Handler: oa.CountMessageTokens},
		{Method: "GET", Pattern: "/healthz", Shape: apierr.ShapeEnvelope, Handler: s.healthz},
		{Method: "GET", Pattern: "/readyz", Shape: apierr.ShapeEnvelope, Handler: s.readyz},
		{Method: "GET", Pattern: "/v1/admin/backends", Shape: apierr.ShapeEnvelope, Handler: s.adminBackends},
		{Method: "GET", Pattern: "/debug/pprof/{name...}", Shape: apierr.ShapeEnvelope, Handler: debugPprof},
		{Method: "GET", Pattern: "/metrics", Shape: apierr.ShapeEnvelope, Handler: s.metrics},
		{Method: "GET", Pattern: openapi.Path, Shape: apierr.ShapeEnvelope, Handler: serveOpenAPI},
	}
	routes = append(routes, opts.Routes...)
	s.routes = routes
	byPattern := map[string][]Route{}
	var order []string
	for _, rt := range routes {
		if rt.MaxBody != 0 {
			if s.bodyLimits == nil {
				s.bodyLimits = map[string]int64{}
			}
			s.bodyLimits[rt.Method+" "+rt.Pattern] = rt.MaxBody
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
		return apierr.New(apierr.NotFound, "route_not_found", "no route for "+r.Method+" "+r.URL.Path)
	}))
	// Unknown routes under /v1/ answer as OpenAI does, so that SDKs show a real error rather
	// than "404 (no body)" or a misleading code.
	s.mux.Handle("/v1/", s.route(apierr.ShapeOpenAI, unknownV1))
	s.shapes["/v1/"] = apierr.ShapeOpenAI
	s.handler = s.chain(s.mux)
	if opts.Outer != nil {
		s.handler = opts.Outer(s.handler)
	}
	return s
}

// unknownV1 answers a path under /v1/ that no route serves, in OpenAI's words.
func unknownV1(w http.ResponseWriter, r *http.Request) error {
	return &apierr.Error{Kind: apierr.NotFound, Code: "invalid_url", NullCode: true,
		Message: "Invalid URL (" + r.Method + " " + r.URL.Path + ")"}
}

// ownerOf names the owner of stored responses: the caller's user, so that a user's keys
// share them and no one else reads them; a key without a user owns its own.
func ownerOf(ctx context.Context) string {
	p, ok := auth.FromContext(ctx)
	if !ok || p == nil {
		return ""
	}
	if p.UserID != "" {
		return "user:" + p.UserID
	}
	return "key:" + p.KeyID
}

// modelVisible shows a model to a caller whose allow-list names the model or one of its
// aliases, the way authorization lets it use the model.
func modelVisible(ctx context.Context, m *router.Model) bool {
	p, ok := auth.FromContext(ctx)
	if !ok || p == nil || p.AllowsModel(m.Name) {
		return true
	}
	for _, a := range m.Aliases {
		if p.AllowsModel(a) {
			return true
		}
	}
	return false
}

// cacheOwner names the caller for the response cache.
func cacheOwner(ctx context.Context) cache.Owner {
	p, ok := auth.FromContext(ctx)
	if !ok {
		return cache.Owner{}
	}
	return cache.Owner{UserID: p.UserID, KeyID: p.KeyID}
}

// serveOpenAPI serves the API description (internal/openapi).
func serveOpenAPI(w http.ResponseWriter, r *http.Request) error {
	openapi.ServeHTTP(w, r)
	return nil
}

// metrics serves Options.Metrics, or 404 when the server has none.
func (s *Server) metrics(w http.ResponseWriter, r *http.Request) error {
	if s.opts.Metrics == nil {
		return apierr.New(apierr.NotFound, "metrics_off", "metrics are not enabled on this server")
	}
	return s.opts.Metrics(w, r)
}

// Handler returns the server's full handler, middleware included.
func (s *Server) Handler() http.Handler { return s.handler }

// Completions serves POST /v1/completions without the middleware: for routes that run a
// completion in-process on behalf of a request that has already been authenticated and
// admitted, so that it is accounted like one sent to /v1/completions.
func (s *Server) Completions(w http.ResponseWriter, r *http.Request) error {
	return s.oa.Completions(w, r)
}

// Routes returns the route table, built-in routes first.
func (s *Server) Routes() []Route { return append([]Route(nil), s.routes...) }

// WriteData answers a successful native request in the envelope, with v as its data.
func WriteData(w http.ResponseWriter, r *http.Request, status int, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	writeEnvelope(w, r, status, data)
	return nil
}

// dispatch serves one path pattern, choosing the route by method. Method mismatches answer
// 405 in the route's shape with an Allow header (ServeMux's own 405 is plain text).
func (s *Server) dispatch(routes []Route) http.Handler {
	handlers := make(map[string]http.Handler, len(routes))
	allow := ""
	for i, rt := range routes {
		h := s.versioned(rt, s.guard(rt, s.route(rt.Shape, rt.Handler)))
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
		s.writeError(w, r, shape, apierr.New(apierr.MethodNotAllowed, "method_not_allowed",
			fmt.Sprintf("%s is not allowed on %s (allowed: %s)", r.Method, r.URL.Path, allow)))
	})
}

// route adapts a HandlerFunc: its error is logged and written in shape.
func (s *Server) route(shape apierr.Shape, h HandlerFunc) http.Handler {
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
	if e.Kind == apierr.Internal || e.Kind == apierr.Upstream || e.Kind == apierr.Unavailable {
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
		Handler:           s.handler,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout.D(),
		ReadTimeout:       s.cfg.ReadTimeout.D(),
		WriteTimeout:      s.cfg.WriteTimeout.D(),
		IdleTimeout:       s.cfg.IdleTimeout.D(),
		MaxHeaderBytes:    64 << 10,
		Protocols:         &protocols,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() {
		if tc != nil {
			// The certificate comes from TLSConfig.GetCertificate.
			errc <- hs.ServeTLS(ln, "", "")
			return
		}
		errc <- hs.Serve(ln)
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	s.draining.Store(true)
	s.log.Info("shutting down: no new connections; waiting for in-flight requests", "timeout", s.cfg.ShutdownTimeout.D().String())
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout.D())
	defer cancel()
	err := hs.Shutdown(sctx)
	if errors.Is(err, context.DeadlineExceeded) {
		s.log.Warn("shutdown deadline passed; closing remaining connections")
		err = hs.Close()
	}
	<-errc
	if err == nil {
		s.log.Info("shutdown complete")
	}
	return err
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) error {
	writeEnvelope(w, r, http.StatusOK, []byte(`{"status":"alive"}`))
	return nil
}

// readyz is ready when the configuration is loaded, the server is not shutting down, and every
// model has a backend not known to be down. The body lists each backend's state.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) error {
	ready := !s.draining.Load() && s.reg.Ready()
	b := []byte(`{"ready":`)
	b = appendBool(b, ready)
	b = append(b, `,"draining":`...)
	b = appendBool(b, s.draining.Load())
	b = append(b, `,"models":[`...)
	for i, m := range s.reg.Models() {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"name":`...)
		b = appendQuoted(b, m.Name)
		b = append(b, `,"ready":`...)
		b = appendBool(b, m.Ready())
		b = append(b, `,"backends":[`...)
		for j, t := range m.Targets {
			if j > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"name":`...)
			b = appendQuoted(b, t.Name)
			b = append(b, `,"type":`...)
			b = appendQuoted(b, t.Type)
			b = append(b, `,"health":`...)
			b = appendQuoted(b, t.Health().String())
			b = append(b, `,"circuit":`...)
			b = appendQuoted(b, t.Circuit().String())
			b = append(b, '}')
		}
		b = append(b, "]}"...)
	}
	b = append(b, "]}"...)
	status := http.StatusOK
	if !ready {
		status = http.StatusServiceUnavailable
	}
	writeEnvelope(w, r, status, b)
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
	writeEnvelope(w, r, http.StatusOK, data)
	return nil
}

// Ready reports what /readyz reports.
func (s *Server) Ready() bool { return !s.draining.Load() && s.reg.Ready() }
