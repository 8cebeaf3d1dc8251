// Package eval runs the HumanEval-X benchmark against an OpenAI-compatible endpoint: it asks the
// model for each problem's function, checks the answer with package codecheck, optionally
// repairs it the way code tasks do, and runs the problem's tests in the sandbox when the
// operator enabled one. It reports pass@1 with and without repair, the share of answers that
// parse before and after repair, regressions, and the latency and tokens repairs add.
package eval

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/open-autoglm/autoglm/internal/codecheck"
	"github.com/open-autoglm/autoglm/internal/humanevalx"
	"github.com/open-autoglm/autoglm/internal/sandbox"
)

// Runner runs the benchmark for one language.
type Runner struct {
	// URL is the endpoint's base URL (…/v1 is added when missing).
	URL    string
	APIKey string
	Model  string
	// Language is a dataset language: go, js, python, cpp, java, rust.
	Language string
	// RepairRounds > 0 repairs failing answers with up to that many rounds.
	RepairRounds int
	// MaxTokens per answer. Default 1024.
	MaxTokens int
	// Sandbox, when set and available, runs the tests. Without it pass@1 is not measured.
	Sandbox *sandbox.Sandbox
	// Concurrency is the number of problems in flight. Default 4.
	Concurrency int
	// Client is the HTTP client. Default: one with a 5-minute timeout.
	Client *http.Client
	// Progress, when set, is called after each problem with the count done.
	Progress func(done, total int)

	checker *codecheck.Checker
}

// Outcome is one problem's result.
type Outcome struct {
	TaskID string `json:"task_id"`
	// ParsedBefore/After: the assembled program passed its check before and after repair.
	ParsedBefore bool `json:"parsed_before"`
	ParsedAfter  bool `json:"parsed_after"`
	// PassedBefore/After: the tests passed (nil when tests were not run).
	PassedBefore *bool `json:"passed_before,omitempty"`
	PassedAfter  *bool `json:"passed_after,omitempty"`
	RepairRounds int   `json:"repair_rounds"`
	// Latency of the first answer and added by repairs, in milliseconds; tokens likewise.
	LatencyMS       int64  `json:"latency_ms"`
	RepairLatencyMS int64  `json:"repair_latency_ms"`
	Tokens          int    `json:"tokens"`
	RepairTokens    int    `json:"repair_tokens"`
	Error           string `json:"error,omitempty"`
}

// Report is the benchmark's summary.
type Report struct {
	Language string    `json:"language"`
	Model    string    `json:"model"`
	Problems int       `json:"problems"`
	Repair   bool      `json:"repair"`
	TestsRun bool      `json:"tests_run"`
	Errors   int       `json:"errors"`
	Outcomes []Outcome `json:"outcomes"`
	// Rates, in [0, 1]. Pass rates are pass@1 with one sample per problem, counted over all
	// problems; nil when tests were not run.
	ParseBefore   float64  `json:"parse_rate_before"`
	ParseAfter    float64  `json:"parse_rate_after"`
	PassAt1Before *float64 `json:"pass_at_1_before,omitempty"`
	PassAt1After  *float64 `json:"pass_at_1_after,omitempty"`
	// Regressions: problems whose tests passed before repair and failed after.
	Regressions int `json:"regressions"`
	// Mean added latency (ms) and tokens per problem from repairs, and their share of the
	// first answers' latency and tokens.
	AddedLatencyMS   float64 `json:"added_latency_ms_per_problem"`
	AddedTokens      float64 `json:"added_tokens_per_problem"`
	AddedLatencyRate float64 `json:"added_latency_share"`
	AddedTokensRate  float64 `json:"added_tokens_share"`
}

