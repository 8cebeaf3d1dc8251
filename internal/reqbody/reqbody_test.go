package reqbody_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/open-autoglm/autoglm/internal/reqbody"
)

// countingBody counts the reads that reach the connection.
type countingBody struct {
	io.Reader
	reads int
}

func (c *countingBody) Read(p []byte) (int, error) { c.reads++; return c.Reader.Read(p) }
func (c *countingBody) Close() error               { return nil }

func TestReadOnceForEveryStage(t *testing.T) {
	const body = `{"model":"glm-4","stream":true,"messages":[]}`
	src := &countingBody{Reader: strings.NewReader(body)}
	r := httptest.NewRequest("POST", "/v1/chat/completions", nil)
	r.Body, r.ContentLength = src, int64(len(body))
	f, err := reqbody.Peek(r)
	if err != nil || f.Model != "glm-4" || !f.Stream {
		t.Fatalf("first stage: %+v, %v", f, err)
	}
	reads := src.reads
	for range 3 {
		b, err := reqbody.Read(r)
		if err != nil || string(b) != body {
			t.Fatalf("later stage: %q, %v", b, err)
		}
		if f, err := reqbody.Peek(r); err != nil || f.Model != "glm-4" {
			t.Fatalf("later peek: %+v, %v", f, err)
		}
	}
	if src.reads != reads {
		t.Errorf("the body was read from the connection again: %d reads, then %d", reads, src.reads)
	}
	// A stage that reads r.Body as a plain reader gets the same bytes.
	if b, err := io.ReadAll(r.Body); err != nil || string(b) != body {
		t.Errorf("plain read: %q, %v", b, err)
	}
}

// TestReadError checks that a body over the limit gives every stage the same error, and a
// plain reader the bytes before it and then the error.
func TestReadError(t *testing.T) {
	w := httptest.NewRecorder()
	r := httptest.NewRequest("POST", "/", strings.NewReader(strings.Repeat("x", 100)))
	r.Body = http.MaxBytesReader(w, r.Body, 10)
	b, err := reqbody.Read(r)
	var mbe *http.MaxBytesError
	if !errors.As(err, &mbe) || len(b) != 10 {
		t.Fatalf("over the limit: %d bytes, %v", len(b), err)
	}
	if _, err := reqbody.Peek(r); !errors.As(err, &mbe) {
		t.Errorf("peek after a failed read: %v", err)
	}
	got, err := io.ReadAll(r.Body)
	if len(got) != 10 || !errors.As(err, &mbe) {
		t.Errorf("plain read: %d bytes, %v", len(got), err)
	}
}

func TestNoBody(t *testing.T) {
	r := httptest.NewRequest("GET", "/", nil)
	if b, err := reqbody.Read(r); b != nil || err != nil {
		t.Errorf("no body: %q, %v", b, err)
	}
	if _, err := reqbody.Peek(r); err == nil {
		t.Error("peek of no body must fail as wire.Peek of nothing does")
	}
}
