package openapitest_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/open-autoglm/autoglm/internal/openapi/openapitest"
)

// TestCatchesDrift: answers and accepted requests that break the document are reported, and
// conforming ones are not.
func TestCatchesDrift(t *testing.T) {
	answers := map[string]struct {
		status int
		ct     string
		body   string
	}{
		"/healthz":             {200, "application/json", `{"code":"ok","success":true,"data":{"status":"alive"},"message":"","trace_id":"t"}`},
		"/v1/me":               {200, "application/json", `{"code":"ok","success":true,"data":{"auth":true},"message":"","trace_id":"t"}`},
		"/v1/tasks":            {404, "application/json", `{"code":"no_such_code","success":false,"data":null,"message":"x","trace_id":"t"}`},
		"/v1/chat/completions": {200, "text/event-stream", "data: {}\n\ndata: [DONE]\n\n"},
		"/v1/undocumented":     {200, "application/json", `{}`},
	}
	h, c := openapitest.Middleware(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a := answers[r.URL.Path]
		if r.URL.Path != "/v1/undocumented" {
			w.Header().Set("X-Trace-Id", "t")
		}
		w.Header().Set("Content-Type", a.ct)
		w.WriteHeader(a.status)
		io.WriteString(w, a.body)
	}))
	ts := httptest.NewServer(h)
	defer ts.Close()
	do := func(method, path, body string) []string {
		t.Helper()
		req, _ := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return c.Take()
	}
	if errs := do("GET", "/healthz", ""); len(errs) != 0 {
		t.Errorf("a conforming answer was reported: %v", errs)
	}
	if errs := do("POST", "/v1/chat/completions", `{"model":"m","messages":[],"stream":true}`); len(errs) != 0 {
		t.Errorf("a conforming stream was reported: %v", errs)
	}
	for _, tc := range []struct{ method, path, body, want string }{
		{"GET", "/v1/me", "", "missing properties"},                             // required fields absent
		{"POST", "/v1/tasks", `{"model":"m"}`, "value must be one of"},          // an undocumented error code
		{"POST", "/v1/chat/completions", `{"messages":[]}`, "property 'model'"}, // accepted request without model
		{"POST", "/v1/chat/completions", `{"model":1}`, "the accepted request"}, // model of the wrong type
		{"GET", "/v1/undocumented", "", "no operation"},                         // a route the document lacks
	} {
		errs := do(tc.method, tc.path, tc.body)
		if len(errs) != 1 || !strings.Contains(errs[0], tc.want) {
			t.Errorf("%s %s %s: got %q, want one report containing %q", tc.method, tc.path, tc.body, errs, tc.want)
		}
	}
	if c.Seen("GET", "/healthz", 200) != 1 || c.Seen("POST", "/v1/chat/completions", 0) != 3 {
		t.Errorf("counts: healthz %d, chat %d", c.Seen("GET", "/healthz", 200), c.Seen("POST", "/v1/chat/completions", 0))
	}
}