// Run runs the first n problems (all when n <= 0) of the dataset in dir.
func (r *Runner) Run(ctx context.Context, dir string, n int) (*Report, error) {
	probs, err := humanevalx.Load(dir, r.Language)
	if err != nil {
		return nil, err
	}
	if n > 0 && n < len(probs) {
		probs = probs[:n]
	}
	if r.MaxTokens <= 0 {
		r.MaxTokens = 1024
	}
	if r.Concurrency <= 0 {
		r.Concurrency = 4
	}
	if r.Client == nil {
		r.Client = &http.Client{Timeout: 5 * time.Minute}
	}
	r.checker = codecheck.New()
	tests := r.Sandbox != nil && r.Sandbox.Available() == nil
	if tests {
		if _, ok := TestSpec(r.Language, probs[0], ""); !ok {
			tests = false
		}
	}
	out := make([]Outcome, len(probs))
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		done int
		sem  = make(chan struct{}, r.Concurrency)
	)
	for i, p := range probs {
		wg.Go(func() {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				out[i] = Outcome{TaskID: p.TaskID, Error: ctx.Err().Error()}
				return
			}
			defer func() { <-sem }()
			out[i] = r.one(ctx, p, tests)
			mu.Lock()
			done++
			if r.Progress != nil {
				r.Progress(done, len(probs))
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return summarize(r, out, tests), nil
}

func summarize(r *Runner, out []Outcome, tests bool) *Report {
	rep := &Report{Language: r.Language, Model: r.Model, Problems: len(out), Repair: r.RepairRounds > 0, TestsRun: tests, Outcomes: out}
	var pb, pa, passB, passA, lat, rlat, tok, rtok float64
	for _, o := range out {
		if o.Error != "" {
			rep.Errors++
		}
		if o.ParsedBefore {
			pb++
		}
		if o.ParsedAfter {
			pa++
		}
		if o.PassedBefore != nil && *o.PassedBefore {
			passB++
		}
		if o.PassedAfter != nil && *o.PassedAfter {
			passA++
		}
		if o.PassedBefore != nil && o.PassedAfter != nil && *o.PassedBefore && !*o.PassedAfter {
			rep.Regressions++
		}
		lat += float64(o.LatencyMS)
		rlat += float64(o.RepairLatencyMS)
		tok += float64(o.Tokens)
		rtok += float64(o.RepairTokens)
	}
	n := float64(max(len(out), 1))
	rep.ParseBefore, rep.ParseAfter = pb/n, pa/n
	if tests {
		b, a := passB/n, passA/n
		rep.PassAt1Before, rep.PassAt1After = &b, &a
	}
	rep.AddedLatencyMS, rep.AddedTokens = rlat/n, rtok/n
	if lat > 0 {
		rep.AddedLatencyRate = rlat / lat
	}
	if tok > 0 {
		rep.AddedTokensRate = rtok / tok
	}
	return rep
}

// instruction is the system message of every request.
func instruction(lang string) string {
	name := map[string]string{"go": "Go", "js": "JavaScript", "python": "Python", "cpp": "C++", "java": "Java", "rust": "Rust"}[lang]
	return fmt.Sprintf("You are an expert %s programmer. Complete the function the user gives. Answer with the complete "+
		"function, its signature included, in a single fenced code block, and nothing else.", name)
}

func (r *Runner) one(ctx context.Context, p humanevalx.Problem, tests bool) Outcome {
	o := Outcome{TaskID: p.TaskID}
	lang := humanevalx.CheckerLanguage(r.Language)
	msgs := []chatMessage{{"system", instruction(r.Language)}, {"user", p.Prompt}}
	start := time.Now()
	ans, err := r.chat(ctx, msgs)
	o.LatencyMS = time.Since(start).Milliseconds()
	if err != nil {
		o.Error = err.Error()
		return o
	}
	o.Tokens = ans.tokens
	program := Assemble(r.Language, p, extract(ans.text, lang))
	check := r.checker.Check(ctx, codecheck.Request{Language: lang, Code: program, FinishReason: ans.finish})
	o.ParsedBefore = check.Status == codecheck.StatusPassed
	if tests {
		ok, _ := r.runTests(ctx, p, program)
		o.PassedBefore = &ok
	}
	best, bestCheck, bestText := program, check, ans.text
	for round := 1; round <= r.RepairRounds && bestCheck.Errors() > 0; round++ {
		rmsgs := append(append([]chatMessage(nil), msgs...), chatMessage{"assistant", bestText},
			chatMessage{"user", codecheck.RepairPrompt(lang, []string{best}, []codecheck.Result{bestCheck}, ans.finish == "length")})
		start := time.Now()
		rep, err := r.chat(ctx, rmsgs)
		o.RepairLatencyMS += time.Since(start).Milliseconds()
		o.RepairRounds = round
		if err != nil {
			break
		}
		o.RepairTokens += rep.tokens
		cand := Assemble(r.Language, p, extract(rep.text, lang))
		cc := r.checker.Check(ctx, codecheck.Request{Language: lang, Code: cand, FinishReason: rep.finish})
		if cc.Errors() < bestCheck.Errors() {
			best, bestCheck, bestText = cand, cc, rep.text
		}
	}
	o.ParsedAfter = bestCheck.Status == codecheck.StatusPassed
	if tests {
		after := *o.PassedBefore
		if best != program {
			after, _ = r.runTests(ctx, p, best)
		}
		o.PassedAfter = &after
	}
	return o
}

// extract returns the code of an answer: its first fenced block in the language (or any
// block), or the whole text when it has none.
func extract(text, lang string) string {
	var blocks []string
	var first string
	lines := strings.SplitAfter(text, "\n")
	for i := 0; i < len(lines); i++ {
		t := strings.TrimSpace(lines[i])
		if !strings.HasPrefix(t, "```") {
			continue
		}
		tag := codecheck.Canonical(strings.TrimPrefix(t, "```"))
		var b strings.Builder
		for i++; i < len(lines) && !strings.HasPrefix(strings.TrimSpace(lines[i]), "```"); i++ {
			b.WriteString(lines[i])
		}
		if first == "" {
			first = b.String()
		}
		if tag == lang || (lang == "javascript" && tag == "js") {
			blocks = append(blocks, b.String())
		}
	}
	if len(blocks) > 0 {
		return blocks[0]
	}
	if first != "" {
		return first
	}
	return text
}

// runTests runs the problem's tests against program in the sandbox.
func (r *Runner) runTests(ctx context.Context, p humanevalx.Problem, program string) (bool, string) {
	sp, ok := TestSpec(r.Language, p, program)
	if !ok {
		return false, "tests are not run for " + r.Language
	}
	if r.Language == "go" {
		sp.Env = append(sp.Env, "GOCACHE="+goCacheDir())
	}
	res, err := r.Sandbox.Run(ctx, sp)
	if err != nil {
		return false, err.Error()
	}
	out := string(res.Stdout) + string(res.Stderr)
	if res.TimedOut {
		out = "timed out\n" + out
	}
	if len(out) > 2000 {
		out = out[:2000]
	}
	return res.Passed(), out
}

// goCacheDir is the Go build cache shared by sandboxed test runs. It is under the temporary
// directory, which the sandbox's user can reach (a home directory may not be).
func goCacheDir() string {
	return filepath.Join(os.TempDir(), "autoglm-sandbox-gocache")
}

// GoCacheDir is the directory to bind writable into the sandbox for Go's tests.
func GoCacheDir() string { return goCacheDir() }

type chatMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

type chatAnswer struct {
	text, finish string
	tokens       int
}

func (r *Runner) chat(ctx context.Context, msgs []chatMessage) (chatAnswer, error) {
	body, _ := json.Marshal(map[string]any{"model": r.Model, "messages": msgs, "max_tokens": r.MaxTokens, "temperature": 0})
	url := strings.TrimRight(r.URL, "/")
	if !strings.HasSuffix(url, "/v1") {
		url += "/v1"
	}
	req, err := http.NewRequestWithContext(ctx, "POST", url+"/chat/completions", bytes.NewReader(body))
	if err != nil {
		return chatAnswer{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	if r.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+r.APIKey)
	}
	resp, err := r.Client.Do(req)
	if err != nil {
		return chatAnswer{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return chatAnswer{}, err
	}
	if resp.StatusCode/100 != 2 {
		return chatAnswer{}, fmt.Errorf("%s: %.300s", resp.Status, raw)
	}
	var cr struct {
		Choices []struct {
			Message struct {
				Content string `json:"content"`
			} `json:"message"`
			FinishReason string `json:"finish_reason"`
		} `json:"choices"`
		Usage *struct {
			CompletionTokens int `json:"completion_tokens"`
		} `json:"usage"`
	}
	if err := json.Unmarshal(raw, &cr); err != nil {
		return chatAnswer{}, fmt.Errorf("the endpoint's answer is not a chat completion: %w", err)
	}
	if len(cr.Choices) == 0 {
		return chatAnswer{}, errors.New("the endpoint answered no choices")
	}
	a := chatAnswer{text: cr.Choices[0].Message.Content, finish: cr.Choices[0].FinishReason}
	if cr.Usage != nil {
		a.tokens = cr.Usage.CompletionTokens
	}
	return a, nil
}
