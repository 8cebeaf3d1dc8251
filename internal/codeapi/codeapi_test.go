package codeapi_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/open-autoglm/autoglm/internal/codeapi"
	"github.com/open-autoglm/autoglm/internal/codecheck"
	"github.com/open-autoglm/autoglm/internal/config"
	"github.com/open-autoglm/autoglm/internal/router"
	"github.com/open-autoglm/autoglm/internal/server"
)

type envelope struct {
	Code    string           `json:"code"`
	Success bool             `json:"success"`
	Data    codecheck.Result `json:"data"`
	Message string           `json:"message"`
	TraceID string           `json:"trace_id"`
}

func TestCodeCheckRoute(t *testing.T) {
	cfg, err := config.Parse(nil, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	reg, err := router.New(cfg.Models, router.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	stats := &codecheck.Stats{}
	srv := server.New(cfg.Server, reg, slog.New(slog.DiscardHandler), codeapi.Routes(codecheck.New(), stats)...)
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	post := func(body string) (int, envelope, string) {
		t.Helper()
		resp, err := http.Post(ts.URL+"/v1/code/check", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var env envelope
		if err := json.Unmarshal(raw, &env); err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		return resp.StatusCode, env, string(raw)
	}

	status, env, raw := post(`{"language":"go","code":"package main\n\nfunc f() int { return \"x\" }\n"}`)
	if status != 200 || !env.Success || env.Data.Status != codecheck.StatusFailed || env.Data.Checker != "go/types" {
		t.Fatalf("failed Go: %d %s", status, raw)
	}
	if d := env.Data.Diagnostics[0]; d.Line != 3 || d.Severity != codecheck.SeverityError || !strings.Contains(d.Message, "cannot use") {
		t.Errorf("diagnostic %+v", d)
	}
	status, env, raw = post(`{"language":"py","code":"print('hi')\n"}`)
	if status != 200 || env.Data.Status != codecheck.StatusPassed || env.Data.Language != "python" {
		t.Fatalf("python: %d %s", status, raw)
	}
	status, env, raw = post(`{"language":"go","code":"package main\n","finish_reason":"length"}`)
	if status != 200 || !env.Data.Truncated || env.Data.Status != codecheck.StatusFailed {
		t.Fatalf("truncated: %d %s", status, raw)
	}
	status, env, raw = post(`{"language":"brainfuck","code":"+-"}`)
	if status != 200 || env.Data.Status != codecheck.StatusUnsupported {
		t.Fatalf("unsupported: %d %s", status, raw)
	}
	for _, bad := range []struct{ body, code string }{
		{`{"code":"x"}`, "invalid_language"},
		{`{"language":"go"}`, "invalid_code"},
		{`{"language":"go","code":"x","extra":1}`, "invalid_json"},
		{`not json`, "invalid_json"},
		{``, "invalid_json"},
	} {
		status, env, raw = post(bad.body)
		if status != 400 || env.Success || env.Code != bad.code || env.TraceID == "" {
			t.Errorf("%q: %d %s, want 400 %s in the envelope", bad.body, status, raw, bad.code)
		}
	}
	big := `{"language":"go","code":"` + strings.Repeat("a", codecheck.MaxCodeBytes+1) + `"}`
	if status, env, raw = post(big); status != 413 || env.Success {
		t.Errorf("oversized: %d %.200s", status, raw)
	}

	r := prometheus.NewRegistry()
	r.MustRegister(stats)
	if n := testutil.ToFloat64(collectorFor(t, r, "autoglm_code_checks_total", "go")); n != 2 {
		t.Errorf("go checks %v, want 2", n)
	}
	if n := testutil.ToFloat64(collectorFor(t, r, "autoglm_code_check_failures_total", "go")); n != 2 {
		t.Errorf("go failures %v, want 2", n)
	}
}

// collectorFor gathers one labelled counter from r as a collector testutil can read.
func collectorFor(t *testing.T, r *prometheus.Registry, name, lang string) prometheus.Collector {
	t.Helper()
	mfs, err := r.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.Metric {
			if m.Label[0].GetValue() == lang {
				c := prometheus.NewCounter(prometheus.CounterOpts{Name: "x"})
				c.Add(m.GetCounter().GetValue())
				return c
			}
		}
	}
	t.Fatalf("no %s{language=%q}", name, lang)
	return nil
}
