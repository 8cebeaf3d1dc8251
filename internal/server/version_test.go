package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/open-autoglm/autoglm/internal/mockllm"
)

func getWith(t *testing.T, url string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// TestAPIVersionNegotiation: native routes answer an Accept of the v1 media type, plain JSON
// or anything; they refuse one that asks only for another version with 406 in the envelope.
// OpenAI-compatible routes ignore the native media type.
func TestAPIVersionNegotiation(t *testing.T) {
	_, mockURL := startMock(t, mockllm.Options{Tokens: 2})
	g := startGateway(t, oneModel(mockURL, ""), nil)
	for _, tc := range []struct {
		accept string
		want   int
	}{
		{"", 200},
		{"application/json", 200},
		{"*/*", 200},
		{"application/vnd.autoglm.v1+json", 200},
		{"application/vnd.autoglm+json", 200},
		{"application/vnd.autoglm.v2+json, application/vnd.autoglm.v1+json;q=0.5", 200},
		{"application/vnd.autoglm.v2+json, application/json;q=0.1", 200},
		{"application/vnd.autoglm.v2+json", 406},
		{"application/vnd.autoglm.v0+json", 406},
		{"application/vnd.autoglm.v2+json, application/vnd.autoglm.v1+json;q=0", 406},
	} {
		resp, b := getWith(t, g.URL+"/v1/admin/backends", "Accept", tc.accept)
		if resp.StatusCode != tc.want {
			t.Errorf("Accept %q: %d, want %d (%s)", tc.accept, resp.StatusCode, tc.want, b)
			continue
		}
		var env envelope
		if err := json.Unmarshal(b, &env); err != nil {
			t.Fatalf("Accept %q: %v: %s", tc.accept, err, b)
		}
		if tc.want == 406 && (env.Success || env.Code != "unsupported_api_version" || !strings.Contains(env.Message, "application/vnd.autoglm.v1+json") || env.TraceID == "") {
			t.Errorf("Accept %q: %s", tc.accept, b)
		}
	}
	if resp, b := getWith(t, g.URL+"/v1/models", "Accept", "application/vnd.autoglm.v2+json"); resp.StatusCode != 200 {
		t.Errorf("an OpenAI-compatible route refused the native media type: %d %s", resp.StatusCode, b)
	}
}

// TestDeprecationHeaders: a route listed in server.deprecations answers with Deprecation
// (RFC 9745), Sunset (RFC 8594) and a Link to the migration notes, errors included; other
// routes do not; a listed route the server does not serve is reported in the log.
func TestDeprecationHeaders(t *testing.T) {
	_, mockURL := startMock(t, mockllm.Options{Tokens: 2})
	g := startGateway(t, `
server:
  deprecations:
    - route: GET /v1/admin/backends
      since: 2026-01-01T00:00:00Z
      sunset: 2027-01-01T00:00:00Z
      link: https://example.com/migrate
    - route: GET /v1/nothing
      since: 2026-01-01T00:00:00Z
`+oneModel(mockURL, ""), nil)
	since := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, accept := range []string{"", "application/vnd.autoglm.v9+json"} {
		resp, _ := getWith(t, g.URL+"/v1/admin/backends", "Accept", accept)
		if got, want := resp.Header.Get("Deprecation"), "@"+itoa(since.Unix()); got != want {
			t.Errorf("Deprecation %q, want %q", got, want)
		}
		if got := resp.Header.Get("Sunset"); got != "Fri, 01 Jan 2027 00:00:00 GMT" {
			t.Errorf("Sunset %q", got)
		}
		if got := resp.Header.Get("Link"); got != `<https://example.com/migrate>; rel="deprecation"; type="text/html"` {
			t.Errorf("Link %q", got)
		}
	}
	resp, _ := get(t, g.URL+"/readyz")
	if resp.Header.Get("Deprecation") != "" || resp.Header.Get("Sunset") != "" {
		t.Errorf("a route not listed is deprecated: %v", resp.Header)
	}
	if !strings.Contains(g.logs.String(), "GET /v1/nothing") {
		t.Errorf("the unknown route is not reported: %s", g.logs.String())
	}
}

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}
