package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/open-autoglm/autoglm/internal/config"
	"github.com/open-autoglm/autoglm/internal/httpapi"
	"github.com/open-autoglm/autoglm/internal/mockllm"
	"github.com/open-autoglm/autoglm/internal/openapi"
	"github.com/open-autoglm/autoglm/internal/telemetry"
	"github.com/open-autoglm/autoglm/internal/testenv"
)

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
	logs := &testenv.LogBuffer{}
	log := telemetry.NewLogger(logs, telemetry.ParseLevel("debug"))
	addrc := make(chan net.Addr, 1)
	var routes []httpapi.Route
	g := serveGroup(cfg, "", t.TempDir(), false, log, func(a net.Addr, rs []httpapi.Route) { routes = rs; addrc <- a }, serveFlags{})
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
	checkDocumented(t, routes)
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
	// Tracing is first to start and last to stop, so that the spans of the last requests
	// and tasks are exported; of the components that hold data, the store stops last.
	if !slices.Equal(stopped, want) || stopped[len(stopped)-1] != "tracing" || stopped[len(stopped)-2] != "store" {
		t.Errorf("stop order %v, want %v (the store last before tracing)", stopped, want)
	}
}

// checkDocumented holds the composed server's routes to the API description: every HTTP route
// (gRPC methods are described by the .proto files and reflection) is an operation of
// /openapi.json with the permission the route carries, and every operation is served.
func checkDocumented(t *testing.T, routes []httpapi.Route) {
	t.Helper()
	served := map[string]bool{}
	for _, rt := range routes {
		if strings.HasPrefix(rt.Pattern, "/autoglm.v1.") || strings.HasPrefix(rt.Pattern, "/grpc.") {
			continue
		}
		served[rt.Key()] = true
		perm, ok := openapi.Permission(rt.Method, rt.Pattern)
		if !ok {
			t.Errorf("%s is served but not in the API description", rt.Key())
		} else if perm != rt.Permission {
			t.Errorf("%s needs %q but the API description says %q", rt.Key(), rt.Permission, perm)
		}
	}
	for _, r := range openapi.Routes() {
		_, pattern, _ := strings.Cut(r, " ")
		if strings.HasPrefix(pattern, "/autoglm.v1.") || strings.HasPrefix(pattern, "/grpc.") {
			continue
		}
		if !served[r] {
			t.Errorf("%s is in the API description but not served", r)
		}
	}
}
