package httpapi

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/open-autoglm/autoglm/internal/apierr"
)

// TraceHeader is the response header that carries the request's trace id. The first stage of
// the server's chain sets it on every response, before any handler runs; the envelope repeats
// it as trace_id, so a handler need not know where trace ids come from.
const TraceHeader = "X-Trace-Id"

// WriteData answers a successful native request in the envelope, with v as its data.
func WriteData(w http.ResponseWriter, r *http.Request, status int, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	WriteEnvelope(w, status, data)
	return nil
}

// WriteEnvelope answers a successful native request: {"code":"ok","success":true,"data":…,
// "message":"","trace_id":…}. data must be valid JSON.
func WriteEnvelope(w http.ResponseWriter, status int, data []byte) {
	h := w.Header()
	b := make([]byte, 0, len(data)+96)
	b = append(b, `{"code":"ok","success":true,"data":`...)
	b = append(b, data...)
	b = append(b, `,"message":"","trace_id":`...)
	b = apierr.AppendJSONString(b, h.Get(TraceHeader))
	b = append(b, '}')
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
