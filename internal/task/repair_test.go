package task

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/open-autoglm/autoglm/internal/codecheck"
	"github.com/open-autoglm/autoglm/internal/mockllm"
)

// Answers of the fixture model. Each task's prompt carries the marker of its fixture.
const (
	goBroken2 = "Here:\n```go\npackage main\n\nfunc Add(a, b int) int {\n\treturn a + c\n}\n\nfunc Sub(a, b int) int {\n\treturn a - d\n}\n```\n"
	goBroken1 = "```go\npackage main\n\nfunc Add(a, b int) int {\n\treturn a + b\n}\n\nfunc Sub(a, b int) int {\n\treturn a - d\n}\n```\n"
	goFixed   = "Fixed:\n```go\npackage main\n\nfunc Add(a, b int) int {\n\treturn a + b\n}\n\nfunc Sub(a, b int) int {\n\treturn a - b\n}\n```\n"
	goWorse   = "```go\npackage main\n\nfunc Add(a, b int) int {\n\treturn x + y + z\n}\n\nfunc Sub(a, b int) int {\n\treturn p - q\n}\n```\n"
)

const repairFixtures = `
fixtures:
  - marker: "FIXTURE fixed-on-retry"
    answers: [` + "%q, %q" + `]
  - marker: "FIXTURE broken-twice"
    answers: [` + "%q, %q, %q" + `]
  - marker: "FIXTURE gets-worse"
    answers: [` + "%q, %q, %q" + `]
  - marker: "FIXTURE passes"
    answers: [` + "%q" + `]
`

// recorder keeps the bodies of chat requests.
type recorder struct {
	mu     sync.Mutex
	bodies []string
	next   http.Handler
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	b, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	r.bodies = append(r.bodies, string(b))
	r.mu.Unlock()
	req.Body = io.NopCloser(bytes.NewReader(b))
	r.next.ServeHTTP(w, req)
}

func setupRepair(t *testing.T, codeYAML string) (*env, *codecheck.Stats, *recorder) {
	t.Helper()
	fx, err := mockllm.ParseFixtures([]byte(sprintfQ(repairFixtures, goBroken2, goFixed, goBroken2, goBroken2, goBroken1, goBroken1, goWorse, goFixed, goFixed)))
	if err != nil {
		t.Fatal(err)
	}
	stats := &codecheck.Stats{}
	rec := &recorder{}
	e := setupWith(t, mockllm.Options{}, "", func(sc *setupConfig) {
		sc.handler = func(m *mockllm.Server) http.Handler {
			rec.next = mockllm.WithFixtures(m, fx)
			return rec
		}
		sc.yaml = codeYAML
		sc.opts = func(o *Options) { o.Checker = codecheck.New(); o.CodeStats = stats }
	})
	return e, stats, rec
}

// sprintfQ fills %q verbs with Go-quoted strings, which YAML reads as double-quoted scalars.
func sprintfQ(format string, args ...string) string {
	var b strings.Builder
	i := 0
	for {
		j := strings.Index(format, "%q")
		if j < 0 {
			b.WriteString(format)
			return b.String()
		}
		b.WriteString(format[:j])
		b.WriteString(jsonQuote(args[i]))
		i++
		format = format[j+2:]
	}
}

func jsonQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func (e *env) runCode(t *testing.T, marker, extra string) Task {
	t.Helper()
	tk := e.submit(t, `{"model":"coder","language":"go","prompt":"Write Add and Sub. `+marker+`"`+extra+`}`)
	return e.wait(t, tk.ID, 30*time.Second, terminal)
}

