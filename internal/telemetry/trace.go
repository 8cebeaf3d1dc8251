// Package telemetry holds what makes a request observable: its trace id, the per-request
// record that the access log prints, and the structured logger that stamps every line with
// the trace id of the request it belongs to.
package telemetry

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	mrand "math/rand/v2"
	"net/http"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/open-autoglm/autoglm/internal/httphead"
)

// TraceHeader is the header a trace id is read from and echoed in.
const TraceHeader = "X-Trace-Id"

type traceKey struct{}

// NewTraceID returns 32 lowercase hex digits (a W3C trace-context trace id).
//
// The bits come from math/rand/v2's generator (ChaCha8, seeded by the operating system, one
// state per thread): a trace id must be unique, not secret (a client may choose its own), and
// this costs no system call or lock on the request path.
func NewTraceID() string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], mrand.Uint64())
	binary.BigEndian.PutUint64(b[8:], mrand.Uint64())
	return hex.EncodeToString(b[:])
}

// ValidTraceID reports whether s is acceptable as a caller-supplied trace id: 8 to 64
// characters from [0-9A-Za-z_.-]. Anything else is replaced by a fresh id, so a trace id can
// never inject text into logs or headers.
func ValidTraceID(s string) bool {
	if len(s) < 8 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '-', c == '_', c == '.':
		default:
			return false
		}
	}
	return true
}

// TraceIDFromRequest returns the request's trace id: a well-formed X-Trace-Id header, else the
// trace id of a well-formed W3C traceparent header, else a new one.
func TraceIDFromRequest(r *http.Request) string {
	if v := httphead.Get(r.Header, TraceHeader); ValidTraceID(v) {
		return v
	}
	if id, ok := traceparentID(httphead.Get(r.Header, "Traceparent")); ok {
		return id
	}
	return NewTraceID()
}

// traceparentID returns the trace id of a W3C traceparent, version "-" trace-id(32 hex) "-"
// parent-id(16 hex) "-" flags(2 hex), of any version (a later one may add fields): false when
// the value is too short to hold those fields or the trace id is not valid.
func traceparentID(tp string) (string, bool) {
	if len(tp) < 55 || tp[2] != '-' || tp[35] != '-' {
		return "", false
	}
	id := tp[3:35]
	return id, isLowerHex(id) && id != "00000000000000000000000000000000"
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// WithTraceID returns a context carrying the trace id.
func WithTraceID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, traceKey{}, id)
}

// TraceID returns the trace id carried by ctx, or "".
func TraceID(ctx context.Context) string {
	id, _ := ctx.Value(traceKey{}).(string)
	return id
}

// InjectUpstream writes the trace context of ctx into the headers of a request to an upstream:
// with tracing on, a W3C traceparent naming the current span (the upstream attempt) and any
// baggage. X-Trace-Id carries the request's trace id either way. With tracing off it writes no
// traceparent: a caller's own traceparent is passed on unchanged by the route that forwards
// the caller's headers, and none is made up. A made-up one would have to be flagged not
// sampled, and an upstream whose tracer follows its parent's decision (OpenTelemetry's
// default) then records nothing, where without one it starts a trace of its own.
func InjectUpstream(ctx context.Context, h http.Header) {
	if id := TraceID(ctx); id != "" && h.Get(TraceHeader) == "" {
		h.Set(TraceHeader, id)
	}
	if CarriesSpan(ctx) {
		propagator.Inject(ctx, propagation.HeaderCarrier(h))
	}
}

// CarriesSpan reports whether InjectUpstream would write a traceparent for ctx: tracing is on
// and ctx holds a valid span context. Without one it writes at most X-Trace-Id, which lets an
// upstream client that writes its headers itself skip the propagator.
func CarriesSpan(ctx context.Context) bool {
	return trace.SpanContextFromContext(ctx).IsValid()
}

// ValidTraceparent reports whether v is a well-formed W3C traceparent of version 00 with a
// valid trace id and parent id: the only kind passed on to an upstream.
func ValidTraceparent(v string) bool {
	_, ok := traceparentID(v)
	return ok && len(v) == 55 && v[:2] == "00" && v[52] == '-' &&
		isLowerHex(v[36:52]) && v[36:52] != "0000000000000000" &&
		v[53] == '0' && v[54] >= '0' && v[54] <= '3' // sampled, random (W3C level 2): the flags defined
}
