package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/open-autoglm/autoglm/internal/config"
	"github.com/open-autoglm/autoglm/internal/httpapi"
	"github.com/open-autoglm/autoglm/internal/mockllm"
	"github.com/open-autoglm/autoglm/internal/store"
	"github.com/open-autoglm/autoglm/internal/telemetry"
	"github.com/open-autoglm/autoglm/internal/testenv"
)

// TestRetentionLogsToServerLogger starts the server over a store holding a usage record past
// its retention: the retention run at start deletes it and says so in the server's own
// logger (its level, its format, its destination), not in slog's default one.
func TestRetentionLogsToServerLogger(t *testing.T) {
	mock := httptest.NewServer(mockllm.New(mockllm.Options{Tokens: 2}))
	defer mock.Close()
	cfg, err := config.Parse([]byte(fmt.Sprintf(`
server: {addr: 127.0.0.1:0}
models:
  - name: m
    backends: [{type: openai, base_url: %s/v1}]
    health: {probe: none}
`, mock.URL)), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, err := store.Open(ctx, cfg.Store, dataDir)
	if err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-cfg.Store.UsageRetention.D() - 24*time.Hour)
	if err := st.Append(ctx, "", []store.UsageRecord{{Time: old, Model: "m", PromptTokens: 3, Status: 200}}, nil); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	// slog's default logger goes to a buffer of its own for the test.
	defaultLogs := &testenv.LogBuffer{}
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewJSONHandler(defaultLogs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	defer slog.SetDefault(prev)

	logs := &testenv.LogBuffer{}
	log := telemetry.NewLogger(logs, telemetry.ParseLevel("info"))
	addrc := make(chan net.Addr, 1)
	g := serveGroup(cfg, "", dataDir, false, log, func(a net.Addr, _ []httpapi.Route) { addrc <- a }, serveFlags{})
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	select {
	case <-addrc:
	case err := <-done:
		t.Fatalf("serve stopped before listening: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not listen")
	}
	// deleted finds the retention's line about usage records in a log.
	deleted := func(out string) (count float64, found bool) {
		sc := bufio.NewScanner(strings.NewReader(out))
		for sc.Scan() {
			var line struct {
				Msg   string  `json:"msg"`
				Count float64 `json:"count"`
			}
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "store: deleted old usage records" {
				return line.Count, true
			}
		}
		return 0, false
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		if _, ok := deleted(logs.String()); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the retention run logged nothing to the server's logger; it logged:\n%s\nslog's default got:\n%s", logs.String(), defaultLogs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop")
	}
	if n, _ := deleted(logs.String()); n != 1 {
		t.Errorf("retention reported %v usage records deleted, want the 1 past retention", n)
	}
	if _, ok := deleted(defaultLogs.String()); ok {
		t.Errorf("the retention run also logged to slog's default logger:\n%s", defaultLogs.String())
	}
}
