package plugin_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/open-autoglm/autoglm/internal/plugin"
)

// mark is a test plugin that leaves its mark: it appends Tag to the system message before
// the request and to the answer after it, and can answer, fail, panic, stall or drop chunks.
type mark struct {
	cfg struct {
		Tag   string `yaml:"tag"`
		Reply string `yaml:"reply"`
		Panic string `yaml:"panic"` // hook name to panic in
		Fail  bool   `yaml:"fail"`
		Stall bool   `yaml:"stall"`
		Drop  string `yaml:"drop"` // chunks whose text holds this are dropped
		Upper bool   `yaml:"upper"`
		// Hooks, when set, lists the hooks the plugin reports through plugin.HookSet.
		Hooks []string `yaml:"hooks"`
	}
}

// Hooks implements plugin.HookSet.
func (m *mark) Hooks() (request, response, chunk bool) {
	if m.cfg.Hooks == nil {
		return true, true, true
	}
	return slices.Contains(m.cfg.Hooks, "request"), slices.Contains(m.cfg.Hooks, "response"), slices.Contains(m.cfg.Hooks, "chunk")
}

// cleanups counts Cleanup calls of mark plugins.
var cleanups atomic.Int64

func init() {
	plugin.Register(plugin.Info{ID: "test.mark", New: func() plugin.Plugin { return new(mark) }})
}

func (m *mark) Provision(_ context.Context, s plugin.Section, _ plugin.Env) error {
	return s.Decode(&m.cfg)
}

// Blocking gives the stalling hook a context that ends at its time limit.
func (m *mark) Blocking() bool { return m.cfg.Stall }

func (m *mark) Cleanup() error {
	cleanups.Add(1)
	return nil
}

func (m *mark) OnRequest(ctx context.Context, c *plugin.Call) error {
	switch {
	case m.cfg.Panic == "request":
		panic("boom")
	case m.cfg.Fail:
		return errors.New("internal detail that must not reach the client")
	case m.cfg.Stall:
		<-ctx.Done()
		return ctx.Err()
	case m.cfg.Reply != "":
		c.Reply(m.cfg.Reply)
		return nil
	}
	if m.cfg.Tag != "" {
		s, _ := c.Req.System()
		c.Req.SetSystem(s + m.cfg.Tag)
	}
	return nil
}

func (m *mark) OnResponse(_ context.Context, _ *plugin.Call, r *plugin.Response) error {
	if m.cfg.Panic == "response" {
		panic("boom")
	}
	for i := range r.Choices {
		r.Choices[i].Text += strings.ToLower(m.cfg.Tag)
	}
	return nil
}

func (m *mark) OnChunk(_ context.Context, _ *plugin.Call, ch *plugin.Chunk) error {
	if m.cfg.Panic == "chunk" {
		panic("boom")
	}
	if m.cfg.Drop != "" && strings.Contains(ch.Text, m.cfg.Drop) {
		ch.Drop = true
	}
	if m.cfg.Upper {
		ch.Text = strings.ToUpper(ch.Text)
	}
	if ch.End && m.cfg.Tag != "" {
		ch.Text += strings.ToLower(m.cfg.Tag)
	}
	return nil
}

func TestOrderBeforeAndAfter(t *testing.T) {
	g := startGateway(t, `
plugins:
  - {type: test.mark, name: a, config: {tag: A}}
  - {type: test.mark, name: b, config: {tag: B}}
`)
	g.up.setReply("answer ")
	status, doc := g.call(t, "/v1/chat/completions", `{"model":"glm-4","messages":[{"role":"user","content":"hi"}]}`)
	if status != 200 {
		t.Fatalf("status %d: %v", status, doc)
	}
	if diff := cmp.Diff([][2]string{{"system", "AB"}, {"user", "hi"}}, messages(g.up.last(t))); diff != "" {
		t.Errorf("request hooks run in order (-want +got):\n%s", diff)
	}
	if got := answerText(t, doc); got != "answer ba" {
		t.Errorf("response hooks run in reverse: got %q, want %q", got, "answer ba")
	}
}

