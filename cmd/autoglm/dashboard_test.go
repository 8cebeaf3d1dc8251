package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metricsql"
	"github.com/open-autoglm/autoglm/internal/config"
	"github.com/open-autoglm/autoglm/internal/mockllm"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

const dashboardFile = "../../deploy/grafana/autoglm.json"

// dashboardQueries returns every PromQL expression of the dashboard (panel targets, panels
// nested in collapsed rows) and every metric a template variable's label_values query names.
func dashboardQueries(t *testing.T, data []byte) (exprs []string, varMetrics []string) {
	t.Helper()
	type target struct {
		Expr string `json:"expr"`
	}
	type panel struct {
		ID      int      `json:"id"`
		Type    string   `json:"type"`
		Title   string   `json:"title"`
		Targets []target `json:"targets"`
		Panels  []panel  `json:"panels"`
	}
	var d struct {
		UID        string  `json:"uid"`
		Panels     []panel `json:"panels"`
		Templating struct {
			List []struct {
				Type       string `json:"type"`
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	if d.UID == "" {
		t.Error("dashboard has no uid: importing it twice would make two copies")
	}
	ids := map[int]string{}
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if prev, ok := ids[p.ID]; ok {
				t.Errorf("panel id %d used by %q and %q", p.ID, prev, p.Title)
			}
			ids[p.ID] = p.Title
			if p.Type != "row" && len(p.Targets) == 0 {
				t.Errorf("panel %q has no query", p.Title)
			}
			for _, tg := range p.Targets {
				exprs = append(exprs, tg.Expr)
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	labelValues := regexp.MustCompile(`^label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,`)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		m := labelValues.FindStringSubmatch(v.Definition)
		if m == nil {
			t.Errorf("template variable query %q is not label_values(metric, label)", v.Definition)
			continue
		}
		varMetrics = append(varMetrics, m[1])
	}
	return exprs, varMetrics
}

// grafanaVars stands in for Grafana's variables so that an expression parses as PromQL.
var grafanaVars = strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$model", "m")

// metricNames parses expr as PromQL and returns the metric names its selectors name.
func metricNames(expr string) ([]string, error) {
	e, err := metricsql.Parse(grafanaVars.Replace(expr))
	if err != nil {
		return nil, err
	}
	var names []string
	var unnamed bool
	metricsql.VisitAll(e, func(x metricsql.Expr) {
		me, ok := x.(*metricsql.MetricExpr)
		if !ok {
			return
		}
		for _, lfs := range me.LabelFilterss {
			if len(lfs) == 0 || lfs[0].Label != "__name__" || lfs[0].IsRegexp || lfs[0].IsNegative {
				unnamed = true
				continue
			}
			names = append(names, lfs[0].Value)
		}
	})
	if unnamed {
		return names, errors.New("a selector without a literal metric name")
	}
	return names, nil
}

func TestMetricNames(t *testing.T) {
	got, err := metricNames(`histogram_quantile(0.9, sum by (le) (rate(a_bucket{model=~"$model"}[$__rate_interval]))) / b{x="1"} + on() c`)
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(got)
	if strings.Join(got, ",") != "a_bucket,b,c" {
		t.Errorf("names %v", got)
	}
	if _, err := metricNames(`rate(x[5m]`); err == nil {
		t.Error("an unbalanced expression parsed")
	}
	if _, err := metricNames(`{__name__=~"autoglm_.*"}`); err == nil {
		t.Error("a selector by name pattern was accepted: it can name no metric the test can check")
	}
}

// TestDashboardMetricsExported starts the server as serve runs it (cache, authentication,
// rate limits, usage records, code checks on), sends it traffic, and checks that every metric
// the dashboard queries is in its /metrics, so the dashboard cannot drift from the server.
func TestDashboardMetricsExported(t *testing.T) {
	data, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	exprs, varMetrics := dashboardQueries(t, data)
	if len(exprs) < 20 {
		t.Fatalf("only %d queries in the dashboard", len(exprs))
	}
	wanted := map[string][]string{} // metric → the expressions that use it
	for _, e := range exprs {
		names, err := metricNames(e)
		if err != nil {
			t.Errorf("%s: %v", e, err)
			continue
		}
		if len(names) == 0 {
			t.Errorf("%s: names no metric", e)
		}
		for _, n := range names {
			wanted[n] = append(wanted[n], e)
		}
	}
	for _, n := range varMetrics {
		wanted[n] = append(wanted[n], "template variable")
	}

	exported := scrapeServer(t)
	var missing []string
	for n, uses := range wanted {
		if !exported[n] {
			missing = append(missing, n+" (in "+uses[0]+")")
		}
	}
	sort.Strings(missing)
	for _, m := range missing {
		t.Errorf("the dashboard queries a metric the server does not export: %s", m)
	}
}

// scrapeServer runs serve with most features on in front of a mock upstream, sends it a chat
// request twice (the second a cache hit) and a code check, and returns the sample names of
// its /metrics: a histogram family X gives X_bucket, X_sum and X_count.
func scrapeServer(t *testing.T) map[string]bool {
	t.Helper()
	up := httptest.NewServer(mockllm.New(mockllm.Options{Tokens: 4}))
	t.Cleanup(up.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // serve listens on it itself
	cfg, err := config.Parse([]byte(`
server: {addr: "`+addr+`"}
log: {level: error}
models:
  - name: m
    backends: [{type: openai, base_url: `+up.URL+`/v1}]
  - name: stories
    backends: [{type: local, path: ../../models/stories260K.gguf, context_length: 256, parallel: 2}]
auth: {enabled: true}
cache: {enabled: true}
ratelimit:
  roles:
    user: {requests_per_minute: 1000}
`), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	const key = "dashboard-test-admin-key-0123456789"
	t.Setenv(adminKeyEnv, key)
	// serve sets these for itself when they are unset; keep the test process's own.
	t.Setenv("GOGC", "100")
	t.Setenv("GOMEMLIMIT", "off")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, "test", t.TempDir(), false, serveFlags{}) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("serve did not stop")
		}
	})
	base := "http://" + addr
	do := func(method, path, body string) (int, []byte) {
		t.Helper()
		req, err := http.NewRequest(method, base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, []byte(err.Error())
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		if st, _ := do("GET", "/readyz", ""); st == http.StatusOK {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("serve stopped: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("server not ready")
		}
		time.Sleep(20 * time.Millisecond)
	}
	chat := `{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":4,"temperature":0}`
	for range 2 {
		if st, b := do("POST", "/v1/chat/completions", chat); st != http.StatusOK {
			t.Fatalf("chat: %d %s", st, b)
		}
	}
	// A stream (time to first token, inter-token latency) and the local engine's figures.
	if st, b := do("POST", "/v1/chat/completions", `{"model":"m","stream":true,"messages":[{"role":"user","content":"stream"}]}`); st != http.StatusOK {
		t.Fatalf("streamed chat: %d %s", st, b)
	}
	if st, b := do("POST", "/v1/completions", `{"model":"stories","prompt":"Once upon a time","max_tokens":4}`); st != http.StatusOK {
		t.Fatalf("local completion: %d %s", st, b)
	}
	if st, b := do("POST", "/v1/code/check", `{"language":"python","code":"print(1\n"}`); st != http.StatusOK {
		t.Fatalf("code check: %d %s", st, b)
	}
	// Usage records are written in batches: wait until the first is counted.
	var families map[string]*dto.MetricFamily
	for deadline := time.Now().Add(10 * time.Second); ; {
		st, b := do("GET", "/metrics", "")
		if st != http.StatusOK {
			t.Fatalf("/metrics: %d %s", st, b)
		}
		p := expfmt.NewTextParser(model.UTF8Validation)
		families, err = p.TextToMetricFamilies(strings.NewReader(string(b)))
		if err != nil {
			t.Fatalf("/metrics: %v", err)
		}
		if _, ok := families["autoglm_model_requests_total"]; ok || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	names := map[string]bool{}
	for n, f := range families {
		if len(f.GetMetric()) == 0 {
			continue
		}
		names[n] = true
		switch f.GetType() {
		case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
			names[n+"_bucket"], names[n+"_sum"], names[n+"_count"] = true, true, true
		case dto.MetricType_SUMMARY:
			names[n+"_sum"], names[n+"_count"] = true, true
		}
	}
	return names
}
