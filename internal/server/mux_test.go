package server

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestRouteMuxAgreesWithServeMux: for every request, the map's shortcut picks the handler and
// sets the Pattern that ServeMux alone would, and what the shortcut must not take (escaped
// paths, paths ServeMux cleans or redirects, subtrees, wildcards, CONNECT) goes to ServeMux.
func TestRouteMuxAgreesWithServeMux(t *testing.T) {
	patterns := []string{"/v1/chat/completions", "/v1/models", "/v1/models/{id...}", "/v1/", "/", "/v1/tasks/{id}"}
	fast := newRouteMux()
	slow := http.NewServeMux()
	for _, p := range patterns {
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Handler", p)
			w.Header().Set("X-Pattern", r.Pattern)
			w.Header().Set("X-Id", r.PathValue("id"))
		})
		fast.Handle(p, h)
		slow.Handle(p, h)
	}
	if len(fast.exact) != 2 {
		t.Fatalf("exact routes %v, want the two patterns without wildcard or trailing slash", fast.exact)
	}
	for _, tc := range []struct{ method, target string }{
		{"POST", "/v1/chat/completions"},
		{"GET", "/v1/models"},
		{"GET", "/v1/models/glm-4"},
		{"POST", "/v1/chat%2Fcompletions"},
		{"POST", "/v1/chat/completions/"},
		{"POST", "/v1//chat/completions"},
		{"POST", "/v1/x/../chat/completions"},
		{"POST", "/v1/Chat/Completions"},
		{"GET", "/v1/tasks/abc"},
		{"GET", "/nowhere"},
		{"CONNECT", "/v1/chat/completions"},
	} {
		req := func() *http.Request {
			r := httptest.NewRequest(tc.method, "http://example.com/", nil)
			r.URL.Path, r.URL.RawPath = "", ""
			u, err := r.URL.Parse(tc.target)
			if err != nil {
				t.Fatal(err)
			}
			r.URL, r.RequestURI = u, tc.target
			return r
		}
		got, want := httptest.NewRecorder(), httptest.NewRecorder()
		fast.ServeHTTP(got, req())
		slow.ServeHTTP(want, req())
		for _, k := range []string{"X-Handler", "X-Pattern", "X-Id", "Location"} {
			if g, w := got.Header().Get(k), want.Header().Get(k); g != w {
				t.Errorf("%s %s: %s %q, ServeMux gives %q", tc.method, tc.target, k, g, w)
			}
		}
		if got.Code != want.Code {
			t.Errorf("%s %s: status %d, ServeMux gives %d", tc.method, tc.target, got.Code, want.Code)
		}
	}
}

// BenchmarkRouteMux is the match of a fixed OpenAI path, by the map and by ServeMux.
func BenchmarkRouteMux(b *testing.B) {
	m := newRouteMux()
	nop := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	for _, p := range []string{"/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/models", "/v1/models/{id...}", "/v1/", "/"} {
		m.Handle(p, nop)
	}
	r := httptest.NewRequest("POST", "/v1/chat/completions", nil)
	for _, tc := range []struct {
		name string
		h    http.Handler
	}{{"map", m}, {"servemux", m.mux}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				tc.h.ServeHTTP(nil, r)
			}
		})
	}
}
