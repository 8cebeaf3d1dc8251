// Package grpcapi serves autoglm.v1.InferenceService over gRPC, gRPC-Web and the Connect
// protocol on the gateway's own listener (connectrpc.com/connect; the listener speaks h2c,
// which gRPC needs).
//
// It does not duplicate the gateway. Each call becomes the OpenAI-compatible HTTP request it
// mirrors (Chat → POST /v1/chat/completions, ChatStream → the same with "stream": true,
// Complete → POST /v1/completions, Embed → POST /v1/embeddings, ListModels → GET /v1/models)
// and runs in-process through the server's full handler, with the caller's credential
// (authorization, x-api-key) and trace headers. Authentication, roles and model allow-lists,
// rate limits and quotas, usage records, the response cache, routing and failover therefore
// apply exactly once and exactly as for an HTTP client. The answer is read back as the
// handler writes it: a JSON body is decoded into the proto response, a server-sent-event
// stream is cut into events and each chunk sent as one stream message as it arrives. An
// error answer becomes a Connect error whose code comes from apierr's kind → gRPC table.
// The access log and the HTTP metrics see both requests, the call's route and the inner one,
// under one trace id.
//
// The routes this package adds are open at the outer stage (auth.Public in the route table):
// the outer request's body is protobuf, which the authorization and limit stages cannot read
// (no model for the allow-list, no max_tokens for the token estimate), and guarding it too
// would charge every call twice against the rate limits. The inner request needs models.use
// or models.list like its HTTP twin, and is refused without them. So that a caller without
// a credential costs nothing, a call is refused before its message is read when
// authentication is on and its principal lacks the procedure's permission (Options.Auth).
//
// Every message is bounded by the server's body limit after decompression (Options.MaxBytes):
// the wire body is capped by the server's body-limit stage, and a compressed message stops
// inflating at the limit, so a small gzip bomb is refused with ResourceExhausted before
// anything the size of its payload is allocated.
package grpcapi

import (
	"bytes"
	"context"
	"net/http"

	"connectrpc.com/connect"
	autoglmv1 "github.com/open-autoglm/autoglm/gen/autoglm/v1"
	"github.com/open-autoglm/autoglm/gen/autoglm/v1/autoglmv1connect"
	"github.com/open-autoglm/autoglm/internal/apierr"
	"github.com/open-autoglm/autoglm/internal/httpapi"
	"github.com/open-autoglm/autoglm/internal/telemetry"
)

// Service implements autoglmv1connect.InferenceServiceHandler over the gateway's HTTP routes.
type Service struct {
	// gateway returns the server's full handler (middleware included). It is a function
	// because the server is built after its route table, which holds this service's routes.
	gateway func() http.Handler
}

var _ autoglmv1connect.InferenceServiceHandler = (*Service)(nil)

// New returns the service. gateway is called on every call and must return the server's
// Handler().
func New(gateway func() http.Handler) *Service { return &Service{gateway: gateway} }

// procedures are the service's procedure paths, each one a POST route of the server.
var procedures = [...]string{
	autoglmv1connect.InferenceServiceChatProcedure,
	autoglmv1connect.InferenceServiceChatStreamProcedure,
	autoglmv1connect.InferenceServiceCompleteProcedure,
	autoglmv1connect.InferenceServiceEmbedProcedure,
	autoglmv1connect.InferenceServiceListModelsProcedure,
}

// Routes returns the server routes of the service: one POST route per procedure, so the
// access log and metrics name the procedure. gateway is as for New; o bounds what a call may
// make the server read (see Options); opts go to the Connect handler after those.
func Routes(gateway func() http.Handler, o Options, opts ...connect.HandlerOption) []httpapi.Route {
	opts = append(o.handlerOptions(), opts...)
	_, h := autoglmv1connect.NewInferenceServiceHandler(New(gateway), opts...)
	serve := func(w http.ResponseWriter, r *http.Request) error {
		ctx := context.WithValue(r.Context(), outerKey{}, http.NewResponseController(w))
		r = r.WithContext(ctx)
		r.Body = limitedBody{ReadCloser: r.Body}
		h.ServeHTTP(w, r)
		return nil // Connect writes its own errors, in the caller's protocol
	}
	errs := earlyErrors(opts...)
	routes := make([]httpapi.Route, len(procedures))
	for i, p := range procedures {
		// Each call is served as an in-process request to the HTTP route it mirrors, which
		// checks models.use (ListModels: models.list) and is limited there: the procedure
		// itself is open, so that the checks and the charge happen once, on the request
		// whose JSON body they can read.
		routes[i] = httpapi.Route{Method: http.MethodPost, Pattern: p, Shape: apierr.ShapeOpenAI,
			Permission: httpapi.Public, Limit: httpapi.Unlimited, Handler: serve, Errors: errs}
	}
	return routes
}

// outerKey carries the call's own http.ResponseController into the handlers: a stream passes
// the per-chunk write deadlines of the HTTP relay on to the caller's connection, so a long
// stream outlives the server's write timeout exactly as an SSE stream does.
type outerKey struct{}

