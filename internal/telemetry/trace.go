// Package telemetry holds what makes a request observable: its trace id, the per-request
// record that the access log prints, and the structured logger that stamps every line with
// the trace id of the request it belongs to.
package telemetry

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
)

// TraceHeader is the header a trace id is read from and echoed in.
const TraceHeader = "X-Trace-Id"

type traceKey struct{}

// NewTraceID returns 32 lowercase hex digits (a W3C trace-context trace id).
func NewTraceID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
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
	if v := r.Header.Get(TraceHeader); ValidTraceID(v) {
		return v
	}
	// traceparent: version "-" trace-id(32 hex) "-" parent-id(16 hex) "-" flags(2 hex)
	if tp := r.Header.Get("Traceparent"); len(tp) >= 55 && tp[2] == '-' && tp[35] == '-' {
		id := tp[3:35]
		if isLowerHex(id) && id != "00000000000000000000000000000000" {
			return id
		}
	}
	return NewTraceID()
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
