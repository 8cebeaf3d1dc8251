package task

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/open-autoglm/autoglm/internal/mockllm"
)

func TestSubmitAndPoll(t *testing.T) { testSubmitAndPoll(t, setup) }

func testSubmitAndPoll(t *testing.T, setup setupFunc) {
	e := setup(t, mockllm.Options{Tokens: 12}, "")
	tk := e.submit(t, `{"model":"coder-alias","prompt":"reverse a string","language":"Go","max_tokens":12,"metadata":{"ticket":7}}`)
	if tk.Status != StatusQueued || tk.ID == "" || tk.Model != "coder" || tk.Kind != KindCode {
		t.Fatalf("submitted task = %+v", tk)
	}
	done := e.wait(t, tk.ID, 10*time.Second, terminal)
	if done.Status != StatusSucceeded {
		t.Fatalf("status = %s, error %+v", done.Status, done.Error)
	}
	r := done.Result
	if r == nil || r.Text == "" || len(r.Code) != 1 || r.Code[0].Language != "go" || r.Usage == nil || r.Usage.CompletionTokens == 0 {
		t.Fatalf("result = %+v", r)
	}
	if done.Progress.Tokens == 0 || done.Attempts != 1 || done.StartedAt == nil || done.FinishedAt == nil {
		t.Errorf("progress/attempts/timestamps = %+v", done)
	}
	if u := e.usage.all(); len(u) != 1 || u[0].Status != 200 || u[0].Usage.CompletionTokens != int64(r.Usage.CompletionTokens) || u[0].Usage.Estimated ||
		u[0].Model != "coder" || u[0].Backend != "coder#0" || u[0].TraceID != tk.ID {
		t.Errorf("usage records = %+v", u)
	}
	if string(done.Metadata) != `{"ticket":7}` {
		t.Errorf("metadata = %s", done.Metadata)
	}
	// The worker sent the language instruction as a system message.
	var sent struct {
		Model    string    `json:"model"`
		Messages []Message `json:"messages"`
		Stream   bool      `json:"stream"`
	}
	if err := json.Unmarshal([]byte(e.mock.Stats().LastBody), &sent); err != nil {
		t.Fatal(err)
	}
	if !sent.Stream || len(sent.Messages) != 2 || sent.Messages[0].Role != "system" || sent.Messages[1].Content != "reverse a string" {
		t.Errorf("upstream request = %+v", sent)
	}
}

func TestSubmitInvalid(t *testing.T) { testSubmitInvalid(t, setup) }

func testSubmitInvalid(t *testing.T, setup setupFunc) {
	e := setup(t, mockllm.Options{}, "")
	for name, body := range map[string]string{
		"no model":       `{"prompt":"x"}`,
		"unknown model":  `{"model":"nope","prompt":"x"}`,
		"no prompt":      `{"model":"coder"}`,
		"both":           `{"model":"coder","prompt":"x","messages":[{"role":"user","content":"y"}]}`,
		"bad language":   `{"model":"coder","prompt":"x","language":"c c"}`,
		"unknown field":  `{"model":"coder","prompt":"x","promt":"y"}`,
		"callback":       `{"model":"coder","prompt":"x","callback_url":"http://example.com/hook"}`, // no secret configured
		"bad metadata":   `{"model":"coder","prompt":"x","metadata":[1]}`,
		"bad temp":       `{"model":"coder","prompt":"x","temperature":3}`,
		"negative max":   `{"model":"coder","prompt":"x","max_tokens":-1}`,
		"not json":       `{`,
		"trailing value": `{"model":"coder","prompt":"x"} {}`,
	} {
		resp, env := do(t, "POST", e.URL+"/v1/generate/code", body)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: status %d (%s), want 400", name, resp.StatusCode, env.Message)
		}
	}
	resp, _ := do(t, "GET", e.URL+"/v1/task/task_nope", "")
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown task: %d", resp.StatusCode)
	}
}

func TestIdempotency(t *testing.T) { testIdempotency(t, setup) }

