// Package apierr is the project's error model: a closed set of kinds, one table from kind to
// HTTP status, and the two wire shapes errors are written in (OpenAI's error object on
// OpenAI-compatible routes, the native envelope everywhere else).
//
// The message a client sees is kept apart from the internal cause: Error.Message is public,
// Error.Err goes to the logs only, and Error() says only what a client may read, so that an
// error's text can never carry the cause to a client. Every code comes from one catalogue
// (Code), which gives it its kind and default message. Handlers return errors; exactly one
// function, Write, turns an error into a response.
package apierr

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"
)

// Kind classifies an error. The set is closed: append new kinds at the end, never reorder.
type Kind uint8

const (
	Internal         Kind = iota // a bug or an unexpected failure inside the server
	Invalid                      // the request is malformed or breaks a documented rule
	TooLarge                     // the request body is larger than the configured limit
	Unauthenticated              // no valid credential was presented
	PermissionDenied             // the credential is valid but does not allow this
	NotFound                     // the named thing does not exist (or is not visible)
	MethodNotAllowed             // the route exists but not with this HTTP method
	Conflict                     // the request conflicts with the current state
	RateLimited                  // a rate limit refused the request; RetryAfter says when to retry
	QuotaExceeded                // a token or request quota is used up
	Timeout                      // a deadline passed before the work finished
	Canceled                     // the client went away
	Unavailable                  // no backend can take the request right now
	Upstream                     // an upstream model server failed or answered badly
)

var kindNames = [...]string{
	Internal:         "internal",
	Invalid:          "invalid",
	TooLarge:         "too_large",
	Unauthenticated:  "unauthenticated",
	PermissionDenied: "permission_denied",
	NotFound:         "not_found",
	MethodNotAllowed: "method_not_allowed",
	Conflict:         "conflict",
	RateLimited:      "rate_limited",
	QuotaExceeded:    "quota_exceeded",
	Timeout:          "timeout",
	Canceled:         "canceled",
	Unavailable:      "unavailable",
	Upstream:         "upstream",
}

// StatusClientClosed is the status logged (never sent: the client is gone) when a client
// disconnects before its answer is complete. 499 is the value nginx made conventional.
const StatusClientClosed = 499

var kindStatus = [...]int{
	Internal:         http.StatusInternalServerError,
	Invalid:          http.StatusBadRequest,
	TooLarge:         http.StatusRequestEntityTooLarge,
	Unauthenticated:  http.StatusUnauthorized,
	PermissionDenied: http.StatusForbidden,
	NotFound:         http.StatusNotFound,
	MethodNotAllowed: http.StatusMethodNotAllowed,
	Conflict:         http.StatusConflict,
	RateLimited:      http.StatusTooManyRequests,
	QuotaExceeded:    http.StatusTooManyRequests,
	Timeout:          http.StatusGatewayTimeout,
	Canceled:         StatusClientClosed,
	Unavailable:      http.StatusServiceUnavailable,
	Upstream:         http.StatusBadGateway,
}

// openAIType is the "type" field OpenAI's API uses for each class of error.
var openAIType = [...]string{
	Internal:         "server_error",
	Invalid:          "invalid_request_error",
	TooLarge:         "invalid_request_error",
	Unauthenticated:  "authentication_error",
	PermissionDenied: "permission_error",
	NotFound:         "invalid_request_error",
	MethodNotAllowed: "invalid_request_error",
	Conflict:         "invalid_request_error",
	RateLimited:      "rate_limit_error",
	QuotaExceeded:    "insufficient_quota",
	Timeout:          "timeout_error",
	Canceled:         "canceled",
	Unavailable:      "service_unavailable",
	Upstream:         "upstream_error",
}

// defaultMessage is what a client reads when an error carries no public message.
var defaultMessage = [...]string{
	Internal:         "internal server error",
	Invalid:          "invalid request",
	TooLarge:         "request body too large",
	Unauthenticated:  "authentication required",
	PermissionDenied: "permission denied",
	NotFound:         "not found",
	MethodNotAllowed: "method not allowed",
	Conflict:         "conflict",
	RateLimited:      "rate limit exceeded",
	QuotaExceeded:    "quota exceeded",
	Timeout:          "request timed out",
	Canceled:         "request canceled",
	Unavailable:      "service unavailable",
	Upstream:         "upstream model server error",
}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", k)
}

