package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/open-autoglm/autoglm/api"
	"github.com/open-autoglm/autoglm/internal/admin"
	"github.com/open-autoglm/autoglm/internal/admin/admintest"
	"github.com/open-autoglm/autoglm/internal/auth"
	"github.com/open-autoglm/autoglm/internal/config"
	"github.com/open-autoglm/autoglm/internal/router"
	"github.com/open-autoglm/autoglm/internal/server"
	"github.com/open-autoglm/autoglm/internal/telemetry"
)

func TestKeysCmd(t *testing.T) {
	const adminKey = "keys-cmd-admin-key"
	cfg, err := config.Parse([]byte("server: {addr: 127.0.0.1:0}\n"), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	reg, _ := router.New(nil)
	st := admintest.NewStore()
	a, err := auth.New(auth.Options{Config: cfg.Auth, Keys: admin.KeyFeed(st), AdminKey: adminKey})
	if err != nil {
		t.Fatal(err)
	}
	log := telemetry.NewLogger(io.Discard, telemetry.ParseLevel("error"))
	adm := admin.New(admin.Options{Store: st, Roles: a.Roles(), Logger: log})
	ts := httptest.NewServer(server.NewWith(cfg.Server, reg, log, server.Options{Auth: a, Routes: adm.Routes()}).Handler())
	defer ts.Close()

	run := func(args ...string) (string, string, error) {
		cmd := keysCmd()
		var out, errOut bytes.Buffer
		cmd.SetArgs(append(args, "--url", ts.URL, "--admin-key", adminKey))
		cmd.SetOut(&out)
		cmd.SetErr(&errOut)
		err := cmd.ExecuteContext(context.Background())
		return out.String(), errOut.String(), err
	}

	out, errOut, err := run("create", "--name", "ci", "--models", "stories, glm-4", "--expires-in", "48h")
	if err != nil {
		t.Fatalf("create: %v %s", err, errOut)
	}
	secret := strings.TrimSpace(out)
	if !strings.HasPrefix(secret, auth.KeyPrefix) || !strings.Contains(errOut, "will not be shown again") {
		t.Fatalf("create printed %q / %q", out, errOut)
	}
	out, _, err = run("list", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var keys []api.APIKey
	if err := json.Unmarshal([]byte(out), &keys); err != nil || len(keys) != 1 {
		t.Fatalf("list --json: %v %s", err, out)
	}
	k := keys[0]
	if k.Prefix != auth.DisplayPrefix(secret) || k.Name != "ci" || len(k.Models) != 2 || k.ExpiresAt.IsZero() || k.Secret != "" {
		t.Errorf("listed %+v", k)
	}
	out, _, err = run("list")
	if err != nil || !strings.Contains(out, k.ID) || !strings.Contains(out, "active") || !strings.Contains(out, "stories,glm-4") {
		t.Errorf("list: %v\n%s", err, out)
	}
	if out, _, err = run("revoke", k.ID); err != nil || !strings.Contains(out, "revoked "+k.ID) {
		t.Errorf("revoke: %v %s", err, out)
	}
	if out, _, _ = run("list"); strings.Contains(out, k.ID) {
		t.Errorf("revoked key listed without --all:\n%s", out)
	}
	if out, _, _ = run("list", "--all"); !strings.Contains(out, "revoked") {
		t.Errorf("list --all:\n%s", out)
	}
	if _, _, err = run("revoke", "key_nope"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("revoke unknown: %v", err)
	}

	// A wrong admin key is refused with the server's message.
	cmd := keysCmd()
	cmd.SetArgs([]string{"list", "--url", ts.URL, "--admin-key", "wrong"})
	cmd.SetOut(io.Discard)
	if err := cmd.ExecuteContext(context.Background()); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("wrong admin key: %v", err)
	}
}