func testIdempotency(t *testing.T, setup setupFunc) {
	e := setup(t, mockllm.Options{}, "")
	body := `{"model":"coder","prompt":"fizzbuzz"}`
	a := e.submit(t, body, "Idempotency-Key", "k1")
	resp, env := do(t, "POST", e.URL+"/v1/generate/code", body, "Idempotency-Key", "k1")
	var b Task
	_ = json.Unmarshal(env.Data, &b)
	if resp.StatusCode != http.StatusAccepted || b.ID != a.ID || resp.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay: %d id %s (first %s) header %q", resp.StatusCode, b.ID, a.ID, resp.Header.Get("Idempotent-Replayed"))
	}
	resp, _ = do(t, "POST", e.URL+"/v1/generate/code", `{"model":"coder","prompt":"other"}`, "Idempotency-Key", "k1")
	if resp.StatusCode != http.StatusConflict {
		t.Errorf("same key, other request: %d, want 409", resp.StatusCode)
	}
	c := e.submit(t, body, "Idempotency-Key", "k2")
	d := e.submit(t, body)
	if c.ID == a.ID || d.ID == a.ID || c.ID == d.ID {
		t.Errorf("distinct submissions share ids: %s %s %s", a.ID, c.ID, d.ID)
	}
	// Different owners may use the same key independently.
	x, _, err := e.svc.Submit(t.Context(), Caller{Owner: "key:x"}, Submission{Spec: Spec{Kind: KindCode, Model: "coder", Prompt: "fizzbuzz"}, IdempotencyKey: "k1"})
	if err != nil || x.ID == a.ID {
		t.Errorf("other owner's k1: %v id %s", err, x.ID)
	}
}

func TestCancel(t *testing.T) { testCancel(t, setup) }

func testCancel(t *testing.T, setup setupFunc) {
	// One worker and a slow model: the first task runs for seconds while the second waits.
	e := setup(t, mockllm.Options{Tokens: 400, ITL: 10 * time.Millisecond}, "  workers: 1\n")
	running := e.submit(t, `{"model":"coder","prompt":"slow","max_tokens":400}`)
	queued := e.submit(t, `{"model":"coder","prompt":"next","max_tokens":400}`)
	e.wait(t, running.ID, 5*time.Second, func(tk Task) bool { return tk.Status == StatusRunning && tk.Progress.Tokens > 0 })

	resp, env := do(t, "POST", e.URL+"/v1/task/"+queued.ID+"/cancel", "")
	var tk Task
	_ = json.Unmarshal(env.Data, &tk)
	if resp.StatusCode != http.StatusOK || tk.Status != StatusCanceled {
		t.Fatalf("cancel queued: %d %+v", resp.StatusCode, tk)
	}
	resp, env = do(t, "POST", e.URL+"/v1/task/"+running.ID+"/cancel", "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("cancel running: %d %s", resp.StatusCode, env.Message)
	}
	done := e.wait(t, running.ID, 5*time.Second, terminal)
	if done.Status != StatusCanceled || done.Error == nil || done.Error.Code != "canceled" {
		t.Fatalf("running task after cancel: %+v", done)
	}
	resp, _ = do(t, "POST", e.URL+"/v1/task/"+running.ID+"/cancel", "")
	if resp.StatusCode != http.StatusConflict {
		t.Errorf("cancel finished: %d, want 409", resp.StatusCode)
	}
	// The worker is free again.
	next := e.submit(t, `{"model":"coder","prompt":"after","max_tokens":3}`)
	if got := e.wait(t, next.ID, 5*time.Second, terminal); got.Status != StatusSucceeded {
		t.Errorf("task after cancellations: %+v", got)
	}
}

func TestRetryThenFail(t *testing.T) { testRetryThenFail(t, setup) }

