package apierr

// GRPCCode is a gRPC status code (google.golang.org/grpc/codes numbering, which Connect's
// connect.Code shares). It is a plain number here so that this package needs no RPC library.
type GRPCCode uint32

// The gRPC codes the kinds map to.
const (
	GRPCCanceled           GRPCCode = 1
	GRPCUnknown            GRPCCode = 2
	GRPCInvalidArgument    GRPCCode = 3
	GRPCDeadlineExceeded   GRPCCode = 4
	GRPCNotFound           GRPCCode = 5
	GRPCPermissionDenied   GRPCCode = 7
	GRPCResourceExhausted  GRPCCode = 8
	GRPCFailedPrecondition GRPCCode = 9
	GRPCAborted            GRPCCode = 10
	GRPCUnimplemented      GRPCCode = 12
	GRPCInternal           GRPCCode = 13
	GRPCUnavailable        GRPCCode = 14
	GRPCUnauthenticated    GRPCCode = 16
)

// kindGRPC is the one table from kind to gRPC code. Rate limits and quotas are both
// ResourceExhausted (the gRPC convention for "try later or ask for more"); a body over the
// limit is ResourceExhausted too, as gRPC answers an oversized message. A failed upstream is
// Unavailable, which gRPC clients treat as retryable, like Connect's mapping of 502.
var kindGRPC = [...]GRPCCode{
	Internal:         GRPCInternal,
	Invalid:          GRPCInvalidArgument,
	TooLarge:         GRPCResourceExhausted,
	Unauthenticated:  GRPCUnauthenticated,
	PermissionDenied: GRPCPermissionDenied,
	NotFound:         GRPCNotFound,
	MethodNotAllowed: GRPCUnimplemented,
	Conflict:         GRPCAborted,
	RateLimited:      GRPCResourceExhausted,
	QuotaExceeded:    GRPCResourceExhausted,
	Timeout:          GRPCDeadlineExceeded,
	Canceled:         GRPCCanceled,
	Unavailable:      GRPCUnavailable,
	Upstream:         GRPCUnavailable,
	NotAcceptable:    GRPCInvalidArgument,
}

// GRPCCode is the gRPC (and Connect) code for errors of this kind.
func (k Kind) GRPCCode() GRPCCode {
	if int(k) < len(kindGRPC) {
		return kindGRPC[k]
	}
	return GRPCInternal
}

// KindOfStatus is the kind an HTTP error status stands for: the inverse of the kind → status
// table, for answers read back from an HTTP handler (the gRPC API serves each call through the
// HTTP routes). 429 is RateLimited; the caller tells QuotaExceeded apart by the error's type.
// A status no kind owns falls back by class: other 4xx are Invalid, other 5xx Internal.
func KindOfStatus(status int) Kind {
	for k, s := range kindStatus {
		if s == status && Kind(k) != QuotaExceeded {
			return Kind(k)
		}
	}
	switch {
	case status >= 400 && status < 500:
		return Invalid
	default:
		return Internal
	}
}
