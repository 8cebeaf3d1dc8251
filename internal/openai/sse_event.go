package openai

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/open-autoglm/autoglm/api/sse"
	"github.com/open-autoglm/autoglm/internal/apierr"
)

// startEventStream writes the headers of a server-sent event stream the gateway composes
// itself (Responses and Messages streams) and the 200 status.
func startEventStream(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
}

// writeNamedEvent writes one "event: typ" / "data: JSON of v" event and flushes it, with a
// write deadline of writeTimeout from now when it is positive (a stream outlives the
// server's write timeout one event at a time).
func writeNamedEvent(w http.ResponseWriter, writeTimeout time.Duration, typ string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	b, err := sse.AppendEvent(make([]byte, 0, len(data)+len(typ)+16), sse.Event{Type: typ, Data: data})
	if err != nil {
		return err
	}
	rc := http.NewResponseController(w)
	if writeTimeout > 0 {
		_ = rc.SetWriteDeadline(time.Now().Add(writeTimeout))
	}
	if _, err := w.Write(b); err != nil {
		return apierr.From(err)
	}
	_ = rc.Flush()
	return nil
}
