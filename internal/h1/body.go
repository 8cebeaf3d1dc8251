package h1

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"net/http/httputil"
	"sync/atomic"
)

// body is a request body read from the connection's reader on the handler's own goroutine:
// Content-Length bytes, or chunked (RFC 9112 section 7.1) with its trailer read and dropped.
type body struct {
	br        *bufio.Reader
	remaining int64     // bytes left of a Content-Length body
	chunks    io.Reader // non-nil for a chunked body
	maxTrail  int
	eof       bool        // the whole body has been read from the connection
	read      atomic.Bool // eof, for the watch on another goroutine
	closed    bool
	err       error // a read error that leaves the connection unusable
}

var errBodyClosed = http.ErrBodyReadAfterClose

func (b *body) Read(p []byte) (int, error) {
	if b.closed {
		return 0, errBodyClosed
	}
	if b.eof {
		return 0, io.EOF
	}
	if b.err != nil {
		return 0, b.err
	}
	if b.chunks != nil {
		n, err := b.chunks.Read(p)
		if err == io.EOF {
			// The last chunk: the trailer section follows, up to an empty line.
			if err = b.skipTrailer(); err == nil {
				b.eof = true
				b.read.Store(true)
				return n, io.EOF
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			b.err = err
		}
		return n, err
	}
	if b.remaining == 0 {
		b.eof = true
		b.read.Store(true)
		return 0, io.EOF
	}
	if int64(len(p)) > b.remaining {
		p = p[:b.remaining]
	}
	n, err := b.br.Read(p)
	b.remaining -= int64(n)
	if b.remaining == 0 {
		b.eof = true
		b.read.Store(true)
		return n, io.EOF
	}
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		b.err = err
	}
	return n, err
}

func (b *body) skipTrailer() error {
	var raw []byte
	for {
		line, r, err := readLine(b.br, raw[:0], b.maxTrail)
		if err != nil {
			return err
		}
		raw = r
		if len(line) == 0 {
			return nil
		}
	}
}

// Close marks the body closed for the handler; the server drains what is left before it
// reads the next request on the connection.
func (b *body) Close() error {
	b.closed = true
	return nil
}

// drain reads what the handler left of the body, up to max bytes, so that the connection can
// carry the next request; it reports whether it could.
func (b *body) drain(max int64) bool {
	if b.eof {
		return true
	}
	if b.err != nil {
		return false
	}
	b.closed = false
	n, err := io.Copy(io.Discard, io.LimitReader(b, max+1))
	return err == nil && n <= max && b.eof
}

func newBody(br *bufio.Reader, h *head, maxTrail int) *body {
	b := &body{br: br, remaining: h.contentLength, maxTrail: maxTrail}
	if h.chunked {
		b.remaining = 0
		b.chunks = httputil.NewChunkedReader(br)
	}
	return b
}
