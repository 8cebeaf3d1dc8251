package main

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/open-autoglm/autoglm/internal/config"
	"github.com/open-autoglm/autoglm/internal/openai"
	"github.com/open-autoglm/autoglm/internal/server"
	"github.com/open-autoglm/autoglm/internal/store"
	"github.com/open-autoglm/autoglm/internal/telemetry"
	"github.com/open-autoglm/autoglm/internal/usage"
)

func TestLoopbackAddr(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:8080": true, "[::1]:80": true, "localhost:1": true, "127.1.2.3:9": true,
		":8080": false, "0.0.0.0:8080": false, "[::]:80": false, "10.0.0.1:80": false, "example.com:80": false, "junk": false,
	} {
		if got := loopbackAddr(addr); got != want {
			t.Errorf("loopbackAddr(%q) = %v", addr, got)
		}
	}
}

func TestSetupGovernance(t *testing.T) {
	log := telemetry.NewLogger(io.Discard, telemetry.ParseLevel("error"))
	parse := func(yaml string) *config.Config {
		cfg, err := config.Parse([]byte(yaml), func(string) (string, bool) { return "", false })
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	t.Setenv(adminKeyEnv, "")
	public := parse("server: {addr: 0.0.0.0:8080}\n")
	if _, err := setupGovernance(context.Background(), public, t.TempDir(), false, log); err == nil || !strings.Contains(err.Error(), "--insecure") {
		t.Errorf("auth off on 0.0.0.0: %v", err)
	}
	g, err := setupGovernance(context.Background(), public, t.TempDir(), true, log)
	if err != nil || g.auth != nil {
		t.Fatalf("--insecure: %v", err)
	}
	g.Close()
	g, err = setupGovernance(context.Background(), parse("server: {addr: 127.0.0.1:8080}\n"), t.TempDir(), false, log)
	if err != nil || g.auth != nil {
		t.Fatalf("auth off on loopback: %v", err)
	}
	// Auth off still accounts: the store is open and the usage sink writes records. With no
	// caller to charge, no limit stage is built.
	var off server.Options
	var offModels openai.Options
	g.apply(&off, &offModels)
	if g.store == nil || offModels.OnDone == nil || off.Limit != nil || off.Auth != nil {
		t.Errorf("auth off: store %v, options %+v", g.store != nil, off)
	}
	ctx := context.Background()
	g.usageSink(nil)(ctx, usage.Outcome{Model: "m", Status: 200, TraceID: "t1", Usage: usage.Tokens{PromptTokens: 1, CompletionTokens: 2}})
	if err := g.batcher.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if page, err := g.store.ListUsage(ctx, store.UsageQuery{}); err != nil || len(page.Items) != 1 || page.Items[0].TraceID != "t1" ||
		page.Items[0].CompletionTokens != 2 {
		t.Errorf("auth off: usage records %+v, %v; want the one recorded", page.Items, err)
	}
	g.Close()

	// The admin key turns authentication on, on any address, with the admin API.
	t.Setenv(adminKeyEnv, "serve-test-admin-key")
	g, err = setupGovernance(context.Background(), public, t.TempDir(), false, log)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if g.auth == nil || !g.auth.Enabled() {
		t.Fatal("AUTOGLM_ADMIN_KEY did not turn auth on")
	}
	var opts server.Options
	g.apply(&opts, &openai.Options{})
	if opts.Auth == nil || opts.Denied == nil || opts.Limit == nil || len(opts.Routes) < 10 {
		t.Errorf("options %+v", opts)
	}
}
