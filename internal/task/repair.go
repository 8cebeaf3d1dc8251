package task

import (
	"context"
	"fmt"
	"time"

	"github.com/open-autoglm/autoglm/internal/codecheck"
	"github.com/open-autoglm/autoglm/internal/router"
)

// repairEvent is the data of a "repair" event. Phase "checked" reports the check of a round's
// answer (round 0: the first answer); phase "started" announces a repair request.
type repairEvent struct {
	Round  int    `json:"round"`
	Phase  string `json:"phase"`
	Errors int    `json:"errors"`
	// Kept is set on "checked" events of repair rounds: whether the repair is kept.
	Kept *bool `json:"kept,omitempty"`
	// Diagnostics of the answer checked (its errors first), at most a few.
	Diagnostics []string `json:"diagnostics,omitempty"`
	Tokens      int      `json:"tokens,omitempty"`
	DurationMS  int64    `json:"duration_ms,omitempty"`
}

// checksOn reports whether a code task's answer is checked.
func (s *Service) checksOn(sp Spec) bool {
	if s.checker == nil || s.codeCfg.Disabled {
		return false
	}
	return sp.Check == nil || *sp.Check
}

// repairRounds is the number of repair rounds a task may run.
func (s *Service) repairRounds(sp Spec) int {
	if sp.RepairRounds != nil {
		return *sp.RepairRounds
	}
	return s.codeCfg.Repair()
}

// answer is one round's answer with its checks.
type answer struct {
	res    *Result
	checks []codecheck.Result
	errors int
}

func (s *Service) checkAnswer(ctx context.Context, res *Result, lang string) answer {
	a := answer{res: res, checks: make([]codecheck.Result, 0, len(res.Code))}
	for _, b := range res.Code {
		l := b.Language
		if l == "" {
			l = lang
		}
		cr := s.checker.Check(ctx, codecheck.Request{Language: l, Code: b.Code, FinishReason: res.FinishReason})
		s.codeStats.ObserveCheck(cr)
		a.checks = append(a.checks, cr)
		a.errors += cr.Errors()
	}
	if len(res.Code) == 0 && res.FinishReason == "length" {
		// No block at all, cut off: nothing to check, but the answer is not whole.
		cr := s.checker.Check(ctx, codecheck.Request{Language: lang, Code: res.Text, FinishReason: res.FinishReason})
		a.errors += cr.Errors()
	}
	return a
}

// checkAndRepair checks the first answer of a code task and, while the best answer has errors
// and rounds remain, asks the model for a corrected one. It returns the best answer with its
// checks and the repair record; usage covers every round.
func (s *Service) checkAndRepair(ctx context.Context, m *router.Model, sp Spec, first *Result, firstDur time.Duration,
	backendName string, ev *emitter) (*Result, string, error) {
	best := s.checkAnswer(ctx, first, sp.Language)
	rec := &Repair{Errors: []int{best.errors}}
	rec.PerRound = append(rec.PerRound, roundOf(0, best, firstDur))
	_ = ev.event(ctx, EventRepair, repairEvent{Round: 0, Phase: "checked", Errors: best.errors, Diagnostics: topDiagnostics(best.checks)})
	total := usageOf(first)
	rounds := s.repairRounds(sp)
	for r := 1; r <= rounds && best.errors > 0; r++ {
		if ctx.Err() != nil {
			break
		}
		_ = ev.event(ctx, EventRepair, repairEvent{Round: r, Phase: "started", Errors: best.errors})
		msgs := append(codeMessages(sp), Message{Role: "assistant", Content: best.res.Text},
			Message{Role: "user", Content: repairPrompt(sp.Language, best)})
		body, err := chatBody(sp.Model, nil, msgs, sp.MaxTokens, sp.Temperature)
		if err != nil {
			return nil, backendName, err
		}
		start := time.Now()
		// A repair is not a fresh code prompt: no code.language, so code templates leave it be.
		res, be, err := s.streamChat(ctx, m, body, map[string]string{"route": "task", "task.kind": "code_repair"}, nil)
		if err != nil {
			// A failed repair call does not lose the answer already in hand.
			s.log.Warn("code repair round failed; keeping the best answer", "round", r, "err", err)
			break
		}
		backendName = be
		res.Code = ExtractCode(res.Text, sp.Language)
		if res.Code == nil {
			res.Code = []CodeBlock{}
		}
		a := s.checkAnswer(ctx, res, sp.Language)
		if len(a.res.Code) == 0 {
			a.errors = max(a.errors, best.errors) // an answer without code is no repair
		}
		rec.Rounds = r
		rec.Errors = append(rec.Errors, a.errors)
		rr := roundOf(r, a, time.Since(start))
		rec.PerRound = append(rec.PerRound, rr)
		total = addUsage(total, usageOf(res))
		kept := a.errors < best.errors
		if kept {
			best = a
			rec.Kept = r
		}
		_ = ev.event(ctx, EventRepair, repairEvent{Round: r, Phase: "checked", Errors: a.errors, Kept: &kept,
			Diagnostics: topDiagnostics(a.checks), Tokens: rr.CompletionTokens, DurationMS: rr.DurationMS})
	}
	s.codeStats.ObserveRepair(codecheck.Canonical(sp.Language), rec.Rounds)
	rec.Status = "passed"
	if best.errors > 0 {
		rec.Status = "failed"
	}
	out := *best.res
	out.Checks = best.checks
	out.Repair = rec
	out.Usage = total
	return &out, backendName, nil
}

func roundOf(r int, a answer, d time.Duration) RepairRound {
	rr := RepairRound{Round: r, Errors: a.errors, DurationMS: d.Milliseconds(), FinishReason: a.res.FinishReason}
	if u := a.res.Usage; u != nil {
		rr.PromptTokens, rr.CompletionTokens = u.PromptTokens, u.CompletionTokens
	}
	return rr
}

func usageOf(r *Result) *Usage {
	if r.Usage == nil {
		return nil
	}
	u := *r.Usage
	return &u
}

func addUsage(a, b *Usage) *Usage {
	if a == nil {
		return b
	}
	if b == nil {
		return a
	}
	return &Usage{PromptTokens: a.PromptTokens + b.PromptTokens, CompletionTokens: a.CompletionTokens + b.CompletionTokens,
		TotalTokens: a.TotalTokens + b.TotalTokens}
}

// topDiagnostics lists up to five error diagnostics of checks as text.
func topDiagnostics(checks []codecheck.Result) []string {
	var out []string
	for i, c := range checks {
		for _, d := range c.Diagnostics {
			if d.Severity == codecheck.SeverityError && len(out) < 5 {
				out = append(out, fmt.Sprintf("block %d: %s", i+1, d))
			}
		}
	}
	return out
}

// repairPrompt asks for a corrected answer (see codecheck.RepairPrompt).
func repairPrompt(lang string, a answer) string {
	codes := make([]string, len(a.res.Code))
	for i, b := range a.res.Code {
		codes[i] = b.Code
	}
	return codecheck.RepairPrompt(lang, codes, a.checks, a.res.FinishReason == "length")
}
