package task

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/open-autoglm/autoglm/internal/config"
	"github.com/open-autoglm/autoglm/internal/mockllm"
	"github.com/open-autoglm/autoglm/internal/router"
	"github.com/open-autoglm/autoglm/internal/server"
	"github.com/open-autoglm/autoglm/internal/store"
	"github.com/open-autoglm/autoglm/internal/store/postgres"
	"github.com/open-autoglm/autoglm/internal/store/sqlite"
)

// Environment of a child server process started by the crash tests.
const (
	childEnv     = "AUTOGLM_TASK_TEST_CHILD" // the configuration YAML
	childDBEnv   = "AUTOGLM_TASK_TEST_DB"
	childAddrEnv = "AUTOGLM_TASK_TEST_ADDR_FILE"
)

func TestMain(m *testing.M) {
	if yml := os.Getenv(childEnv); yml != "" {
		if err := runChild(yml, os.Getenv(childDBEnv), os.Getenv(childAddrEnv)); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runChild is a task server in its own process, the way `autoglm serve` runs one: store,
// registry, task service and gateway. It serves until killed.
func runChild(yml, dbPath, addrFile string) error {
	cfg, err := config.Parse([]byte(yml), func(string) (string, bool) { return "", false })
	if err != nil {
		return err
	}
	reg, err := router.New(cfg.Models)
	if err != nil {
		return err
	}
	ctx := context.Background()
	var st store.Store
	if strings.HasPrefix(dbPath, "postgres://") {
		st, err = postgres.Open(ctx, dbPath)
	} else {
		st, err = sqlite.Open(ctx, dbPath, sqlite.Options{})
	}
	if err != nil {
		return err
	}
	db, err := DBFor(st)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	svc, err := New(ctx, Options{Config: cfg.Tasks, DB: db, Registry: reg, Logger: log, PollInterval: 50 * time.Millisecond})
	if err != nil {
		return err
	}
	go func() { _ = svc.Run(ctx) }()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	if err := os.WriteFile(addrFile+".tmp", []byte(ln.Addr().String()), 0o600); err != nil {
		return err
	}
	if err := os.Rename(addrFile+".tmp", addrFile); err != nil {
		return err
	}
	return server.New(cfg.Server, reg, log, svc.Routes()...).Serve(ctx, ln)
}

// child is a running child server.
type child struct {
	cmd  *exec.Cmd
	URL  string
	done chan struct{}
}

func startChild(t *testing.T, yml, dbPath string) *child {
	t.Helper()
	addrFile := filepath.Join(t.TempDir(), "addr")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+yml, childDBEnv+"="+dbPath, childAddrEnv+"="+addrFile)
	cmd.Stderr = testWriter{t}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(c.done) }()
	t.Cleanup(func() { c.kill() })
	deadline := time.Now().Add(20 * time.Second)
	for {
		if b, err := os.ReadFile(addrFile); err == nil {
			c.URL = "http://" + string(b)
			return c
		}
		select {
		case <-c.done:
			t.Fatal("child exited before listening")
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("child did not start")
		}
	}
}

// kill sends SIGKILL and waits for the process to end.
func (c *child) kill() {
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.done
}

