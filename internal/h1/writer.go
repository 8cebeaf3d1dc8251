package h1

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/open-autoglm/autoglm/internal/httphead"
)

// bufferLimit is how much of a response body the writer holds before it sends the head and
// switches to chunked encoding; a body that fits goes out with a Content-Length, head and body
// in one write.
const bufferLimit = 16 << 10

// response is the http.ResponseWriter of one request. Nothing reaches the socket until the
// handler flushes, returns, or writes more than bufferLimit: then the status line, the header
// and the body written so far go out in one write.
type response struct {
	c           *conn
	req         *http.Request
	header      http.Header
	status      int
	wroteHeader bool
	sentHead    bool // the head is on the wire
	chunked     bool // the body goes out chunked
	bodyAllowed bool
	noBody      bool // HEAD: the body is counted, not sent
	close       bool // close the connection after this response
	contentLen  int64
	written     int64
	buf         []byte // head and body not yet written (the connection's reusable buffer)
	err         error  // a write to the client failed: the request's context is canceled
	endOnFlush  bool   // the next flush ends the body (EndOnFlush)
	ended       bool   // the body's end is on the wire: nothing more may be written
}

// errBodyEnded is a write after the body was ended by EndOnFlush.
var errBodyEnded = errors.New("h1: write after the response body ended")

// EndOnFlush makes the next flush also end the body: a chunked body's last chunk goes out in
// the same write as the data before it, so a client reading to the end of a stream gets it in
// one wake-up rather than two. Writes after that flush fail. The handler calls it when it
// knows its last bytes are written (a relayed stream whose upstream has ended); a body that
// is not chunked needs no ending and is left as it is. A Content-Encoding set by a wrapper
// that compresses (and has bytes of its own still to write) keeps the end for the handler's
// return.
func (w *response) EndOnFlush() {
	if w.header.Get("Content-Encoding") == "" {
		w.endOnFlush = true
	}
}

func (w *response) Header() http.Header { return w.header }

func (w *response) WriteHeader(code int) {
	if w.wroteHeader {
		return
	}
	if code < 100 || code > 999 {
		panic("h1: invalid WriteHeader code " + strconv.Itoa(code))
	}
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		// Informational answers (103 Early Hints) are not sent by this server; the final
		// status follows.
		return
	}
	w.wroteHeader = true
	w.status = code
	w.bodyAllowed = code != http.StatusNoContent && code != http.StatusNotModified
	if cl := w.header.Get("Content-Length"); cl != "" {
		if n, err := strconv.ParseInt(cl, 10, 64); err == nil && n >= 0 {
			w.contentLen = n
		} else {
			w.header.Del("Content-Length")
		}
	}
}

func (w *response) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if len(p) == 0 {
		return 0, w.err
	}
	if !w.bodyAllowed {
		return 0, http.ErrBodyNotAllowed
	}
	if w.contentLen >= 0 && w.written+int64(len(p)) > w.contentLen {
		return 0, http.ErrContentLength
	}
	if w.err != nil {
		return 0, w.err
	}
	if w.ended {
		return 0, errBodyEnded
	}
	w.written += int64(len(p))
	if w.noBody {
		return len(p), nil
	}
	if !w.sentHead {
		if _, ok := w.header["Content-Type"]; !ok && w.header.Get("Transfer-Encoding") == "" && w.written == int64(len(p)) {
			w.header.Set("Content-Type", http.DetectContentType(p))
		}
		if len(w.buf)+len(p) <= bufferLimit {
			w.buf = append(w.buf, p...)
			return len(p), nil
		}
		w.writeHead(false)
	}
	w.appendBody(p)
	if len(w.buf) >= bufferLimit {
		w.send()
	}
	if w.err != nil {
		return 0, w.err
	}
	return len(p), nil
}

// appendBody adds p to the pending bytes, as a chunk when the body is chunked.
func (w *response) appendBody(p []byte) {
	if w.chunked {
		w.buf = strconv.AppendInt(w.buf, int64(len(p)), 16)
		w.buf = append(w.buf, '\r', '\n')
		w.buf = append(w.buf, p...)
		w.buf = append(w.buf, '\r', '\n')
		return
	}
	w.buf = append(w.buf, p...)
}