func testRetryThenFail(t *testing.T, setup setupFunc) {
	e := setup(t, mockllm.Options{FailRate: 1}, "  max_attempts: 2\n  retry_backoff: 10ms\n")
	tk := e.submit(t, `{"model":"coder","prompt":"x"}`)
	done := e.wait(t, tk.ID, 10*time.Second, terminal)
	if done.Status != StatusFailed || done.Attempts != 2 || done.Error == nil || done.Error.Code != "upstream_error" {
		t.Fatalf("task = %+v err %+v", done, done.Error)
	}
	if u := e.usage.all(); len(u) != 2 || u[0].Status != 502 || u[1].Status != 502 {
		t.Errorf("usage records = %+v", u)
	}
}

func TestTimeLimit(t *testing.T) { testTimeLimit(t, setup) }

func testTimeLimit(t *testing.T, setup setupFunc) {
	e := setup(t, mockllm.Options{Tokens: 1000, ITL: 5 * time.Millisecond}, "  timeout: 200ms\n")
	tk := e.submit(t, `{"model":"coder","prompt":"x","max_tokens":1000}`)
	done := e.wait(t, tk.ID, 10*time.Second, terminal)
	if done.Status != StatusFailed || done.Error == nil || done.Error.Code != "task_timeout" || done.Attempts != 1 {
		t.Fatalf("task = %+v err %+v", done, done.Error)
	}
	// The tokens streamed before the time limit were used: the sink gets them (estimated,
	// since the upstream's usage comes only at the end of a stream), as for an HTTP stream
	// cut off.
	u := e.usage.all()
	if len(u) != 1 || u[0].Status == 200 || u[0].Usage.CompletionTokens <= 0 || u[0].Usage.PromptTokens <= 0 || !u[0].Usage.Estimated {
		t.Errorf("usage records of a run cut off by its time limit = %+v; want one, estimated, with the tokens streamed", u)
	}
}

func TestOtherKinds(t *testing.T) { testOtherKinds(t, setup) }

func testOtherKinds(t *testing.T, setup setupFunc) {
	e := setup(t, mockllm.Options{Tokens: 5}, "")
	resp, env := do(t, "POST", e.URL+"/v1/tasks", `{"kind":"chat","model":"coder","input":{"messages":[{"role":"user","content":"hi"}],"max_tokens":5}}`)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("chat: %d %s", resp.StatusCode, env.Message)
	}
	var chat Task
	_ = json.Unmarshal(env.Data, &chat)
	resp, env = do(t, "POST", e.URL+"/v1/tasks", `{"kind":"embeddings","model":"coder","input":{"input":["a","b"]}}`)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("embeddings: %d %s", resp.StatusCode, env.Message)
	}
	var emb Task
	_ = json.Unmarshal(env.Data, &emb)
	c := e.wait(t, chat.ID, 10*time.Second, terminal)
	if c.Status != StatusSucceeded || c.Result.Text == "" || c.Result.Code != nil {
		t.Errorf("chat = %+v", c.Result)
	}
	m := e.wait(t, emb.ID, 10*time.Second, terminal)
	var out struct {
		Data []struct {
			Embedding []float64 `json:"embedding"`
		} `json:"data"`
	}
	if m.Status != StatusSucceeded || json.Unmarshal(m.Result.Response, &out) != nil || len(out.Data) != 2 {
		t.Errorf("embeddings = %+v %s", m, m.Result.Response)
	}
	resp, _ = do(t, "POST", e.URL+"/v1/tasks", `{"kind":"dance","model":"coder"}`)
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("unknown kind: %d", resp.StatusCode)
	}
}