func outerController(ctx context.Context) *http.ResponseController {
	rc, _ := ctx.Value(outerKey{}).(*http.ResponseController)
	return rc
}

// Chat runs a chat completion.
func (s *Service) Chat(ctx context.Context, req *connect.Request[autoglmv1.ChatRequest]) (*connect.Response[autoglmv1.ChatResponse], error) {
	body, err := chatBody(req.Msg, false)
	if err != nil {
		return nil, invalid(err)
	}
	return unary(ctx, s, req, http.MethodPost, "/v1/chat/completions", body, chatResponse)
}

// Complete runs a text completion.
func (s *Service) Complete(ctx context.Context, req *connect.Request[autoglmv1.CompleteRequest]) (*connect.Response[autoglmv1.CompleteResponse], error) {
	body, err := completeBody(req.Msg)
	if err != nil {
		return nil, invalid(err)
	}
	return unary(ctx, s, req, http.MethodPost, "/v1/completions", body, completeResponse)
}

// Embed computes embeddings.
func (s *Service) Embed(ctx context.Context, req *connect.Request[autoglmv1.EmbedRequest]) (*connect.Response[autoglmv1.EmbedResponse], error) {
	body, err := embedBody(req.Msg)
	if err != nil {
		return nil, invalid(err)
	}
	return unary(ctx, s, req, http.MethodPost, "/v1/embeddings", body, embedResponse)
}

// ListModels lists the models the gateway serves.
func (s *Service) ListModels(ctx context.Context, req *connect.Request[autoglmv1.ListModelsRequest]) (*connect.Response[autoglmv1.ListModelsResponse], error) {
	return unary(ctx, s, req, http.MethodGet, "/v1/models", nil, modelsResponse)
}

// ChatStream runs a streamed chat completion: each chunk is sent as it arrives.
func (s *Service) ChatStream(ctx context.Context, req *connect.Request[autoglmv1.ChatRequest], stream *connect.ServerStream[autoglmv1.ChatStreamResponse]) error {
	body, err := chatBody(req.Msg, true)
	if err != nil {
		return invalid(err)
	}
	sw := &streamWriter{hdr: http.Header{}, outer: outerController(ctx), send: func(data []byte) error {
		if cerr := streamError(data); cerr != nil {
			return cerr
		}
		msg, err := chatChunk(data)
		if err != nil {
			return err
		}
		return stream.Send(msg)
	}}
	s.serve(ctx, req, http.MethodPost, "/v1/chat/completions", body, sw)
	return sw.finish(ctx)
}

// unary serves one call whose answer is a JSON document.
func unary[Req, Resp any](ctx context.Context, s *Service, req *connect.Request[Req], method, path string, body []byte, decode func([]byte) (*Resp, error)) (*connect.Response[Resp], error) {
	w := &bufferWriter{hdr: http.Header{}}
	s.serve(ctx, req, method, path, body, w)
	if err := ctx.Err(); err != nil {
		return nil, connect.NewError(connect.Code(apierr.KindOf(err).GRPCCode()), err)
	}
	status := w.status
	if status == 0 {
		status = http.StatusOK
	}
	if status >= 400 {
		return nil, httpError(status, w.hdr, w.body.Bytes())
	}
	msg, err := decode(w.body.Bytes())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(msg), nil
}

// forwarded are the request headers the inner request takes from the call: the credential,
// and trace context.
var forwarded = []string{"Authorization", "X-Api-Key", "Traceparent", "Tracestate", "User-Agent"}

// serve runs the HTTP request the call stands for through the gateway, writing into w. The
// request carries the call's context, so a caller who goes away cancels the upstream request
// as an HTTP client's disconnect does.
func (s *Service) serve(ctx context.Context, call connect.AnyRequest, method, path string, body []byte, w http.ResponseWriter) {
	r, err := http.NewRequestWithContext(ctx, method, path, bytes.NewReader(body))
	if err != nil {
		// method and path are constants of this package; this cannot fail.
		panic("grpcapi: building the inner request: " + err.Error())
	}
	r.RequestURI = path
	r.RemoteAddr = call.Peer().Addr
	if body != nil {
		r.Header.Set("Content-Type", "application/json")
	}
	for _, k := range forwarded {
		if v := call.Header().Values(k); len(v) > 0 {
			r.Header[k] = v
		}
	}
	// The inner request keeps the call's trace id, so both log lines and the usage record
	// name the same trace.
	if id := telemetry.TraceID(ctx); id != "" {
		r.Header.Set(telemetry.TraceHeader, id)
	} else if v := call.Header().Get(telemetry.TraceHeader); v != "" {
		r.Header.Set(telemetry.TraceHeader, v)
	}
	s.gateway().ServeHTTP(w, r)
}

// invalid is a request that cannot become JSON (a NaN temperature, ...). The caller reads
// the public message; the encoder's text stays the internal cause.
func invalid(err error) error {
	return connect.NewError(connect.Code(apierr.Invalid.GRPCCode()),
		apierr.Wrap(apierr.Invalid, err, "the request cannot be sent as JSON (a number out of range, such as NaN or Inf?)"))
}
