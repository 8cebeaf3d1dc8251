package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// StatusError is the error of a request the server refused or failed: any
// non-2xx answer, or an error event inside a stream. Use [errors.As] to get
// it from the error a Client method returns.
type StatusError struct {
	// StatusCode is the HTTP status. An error reported inside a stream that
	// began with 200 has StatusCode 0, unless its code is an HTTP status.
	StatusCode int
	// Type, Code, Param and Message come from OpenAI's error shape or from
	// the native envelope (code and message).
	Type, Code, Param, Message string
	// TraceID is the server's X-Trace-Id (or the envelope's trace_id): quote
	// it when reporting a problem.
	TraceID string
	// RetryAfter is the server's Retry-After, or 0.
	RetryAfter time.Duration
}

func (e *StatusError) Error() string {
	var b strings.Builder
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, "api: %d %s", e.StatusCode, http.StatusText(e.StatusCode))
	} else {
		b.WriteString("api: error in stream")
	}
	if e.Code != "" {
		b.WriteString(" (" + e.Code + ")")
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	if e.TraceID != "" {
		b.WriteString(" [trace " + e.TraceID + "]")
	}
	return b.String()
}

// maxErrorBody bounds how much of an error answer is read.
const maxErrorBody = 64 << 10

// errorFromResponse builds the error of a non-2xx response and closes its
// body.
func errorFromResponse(resp *http.Response) *StatusError {
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	e := &StatusError{
		StatusCode: resp.StatusCode,
		TraceID:    resp.Header.Get("X-Trace-Id"),
		RetryAfter: retryAfter(resp.Header.Get("Retry-After"), time.Now()),
	}
	e.fill(body)
	if e.Message == "" {
		msg := strings.TrimSpace(string(body))
		if len(msg) > 512 {
			msg = msg[:512] + "…"
		}
		if msg == "" {
			msg = http.StatusText(resp.StatusCode)
		}
		e.Message = msg
	}
	return e
}

// fill reads an error body in any of the shapes servers use: OpenAI's
// {"error":{...}}, {"error":"text"} and the native envelope. It reports
// whether body had one of them.
func (e *StatusError) fill(body []byte) bool {
	var probe struct {
		Error   json.RawMessage `json:"error"`
		Code    json.RawMessage `json:"code"`
		Success *bool           `json:"success"`
		Message string          `json:"message"`
		TraceID string          `json:"trace_id"`
	}
	if json.Unmarshal(body, &probe) != nil {
		return false
	}
	switch firstByte(probe.Error) {
	case '{':
		var d ErrorDetail
		if json.Unmarshal(probe.Error, &d) != nil {
			return false
		}
		e.Type, e.Code, e.Param, e.Message = d.Type, d.Code, d.Param, d.Message
		return true
	case '"':
		json.Unmarshal(probe.Error, &e.Message)
		return true
	}
	if probe.Success == nil && probe.Message == "" {
		return false
	}
	e.Code, e.Message = scalar(probe.Code), probe.Message
	if e.TraceID == "" {
		e.TraceID = probe.TraceID
	}
	return true
}

// streamError builds the error of an error event or object inside a stream.
func streamError(data []byte, traceID string) *StatusError {
	e := &StatusError{TraceID: traceID}
	if !e.fill(data) {
		e.Message = strings.TrimSpace(string(data))
	}
	if n, err := strconv.Atoi(e.Code); err == nil && n >= 400 && n <= 599 {
		e.StatusCode = n
	}
	return e
}

// isErrorObject reports whether a stream event's data is a JSON object with
// a top-level "error" member. The byte search keeps the common case, a
// normal chunk, from being decoded twice.
func isErrorObject(data []byte) bool {
	if !bytes.Contains(data, []byte(`"error"`)) {
		return false
	}
	var probe struct {
		Error json.RawMessage `json:"error"`
	}
	return json.Unmarshal(data, &probe) == nil && len(probe.Error) > 0 && firstByte(probe.Error) != 'n'
}

// retryAfter parses a Retry-After value: delay seconds or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
		return time.Duration(max(s, 0)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0)
	}
	return 0
}
