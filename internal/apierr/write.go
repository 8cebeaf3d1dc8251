package apierr

import (
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"
)

// Shape selects the wire shape of an error body.
type Shape uint8

const (
	// ShapeOpenAI is {"error":{"message","type","code","param"}}.
	ShapeOpenAI Shape = iota
	// ShapeEnvelope is {"code","success","data","message","trace_id"}.
	ShapeEnvelope
	// ShapeAnthropic is Anthropic's {"type":"error","error":{"type","message"},"request_id"}.
	ShapeAnthropic
)

// Write answers err in the given shape. It is the only place the project turns an error into
// an HTTP response. The internal cause is not written; callers log it. Write does nothing
// useful for Canceled errors (the client is gone) but is safe to call.
func Write(w http.ResponseWriter, shape Shape, traceID string, err error) *Error {
	e := From(err)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	if e.RetryAfter > 0 {
		secs := int64((e.RetryAfter + time.Second - 1) / time.Second)
		h.Set("Retry-After", strconv.FormatInt(secs, 10))
	}
	if e.Kind == MethodNotAllowed && h.Get("Allow") == "" {
		h.Set("Allow", "POST")
	}
	status := e.HTTPStatus()
	if status == StatusClientClosed {
		// Nobody is listening; a real status keeps proxies in between sane.
		status = http.StatusBadRequest
	}
	var body []byte
	switch shape {
	case ShapeEnvelope:
		body = AppendEnvelopeError(make([]byte, 0, 160), e, traceID)
	case ShapeAnthropic:
		body = AppendAnthropicError(make([]byte, 0, 160), e, traceID)
	default:
		body = AppendOpenAIError(make([]byte, 0, 160), e, traceID)
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
	return e
}

// AppendOpenAIError appends OpenAI's error object for e. OpenAI's shape has no trace id field,
// so the trace id is appended to the message ("... (trace_id: X)") and is also in the
// X-Trace-Id header, which keeps the body parseable by every OpenAI client.
func AppendOpenAIError(b []byte, e *Error, traceID string) []byte {
	msg := e.PublicMessage()
	b = append(b, `{"error":{"message":`...)
	b = appendJSONString(b, msg)
	b = append(b, `,"type":`...)
	b = appendJSONString(b, openAIType[e.Kind])
	b = append(b, `,"code":`...)
	if e.NullCode {
		b = append(b, "null"...)
	} else {
		b = appendJSONString(b, e.PublicCode())
	}
	b = append(b, `,"param":`...)
	if e.Param == "" {
		b = append(b, "null"...)
	} else {
		b = appendJSONString(b, e.Param)
	}
	if traceID != "" {
		b = append(b, `,"trace_id":`...)
		b = appendJSONString(b, traceID)
	}
	return append(b, "}}"...)
}

// anthropicType is the error "type" of Anthropic's API for each kind.
var anthropicType = [...]string{
	Internal:         "api_error",
	Invalid:          "invalid_request_error",
	TooLarge:         "request_too_large",
	Unauthenticated:  "authentication_error",
	PermissionDenied: "permission_error",
	NotFound:         "not_found_error",
	MethodNotAllowed: "invalid_request_error",
	Conflict:         "invalid_request_error",
	RateLimited:      "rate_limit_error",
	QuotaExceeded:    "rate_limit_error",
	Timeout:          "timeout_error",
	Canceled:         "api_error",
	Unavailable:      "overloaded_error",
	Upstream:         "api_error",
}

// AnthropicType is the error type Anthropic's API uses for e.
func AnthropicType(e *Error) string {
	if int(e.Kind) < len(anthropicType) {
		return anthropicType[e.Kind]
	}
	return "api_error"
}

// AppendAnthropicError appends Anthropic's error object for e, with the trace id as the
// request id (Anthropic's SDKs read request_id from the body and the request-id header).
func AppendAnthropicError(b []byte, e *Error, traceID string) []byte {
	b = append(b, `{"type":"error","error":{"type":`...)
	b = appendJSONString(b, AnthropicType(e))
	b = append(b, `,"message":`...)
	b = appendJSONString(b, e.PublicMessage())
	b = append(b, `},"request_id":`...)
	b = appendJSONString(b, traceID)
	return append(b, '}')
}

// AppendEnvelopeError appends the native envelope for e.
func AppendEnvelopeError(b []byte, e *Error, traceID string) []byte {
	b = append(b, `{"code":`...)
	b = appendJSONString(b, e.PublicCode())
	b = append(b, `,"success":false,"data":null,"message":`...)
	b = appendJSONString(b, e.PublicMessage())
	b = append(b, `,"trace_id":`...)
	b = appendJSONString(b, traceID)
	return append(b, '}')
}

const hexDigits = "0123456789abcdef"

// AppendJSONString appends s as a JSON string literal, as every writer of this package does.
func AppendJSONString(b []byte, s string) []byte { return appendJSONString(b, s) }

// appendJSONString appends s as a JSON string literal. Invalid UTF-8 is replaced with U+FFFD
// so the output is always valid JSON.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < 0x80 {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
