// Package httpapi is what a feature package needs to publish HTTP routes: the Route, which
// carries every fact about one route (method, pattern, handler, error shape, the permission a
// caller must hold and how the limit stage charges it), the handler and stage signatures, and
// the writers of successful native answers.
//
// It is a leaf: it imports nothing of the application but internal/apierr (itself a leaf), so
// that feature packages (openai, task, admin, grpcapi, ...) export their routes without
// importing the server that serves them. internal/server composes the routes and runs the
// request chain; see its package comment for the order of the stages.
package httpapi

import (
	"net/http"

	"github.com/open-autoglm/autoglm/internal/apierr"
)

// HandlerFunc is a route handler. It returns an error instead of writing one; the server
// renders the error in the route's Shape, in exactly one place. A handler that has already
// started its answer (a stream) may still return an error: it is logged, not written.
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// Stage is one step of a route's chain after routing (authorization, limits): it returns the
// next step, and answers a refusal by returning an error (an *apierr.Error) rather than
// writing it, so that every refusal is rendered in the route's shape. A stage may set
// response headers before it refuses (rate-limit headers) or before it calls next.
type Stage func(next HandlerFunc) HandlerFunc

// Permission names what a caller must hold to use a route. The set of permissions, and the
// roles that hold them, belong to internal/auth; the route only names one.
type Permission string

// Public is the permission of routes that need no credential (health checks, the console's
// static files). A public route is never rate-limited: there is nobody to charge.
const Public Permission = "public"

// Limit is how the limit stage (rate limits, token quotas) charges a request to a route.
type Limit uint8

const (
	// LimitTokens, the default, charges one request, a concurrency slot and the tokens the
	// body asks for: its prompt (estimated from its size) and its completion bound
	// (max_tokens or the configured default, times n).
	LimitTokens Limit = iota
	// LimitPrompt charges like LimitTokens but without a completion: embeddings.
	LimitPrompt
	// Unlimited skips the limit stage: for routes that charge the requests they make on
	// their caller's behalf instead (the gRPC API serves each call through an HTTP route,
	// which is limited there), and for routes that are limited by other means.
	Unlimited
)

var limitNames = [...]string{LimitTokens: "tokens", LimitPrompt: "prompt", Unlimited: "unlimited"}

func (l Limit) String() string {
	if int(l) < len(limitNames) {
		return limitNames[l]
	}
	return "limit(?)"
}

// Route is one entry of the route table. Everything the chain needs to know about a route is
// here, written where the feature package registers it.
type Route struct {
	Method  string
	Pattern string // net/http ServeMux pattern without the method
	// Shape is the wire shape of the route's errors: OpenAI's, Anthropic's or the envelope.
	Shape apierr.Shape
	// Permission is what the caller must hold when authentication is on. A route without
	// one is refused to everyone while authentication is on (failing closed); the server
	// logs it at start.
	Permission Permission
	// Limit is how the limit stage charges a request (LimitTokens unless set).
	Limit   Limit
	Handler HandlerFunc
	// Errors, when set, answers the errors raised for this route before its handler runs
	// (a body over the limit, a refused credential, a panic) in the route's own protocol and
	// reports true; false leaves them to Shape. The gRPC routes answer in gRPC, gRPC-Web or
	// Connect, whichever the caller speaks.
	Errors func(w http.ResponseWriter, r *http.Request, e *apierr.Error) bool
	// MaxBody, when not zero, replaces server.max_body_bytes for requests to this route
	// (file uploads). Only routes whose pattern has no wildcard may set it.
	MaxBody int64
	// OnLoop says the handler may run on an event loop (server.http1 "loop"): it waits only on
	// connections of the request's loop, or off the loop through evloop.Block. Other routes'
	// handlers run on a goroutine of their own. Only routes whose pattern has no wildcard
	// may set it.
	OnLoop bool
}

// Key is the route's "METHOD pattern", as tables keyed by route (the audit actions) name it.
func (rt Route) Key() string { return rt.Method + " " + rt.Pattern }

// Limited reports whether the limit stage runs for the route.
func (rt Route) Limited() bool { return rt.Limit != Unlimited && rt.Permission != Public }
