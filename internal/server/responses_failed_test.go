package server_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestResponsesStreamFailed: an upstream that breaks off in the middle of its stream ends a
// streamed /v1/responses with response.failed whose error carries the catalogue's code for
// that condition, and a public message.
func TestResponsesStreamFailed(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, `data: {"id":"c1","object":"chat.completion.chunk","model":"upstream-glm","choices":[{"index":0,"delta":{"role":"assistant","content":"Once"}}]}`+"\n\n")
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler) // the connection breaks
	}))
	t.Cleanup(up.Close)
	g := startGateway(t, oneModel(up.URL, "")+"    health: {probe: none}\n", nil)
	resp, b := post(t, g.URL+"/v1/responses", `{"model":"glm4","input":"Tell a story.","stream":true}`)
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	events := readEvents(t, b)
	last := events[len(events)-1]
	if last.name != "response.failed" {
		t.Fatalf("last event %q, want response.failed: %s", last.name, b)
	}
	r := last.data["response"].(map[string]any)
	e, _ := r["error"].(map[string]any)
	if r["status"] != "failed" || e == nil || e["code"] != "upstream_stream_interrupted" || e["message"] == "" {
		t.Errorf("failed response: %s", last.raw)
	}
	if strings.Contains(string(b), "server_error") {
		t.Errorf("the failure is not in the catalogue's words: %s", b)
	}
}
