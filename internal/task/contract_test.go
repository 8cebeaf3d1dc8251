package task

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/open-autoglm/autoglm/internal/mockllm"
)

// TestTaskAPIChecked: submitting, listing, reading and following a task, and cancelling a
// finished one, pass through the API description check of the harness (openapitest), event
// stream included.
func TestTaskAPIChecked(t *testing.T) {
	e := setup(t, mockllm.Options{Tokens: 4}, "")
	tk := e.submit(t, `{"model":"coder","prompt":"reverse a string","language":"python"}`)
	e.wait(t, tk.ID, 10*time.Second, terminal)
	if resp, env := do(t, "POST", e.URL+"/v1/tasks", `{"kind":"code","model":"coder","prompt":"x"}`); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /v1/tasks: %d %s", resp.StatusCode, env.Message)
	}
	if resp, _ := do(t, "GET", e.URL+"/v1/tasks?limit=10", ""); resp.StatusCode != 200 {
		t.Fatalf("GET /v1/tasks: %d", resp.StatusCode)
	}
	resp, err := http.Get(e.URL + "/v1/task/" + tk.ID + "/events")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") || !strings.Contains(string(b), "event: status") {
		t.Fatalf("events: %q %s", resp.Header.Get("Content-Type"), b)
	}
	if resp, _ := do(t, "POST", e.URL+"/v1/task/"+tk.ID+"/cancel", ""); resp.StatusCode != http.StatusConflict {
		t.Fatalf("cancel a finished task: %d", resp.StatusCode)
	}
	e.stop()
	for _, op := range []struct {
		method, path string
		status       int
	}{
		{"POST", "/v1/generate/code", 202}, {"POST", "/v1/tasks", 202}, {"GET", "/v1/tasks", 200},
		{"GET", "/v1/task/{task_id}", 200}, {"GET", "/v1/task/{task_id}/events", 200}, {"POST", "/v1/task/{task_id}/cancel", 409},
	} {
		if e.checked.Seen(op.method, op.path, op.status) == 0 {
			t.Errorf("%s %s → %d was not checked against the API description", op.method, op.path, op.status)
		}
	}
}