// TestGracefulStopRequeues: a process stopping gracefully hands its running task back to the
// queue at once, without counting the interrupted run as an attempt.
func TestGracefulStopRequeues(t *testing.T) {
	e := setup(t, mockllm.Options{Tokens: 500, ITL: 10 * time.Millisecond}, "")
	tk := e.submit(t, `{"model":"coder","prompt":"slow","max_tokens":500}`)
	e.wait(t, tk.ID, 5*time.Second, func(tk Task) bool { return tk.Status == StatusRunning })
	e.stop()
	got, _, err := e.db.loadTask(t.Context(), e.db.R, tk.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != StatusQueued || got.Attempts != 0 {
		t.Errorf("after a graceful stop: status %s, attempts %d; want queued, 0", got.Status, got.Attempts)
	}
}

// TestDecodeErrorsArePublic: the task routes answer a body the decoder refuses with a message
// in the project's words, naming the field, never the decoder's text.
func TestDecodeErrorsArePublic(t *testing.T) {
	e := setup(t, mockllm.Options{}, "")
	for body, want := range map[string]string{
		`{"model":"coder","prompt":"x","promt":"y"}`:                      `field this route does not know: "promt"`,
		`{"model":"coder","prompt":7}`:                                    `the field "prompt" must be a string, not number`,
		`{"model":"coder","prompt":"x",`:                                  "ends before its JSON value does",
		`{"model":"coder","messages":` + strings.Repeat("[", 10001) + `}`: "nests JSON values too deeply",
		`{"model":"coder"]`:                                               "not valid JSON (at byte",
	} {
		for _, path := range []string{"/v1/generate/code", "/v1/tasks"} {
			resp, env := do(t, "POST", e.URL+path, body)
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(env.Message, want) ||
				strings.Contains(env.Message, "json:") || strings.Contains(env.Message, "Go ") || strings.Contains(env.Message, "task.") {
				t.Errorf("%s %.40q: %d %q, want a message with %q", path, body, resp.StatusCode, env.Message, want)
			}
		}
	}
}

// TestInterruptedFails: a running task whose holder vanished (its lease ran out) after its
// last attempt fails with task_interrupted, a code of the catalogue.
func TestInterruptedFails(t *testing.T) {
	e := setup(t, mockllm.Options{Tokens: 500, ITL: 10 * time.Millisecond}, "  max_attempts: 1\n")
	tk := e.submit(t, `{"model":"coder","prompt":"slow","max_tokens":500}`)
	e.wait(t, tk.ID, 5*time.Second, func(tk Task) bool { return tk.Status == StatusRunning })
	// Another process held it and died: its lease is someone else's and ran out.
	if _, err := e.db.W.ExecContext(t.Context(), e.db.q(`UPDATE tasks SET lease_owner = 'gone', lease_until = 1 WHERE id = ?`), tk.ID); err != nil {
		t.Fatal(err)
	}
	done := e.wait(t, tk.ID, 10*time.Second, terminal)
	if done.Status != StatusFailed || done.Error == nil || done.Error.Code != "task_interrupted" || done.Attempts != 1 {
		t.Fatalf("task = %+v err %+v", done, done.Error)
	}
}

// TestSQLiteQueuesWaitForDueTimes: on SQLite the queues do not poll (here the poll interval
// is an hour); they are woken by this process's own changes and sleep until the next time
// something falls due. A retry after its backoff and a webhook's retries after theirs still
// happen on time.
func TestSQLiteQueuesWaitForDueTimes(t *testing.T) {
	rc := newReceiver(testSecret)
	rc.fail = 2
	hook := httptest.NewServer(rc)
	defer hook.Close()
	hourPoll := func(c *setupConfig) { c.opts = func(o *Options) { o.PollInterval = time.Hour } }
	e := setupWith(t, mockllm.Options{FailRate: 1}, fmt.Sprintf("  max_attempts: 3\n  retry_backoff: 100ms\n"+
		"  webhook_secret: %s\n  webhook_allow: [127.0.0.0/8]\n  webhook_backoff: 100ms\n", testSecret), hourPoll)
	tk := e.submit(t, fmt.Sprintf(`{"model":"coder","prompt":"x","callback_url":"%s/hook"}`, hook.URL))
	done := e.wait(t, tk.ID, 20*time.Second, func(tk Task) bool { return tk.Webhook != nil && tk.Webhook.Status != "pending" })
	if done.Status != StatusFailed || done.Attempts != 3 {
		t.Fatalf("task = %+v; want failed after 3 attempts, two of them after a backoff", done)
	}
	if done.Webhook.Status != "delivered" || len(done.Webhook.Attempts) != 3 {
		t.Fatalf("webhook = %+v; want delivered at the third attempt", done.Webhook)
	}
}
