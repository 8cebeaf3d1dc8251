package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/open-autoglm/autoglm/internal/config"
)

// TestResponsesNative: a model whose backends speak the Responses API gets the request as
// the client sent it (model renamed), at the upstream's /responses, and its answer as is.
func TestResponsesNative(t *testing.T) {
	var mu sync.Mutex
	var paths, bodies []string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		paths, bodies = append(paths, r.URL.Path), append(bodies, string(b))
		mu.Unlock()
		if strings.Contains(string(b), `"stream":true`) {
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = io.WriteString(w, "event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0}\n\n"+
				"event: response.completed\ndata: {\"type\":\"response.completed\",\"sequence_number\":1,\"response\":{\"id\":\"resp_up\"}}\n\n")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"id":"resp_up","object":"response","status":"completed","output":[],"usage":{"input_tokens":7,"output_tokens":3,"total_tokens":10}}`)
	}))
	defer up.Close()
	g := startGateway(t, `
models:
  - name: native
    backends:
      - type: openai
        base_url: `+up.URL+`/v1
        model: upstream-name
        responses: native
`, nil)
	body := `{"model":"native","input":"hi","previous_response_id":"resp_prev","tools":[{"type":"web_search"}],"reasoning":{"effort":"low"}}`
	resp, b := post(t, g.URL+"/v1/responses", body)
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"id":"resp_up"`) {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	mu.Lock()
	gotPath, gotBody := paths[0], bodies[0]
	mu.Unlock()
	var sent map[string]any
	_ = json.Unmarshal([]byte(gotBody), &sent)
	if gotPath != "/v1/responses" || sent["model"] != "upstream-name" || sent["previous_response_id"] != "resp_prev" || sent["reasoning"] == nil {
		t.Errorf("upstream got %s %s", gotPath, gotBody)
	}
	if o := g.outcomes.last(t, 1); o.Usage.PromptTokens != 7 || o.Usage.CompletionTokens != 3 || o.Model != "native" {
		t.Errorf("usage accounted: %+v", o)
	}
	resp, b = post(t, g.URL+"/v1/responses", `{"model":"native","input":"hi","stream":true}`)
	if resp.StatusCode != 200 || !strings.Contains(string(b), "response.completed") || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Errorf("stream: %d %s", resp.StatusCode, b)
	}
	mu.Lock()
	if strings.Contains(bodies[1], "stream_options") {
		t.Errorf("stream_options added to a Responses request: %s", bodies[1])
	}
	mu.Unlock()
}

func TestResponsesSettingValidated(t *testing.T) {
	for _, tc := range []struct{ backend, want string }{
		{"type: local\n        path: x.gguf\n        responses: native", "native applies only to type openai"},
		{"type: openai\n        base_url: http://127.0.0.1:1/v1\n        responses: sometimes", "must be translate or native"},
	} {
		_, err := config.Parse([]byte("models:\n  - name: m\n    backends:\n      - "+tc.backend+"\n"), func(string) (string, bool) { return "", false })
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v", tc.backend, err)
		}
	}
}
