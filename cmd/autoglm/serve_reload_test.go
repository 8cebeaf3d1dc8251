package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/open-autoglm/autoglm/internal/config"
	"github.com/open-autoglm/autoglm/internal/mockllm"
	"github.com/open-autoglm/autoglm/internal/modelstore"
	"github.com/open-autoglm/autoglm/internal/ratelimit"
	"github.com/open-autoglm/autoglm/internal/router"
	"github.com/open-autoglm/autoglm/internal/telemetry"
	"github.com/open-autoglm/autoglm/internal/testenv"
)

func (p *serveProc) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// logRecords returns the log records whose message starts with msg.
func (p *serveProc) logRecords(msg string) []map[string]any {
	var out []map[string]any
	for line := range strings.SplitSeq(p.logs.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil {
			if m, _ := rec["msg"].(string); strings.HasPrefix(m, msg) {
				out = append(out, rec)
			}
		}
	}
	return out
}

// models lists the names /v1/models answers.
func (p *serveProc) models(t *testing.T) []string {
	t.Helper()
	var list struct{ Data []struct{ ID string } }
	call(t, "GET", p.URL+"/v1/models", "", nil, &list)
	var out []string
	for _, m := range list.Data {
		out = append(out, m.ID)
	}
	return out
}

// chat asks model for a short answer and returns the status and the body.
func (p *serveProc) chat(t *testing.T, model string) (int, string) {
	t.Helper()
	resp, err := http.Post(p.URL+"/v1/chat/completions", "application/json",
		strings.NewReader(`{"model":"`+model+`","max_tokens":3,"messages":[{"role":"user","content":"hi"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// poll waits (generously: reloads are quick, the machine may be slow) until cond holds.
func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// gatedStream is an upstream that answers every chat request with a stream of three chunks,
// the last two only once the test releases them.
type gatedStream struct {
	release chan struct{}
	started chan struct{}
}

func (g *gatedStream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	if r.URL.Path != "/v1/chat/completions" {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"object":"list","data":[]}`)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	chunk := func(s string) {
		fmt.Fprintf(w, "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"up\",\"choices\":[{\"index\":0,\"delta\":{\"content\":%q}}]}\n\n", s)
		w.(http.Flusher).Flush()
	}
	chunk("alpha ")
	select {
	case g.started <- struct{}{}:
	default:
	}
	select {
	case <-g.release:
	case <-r.Context().Done():
		return
	}
	chunk("beta ")
	chunk("gamma")
	_, _ = io.WriteString(w, "data: [DONE]\n\n")
	w.(http.Flusher).Flush()
}

// TestServeReloadsConfiguration runs a real `autoglm serve --config FILE` and changes the
// file under it: a model added by the file watch alone, one added with SIGHUP, an invalid
// file refused with the old models still answering, and a stream that runs across a reload
// removing its backend, which ends intact.
func TestServeReloadsConfiguration(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an autoglm serve process")
	}
	mock := httptest.NewServer(mockllm.New(mockllm.Options{Tokens: 3}))
	defer mock.Close()
	gate := &gatedStream{release: make(chan struct{}), started: make(chan struct{}, 1)}
	slowUp := httptest.NewServer(gate)
	defer slowUp.Close()
	defer close(gate.release) // a failing test must not leave the upstream handler waiting

	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "autoglm.yaml")
	model := func(name, url string) string {
		return fmt.Sprintf("  - name: %s\n    timeouts: {idle: 5m, ttft: 1m}\n    backends:\n      - {type: openai, base_url: %q}\n", name, url+"/v1")
	}
	write := func(body string) {
		t.Helper()
		// Written beside and renamed, as editors and config managers do, so that the watch
		// never reads half a file.
		tmp := cfgPath + ".tmp"
		if err := os.WriteFile(tmp, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, cfgPath); err != nil {
			t.Fatal(err)
		}
	}
	hup := func(p *serveProc) {
		t.Helper()
		if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	base := "models:\n" + model("m1", mock.URL) + model("slow", slowUp.URL)
	write(base)
	p := startServe(t, cfgPath, t.TempDir())
	if got := p.models(t); !slices.Contains(got, "m1") || !slices.Contains(got, "slow") || slices.Contains(got, "m2") {
		t.Fatalf("models at start: %v", got)
	}

	// (4) The file watch alone picks up an added model.
	cfg2 := base + model("m2", mock.URL)
	write(cfg2)
	poll(t, "the watch to add m2", func() bool { return slices.Contains(p.models(t), "m2") })
	if code, body := p.chat(t, "m2"); code != 200 {
		t.Fatalf("m2 after the watch reload: %d %s", code, body)
	}

	// (1) SIGHUP: a model added and answering, and the reload logged as the signal's.
	cfg3 := cfg2 + model("m3", mock.URL)
	write(cfg3)
	hup(p)
	poll(t, "SIGHUP to add m3", func() bool { return slices.Contains(p.models(t), "m3") })
	if code, body := p.chat(t, "m3"); code != 200 {
		t.Fatalf("m3 after SIGHUP: %d %s", code, body)
	}
	poll(t, "the signal's reload to be logged", func() bool {
		for _, r := range p.logRecords("configuration reloaded") {
			if r["trigger"] == "signal" {
				return true
			}
		}
		return false
	})

	// (2) An invalid file with SIGHUP is refused: the process stays up, the models in force
	// answer, and the log names the fault.
	write(cfg3 + "  - name: m4\n    backends:\n      - {type: openai, base_url: \"not a url\"}\n")
	hup(p)
	var refusal map[string]any
	poll(t, "the refusal to be logged", func() bool {
		if rs := p.logRecords("configuration refused"); len(rs) > 0 {
			refusal = rs[0]
			return true
		}
		return false
	})
	if msg, _ := refusal["err"].(string); !strings.Contains(msg, "models[4].backends[0].base_url") {
		t.Errorf("the refusal does not say why: %v", refusal)
	}
	if !p.alive() {
		t.Fatal("serve exited on an invalid configuration")
	}
	for _, m := range []string{"m1", "m2", "m3"} {
		if code, body := p.chat(t, m); code != 200 {
			t.Fatalf("%s after the refused reload: %d %s", m, code, body)
		}
	}
	if got := p.models(t); slices.Contains(got, "m4") {
		t.Fatalf("a model of the refused file is listed: %v", got)
	}
	resp, err := http.Get(p.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`autoglm_config_reloads_total{result="refused"} 1`, "autoglm_config_last_reload_success_timestamp_seconds "} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// (3) A stream in flight across a reload that takes its model's backend away ends intact;
	// the next request goes to the new backend.
	sresp, err := http.Post(p.URL+"/v1/chat/completions", "application/json",
		strings.NewReader(`{"model":"slow","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	defer sresp.Body.Close()
	if sresp.StatusCode != 200 {
		b, _ := io.ReadAll(sresp.Body)
		t.Fatalf("stream: %d %s", sresp.StatusCode, b)
	}
	<-gate.started
	reloadsBefore := len(p.logRecords("configuration reloaded"))
	write("models:\n" + model("m1", mock.URL) + model("slow", mock.URL) + model("m2", mock.URL) + model("m3", mock.URL))
	hup(p)
	poll(t, "the reload that moves slow", func() bool { return len(p.logRecords("configuration reloaded")) > reloadsBefore })
	if code, body := p.chat(t, "slow"); code != 200 || strings.Contains(body, "alpha") {
		t.Fatalf("slow after the reload: %d %s", code, body)
	}
	gate.release <- struct{}{}
	body, err := io.ReadAll(sresp.Body)
	if err != nil {
		t.Fatalf("the stream broke: %v\n%s", err, body)
	}
	var text strings.Builder
	for line := range strings.SplitSeq(string(body), "\n") {
		d, ok := strings.CutPrefix(line, "data: ")
		if !ok || d == "[DONE]" {
			continue
		}
		var c struct {
			Choices []struct{ Delta struct{ Content string } }
		}
		if json.Unmarshal([]byte(d), &c) == nil && len(c.Choices) > 0 {
			text.WriteString(c.Choices[0].Delta.Content)
		}
	}
	if text.String() != "alpha beta gamma" || !strings.Contains(string(body), "data: [DONE]") {
		t.Fatalf("the stream across the reload: %q\n%s", text.String(), body)
	}
}

// TestReloaderSections: one reload puts every reloadable section in force together (models,
// plugins, rate limits, log level) and names what needs a restart; a file that fails in any
// section is refused whole, a model it would have added included.
func TestReloaderSections(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	file := filepath.Join(dir, "autoglm.yaml")
	const one = "  - name: m1\n    backends: [{type: openai, base_url: \"http://127.0.0.1:9/v1\"}]\n"
	const two = "  - name: m2\n    backends: [{type: openai, base_url: \"http://127.0.0.1:9/v1\"}]\n"
	writeFile := func(s string) {
		t.Helper()
		if err := os.WriteFile(file, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeFile("server: {addr: \"127.0.0.1:8080\"}\nlog: {level: info}\nratelimit:\n  roles: {user: {requests_per_minute: 5}}\nmodels:\n" + one)
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	logs := &testenv.LogBuffer{}
	level := new(slog.LevelVar)
	log := telemetry.NewLogger(logs, level)
	reg, err := router.New(cfg.Models)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	plug, err := startPlugins(ctx, cfg, file, reg, log)
	if err != nil {
		t.Fatal(err)
	}
	defer plug.Close()
	lim, err := ratelimit.New(cfg.RateLimit, ratelimit.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer lim.Close()
	rl := newReloader(file, cfg, serveFlags{Level: level}, log, reg, plug, lim, &modelstore.Store{Dir: dir})
	subject := ratelimit.Subject{KeyID: "k", Role: "user"}

	writeFile("server: {addr: \"127.0.0.1:9090\"}\nlog: {level: debug}\nratelimit:\n  roles: {user: {requests_per_minute: 50}}\n" +
		"plugins:\n  - type: max_tokens\n    config: {max: 10}\nmodels:\n" + one + two)
	if !rl.Reload(ctx, "test", false) {
		t.Fatalf("the reload failed:\n%s", logs.String())
	}
	if _, ok := reg.Lookup("m2"); !ok {
		t.Error("m2 was not added")
	}
	if got := plug.manager.Names(); len(got) != 1 || got[0] != "max_tokens" {
		t.Errorf("plugins in force: %v", got)
	}
	if k, _ := lim.Limits(subject); k.RequestsPerMinute != 50 {
		t.Errorf("limits in force: %+v", k)
	}
	if level.Level() != slog.LevelDebug {
		t.Errorf("log level %v", level.Level())
	}
	if !strings.Contains(logs.String(), `"needs_restart":["server.addr"]`) {
		t.Errorf("the log does not name the setting that needs a restart:\n%s", logs.String())
	}
	if rl.Reload(ctx, "test", false) {
		t.Error("an unchanged file was reloaded by the watch")
	}

	// Models would change, but the plugin section is bad: nothing changes.
	writeFile("server: {addr: \"127.0.0.1:9090\"}\nlog: {level: warn}\nratelimit:\n  roles: {user: {requests_per_minute: 7}}\n" +
		"plugins:\n  - type: max_tokens\n    config: {maximum: 10}\nmodels:\n" + one + two +
		"  - name: m3\n    backends: [{type: openai, base_url: \"http://127.0.0.1:9/v1\"}]\n")
	if rl.Reload(ctx, "test", false) {
		t.Fatal("a file with a bad plugin section was put in force")
	}
	if _, ok := reg.Lookup("m3"); ok {
		t.Error("a refused file added a model")
	}
	if k, _ := lim.Limits(subject); k.RequestsPerMinute != 50 || level.Level() != slog.LevelDebug {
		t.Errorf("a refused file changed limits (%+v) or the level (%v)", k, level.Level())
	}
	if !strings.Contains(logs.String(), "configuration refused") || !strings.Contains(logs.String(), "maximum") {
		t.Errorf("the refusal does not say why:\n%s", logs.String())
	}
	if got := testutil.ToFloat64(rl.reloads.WithLabelValues("refused")); got != 1 {
		t.Errorf("refused reloads counted: %v", got)
	}
	if got := testutil.ToFloat64(rl.reloads.WithLabelValues("ok")); got != 1 {
		t.Errorf("successful reloads counted: %v", got)
	}

	// A removed file is reported once by the watch, not at every check, and changes nothing.
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if rl.Reload(ctx, "watch", false) {
			t.Fatal("a missing file was put in force")
		}
	}
	if got := testutil.ToFloat64(rl.reloads.WithLabelValues("refused")); got != 2 {
		t.Errorf("refusals counted with the file missing: %v, want 2", got)
	}
	if _, ok := reg.Lookup("m2"); !ok {
		t.Error("a missing file removed the models")
	}
}
