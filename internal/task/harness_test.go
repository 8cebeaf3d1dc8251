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
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/open-autoglm/autoglm/internal/backend/openai"
	"github.com/open-autoglm/autoglm/internal/config"
	"github.com/open-autoglm/autoglm/internal/mockllm"
	"github.com/open-autoglm/autoglm/internal/router"
	"github.com/open-autoglm/autoglm/internal/server"
	"github.com/open-autoglm/autoglm/internal/store/sqlite"
	"github.com/open-autoglm/autoglm/internal/usage"
)

// env is a task service with a gateway in front of it, over a SQLite file and a mock model.
type env struct {
	URL  string
	svc  *Service
	mock *mockllm.Server
	db   DB
	stop func()

	usage *usageLog
}

// usageLog collects the outcomes of the model calls of task runs.
type usageLog struct {
	mu      sync.Mutex
	records []usage.Outcome
}

func (u *usageLog) add(_ context.Context, o usage.Outcome) {
	u.mu.Lock()
	u.records = append(u.records, o)
	u.mu.Unlock()
}

func (u *usageLog) all() []usage.Outcome {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]usage.Outcome(nil), u.records...)
}

// setupFunc starts a task service and its gateway on some database; see setupOn.
type setupFunc func(t testing.TB, mopt mockllm.Options, tasksYAML string) *env

// setup is setupOn over a fresh SQLite file.
func setup(t testing.TB, mopt mockllm.Options, tasksYAML string) *env {
	t.Helper()
	return setupWith(t, mopt, tasksYAML)
}

// setupWith is setup with options.
func setupWith(t testing.TB, mopt mockllm.Options, tasksYAML string, more ...setupOption) *env {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "tasks.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	db, err := DBFor(st)
	if err != nil {
		t.Fatal(err)
	}
	return setupOn(t, db, mopt, tasksYAML, more...)
}

// setupConfig holds what setupOptions change.
type setupConfig struct {
	handler func(*mockllm.Server) http.Handler // what serves the model (default: the mock)
	yaml    string                             // more top-level configuration
	opts    func(*Options)                     // changes to the service's options
}

// setupOption changes the environment setupOn builds.
type setupOption func(*setupConfig)

// setupOn starts a mock model, the registry, the task service over db and a gateway.
// tasksYAML is the body of the tasks section (indented two spaces), or "".
func setupOn(t testing.TB, db DB, mopt mockllm.Options, tasksYAML string, more ...setupOption) *env {
	t.Helper()
	var sc setupConfig
	for _, o := range more {
		o(&sc)
	}
	mock := mockllm.New(mopt)
	var h http.Handler = mock
	if sc.handler != nil {
		h = sc.handler(mock)
	}
	ms := httptest.NewServer(h)
	t.Cleanup(ms.Close)
	yml := fmt.Sprintf("models:\n  - name: coder\n    aliases: [coder-alias]\n    backends:\n      - type: openai\n        base_url: %s/v1\n    health: {probe: none}\n", ms.URL)
	if tasksYAML != "" {
		yml += "tasks:\n" + tasksYAML
	}
	yml += sc.yaml
	cfg, err := config.Parse([]byte(yml), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	reg, err := router.New(cfg.Models)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	u := &usageLog{}
	o := Options{Config: cfg.Tasks, DB: db, Registry: reg, Logger: log, PollInterval: 50 * time.Millisecond, Usage: u.add,
		CodeCheck: cfg.CodeCheck}
	if sc.opts != nil {
		sc.opts(&o)
	}
	svc, err := New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan struct{})
	go func() {
		defer close(runDone)
		_ = svc.Run(ctx)
	}()
	srv := server.New(cfg.Server, reg, log, svc.Routes()...)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveDone := make(chan struct{})
	go func() {
		defer close(serveDone)
		_ = srv.Serve(ctx, ln)
	}()
	var once sync.Once
	e := &env{URL: "http://" + ln.Addr().String(), svc: svc, mock: mock, db: db, usage: u}
	e.stop = func() {
		once.Do(func() {
			cancel()
			<-runDone
			<-serveDone
		})
	}
	t.Cleanup(e.stop)
	return e
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// envelope is the native answer.
type envelope struct {
	Code    string          `json:"code"`
	Success bool            `json:"success"`
	Data    json.RawMessage `json:"data"`
	Message string          `json:"message"`
}

func do(t testing.TB, method, url, body string, hdr ...string) (*http.Response, envelope) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var env envelope
	if err := json.Unmarshal(b, &env); err != nil {
		t.Fatalf("%s %s: %d %s: not an envelope: %v", method, url, resp.StatusCode, b, err)
	}
	return resp, env
}

func (e *env) submit(t testing.TB, body string, hdr ...string) Task {
	t.Helper()
	resp, env := do(t, "POST", e.URL+"/v1/generate/code", body, hdr...)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("submit: %d %s", resp.StatusCode, env.Message)
	}
	var tk Task
	if err := json.Unmarshal(env.Data, &tk); err != nil {
		t.Fatal(err)
	}
	return tk
}

func (e *env) get(t testing.TB, id string) Task {
	t.Helper()
	resp, env := do(t, "GET", e.URL+"/v1/task/"+id, "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("get: %d %s", resp.StatusCode, env.Message)
	}
	var tk Task
	if err := json.Unmarshal(env.Data, &tk); err != nil {
		t.Fatal(err)
	}
	return tk
}

// wait polls a task until cond holds or the timeout passes.
func (e *env) wait(t testing.TB, id string, timeout time.Duration, cond func(Task) bool) Task {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		tk := e.get(t, id)
		if cond(tk) {
			return tk
		}
		if time.Now().After(deadline) {
			t.Fatalf("task %s: condition not met within %s; last state %+v", id, timeout, tk)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func terminal(tk Task) bool { return tk.Status.Terminal() }
