package faults_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestPostgresRestart restarts the PostgreSQL of a running gateway in the middle of a load of
// chat requests and task submissions: every task the gateway accepted (202) must finish, the
// chat requests (which need no database) must all succeed, submissions refused during the
// outage must say so in the documented shape without internal detail, and the gateway must
// take submissions again once PostgreSQL is back, without being restarted.
func TestPostgresRestart(t *testing.T) {
	pg := startPostgres(t)
	mock := mockllm(t, "mockllm", "--itl", "10ms", "--tokens", "30")
	g := serve(t, "gateway", fmt.Sprintf(`server:
  shutdown_timeout: 2s
store:
  driver: postgres
  dsn: %q
  batch: {interval: 100ms}
models:
  - name: mock
    backends: [{type: openai, base_url: "%s/v1"}]
    health: {probe: none}
tasks:
  workers: 4
  lease: 3s
  event_flush: 50ms
`, pg.dsn(), mock.URL), "")

	var (
		mu        sync.Mutex
		accepted  []string
		refused   = map[string]int{} // "status code" -> count
		leaks     []string
		chatFails []string
		chats     atomic.Int64
	)
	submit := func() {
		a := do(t, "POST", g.URL+"/v1/generate/code", "", `{"model":"mock","prompt":"add two numbers","language":"go","max_tokens":30}`)
		mu.Lock()
		defer mu.Unlock()
		if a.status == http.StatusAccepted {
			var tk struct {
				ID string `json:"task_id"`
			}
			if envelope(t, a.body, &tk) && tk.ID != "" {
				accepted = append(accepted, tk.ID)
				return
			}
		}
		var env struct {
			Code    any    `json:"code"`
			Message string `json:"message"`
		}
		key := fmt.Sprintf("%d %s", a.status, a.body)
		if a.status != 0 && jsonOK(a.body, &env) {
			key = fmt.Sprintf("%d %v %q", a.status, env.Code, env.Message)
		}
		refused[key]++
		low := strings.ToLower(string(a.body))
		for _, internal := range []string{"pgx", "dial tcp", "sqlstate", "connection refused", "postgres"} {
			if strings.Contains(low, internal) {
				leaks = append(leaks, string(a.body))
				break
			}
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				case <-time.After(100 * time.Millisecond):
				}
				submit()
			}
		}()
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				case <-time.After(20 * time.Millisecond):
				}
				a := do(t, "POST", g.URL+"/v1/chat/completions", "", chatBody)
				chats.Add(1)
				if a.status != http.StatusOK {
					mu.Lock()
					chatFails = append(chatFails, fmt.Sprintf("%d %.200s", a.status, a.body))
					mu.Unlock()
				}
			}
		}()
	}
	time.Sleep(3 * time.Second)
	t.Log("stopping PostgreSQL (fast: every session is ended)")
	pg.stop(t, "fast")
	time.Sleep(3 * time.Second)
	t.Log("starting PostgreSQL again")
	pg.start(t)
	// Back within a generous limit, without restarting the gateway.
	eventually(t, 60*time.Second, "a submission accepted after PostgreSQL came back", func() bool {
		mu.Lock()
		n := len(accepted)
		mu.Unlock()
		submit()
		mu.Lock()
		defer mu.Unlock()
		return len(accepted) > n
	})
	time.Sleep(3 * time.Second)
	close(stop)
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d tasks accepted, %d chat requests; refused submissions: %v", len(accepted), chats.Load(), refused)
	if len(chatFails) > 0 {
		t.Errorf("%d of %d chat requests (no database needed) failed; the first: %s", len(chatFails), chats.Load(), chatFails[0])
	}
	for k := range refused {
		if !strings.HasPrefix(k, "503 ") {
			t.Errorf("a submission during the outage got %s; want 503 in the envelope shape", k)
		}
	}
	if len(leaks) > 0 {
		t.Errorf("%d refusals named the database's internals; the first: %s", len(leaks), leaks[0])
	}
	if g.exited() {
		t.Fatal("the gateway exited")
	}
	// Every accepted task finishes.
	statuses := map[string]int{}
	for _, id := range accepted {
		var tk struct {
			Status string `json:"status"`
			Error  any    `json:"error"`
		}
		eventually(t, 120*time.Second, "task "+id+" finished", func() bool {
			a := do(t, "GET", g.URL+"/v1/task/"+id, "", "")
			if a.status != http.StatusOK || !envelope(t, a.body, &tk) {
				return false
			}
			return tk.Status == "succeeded" || tk.Status == "failed" || tk.Status == "canceled"
		})
		statuses[tk.Status]++
		if tk.Status != "succeeded" {
			t.Errorf("task %s accepted before, during or after the restart ended %s: %v", id, tk.Status, tk.Error)
		}
	}
	t.Logf("final task states: %v", statuses)
}
