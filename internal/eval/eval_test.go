package eval

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/open-autoglm/autoglm/internal/humanevalx"
)

// fakeModel answers HumanEval-X prompts with the canonical solution: first with its body cut
// in half (broken), and correctly when asked to repair. It counts requests.
func fakeModel(t *testing.T, lang string, probs []humanevalx.Problem) (*httptest.Server, *atomic.Int64) {
	byPrompt := map[string]humanevalx.Problem{}
	for _, p := range probs {
		byPrompt[p.Prompt] = p
	}
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		var req struct {
			Messages []chatMessage `json:"messages"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.Messages) < 2 {
			http.Error(w, "bad request", 400)
			return
		}
		p, ok := byPrompt[req.Messages[1].Content]
		if !ok {
			http.Error(w, "unknown prompt", 400)
			return
		}
		body := p.CanonicalSolution
		if len(req.Messages) == 2 { // the first answer: broken
			lines := strings.SplitAfter(strings.TrimRight(body, "\n"), "\n")
			body = strings.Join(lines[:len(lines)/2], "")
		}
		text := "```" + lang + "\n" + body + "\n```\n"
		_ = json.NewEncoder(w).Encode(map[string]any{
			"choices": []any{map[string]any{"message": map[string]string{"role": "assistant", "content": text}, "finish_reason": "stop"}},
			"usage":   map[string]int{"prompt_tokens": 10, "completion_tokens": len(strings.Fields(text))},
		})
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

// TestRunWithRepair runs the benchmark loop end to end against a model whose first answers are
// broken and whose repairs are right: parse rate and pass@1 go from 0 to 1 with repair.
func TestRunWithRepair(t *testing.T) {
	dir := humanevalx.TestDir(t)
	sb := needSandbox(t)
	probs, err := humanevalx.Load(dir, "js")
	if err != nil {
		t.Fatal(err)
	}
	srv, calls := fakeModel(t, "javascript", probs[:3])
	r := &Runner{URL: srv.URL, Model: "m", Language: "js", RepairRounds: 2, Sandbox: sb}
	rep, err := r.Run(context.Background(), dir, 3)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Errors != 0 || rep.ParseBefore != 0 || rep.ParseAfter != 1 || rep.PassAt1Before == nil || *rep.PassAt1Before != 0 || *rep.PassAt1After != 1 {
		b, _ := json.MarshalIndent(rep, "", " ")
		t.Fatalf("report %s", b)
	}
	if calls.Load() != 6 || rep.AddedTokens == 0 || rep.Regressions != 0 {
		t.Errorf("%d model calls (want 6: one answer and one repair each), added tokens %v, regressions %d", calls.Load(), rep.AddedTokens, rep.Regressions)
	}

	// Without repair: one call each, and the broken answers stay broken.
	calls.Store(0)
	r = &Runner{URL: srv.URL, Model: "m", Language: "js"}
	rep, err = r.Run(context.Background(), dir, 3)
	if err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 3 || rep.ParseAfter != 0 || rep.PassAt1Before != nil {
		t.Errorf("no repair: %d calls, parse after %v, pass@1 %v (no sandbox: not measured)", calls.Load(), rep.ParseAfter, rep.PassAt1Before)
	}
}