// receiver is a webhook endpoint that checks signatures and records deliveries.
type receiver struct {
	secret string
	mu     sync.Mutex
	byTask map[string][]string // task id → delivery ids received, in order
	status map[string]Status   // task id → status in the delivered body
	bad    []string
	fail   int // answer 500 to this many requests first
	hits   int
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.hits++
	if err := Verify([]byte(rc.secret), r.Header.Get(HeaderSignature), body, time.Now(), 5*time.Minute); err != nil {
		rc.bad = append(rc.bad, err.Error())
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	if rc.fail > 0 {
		rc.fail--
		http.Error(w, "try later", http.StatusInternalServerError)
		return
	}
	var tk Task
	if err := json.Unmarshal(body, &tk); err != nil {
		rc.bad = append(rc.bad, "body: "+err.Error())
		return
	}
	if tk.Webhook == nil || tk.Webhook.ID != r.Header.Get(HeaderDelivery) || r.Header.Get(HeaderTaskID) != tk.ID {
		rc.bad = append(rc.bad, "delivery id or task id header does not match the body")
	}
	rc.byTask[tk.ID] = append(rc.byTask[tk.ID], r.Header.Get(HeaderDelivery))
	rc.status[tk.ID] = tk.Status
	w.WriteHeader(http.StatusNoContent)
}

func newReceiver(secret string) *receiver {
	return &receiver{secret: secret, byTask: map[string][]string{}, status: map[string]Status{}}
}

const testSecret = "whsec-test-0123456789"

// TestSIGKILL submits 200 tasks with webhooks to a server process, kills it with SIGKILL
// while it is working through them, starts another on the same database and kills that one
// too while tasks are being submitted to it, starts a third, and checks that every accepted
// task reached exactly one terminal status and that every webhook arrived, signed, with one
// delivery id per task.
func TestSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("starts server processes")
	}
	ms := httptest.NewServer(mockllm.New(mockllm.Options{Tokens: 100, ITL: 2 * time.Millisecond}))
	defer ms.Close()
	rc := newReceiver(testSecret)
	hook := httptest.NewServer(rc)
	defer hook.Close()
	yml := fmt.Sprintf(`models:
  - name: coder
    backends: [{type: openai, base_url: %s/v1}]
    health: {probe: none}
tasks:
  workers: 8
  lease: 2s
  max_attempts: 5
  event_flush: 20ms
  webhook_secret: %s
  webhook_allow: [127.0.0.0/8]
  webhook_backoff: 50ms
  webhook_max_backoff: 200ms
`, ms.URL, testSecret)
	dbPath := filepath.Join(t.TempDir(), "autoglm.db")

	first := startChild(t, yml, dbPath)
	const n = 200
	ids := make([]string, 0, n)
	for i := range n {
		_, env := do(t, "POST", first.URL+"/v1/generate/code",
			fmt.Sprintf(`{"model":"coder","prompt":"task %d","max_tokens":100,"callback_url":"%s/hook"}`, i, hook.URL))
		var tk Task
		if err := json.Unmarshal(env.Data, &tk); err != nil || tk.ID == "" {
			t.Fatalf("submit %d: %s", i, env.Message)
		}
		ids = append(ids, tk.ID)
	}
	// Kill once some tasks finished and others are mid-run.
	deadline := time.Now().Add(30 * time.Second)
	for {
		var page listPage
		_, env := do(t, "GET", first.URL+"/v1/tasks?status=succeeded&limit=100", "")
		_ = json.Unmarshal(env.Data, &page)
		if len(page.Items) >= 8 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("tasks did not start finishing")
		}
		time.Sleep(10 * time.Millisecond)
	}
	{
		var page listPage
		_, env := do(t, "GET", first.URL+"/v1/tasks?status=running&limit=100", "")
		_ = json.Unmarshal(env.Data, &page)
		t.Logf("killing with %d running", len(page.Items))
	}
	first.kill()

	// The second process is killed too, while tasks are being submitted to it: every
	// submission it accepted (202) must still finish; the others may or may not exist.
	second := startChild(t, yml, dbPath)
	var extra []string
	submitted := make(chan struct{})
	go func() {
		defer close(submitted)
		for i := 0; ; i++ {
			id, ok := trySubmit(second.URL, fmt.Sprintf(`{"model":"coder","prompt":"late %d","max_tokens":100,"callback_url":"%s/hook"}`, i, hook.URL))
			if !ok {
				return
			}
			extra = append(extra, id)
		}
	}()
	time.Sleep(500 * time.Millisecond)
	second.kill()
	<-submitted
	t.Logf("second process accepted %d more tasks before its kill", len(extra))
	ids = append(ids, extra...)

	third := startChild(t, yml, dbPath)
	deadline = time.Now().Add(60 * time.Second)
	for _, id := range ids {
		for {
			tk := getFrom(t, third.URL, id)
			if tk.Status.Terminal() && tk.Webhook != nil && tk.Webhook.Status == "delivered" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("task %s not finished and delivered: %+v webhook %+v", id, tk, tk.Webhook)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	third.kill()

	// Every task: one terminal event in its log, status succeeded (the mock never fails).
	st, err := sqlite.Open(context.Background(), dbPath, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var interrupted int
	for _, id := range ids {
		rows, err := st.ReadDB().Query(`SELECT data FROM task_events WHERE task_id = ? AND type = 'status' ORDER BY seq`, id)
		if err != nil {
			t.Fatal(err)
		}
		terminals := 0
		for rows.Next() {
			var data string
			_ = rows.Scan(&data)
			if isTerminalEvent([]byte(data)) {
				terminals++
			}
			if strings.Contains(data, `"reason":"interrupted"`) {
				interrupted++
			}
		}
		rows.Close()
		if terminals != 1 {
			t.Errorf("task %s has %d terminal events", id, terminals)
		}
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.bad) > 0 {
		t.Errorf("receiver saw bad deliveries: %v", rc.bad)
	}
	dups := 0
	seen := map[string]string{}
	for _, id := range ids {
		got := rc.byTask[id]
		if len(got) == 0 {
			t.Errorf("task %s: no webhook received", id)
			continue
		}
		if rc.status[id] != StatusSucceeded {
			t.Errorf("task %s: delivered status %s", id, rc.status[id])
		}
		for _, d := range got {
			if d != got[0] {
				t.Errorf("task %s: delivery ids differ across retries: %v", id, got)
			}
			if other, ok := seen[d]; ok && other != id {
				t.Errorf("delivery id %s used for tasks %s and %s", d, other, id)
			}
			seen[d] = id
		}
		dups += len(got) - 1
	}
	t.Logf("%d tasks, %d runs interrupted by the kills and run again, %d duplicate deliveries (same delivery id)", len(ids), interrupted, dups)
	if interrupted == 0 {
		t.Errorf("the kill interrupted no task; the test did not test recovery")
	}
}

// trySubmit submits a task and reports whether the server accepted it; a failed connection
// is not an error here (the server is being killed).
func trySubmit(base, body string) (string, bool) {
	resp, err := http.Post(base+"/v1/generate/code", "application/json", strings.NewReader(body))
	if err != nil {
		return "", false
	}
	defer resp.Body.Close()
	var env struct {
		Data Task `json:"data"`
	}
	if resp.StatusCode != http.StatusAccepted || json.NewDecoder(resp.Body).Decode(&env) != nil || env.Data.ID == "" {
		return "", false
	}
	return env.Data.ID, true
}

func getFrom(t testing.TB, base, id string) Task {
	t.Helper()
	resp, env := do(t, "GET", base+"/v1/task/"+id, "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("get %s: %d %s", id, resp.StatusCode, env.Message)
	}
	var tk Task
	if err := json.Unmarshal(env.Data, &tk); err != nil {
		t.Fatal(err)
	}
	return tk
}
