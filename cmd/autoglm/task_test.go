package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/open-autoglm/autoglm/internal/config"
	"github.com/open-autoglm/autoglm/internal/mockllm"
	"github.com/open-autoglm/autoglm/internal/router"
	"github.com/open-autoglm/autoglm/internal/server"
	"github.com/open-autoglm/autoglm/internal/task"
	"github.com/open-autoglm/autoglm/internal/telemetry"
)

// TestTaskCmd runs the task system the way serve starts it (newTasks over the configured
// SQLite store) and drives it with `autoglm task`.
func TestTaskCmd(t *testing.T) {
	mock := httptest.NewServer(mockllm.New(mockllm.Options{Tokens: 8}))
	defer mock.Close()
	yml := fmt.Sprintf("models:\n  - name: coder\n    backends: [{type: openai, base_url: %s/v1}]\n    health: {probe: none}\n", mock.URL)
	cfg, err := config.Parse([]byte(yml), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	reg, err := router.New(cfg.Models)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	log := telemetry.NewLogger(io.Discard, telemetry.ParseLevel("error"))
	ts, err := newTasks(context.Background(), cfg, t.TempDir(), nil, reg, nil, nil, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ts.closeStore()
	ctx, stop := context.WithCancel(context.Background())
	var workers sync.WaitGroup
	workers.Go(func() { ts.svc.Run(ctx) })
	defer func() { stop(); workers.Wait() }()
	srv := httptest.NewServer(server.New(cfg.Server, reg, log, ts.Routes()...).Handler())
	defer srv.Close()

	run := func(args ...string) (string, string, error) {
		cmd := taskCmd()
		var out, errOut bytes.Buffer
		cmd.SetArgs(append(args, "--url", srv.URL))
		cmd.SetOut(&out)
		cmd.SetErr(&errOut)
		err := cmd.ExecuteContext(context.Background())
		return out.String(), errOut.String(), err
	}
	out, streamed, err := run("submit", "--model", "coder", "--language", "go", "--wait", "--json", "add two numbers")
	if err != nil {
		t.Fatalf("submit --wait: %v", err)
	}
	var done task.Task
	if err := json.Unmarshal([]byte(out), &done); err != nil {
		t.Fatalf("submit --wait printed %q: %v", out, err)
	}
	if done.Status != task.StatusSucceeded || strings.TrimSpace(streamed) != strings.TrimSpace(done.Result.Text) {
		t.Errorf("task %+v; streamed %q", done, streamed)
	}
	out, _, err = run("submit", "--model", "coder", "--idempotency-key", "k", "again")
	if err != nil || !strings.HasPrefix(out, "task_") {
		t.Fatalf("submit: %q %v", out, err)
	}
	id := strings.TrimSpace(out)
	if again, _, _ := run("submit", "--model", "coder", "--idempotency-key", "k", "again"); strings.TrimSpace(again) != id {
		t.Errorf("idempotent submit gave %q, want %s", again, id)
	}
	if out, _, err = run("watch", id); err != nil || !strings.Contains(out, id) || !strings.Contains(out, "succeeded") {
		t.Errorf("watch: %q %v", out, err)
	}
	if out, _, err = run("get", id); err != nil || !strings.Contains(out, "succeeded") {
		t.Errorf("get: %q %v", out, err)
	}
	if out, _, err = run("list"); err != nil || strings.Count(out, "task_") != 2 {
		t.Errorf("list: %q %v", out, err)
	}
	if _, _, err = run("cancel", id); err == nil || !strings.Contains(err.Error(), "task_finished") {
		t.Errorf("cancel of a finished task: %v", err)
	}
	if _, _, err = run("get", "task_nope"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("get unknown: %v", err)
	}
}
