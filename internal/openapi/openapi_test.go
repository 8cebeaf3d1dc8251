package openapi_test

import (
	"bytes"
	"context"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/google/go-cmp/cmp"

	"github.com/open-autoglm/autoglm/internal/auth"
	"github.com/open-autoglm/autoglm/internal/openapi"
	"github.com/open-autoglm/autoglm/internal/openapi/openapitest"
)

// TestDocumentValid: the document is valid OpenAPI 3.1, as kin-openapi reads it.
func TestDocumentValid(t *testing.T) {
	doc := openapitest.Doc(t)
	if doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi %q, want 3.1.0", doc.OpenAPI)
	}
	l := openapi3.NewLoader()
	d, err := l.LoadFromData(openapi.Document())
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Validate(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestEveryRoute: every route of the server (the permission table, which the server's tests
// hold complete) is an operation of the document and every operation is a route, with the
// route's security: public routes need no credential, the others a bearer token or x-api-key.
func TestEveryRoute(t *testing.T) {
	doc := openapitest.Doc(t)
	var ops []string
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			ops = append(ops, method+" "+path)
			perm, _ := op.Extensions["x-permission"].(string)
			public := op.Security != nil && len(*op.Security) == 0
			if public != (perm == string(auth.Public)) {
				t.Errorf("%s %s: permission %q but public=%v", method, path, perm, public)
			}
		}
	}
	var routes []string
	for _, r := range openapi.Routes() {
		method, pattern, _ := strings.Cut(r, " ")
		// gRPC methods are described by the .proto files and reflection.
		if strings.HasPrefix(pattern, "/autoglm.v1.") || strings.HasPrefix(pattern, "/grpc.") {
			continue
		}
		routes = append(routes, method+" "+oasPath(pattern))
	}
	slices.Sort(ops)
	slices.Sort(routes)
	if diff := cmp.Diff(routes, ops); diff != "" {
		t.Errorf("routes (-) and operations of the document (+) differ:\n%s", diff)
	}
}

func oasPath(p string) string {
	if p == "/{$}" {
		return "/"
	}
	return strings.ReplaceAll(p, "...}", "}")
}

// TestDocsCopy: docs/openapi.json is the served document (regenerate with -update).
func TestDocsCopy(t *testing.T) {
	path := filepath.Join("..", "..", "docs", "openapi.json")
	if f := flag.Lookup("update"); f != nil && f.Value.String() == "true" {
		if err := os.WriteFile(path, openapi.Document(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, openapi.Document()) {
		t.Errorf("docs/openapi.json is not the served document: run go test ./internal/openapi -update")
	}
}

// TestServe: the document is served with an ETag, and a revalidation with it answers 304.
func TestServe(t *testing.T) {
	w := httptest.NewRecorder()
	openapi.ServeHTTP(w, httptest.NewRequest("GET", openapi.Path, nil))
	if w.Code != 200 || w.Header().Get("Content-Type") != "application/json" || !bytes.Equal(w.Body.Bytes(), openapi.Document()) {
		t.Fatalf("GET: %d %q", w.Code, w.Header().Get("Content-Type"))
	}
	etag := w.Header().Get("ETag")
	r := httptest.NewRequest("GET", openapi.Path, nil)
	r.Header.Set("If-None-Match", etag)
	w = httptest.NewRecorder()
	openapi.ServeHTTP(w, r)
	if w.Code != http.StatusNotModified || w.Body.Len() != 0 {
		t.Errorf("revalidation: %d, %d bytes", w.Code, w.Body.Len())
	}
}
