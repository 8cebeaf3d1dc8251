package server_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// recordingUpstream is an OpenAI-compatible upstream that keeps the headers of the last
// request and answers a fixed chat completion.
type recordingUpstream struct {
	mu   sync.Mutex
	last http.Header
}

func (u *recordingUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	u.mu.Lock()
	u.last = r.Header.Clone()
	u.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"id":"c1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`)
}

func (u *recordingUpstream) headers() http.Header {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.last
}

// TestClientCredentialHeadersNotForwarded: the upstream sees the backend's own key,
// organization and project, never the client's credential or billing headers.
func TestClientCredentialHeadersNotForwarded(t *testing.T) {
	up := &recordingUpstream{}
	ts := httptest.NewServer(up)
	t.Cleanup(ts.Close)
	cfg := `
models:
  - name: glm-4-flash
    backends:
      - type: openai
        base_url: ` + ts.URL + `/v1
        api_key: sk-operator
        organization: org-operator
        project: proj-operator
  - name: plain
    backends:
      - type: openai
        base_url: ` + ts.URL + `/v1
`
	g := startGateway(t, cfg, nil)
	client := []string{
		"Authorization", "Bearer client-secret",
		"OpenAI-Organization", "org-client",
		"OpenAI-Project", "proj-client",
		"OpenAI-Beta", "assistants=v2",
		"X-Api-Key", "client-key",
		"Api-Key", "client-azure-key",
		"Cookie", "session=client",
		"Proxy-Authorization", "Basic Y2xpZW50",
		"Anthropic-Api-Key", "client-anthropic",
		"X-Goog-Api-Key", "client-google",
		"User-Agent", "client-agent/1.0",
		"X-Trace-Id", "0123456789abcdef0123456789abcdef",
	}
	cases := []struct {
		model string
		want  map[string]string // header → value the upstream must see ("" = absent)
	}{
		{"glm-4-flash", map[string]string{"Authorization": "Bearer sk-operator", "Openai-Organization": "org-operator", "Openai-Project": "proj-operator"}},
		{"plain", map[string]string{"Authorization": "", "Openai-Organization": "", "Openai-Project": ""}},
	}
	for _, tc := range cases {
		t.Run(tc.model, func(t *testing.T) {
			resp, body := post(t, g.URL+"/v1/chat/completions", `{"model":"`+tc.model+`","messages":[{"role":"user","content":"hi"}]}`, client...)
			if resp.StatusCode != 200 {
				t.Fatalf("%d %s", resp.StatusCode, body)
			}
			h := up.headers()
			for k, v := range tc.want {
				if got := h.Get(k); got != v {
					t.Errorf("upstream %s = %q, want %q", k, got, v)
				}
			}
			for _, k := range []string{"Openai-Beta", "X-Api-Key", "Api-Key", "Cookie", "Proxy-Authorization", "Anthropic-Api-Key", "X-Goog-Api-Key"} {
				if v := h.Get(k); v != "" {
					t.Errorf("client header %s reached the upstream: %q", k, v)
				}
			}
			if h.Get("User-Agent") != "client-agent/1.0" || h.Get("X-Trace-Id") != "0123456789abcdef0123456789abcdef" {
				t.Errorf("User-Agent %q, X-Trace-Id %q: want the client's", h.Get("User-Agent"), h.Get("X-Trace-Id"))
			}
		})
	}
}
