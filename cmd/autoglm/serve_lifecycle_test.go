package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/open-autoglm/autoglm/internal/config"
	"github.com/open-autoglm/autoglm/internal/mockllm"
	"github.com/open-autoglm/autoglm/internal/telemetry"
)

// lockedBuffer is a log sink safe for the server's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestServeShutdown runs the whole server (authentication on, so the key refresh runs too),
// serves a chat completion and a task, and cancels it as SIGTERM does: every component stops
// in the reverse of its start order, the store last, and no goroutine of the server is left.
func TestServeShutdown(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	mock := httptest.NewServer(mockllm.New(mockllm.Options{Tokens: 4}))
	defer mock.Close()
	const adminKey = "serve-shutdown-test-admin-key"
	t.Setenv(adminKeyEnv, adminKey)
	cfg, err := config.Parse([]byte(fmt.Sprintf(`
server: {addr: 127.0.0.1:0}
models:
  - name: m
    backends: [{type: openai, base_url: %s/v1}]
`, mock.URL)), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	log := telemetry.NewLogger(logs, telemetry.ParseLevel("debug"))
	addrc := make(chan net.Addr, 1)
	g := serveGroup(cfg, t.TempDir(), false, log, func(a net.Addr) { addrc <- a })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	var base string
	select {
	case a := <-addrc:
		base = "http://" + a.String()
	case err := <-done:
		t.Fatalf("serve stopped before listening: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not listen")
	}
	client := &http.Client{Transport: &http.Transport{}}
	post := func(path, body string) int {
		req, _ := http.NewRequest("POST", base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+adminKey)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode
	}
	if code := post("/v1/chat/completions", `{"model":"m","messages":[{"role":"user","content":"hi"}]}`); code != 200 {
		t.Fatalf("chat: %d", code)
	}
	if code := post("/v1/generate/code", `{"model":"m","prompt":"add two numbers","language":"go"}`); code != 202 {
		t.Fatalf("task: %d", code)
	}
	client.CloseIdleConnections()

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop")
	}
	mock.Close()
	if err := goleak.Find(ignore); err != nil {
		t.Errorf("goroutines left after shutdown: %v", err)
	}

	// The components stopped in the reverse of their start order, the store last.
	var stopped []string
	sc := bufio.NewScanner(strings.NewReader(logs.String()))
	for sc.Scan() {
		var line struct {
			Msg       string `json:"msg"`
			Component string `json:"component"`
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "component stopped" {
			stopped = append(stopped, line.Component)
		}
	}
	want := g.Names()
	slices.Reverse(want)
	// Tracing, when present, stops after everything it traces: the store is last before it.
	last := stopped[len(stopped)-1]
	if last == "tracing" && len(stopped) > 1 {
		last = stopped[len(stopped)-2]
	}
	if !slices.Equal(stopped, want) || last != "store" {
		t.Errorf("stop order %v, want %v (the store last, then tracing)", stopped, want)
	}
}
