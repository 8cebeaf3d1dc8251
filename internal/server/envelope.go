package server

import (
	"net/http"
	"strconv"
	"unicode/utf8"
)

// writeEnvelope answers a successful native request: {"code":"ok","success":true,"data":…,
// "message":"","trace_id":…}. data must be valid JSON.
func writeEnvelope(w http.ResponseWriter, r *http.Request, status int, data []byte) {
	b := make([]byte, 0, len(data)+96)
	b = append(b, `{"code":"ok","success":true,"data":`...)
	b = append(b, data...)
	b = append(b, `,"message":"","trace_id":`...)
	b = appendQuoted(b, traceIDOf(r.Context()))
	b = append(b, '}')
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func appendBool(b []byte, v bool) []byte { return strconv.AppendBool(b, v) }

// appendQuoted appends s as a JSON string. Names here come from validated configuration, so
// strconv's Go quoting is JSON-compatible except for invalid UTF-8, which is replaced.
func appendQuoted(b []byte, s string) []byte {
	if !utf8.ValidString(s) {
		s = string([]rune(s))
	}
	return strconv.AppendQuoteToASCII(b, s)
}
