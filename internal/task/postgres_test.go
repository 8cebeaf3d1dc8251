package task

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/open-autoglm/autoglm/internal/mockllm"
	"github.com/open-autoglm/autoglm/internal/store/postgres"
	"github.com/open-autoglm/autoglm/internal/testenv"
)

// pgSchemaDSN makes a schema of its own for the test in the test database (dropped at the
// end) and returns a DSN whose search_path selects it.
func pgSchemaDSN(t testing.TB) string {
	return testenv.PostgresSchemaDSN(t, "tasktest", "pool_max_conns", "16")
}

func pgDB(t testing.TB, dsn string) DB {
	st, err := postgres.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	db, err := DBFor(st)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func setupPG(t testing.TB, mopt mockllm.Options, tasksYAML string) *env {
	t.Helper()
	return setupOn(t, pgDB(t, pgSchemaDSN(t)), mopt, tasksYAML)
}

// TestPostgres runs the behaviour tests on PostgreSQL.
func TestPostgres(t *testing.T) {
	testenv.PostgresDSN(t)
	for name, fn := range map[string]func(*testing.T, setupFunc){
		"SubmitAndPoll": testSubmitAndPoll,
		"SubmitInvalid": testSubmitInvalid,
		"Idempotency":   testIdempotency,
		"Cancel":        testCancel,
		"RetryThenFail": testRetryThenFail,
		"TimeLimit":     testTimeLimit,
		"OtherKinds":    testOtherKinds,
		"EventsResume":  testEventsResume,
		"WebSocket":     testWebSocketResume,
		"Webhook":       testWebhookRetriesAndSignature,
		"WebhookRefuse": testWebhookRefusesPrivateTargets,
	} {
		t.Run(name, func(t *testing.T) { fn(t, setupPG) })
	}
}

// TestPostgresReplicas runs two server processes on one PostgreSQL database: a task
// submitted on the first is watched on the second, the first is killed with SIGKILL mid-task,
// and the second finishes it; the watcher's stream goes on without a gap to the end.
func TestPostgresReplicas(t *testing.T) {
	dsn := pgSchemaDSN(t)
	ms := httptest.NewServer(mockllm.New(mockllm.Options{Tokens: 300, ITL: 5 * time.Millisecond}))
	defer ms.Close()
	yml := fmt.Sprintf(`models:
  - name: coder
    backends: [{type: openai, base_url: %s/v1}]
    health: {probe: none}
tasks:
  workers: 2
  lease: 2s
  event_flush: 20ms
`, ms.URL)
	a := startChild(t, yml, dsn)
	tk := Task{}
	_, env := do(t, "POST", a.URL+"/v1/generate/code", `{"model":"coder","prompt":"long","max_tokens":300}`)
	if err := json.Unmarshal(env.Data, &tk); err != nil || tk.ID == "" {
		t.Fatalf("submit: %s", env.Message)
	}
	for getFrom(t, a.URL, tk.ID).Status != StatusRunning {
		time.Sleep(10 * time.Millisecond)
	}
	b := startChild(t, yml, dsn)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	killed := false
	var events []sseEvent
	events, ended := readSSE(t, ctx, b.URL+"/v1/task/"+tk.ID+"/events", 0, func(ev sseEvent) bool {
		// Kill the replica running the task once its text reaches the watcher on the other.
		if ev.Type == EventTokens && !killed {
			killed = true
			a.kill()
		}
		return false
	})
	if !ended {
		t.Fatal("stream did not end")
	}
	if !killed {
		t.Fatal("no tokens reached the watcher before the end")
	}
	attempts := 0
	for i, ev := range events {
		if ev.ID != int64(i+1) {
			t.Fatalf("event %d has id %d: gap or duplicate", i, ev.ID)
		}
		if ev.Type == EventStatus && strings.Contains(ev.Data, `"running"`) {
			attempts++
		}
	}
	last := events[len(events)-1]
	if !strings.Contains(last.Data, `"succeeded"`) || attempts != 2 {
		t.Fatalf("attempts %d, last event %s", attempts, last.Data)
	}
	final := getFrom(t, b.URL, tk.ID)
	if final.Status != StatusSucceeded || final.Attempts != 2 {
		t.Errorf("final = %+v", final)
	}
}

// TestPostgresCancelAcrossReplicas cancels, through one replica, a task running on another:
// the notification stops the run at once, not at its next heartbeat.
func TestPostgresCancelAcrossReplicas(t *testing.T) {
	dsn := pgSchemaDSN(t)
	ms := httptest.NewServer(mockllm.New(mockllm.Options{Tokens: 2000, ITL: 5 * time.Millisecond}))
	defer ms.Close()
	// A long event flush and lease keep the other ways of noticing a cancel out of the test.
	yml := fmt.Sprintf(`models:
  - name: coder
    backends: [{type: openai, base_url: %s/v1}]
    health: {probe: none}
tasks:
  lease: 60s
  event_flush: 10s
`, ms.URL)
	a := startChild(t, yml, dsn)
	_, env := do(t, "POST", a.URL+"/v1/generate/code", `{"model":"coder","prompt":"long","max_tokens":2000}`)
	var tk Task
	if err := json.Unmarshal(env.Data, &tk); err != nil || tk.ID == "" {
		t.Fatalf("submit: %s", env.Message)
	}
	for getFrom(t, a.URL, tk.ID).Status != StatusRunning {
		time.Sleep(10 * time.Millisecond)
	}
	b := startChild(t, yml, dsn)
	start := time.Now()
	do(t, "POST", b.URL+"/v1/task/"+tk.ID+"/cancel", "")
	for {
		got := getFrom(t, b.URL, tk.ID)
		if got.Status == StatusCanceled {
			break
		}
		if got.Status.Terminal() || time.Since(start) > 5*time.Second {
			t.Fatalf("task after a cancel on the other replica: %+v", got)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("canceled across replicas in %s", time.Since(start).Round(time.Millisecond))
}
