// Package openapi is the HTTP API's contract: an OpenAPI 3.1 document describing every HTTP
// route the server registers, served at GET /openapi.json.
//
// The document is built from the tables in this package (spec.go: operations, schemas.go:
// component schemas, codes.go: the error codes) and from the route permission table of
// internal/auth, which decides each operation's security. It is built once, on first use.
//
// The OpenAI-compatible routes are described by the fields the gateway itself reads and the
// fields every answer carries; the full wire contract of those routes is OpenAI's own
// published document, which the tests check answers against as well (internal/contract).
// The gRPC service is described by its .proto files and server reflection, not here.
//
// Tests keep the document honest: every route in the permission table has an operation and
// every operation a route; the error code enum equals the set of codes the code base can
// produce; and the test suites of the server, the admin API, the task API and the console
// validate every request they send and every answer they get against it (openapitest).
package openapi

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
)

// Path is where the document is served.
const Path = "/openapi.json"

// document is the built document and its ETag.
var document = sync.OnceValues(func() ([]byte, string) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(build()); err != nil {
		panic("openapi: the document does not encode: " + err.Error())
	}
	sum := sha256.Sum256(buf.Bytes())
	return buf.Bytes(), `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`
})

// Document returns the OpenAPI document as indented JSON. The slice is shared: do not modify
// it.
func Document() []byte {
	b, _ := document()
	return b
}

// ServeHTTP answers GET /openapi.json: the document, with an ETag so that clients and proxies
// revalidate instead of downloading it again.
func ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, etag := document()
	h := w.Header()
	h.Set("ETag", etag)
	h.Set("Cache-Control", "no-cache")
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(b)
	}
}
