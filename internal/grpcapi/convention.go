package grpcapi

import (
	"context"
	"errors"
	"net/http"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"connectrpc.com/grpcreflect"
	"github.com/open-autoglm/autoglm/gen/autoglm/v1/autoglmv1connect"
	"github.com/open-autoglm/autoglm/internal/apierr"
	"github.com/open-autoglm/autoglm/internal/httpapi"
)

// The procedures of the two services gRPC tooling expects of every server: the standard
// health service (what a Kubernetes gRPC probe, grpc_health_probe and load balancers call)
// and server reflection, v1 and the older v1alpha that many clients still ask for first (so
// that grpcurl list and describe work without the .proto files).
const (
	healthCheckProcedure = "/" + grpchealth.HealthV1ServiceName + "/Check"
	healthWatchProcedure = "/" + grpchealth.HealthV1ServiceName + "/Watch"
	reflectV1Procedure   = "/" + grpcreflect.ReflectV1ServiceName + "/ServerReflectionInfo"
	reflectV1aProcedure  = "/" + grpcreflect.ReflectV1AlphaServiceName + "/ServerReflectionInfo"
)

// ConventionRoutes returns the routes of grpc.health.v1.Health and of server reflection
// (grpc.reflection.v1 and v1alpha), to be mounted beside Routes.
//
// Health answers from ready, which must report what /readyz reports (server.Server.Ready):
// SERVING while the server is ready, NOT_SERVING while it is not (a model with no usable
// backend, or shutting down), both for the whole server (service "") and for
// autoglm.v1.InferenceService; any other service name is NotFound, as the protocol asks.
// Watch is not offered (Unimplemented): readiness is polled, not announced, and probes call
// Check.
//
// Reflection describes the services this listener serves, from the descriptors compiled into
// the binary. Neither service reveals more than the published .proto files, so their routes
// are open to every caller (auth.Public): a probe carries no credential. Their messages are
// bounded by o.MaxBytes like the service's; o.Auth does not apply.
func ConventionRoutes(ready func() bool, o Options) []httpapi.Route {
	opts := Options{MaxBytes: o.MaxBytes}.handlerOptions()
	errs := earlyErrors(opts...)
	_, health := grpchealth.NewHandler(readiness(ready), opts...)
	reflector := grpcreflect.NewStaticReflector(
		autoglmv1connect.InferenceServiceName,
		grpchealth.HealthV1ServiceName,
		grpcreflect.ReflectV1ServiceName,
		grpcreflect.ReflectV1AlphaServiceName,
	)
	_, v1 := grpcreflect.NewHandlerV1(reflector, opts...)
	_, v1a := grpcreflect.NewHandlerV1Alpha(reflector, opts...)
	// The health service is what gRPC probes call, without a credential; reflection tells no
	// more than the published .proto files. Both are open and not limited, like /healthz.
	route := func(pattern string, h http.Handler) httpapi.Route {
		return httpapi.Route{Method: http.MethodPost, Pattern: pattern, Shape: apierr.ShapeOpenAI, Errors: errs,
			Permission: httpapi.Public, Limit: httpapi.Unlimited,
			Handler: func(w http.ResponseWriter, r *http.Request) error {
				h.ServeHTTP(w, r)
				return nil // Connect writes its own errors, in the caller's protocol
			}}
	}
	return []httpapi.Route{
		route(healthCheckProcedure, health),
		route(healthWatchProcedure, health),
		route(reflectV1Procedure, v1),
		route(reflectV1aProcedure, v1a),
	}
}

// readiness is the health checker over the server's readiness.
type readiness func() bool

var _ grpchealth.Checker = readiness(nil)

// Check reports SERVING or NOT_SERVING for the server as a whole and for the inference
// service, and NotFound for any other service.
func (ready readiness) Check(_ context.Context, req *grpchealth.CheckRequest) (*grpchealth.CheckResponse, error) {
	switch req.Service {
	case "", autoglmv1connect.InferenceServiceName:
	default:
		return nil, connect.NewError(connect.CodeNotFound, errors.New("unknown service"))
	}
	if ready() {
		return &grpchealth.CheckResponse{Status: grpchealth.StatusServing}, nil
	}
	return &grpchealth.CheckResponse{Status: grpchealth.StatusNotServing}, nil
}
