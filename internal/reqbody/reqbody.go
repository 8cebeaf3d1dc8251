// Package reqbody reads a request's body once for every stage that needs it. With
// authentication, rate limits and a model allow-list on, three stages look at a chat request's
// body before it goes upstream (the allow-list and the handler find its model, the rate limiter
// estimates its tokens); each used to copy it and scan it again. The first stage to call Read
// now replaces r.Body with a Replay that holds the bytes, the read's error and the wire.Peek
// result; later stages take them from it. A stage that reads r.Body as a plain io.Reader still
// gets the same bytes and the same error.
package reqbody

import (
	"bytes"
	"io"
	"net/http"

	"github.com/open-autoglm/autoglm/internal/wire"
)

// Replay is a request body already read: a reader over its bytes that ends with the error the
// original read ended with (io.EOF when it was whole).
type Replay struct {
	bytes.Reader
	body    []byte
	err     error
	peeked  bool
	fields  wire.Fields
	peekErr error
}

// Read implements io.Reader.
func (b *Replay) Read(p []byte) (int, error) {
	n, err := b.Reader.Read(p)
	if err == io.EOF && b.err != nil {
		err = b.err
	}
	return n, err
}

// Close implements io.Closer; the original body was closed when it was read.
func (b *Replay) Close() error { return nil }

// Read returns r's whole body, reading it from the connection only the first time. The bytes
// are shared by every caller and must not be modified. The size limit is whatever r.Body
// enforces (the server's http.MaxBytesReader); its error is returned with the bytes read before
// it. The slice is not pooled: an upstream transport may still be writing it after the answer
// has been relayed.
func Read(r *http.Request) ([]byte, error) {
	if rb, ok := r.Body.(*Replay); ok {
		return rb.body, rb.err
	}
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	size := 4 << 10
	if n := r.ContentLength; n > 0 && n < 64<<20 {
		size = int(n) + 1 // one allocation, and the +1 sees EOF without growing
	}
	b := make([]byte, 0, size)
	var err error
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		var n int
		n, err = r.Body.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err != nil {
			break
		}
	}
	if err == io.EOF {
		err = nil
	}
	_ = r.Body.Close()
	rb := &Replay{body: b, err: err}
	rb.Reader.Reset(b)
	r.Body = rb
	return b, err
}

// Peek returns wire.Peek of r's body, reading and scanning it only the first time. A read
// error is returned as Read returned it.
func Peek(r *http.Request) (wire.Fields, error) {
	body, err := Read(r)
	if err != nil {
		return wire.Fields{}, err
	}
	rb, ok := r.Body.(*Replay)
	if !ok { // no body at all
		return wire.Peek(body)
	}
	if !rb.peeked {
		rb.fields, rb.peekErr = wire.Peek(body)
		rb.peeked = true
	}
	return rb.fields, rb.peekErr
}
