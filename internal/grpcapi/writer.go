package grpcapi

import (
	"bytes"
	"context"
	"net/http"
	"time"

	"connectrpc.com/connect"
	"github.com/open-autoglm/autoglm/internal/apierr"
)

// maxErrorBody bounds what is kept of an error answer: enough for any error object.
const maxErrorBody = 64 << 10

// bufferWriter keeps a whole answer (the handler runs to completion before it is read).
type bufferWriter struct {
	hdr    http.Header
	status int
	body   bytes.Buffer
}

func (w *bufferWriter) Header() http.Header { return w.hdr }

func (w *bufferWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
}

func (w *bufferWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.body.Write(p)
}

// streamWriter reads a server-sent-event answer as the handler writes it and hands each
// event's data to send at once, in the handler's goroutine. An error from send (the caller
// went away, an error event) is returned from Write and FlushError, which stops the handler's
// relay and so the upstream request. An answer that is not a 2xx stream is kept for finish.
type streamWriter struct {
	hdr     http.Header
	status  int
	outer   *http.ResponseController // the caller's connection; nil outside Routes
	send    func(data []byte) error
	pending []byte
	errBody bytes.Buffer
	done    bool
	err     error
}

func (w *streamWriter) Header() http.Header { return w.hdr }

func (w *streamWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
}

func (w *streamWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if w.err != nil {
		return 0, w.err
	}
	if w.status >= 300 {
		if room := maxErrorBody - w.errBody.Len(); room > 0 {
			w.errBody.Write(p[:min(len(p), room)])
		}
		return len(p), nil
	}
	for _, c := range p {
		// Events end at a blank line; "\r\n" line ends are folded to "\n" (JSON data never
		// holds a raw CR).
		if c != '\r' {
			w.pending = append(w.pending, c)
		}
	}
	for {
		end := bytes.Index(w.pending, []byte("\n\n"))
		if end < 0 {
			break
		}
		ev := w.pending[:end]
		if err := w.event(ev); err != nil {
			w.err = err
			return 0, err
		}
		w.pending = w.pending[:copy(w.pending, w.pending[end+2:])]
	}
	return len(p), nil
}

// SetWriteDeadline moves the caller's write deadline: the relay sets one before each chunk,
// and the chunk is sent to the caller within the same Write.
func (w *streamWriter) SetWriteDeadline(t time.Time) error {
	if w.outer == nil {
		return http.ErrNotSupported
	}
	return w.outer.SetWriteDeadline(t)
}

// Flush is a no-op: every complete event was sent by Write.
func (w *streamWriter) Flush() {}

// FlushError reports a failed send, so a relay that checks its flushes stops too.
func (w *streamWriter) FlushError() error { return w.err }

// event handles one event: its data lines joined by "\n" ("data: [DONE]" ends the stream;
// comments and other fields are skipped).
func (w *streamWriter) event(ev []byte) error {
	var data []byte
	n := 0
	for line := range bytes.SplitSeq(ev, []byte("\n")) {
		rest, ok := bytes.CutPrefix(line, []byte("data:"))
		if !ok {
			continue
		}
		rest, _ = bytes.CutPrefix(rest, []byte(" "))
		if n > 0 {
			data = append(data, '\n')
		}
		data = append(data, rest...)
		n++
	}
	if n == 0 || w.done {
		return nil
	}
	if string(data) == "[DONE]" {
		w.done = true
		return nil
	}
	return w.send(data)
}

// finish is the call's result once the handler has returned.
func (w *streamWriter) finish(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return connect.NewError(connect.Code(apierr.KindOf(err).GRPCCode()), err)
	}
	if w.err != nil {
		return w.err
	}
	if w.status >= 300 {
		return httpError(w.status, w.hdr, w.errBody.Bytes())
	}
	if len(bytes.TrimSpace(w.pending)) > 0 {
		// The last event had no blank line after it.
		return w.event(w.pending)
	}
	return nil
}