func TestRepairFixedOnRetry(t *testing.T) {
	e, stats, rec := setupRepair(t, "")
	tk := e.runCode(t, "FIXTURE fixed-on-retry", "")
	if tk.Status != StatusSucceeded {
		t.Fatalf("status %s: %+v", tk.Status, tk.Error)
	}
	rep := tk.Result.Repair
	if rep == nil || rep.Rounds != 1 || rep.Kept != 1 || rep.Status != "passed" || len(rep.Errors) != 2 || rep.Errors[0] != 2 || rep.Errors[1] != 0 {
		t.Fatalf("repair %+v, want one round from 2 errors to 0", rep)
	}
	if !strings.Contains(tk.Result.Code[0].Code, "return a - b") || !strings.HasPrefix(tk.Result.Text, "Fixed:") {
		t.Errorf("result is not the repaired answer: %q", tk.Result.Text)
	}
	if len(tk.Result.Checks) != 1 || tk.Result.Checks[0].Status != codecheck.StatusPassed {
		t.Errorf("checks %+v", tk.Result.Checks)
	}
	if len(rep.PerRound) != 2 || rep.PerRound[1].CompletionTokens == 0 || rep.PerRound[1].PromptTokens <= rep.PerRound[0].PromptTokens {
		t.Errorf("per-round tokens %+v: the repair prompt must be longer than the first", rep.PerRound)
	}
	// Usage covers both calls.
	if u := tk.Result.Usage; u == nil || u.CompletionTokens != rep.PerRound[0].CompletionTokens+rep.PerRound[1].CompletionTokens {
		t.Errorf("usage %+v does not add up the rounds %+v", tk.Result.Usage, rep.PerRound)
	}
	// The repair request carried the original request, the previous answer and the marked
	// diagnostics.
	rec.mu.Lock()
	bodies := append([]string(nil), rec.bodies...)
	rec.mu.Unlock()
	var repairReq struct {
		Messages []Message `json:"messages"`
	}
	if len(bodies) != 2 || json.Unmarshal([]byte(bodies[1]), &repairReq) != nil || len(repairReq.Messages) != 4 {
		t.Fatalf("model requests %q", bodies)
	}
	msgs := repairReq.Messages
	if msgs[0].Role != "system" || !strings.Contains(msgs[1].Content, "FIXTURE fixed-on-retry") ||
		msgs[2].Role != "assistant" || msgs[2].Content != goBroken2 ||
		!strings.Contains(msgs[3].Content, ">> 4 | \treturn a + c") || !strings.Contains(msgs[3].Content, "undefined: c") {
		t.Errorf("repair request %+v", msgs)
	}
	// Live events show each round.
	evs := e.events(t, tk.ID)
	var phases []string
	for _, ev := range evs {
		if ev.Type == EventRepair {
			var re repairEvent
			if err := json.Unmarshal(ev.Data, &re); err != nil {
				t.Fatal(err)
			}
			phases = append(phases, re.Phase+":"+itoa(re.Round)+":"+itoa(re.Errors))
		}
	}
	if strings.Join(phases, " ") != "checked:0:2 started:1:2 checked:1:0" {
		t.Errorf("repair events %v", phases)
	}
	if got := gather(t, stats, "autoglm_code_repair_rounds_total", "go"); got != 1 {
		t.Errorf("repair rounds metric %v, want 1", got)
	}
}

func TestRepairBrokenTwice(t *testing.T) {
	e, _, _ := setupRepair(t, "")
	tk := e.runCode(t, "FIXTURE broken-twice", "")
	rep := tk.Result.Repair
	if tk.Status != StatusSucceeded || rep == nil {
		t.Fatalf("status %s repair %+v", tk.Status, rep)
	}
	// Default: 2 rounds. Round 1 repeats the answer (2 errors: not kept); round 2 has one
	// error (kept); the result still fails its check.
	if rep.Rounds != 2 || rep.Kept != 2 || rep.Status != "failed" || len(rep.Errors) != 3 || rep.Errors[1] != 2 || rep.Errors[2] != 1 {
		t.Fatalf("repair %+v", rep)
	}
	if tk.Result.Checks[0].Status != codecheck.StatusFailed || !strings.Contains(tk.Result.Code[0].Code, "return a + b") {
		t.Errorf("result %+v", tk.Result)
	}
}