// TestHookSetLeavesHooksOut: a plugin that reports only some hooks through HookSet (as a
// Wasm module whose configure names its hooks does) is not called for the others.
func TestHookSetLeavesHooksOut(t *testing.T) {
	g := startGateway(t, `
plugins:
  - {type: test.mark, name: a, config: {tag: A, hooks: [request]}}
  - {type: test.mark, name: b, config: {tag: B, hooks: [response, chunk]}}
`)
	g.up.setReply("answer ")
	status, doc := g.call(t, "/v1/chat/completions", `{"model":"glm-4","messages":[{"role":"user","content":"hi"}]}`)
	if status != 200 {
		t.Fatalf("status %d: %v", status, doc)
	}
	if diff := cmp.Diff([][2]string{{"system", "A"}, {"user", "hi"}}, messages(g.up.last(t))); diff != "" {
		t.Errorf("only a's request hook runs (-want +got):\n%s", diff)
	}
	if got := answerText(t, doc); got != "answer b" {
		t.Errorf("answer %q, want only b's response hook: %q", got, "answer b")
	}
	status, text, _ := g.stream(t, "/v1/chat/completions", `{"model":"glm-4","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
	if status != 200 || text != "answer b" {
		t.Errorf("stream: status %d, text %q, want only b's chunk hook", status, text)
	}
}

func TestReplyRunsEarlierResponseHooks(t *testing.T) {
	g := startGateway(t, `
plugins:
  - {type: test.mark, name: a, config: {tag: A}}
  - {type: test.mark, name: canned, config: {reply: "canned "}}
  - {type: test.mark, name: c, config: {tag: C}}
`)
	status, doc := g.call(t, "/v1/chat/completions", `{"model":"glm-4","messages":[{"role":"user","content":"hi"}]}`)
	if status != 200 {
		t.Fatalf("status %d: %v", status, doc)
	}
	if got := answerText(t, doc); got != "canned a" {
		t.Errorf("answer %q, want the reply with a's response hook only: %q", got, "canned a")
	}
	if g.up.count() != 0 {
		t.Error("a replied request reached the upstream")
	}
	// Streamed, the reply arrives as chunks, and a's end-of-stream text after it.
	status, text, _ := g.stream(t, "/v1/chat/completions", `{"model":"glm-4","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
	if status != 200 || text != "canned a" {
		t.Errorf("stream: status %d, text %q", status, text)
	}
}

func TestFailurePolicies(t *testing.T) {
	for _, tc := range []struct {
		name, cfg  string
		wantStatus int
		wantCode   string
	}{
		{"panic fails the request", `{type: test.mark, config: {panic: request}}`, 500, "plugin_failed"},
		{"error fails the request", `{type: test.mark, config: {fail: true}}`, 500, "plugin_failed"},
		{"panic in a response hook fails it", `{type: test.mark, config: {panic: response}}`, 500, "plugin_failed"},
		{"time limit", `{type: test.mark, timeout: 20ms, config: {stall: true}}`, 504, "plugin_timeout"},
		{"skip on panic", `{type: test.mark, on_error: skip, config: {panic: request}}`, 200, ""},
		{"skip on time limit", `{type: test.mark, on_error: skip, timeout: 20ms, config: {stall: true}}`, 200, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := startGateway(t, "plugins:\n  - "+tc.cfg+"\n")
			for range 2 { // the server keeps serving after a failure
				status, doc := g.call(t, "/v1/chat/completions", `{"model":"glm-4","messages":[{"role":"user","content":"hi"}]}`)
				if status != tc.wantStatus {
					t.Fatalf("status %d, want %d: %v", status, tc.wantStatus, doc)
				}
				code, msg := errorCode(doc)
				if code != tc.wantCode {
					t.Errorf("code %q, want %q", code, tc.wantCode)
				}
				if strings.Contains(msg, "boom") || strings.Contains(msg, "internal detail") {
					t.Errorf("the client saw the internal cause: %q", msg)
				}
				if tc.wantCode != "" && !strings.Contains(msg, "test.mark") {
					t.Errorf("message %q does not name the plugin", msg)
				}
			}
		})
	}
}

func TestChunkHooks(t *testing.T) {
	g := startGateway(t, `
plugins:
  - {type: test.mark, name: up, config: {upper: true, tag: "!"}}
  - {type: test.mark, name: drop, config: {drop: "x"}}
`)
	g.up.setReply("abcxyzdef")
	status, text, pieces := g.stream(t, "/v1/chat/completions", `{"model":"glm-4","stream":true,"messages":[{"role":"user","content":"q"}]}`)
	if status != 200 {
		t.Fatalf("status %d: %s", status, text)
	}
	// Pieces of 3: "abc" "xyz" "def"; drop runs first (reverse order) and removes "xyz";
	// up upper-cases the rest and adds "!" at the end of the stream.
	if text != "ABCDEF!" {
		t.Errorf("text %q (pieces %q), want %q", text, pieces, "ABCDEF!")
	}
	// Completions stream their text in "text".
	status, text, _ = g.stream(t, "/v1/completions", `{"model":"glm-4","stream":true,"prompt":"q"}`)
	if status != 200 || text != "ABCDEF!" {
		t.Errorf("completion stream: status %d, text %q", status, text)
	}
}

func TestPanicInChunkHookEndsOnlyThatStream(t *testing.T) {
	g := startGateway(t, `
plugins:
  - {type: test.mark, config: {panic: chunk}}
`)
	g.up.setReply("abcdef")
	resp, err := httpPost(g.URL+"/v1/chat/completions", `{"model":"glm-4","stream":true,"messages":[{"role":"user","content":"q"}]}`)
	if err == nil {
		// The stream breaks off: no [DONE].
		if strings.Contains(resp, "[DONE]") {
			t.Errorf("a stream whose chunk hook panicked ended normally: %q", resp)
		}
	}
	// The server still answers.
	g2status, _ := g.call(t, "/v1/completions", `{"model":"glm-4","prompt":"q"}`)
	if g2status != 200 {
		t.Errorf("after the panic the server answered %d", g2status)
	}
}

func TestRetiredChainCleanedUpAfterInFlightStream(t *testing.T) {
	g := startGateway(t, `
plugins:
  - {type: test.mark, name: old, config: {tag: O}}
`)
	g.up.setReply("abcdefghijkl")
	g.up.gap = 30 * time.Millisecond
	before := cleanups.Load()
	done := make(chan string)
	go func() {
		_, text, _ := g.streamNoT(`{"model":"glm-4","stream":true,"messages":[{"role":"user","content":"q"}]}`)
		done <- text
	}()
	// Wait until the stream is under way, then replace the chain.
	deadline := time.Now().Add(5 * time.Second)
	for g.up.count() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cfg := parseConfig(t, models+`
plugins:
  - {type: test.mark, name: new, config: {tag: N}}
`, "http://127.0.0.1:1/v1")
	if err := g.manager.Load(context.Background(), cfg.Plugins); err != nil {
		t.Fatal(err)
	}
	if n := cleanups.Load() - before; n != 0 {
		t.Errorf("the old chain was cleaned up while a stream used it (%d cleanups)", n)
	}
	text := <-done
	if text != "abcdefghijklo" {
		t.Errorf("the stream in flight got %q, want it whole with the old chain's end mark", text)
	}
	// The client has its [DONE] before the server's handler returns and lets the
	// old chain go, so wait for the cleanup rather than expect it at once.
	deadline = time.Now().Add(5 * time.Second)
	for cleanups.Load()-before < 1 && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
	}
	if n := cleanups.Load() - before; n != 1 {
		t.Errorf("cleanups after the stream closed: %d, want 1", n)
	}
	g.up.gap = 0
	_, doc := g.call(t, "/v1/chat/completions", `{"model":"glm-4","messages":[{"role":"user","content":"q"}]}`)
	if got := answerText(t, doc); got != "abcdefghijkln" {
		t.Errorf("a new request got %q, want the new chain's mark", got)
	}
}

func TestBuildErrors(t *testing.T) {
	for _, tc := range []struct{ cfg, want string }{
		{`{type: nosuch}`, `plugins[0].type: unknown plugin type "nosuch"`},
		{`{type: test.mark, config: {tga: A}}`, `plugins[0] (test.mark): config: line 2: unknown key "tga"`},
		{`{type: redact, config: {detectors: [iban]}}`, `unknown detector "iban"`},
		{`{type: deny, config: {}}`, `set words or patterns`},
		{`{type: rules, config: {rules: [{match: {time: "25:00-26:00"}, refuse: x}]}}`, `match.time`},
		{`{type: instructions, config: {rules: [{system: "{{.User"}]}}`, `system:`},
		{`{type: max_tokens, config: {max: -1}}`, `must not be negative`},
	} {
		cfg := parseConfig(t, "plugins:\n  - "+tc.cfg+"\n", "")
		before := cleanups.Load()
		_, err := plugin.Build(context.Background(), cfg.Plugins, plugin.BuildOptions{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.cfg, err, tc.want)
		}
		if strings.Contains(tc.cfg, "test.mark") && cleanups.Load() == before {
			t.Errorf("%s: a plugin that failed to provision was not cleaned up", tc.cfg)
		}
	}
}
