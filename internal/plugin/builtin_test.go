package plugin_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestInstructionsThroughServer(t *testing.T) {
	g := startGateway(t, `
plugins:
  - type: instructions
    config:
      rules:
        - match: {models: ["glm-4"]}
          system: "You answer for {{.Model}} on {{.Date}} for team {{.Metadata.team}}."
        - match: {headers: {X-Tone: formal}}
          prefix: "Formally: "
          suffix: " (be brief)"
`)
	today := time.Now().UTC().Format("2006-01-02")
	status, doc := g.call(t, "/v1/chat/completions",
		`{"model":"glm-4","metadata":{"team":"search"},"messages":[{"role":"system","content":"Be kind."},{"role":"user","content":"hi"}]}`,
		"X-Tone", "formal")
	if status != 200 {
		t.Fatalf("status %d: %v", status, doc)
	}
	want := [][2]string{
		{"system", "You answer for glm-4 on " + today + " for team search.\n\nBe kind."},
		{"user", "Formally: hi (be brief)"},
	}
	if diff := cmp.Diff(want, messages(g.up.last(t))); diff != "" {
		t.Errorf("upstream messages (-want +got):\n%s", diff)
	}
	// Another model, no header: nothing is added.
	g.call(t, "/v1/chat/completions", `{"model":"glm-small","messages":[{"role":"user","content":"hi"}]}`)
	if diff := cmp.Diff([][2]string{{"user", "hi"}}, messages(g.up.last(t))); diff != "" {
		t.Errorf("unmatched request was changed (-want +got):\n%s", diff)
	}
	// Anthropic Messages are translated to chat before the chain: the same rule applies.
	req := `{"model":"glm-4","max_tokens":50,"metadata":{"user_id":"u1"},"messages":[{"role":"user","content":"hey"}]}`
	resp, err := httpPost(g.URL+"/v1/messages", req)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(resp, "hey") {
		t.Errorf("messages answer %s", resp)
	}
	if got := messages(g.up.last(t)); len(got) == 0 || got[0][0] != "system" || !strings.HasPrefix(got[0][1], "You answer for glm-4") {
		t.Errorf("an Anthropic Messages request did not get the system prompt: %v", got)
	}
}

func TestRedactBothWays(t *testing.T) {
	g := startGateway(t, `
plugins:
  - type: redact
    config:
      patterns:
        - {name: employee, regex: 'EMP-\d{6}', replacement: "[EMPLOYEE]"}
`)
	g.up.setReply("Sure. Mail jane.doe@example.com or call +1 415-555-0132; card 4111 1111 1111 1111, not 4111 1111 1111 1112. SSN 123-45-6789, ID 11010519491231002X, staff EMP-123456.")
	const want = "Sure. Mail [EMAIL] or call [PHONE]; card [CARD], not 4111 1111 1111 1112. SSN [SSN], ID [ID], staff [EMPLOYEE]."
	status, doc := g.call(t, "/v1/chat/completions",
		`{"model":"glm-4","messages":[{"role":"user","content":"I am bob@corp.io, card 5555555555554444"}]}`)
	if status != 200 {
		t.Fatalf("status %d: %v", status, doc)
	}
	if got := messages(g.up.last(t)); got[0][1] != "I am [EMAIL], card [CARD]" {
		t.Errorf("the upstream got %q", got[0][1])
	}
	if got := answerText(t, doc); got != want {
		t.Errorf("answer\n got %q\nwant %q", got, want)
	}
	// Streamed in 3-byte pieces, every match is split across chunks: the held-back tail
	// still catches them, and no piece carries a fragment of one.
	for _, piece := range []int{1, 3, 7} {
		g.up.mu.Lock()
		g.up.piece = piece
		g.up.mu.Unlock()
		status, text, pieces := g.stream(t, "/v1/chat/completions", `{"model":"glm-4","stream":true,"messages":[{"role":"user","content":"q"}]}`)
		if status != 200 {
			t.Fatalf("status %d: %s", status, text)
		}
		if text != want {
			t.Errorf("piece %d: stream\n got %q\nwant %q", piece, text, want)
		}
		for _, p := range pieces {
			for _, frag := range []string{"@example", "555-0132", "1111 1111 1111 1111", "45-6789", "EMP-1"} {
				if strings.Contains(p, frag) {
					t.Errorf("piece %d: a chunk carried %q: %q", piece, frag, p)
				}
			}
		}
	}
	// Completions too.
	status, doc = g.call(t, "/v1/completions", `{"model":"glm-4","prompt":"x"}`)
	if status != 200 || answerText(t, doc) != want {
		t.Errorf("completion: %d %q", status, answerText(t, doc))
	}
}

