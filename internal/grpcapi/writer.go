package grpcapi

import (
	"bytes"
	"context"
	"net/http"
	"time"

	"connectrpc.com/connect"

	"github.com/open-autoglm/autoglm/api/sse"
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
	split   sse.Splitter
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
	if len(w.pending)+len(p) > sse.DefaultMaxEventSize {
		w.err = connect.NewError(connect.CodeInternal, sse.ErrTooLarge)
		return 0, w.err
	}
	w.pending = append(w.pending, p...)
	for {
		end := w.split.Cut(w.pending)
		if end < 0 {
			break
		}
		if err := w.event(w.pending[:end]); err != nil {
			w.err = err
			return 0, err
		}
		w.pending = w.pending[:copy(w.pending, w.pending[end:])]
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

// event handles one event block ("data: [DONE]" ends the stream; a block without data, such
// as a comment, is skipped).
func (w *streamWriter) event(block []byte) error {
	ev, ok := sse.Parse(block)
	if !ok || w.done {
		return nil
	}
	data := ev.Data
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