// HTTPStatus is the status code for errors of this kind.
func (k Kind) HTTPStatus() int {
	if int(k) < len(kindStatus) {
		return kindStatus[k]
	}
	return http.StatusInternalServerError
}

// Error is an error with a kind, a public message and an internal cause.
type Error struct {
	Kind Kind
	// Code is a stable machine-readable code from the catalogue, such as CodeModelNotFound;
	// empty means the kind's name.
	Code Code
	// Message is shown to the client. It must never contain internal details.
	Message string
	// Param names the request field at fault, when there is one.
	Param string
	// RetryAfter, when positive, is sent as the Retry-After header.
	RetryAfter time.Duration
	// Status overrides the kind's HTTP status when non-zero (used to pass an upstream's
	// 4xx through unchanged).
	Status int
	// Err is the internal cause. It goes to the logs only.
	Err error
	// NullCode sends "code": null in OpenAI's shape, as OpenAI itself does for errors that
	// have no code (an unknown URL). Code is still logged.
	NullCode bool
}

// Error is the public part only: kind and public message. The internal cause is not in it
// (errors.Unwrap reaches it, and the server logs it), so that no path that renders an error's
// text can leak it.
func (e *Error) Error() string { return e.Kind.String() + ": " + e.PublicMessage() }

// Unwrap returns the internal cause.
func (e *Error) Unwrap() error { return e.Err }

// LogValue is what slog records for the error: the public part and the internal cause.
func (e *Error) LogValue() slog.Value {
	attrs := []slog.Attr{slog.String("kind", e.Kind.String()), slog.String("code", e.PublicCode()), slog.String("message", e.PublicMessage())}
	if e.Err != nil {
		attrs = append(attrs, slog.String("cause", e.Err.Error()))
	}
	return slog.GroupValue(attrs...)
}

// HTTPStatus is the status this error is answered with.
func (e *Error) HTTPStatus() int {
	if e.Status != 0 {
		return e.Status
	}
	return e.Kind.HTTPStatus()
}

// PublicMessage is the message a client may see: the error's own, else its code's from the
// catalogue, else its kind's.
func (e *Error) PublicMessage() string {
	if e.Message != "" {
		return e.Message
	}
	if m := e.Code.Message(); m != "" {
		return m
	}
	if int(e.Kind) < len(defaultMessage) {
		return defaultMessage[e.Kind]
	}
	return defaultMessage[Internal]
}

// PublicCode is the stable code a client may see.
func (e *Error) PublicCode() string {
	if e.Code != "" {
		return string(e.Code)
	}
	return e.Kind.String()
}

// New returns an error of code c, with c's kind, and a public message (empty: c's message
// from the catalogue).
func New(c Code, message string) *Error {
	return &Error{Kind: c.Kind(), Code: c, Message: message}
}

// Wrap returns an error of kind k whose internal cause is err; the client sees message.
func Wrap(k Kind, err error, message string) *Error {
	return &Error{Kind: k, Message: message, Err: err}
}

// From classifies any error. An *Error anywhere in the chain is returned as is; context
// cancellation and deadlines become Canceled and Timeout; anything else is Internal, with
// the original error kept as the internal cause.
func From(err error) *Error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	switch {
	case errors.Is(err, context.Canceled):
		return &Error{Kind: Canceled, Err: err}
	case errors.Is(err, context.DeadlineExceeded):
		return &Error{Kind: Timeout, Err: err}
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return &Error{Kind: TooLarge, Code: CodeBodyTooLarge,
			Message: fmt.Sprintf("request body exceeds the limit of %d bytes", mbe.Limit), Err: err}
	}
	return &Error{Kind: Internal, Err: err}
}

// KindOf returns the kind of err as From classifies it.
func KindOf(err error) Kind { return From(err).Kind }