func TestDenyList(t *testing.T) {
	g := startGateway(t, `
plugins:
  - type: deny
    config:
      words: ["project falcon"]
      patterns: ['secret-\d+']
      message: "That topic is off limits."
`)
	status, doc := g.call(t, "/v1/chat/completions", `{"model":"glm-4","messages":[{"role":"user","content":"Tell me about Project  Falcon"}]}`)
	if status != 200 {
		t.Fatalf("two spaces are not the phrase: status %d", status)
	}
	status, doc = g.call(t, "/v1/chat/completions", `{"model":"glm-4","messages":[{"role":"user","content":"Tell me about PROJECT FALCON now"}]}`)
	code, msg := errorCode(doc)
	if status != 400 || code != "request_refused" || msg != "That topic is off limits." {
		t.Errorf("refusal: %d %q %q", status, code, msg)
	}
	n := g.up.count()
	g.call(t, "/v1/completions", `{"model":"glm-4","prompt":"leak secret-42"}`)
	if g.up.count() != n {
		t.Error("a refused completion reached the upstream")
	}
	g.up.setReply("the code is secret-1234 ok")
	g.up.piece = 2
	_, doc = g.call(t, "/v1/chat/completions", `{"model":"glm-4","messages":[{"role":"user","content":"hi"}]}`)
	if got := answerText(t, doc); got != "the code is *** ok" {
		t.Errorf("answer %q", got)
	}
	_, text, _ := g.stream(t, "/v1/chat/completions", `{"model":"glm-4","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
	if text != "the code is *** ok" {
		t.Errorf("stream %q", text)
	}
}

func TestMaxTokensClamp(t *testing.T) {
	g := startGateway(t, `
plugins:
  - type: max_tokens
    config: {max: 100, default: 40, models: [{model: "glm-small", max: 10}]}
`)
	for _, tc := range []struct {
		body string
		want map[string]float64
	}{
		{`{"model":"glm-4","max_tokens":500,"messages":[{"role":"user","content":"x"}]}`, map[string]float64{"max_tokens": 100}},
		{`{"model":"glm-4","max_tokens":50,"messages":[{"role":"user","content":"x"}]}`, map[string]float64{"max_tokens": 50}},
		{`{"model":"glm-4","messages":[{"role":"user","content":"x"}]}`, map[string]float64{"max_tokens": 40}},
		{`{"model":"glm-small","max_completion_tokens":64,"messages":[{"role":"user","content":"x"}]}`, map[string]float64{"max_completion_tokens": 10}},
		{`{"model":"glm-small","messages":[{"role":"user","content":"x"}]}`, map[string]float64{"max_tokens": 10}},
	} {
		if status, doc := g.call(t, "/v1/chat/completions", tc.body); status != 200 {
			t.Fatalf("%s: %d %v", tc.body, status, doc)
		}
		got := g.up.last(t)
		for k, v := range tc.want {
			if got[k] != v {
				t.Errorf("%s: upstream %s = %v, want %v", tc.body, k, got[k], v)
			}
		}
	}
}

func TestRules(t *testing.T) {
	g := startGateway(t, `
plugins:
  - type: rules
    config:
      rules:
        - name: blocked tenant
          match: {metadata: {tenant: "blocked-*"}}
          refuse: "This tenant is suspended."
        - name: long prompts go to the small model
          match: {min_prompt_len: 40}
          route: glm-small
          set: {temperature: 0}
        - name: cautious
          match: {headers: {X-Audience: kids}}
          clamp: {temperature: {max: 0.5}, top_p: {min: 0.1, max: 0.9}}
          inject: {system: "Keep it suitable for children."}
          stop: true
        - match: {}
          inject: {suffix: " [end]"}
`)
	status, doc := g.call(t, "/v1/chat/completions", `{"model":"glm-4","metadata":{"tenant":"blocked-7"},"messages":[{"role":"user","content":"x"}]}`)
	if code, msg := errorCode(doc); status != 400 || code != "request_refused" || msg != "This tenant is suspended." {
		t.Errorf("refuse: %d %q %q", status, code, msg)
	}
	status, doc = g.call(t, "/v1/chat/completions", `{"model":"glm-4","temperature":0.9,"messages":[{"role":"user","content":"`+strings.Repeat("long ", 10)+`"}]}`)
	up := g.up.last(t)
	if status != 200 || up["model"] != "up-glm-small" || up["temperature"] != 0.0 {
		t.Errorf("route: %d, upstream model %v temperature %v", status, up["model"], up["temperature"])
	}
	if got := messages(up); got[len(got)-1][1] != strings.Repeat("long ", 10)+" [end]" {
		t.Errorf("the catch-all rule did not add its suffix: %q", got)
	}
	status, _ = g.call(t, "/v1/chat/completions", `{"model":"glm-4","temperature":1.4,"top_p":0.01,"messages":[{"role":"user","content":"x"}]}`, "X-Audience", "kids")
	up = g.up.last(t)
	if status != 200 || up["temperature"] != 0.5 || up["top_p"] != 0.1 || up["model"] != "up-glm-4" {
		t.Errorf("clamp: %d temperature %v top_p %v model %v", status, up["temperature"], up["top_p"], up["model"])
	}
	if diff := cmp.Diff([][2]string{{"system", "Keep it suitable for children."}, {"user", "x"}}, messages(up)); diff != "" {
		t.Errorf("inject and stop (-want +got):\n%s", diff)
	}
}

func TestCodeTemplates(t *testing.T) {
	g := startGateway(t, `
plugins:
  - type: code_templates
    config:
      languages:
        python:
          system: "Write {{.Language}} 3.12 with type hints."
          prompt: "Task: {{.Prompt}}\nReturn one fenced block."
      default:
        system: "Write {{.Language}}."
`)
	g.call(t, "/v1/chat/completions", `{"model":"glm-4","metadata":{"code.language":"python"},"messages":[{"role":"system","content":"old"},{"role":"user","content":"sort a list"}]}`)
	want := [][2]string{{"system", "Write python 3.12 with type hints."}, {"user", "Task: sort a list\nReturn one fenced block."}}
	if diff := cmp.Diff(want, messages(g.up.last(t))); diff != "" {
		t.Errorf("python (-want +got):\n%s", diff)
	}
	g.call(t, "/v1/chat/completions", `{"model":"glm-4","metadata":{"code.language":"rust"},"messages":[{"role":"user","content":"sort"}]}`)
	if diff := cmp.Diff([][2]string{{"system", "Write rust."}, {"user", "sort"}}, messages(g.up.last(t))); diff != "" {
		t.Errorf("default (-want +got):\n%s", diff)
	}
	g.call(t, "/v1/chat/completions", `{"model":"glm-4","messages":[{"role":"user","content":"sort"}]}`)
	if diff := cmp.Diff([][2]string{{"user", "sort"}}, messages(g.up.last(t))); diff != "" {
		t.Errorf("no language: changed (-want +got):\n%s", diff)
	}
}