// writeHead puts the status line and header in front of the body held in buf. final says
// the handler has returned: a body that was never flushed then gets a Content-Length.
func (w *response) writeHead(final bool) {
	held := w.buf
	out := w.c.out[:0]
	out = append(out, "HTTP/1.1 "...)
	out = strconv.AppendInt(out, int64(w.status), 10)
	out = append(out, ' ')
	out = append(out, http.StatusText(w.status)...)
	out = append(out, '\r', '\n')
	h := w.header
	_, hasLen := h["Content-Length"]
	switch {
	case !w.bodyAllowed:
		delete(h, "Content-Length")
		delete(h, "Transfer-Encoding")
	case hasLen:
	case final:
		if w.req.Method != http.MethodHead || w.written > 0 {
			out = append(out, "Content-Length: "...)
			out = strconv.AppendInt(out, w.written, 10)
			out = append(out, '\r', '\n')
		}
	case w.req.ProtoAtLeast(1, 1):
		w.chunked = true
		delete(h, "Transfer-Encoding")
		out = append(out, "Transfer-Encoding: chunked\r\n"...)
	default:
		w.close = true // an HTTP/1.0 client reads the body to the end of the connection
	}
	for _, v := range h["Connection"] {
		if httphead.EqualFold(v, "close") {
			w.close = true // the handler asked for the connection to end after this answer
		}
	}
	if w.close || w.c.srv.shuttingDown() {
		w.close = true
		out = append(out, "Connection: close\r\n"...)
	} else if !w.req.ProtoAtLeast(1, 1) {
		out = append(out, "Connection: keep-alive\r\n"...)
	}
	delete(h, "Connection")
	if _, ok := h["Date"]; !ok {
		out = append(out, "Date: "...)
		out = append(out, w.c.srv.httpDate()...)
		out = append(out, '\r', '\n')
	}
	for k, vs := range h {
		for _, v := range vs {
			out = append(out, k...)
			out = append(out, ':', ' ')
			out = appendValue(out, v)
			out = append(out, '\r', '\n')
		}
	}
	out = append(out, '\r', '\n')
	if len(held) > 0 {
		if w.chunked {
			w.buf = out
			w.appendBody(held)
			out = w.buf
		} else {
			out = append(out, held...)
		}
	}
	w.buf, w.c.out = out, held[:0]
	w.sentHead = true
}

// appendValue writes a header value with any CR or LF replaced by a space, as net/http does,
// so that a value cannot start a header of its own.
func appendValue(out []byte, v string) []byte {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == '\r' || c == '\n' {
			c = ' '
		}
		out = append(out, c)
	}
	return out
}

// send writes what is pending in one write; a failure cancels the request's context, which
// is how a handler streaming to a client that left learns of it.
func (w *response) send() {
	if len(w.buf) == 0 || w.err != nil {
		w.buf = w.buf[:0]
		return
	}
	if _, err := w.c.rwc.Write(w.buf); err != nil {
		w.err = err
		w.close = true
		w.c.cancel()
	}
	w.buf = w.buf[:0]
}

// Flush sends the head, if not yet sent, and everything written so far.
func (w *response) Flush() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.sentHead {
		w.writeHead(false)
	}
	if w.endOnFlush {
		w.endBody()
	}
	w.send()
}

// endBody adds a chunked body's last chunk to what is pending, once; a body that is not
// chunked, or not sent (HEAD), has none.
func (w *response) endBody() {
	if w.chunked && !w.ended && !w.noBody {
		w.buf = append(w.buf, "0\r\n\r\n"...)
		w.ended = true
	}
}

// FlushError is Flush reporting a failed write (http.ResponseController uses it).
func (w *response) FlushError() error {
	w.Flush()
	return w.err
}

// finish completes the response after the handler returned.
func (w *response) finish() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.sentHead {
		w.writeHead(true)
	}
	w.endBody()
	if w.bodyAllowed && w.contentLen >= 0 && w.written < w.contentLen && !w.noBody {
		w.close = true // the declared length was not written: the client must not reuse the connection
	}
	w.send()
}

// SetReadDeadline and SetWriteDeadline let http.ResponseController move the connection's
// deadlines, as handlers that stream do before each write.
// A deadline far enough ahead is the sweep's to enforce (sweep.go).
func (w *response) SetReadDeadline(t time.Time) error  { w.c.setReadBy(t); return nil }
func (w *response) SetWriteDeadline(t time.Time) error { w.c.setWriteBy(t); return nil }

// dateText is the Date header's text for one second.
type dateText struct {
	sec  int64
	text string
}

// httpDate is the Date header's text, formatted once a second.
func (s *Server) httpDate() string {
	now := time.Now()
	if d := s.date.Load(); d != nil && d.sec == now.Unix() {
		return d.text
	}
	d := &dateText{sec: now.Unix(), text: now.UTC().Format(http.TimeFormat)}
	s.date.Store(d)
	return d.text
}