func TestRepairThatGetsWorseIsNotKept(t *testing.T) {
	e, _, _ := setupRepair(t, "")
	tk := e.runCode(t, "FIXTURE gets-worse", `,"repair_rounds":1`)
	rep := tk.Result.Repair
	if tk.Status != StatusSucceeded || rep == nil {
		t.Fatalf("status %s repair %+v", tk.Status, rep)
	}
	if rep.Rounds != 1 || rep.Kept != 0 || rep.Errors[1] <= rep.Errors[0] || rep.Status != "failed" {
		t.Fatalf("repair %+v: the worse repair must not be kept", rep)
	}
	if !strings.Contains(tk.Result.Code[0].Code, "return a + b") || strings.Contains(tk.Result.Code[0].Code, "x + y") {
		t.Errorf("result is not the first answer: %q", tk.Result.Code[0].Code)
	}
}

func TestRepairRoundsLimits(t *testing.T) {
	e, _, _ := setupRepair(t, "code_check:\n  repair_rounds: 0\n  max_repair_rounds: 1\n")
	// Operator default 0: checked, never repaired.
	tk := e.runCode(t, "FIXTURE fixed-on-retry", "")
	if rep := tk.Result.Repair; rep == nil || rep.Rounds != 0 || rep.Status != "failed" || tk.Result.Checks[0].Status != codecheck.StatusFailed {
		t.Fatalf("repair %+v", tk.Result.Repair)
	}
	// A request may not exceed the operator's maximum.
	resp, env := do(t, "POST", e.URL+"/v1/generate/code", `{"model":"coder","language":"go","prompt":"x","repair_rounds":2}`)
	if resp.StatusCode != 400 || !strings.Contains(env.Message, "repair_rounds must be between 0 and 1") {
		t.Errorf("%d %+v", resp.StatusCode, env)
	}
	// check:false turns the checks off for one task.
	tk = e.runCode(t, "FIXTURE passes", `,"check":false`)
	if tk.Result.Repair != nil || tk.Result.Checks != nil {
		t.Errorf("checks ran with check:false: %+v", tk.Result)
	}
	// Chat tasks cannot ask for checks.
	resp, _ = do(t, "POST", e.URL+"/v1/tasks", `{"kind":"chat","model":"coder","input":{"messages":[]},"check":true}`)
	if resp.StatusCode != 400 {
		t.Errorf("chat task with check: %d", resp.StatusCode)
	}
}

func TestRepairPromptMarksFailingLines(t *testing.T) {
	c := codecheck.New()
	res := &Result{Text: goBroken1, Code: ExtractCode(goBroken1, "go")}
	s := &Service{checker: c}
	a := s.checkAnswer(context.Background(), res, "go")
	p := repairPrompt("go", a)
	for _, want := range []string{">> 8 | \treturn a - d", "   4 | \treturn a + b", "line 8, column 13: undefined: d", "single fenced code block tagged go", "complete corrected code"} {
		if !strings.Contains(p, want) {
			t.Errorf("repair prompt lacks %q:\n%s", want, p)
		}
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// events reads a finished task's event log.
func (e *env) events(t *testing.T, id string) []Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sse, _ := readSSE(t, ctx, e.URL+"/v1/task/"+id+"/events", 0, nil)
	out := make([]Event, 0, len(sse))
	for _, s := range sse {
		out = append(out, Event{Seq: s.ID, Type: s.Type, Data: json.RawMessage(s.Data)})
	}
	return out
}

func gather(t *testing.T, s *codecheck.Stats, name, lang string) float64 {
	t.Helper()
	ch := make(chan promMetric, 64)
	go func() { s.Collect(ch); close(ch) }()
	for m := range ch {
		if v, ok := metricValue(m, name, lang); ok {
			return v
		}
	}
	return 0
}
