package runner

import (
	"context"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"

	"github.com/open-autoglm/autoglm/internal/engine/model"
	"github.com/open-autoglm/autoglm/internal/engine/sample"
)

// genChoices runs req and splits the events by choice.
func genChoices(t *testing.T, r *Runner, req Request) ([]string, [][]Event, Outcome) {
	t.Helper()
	var out Outcome
	req.Outcome = &out
	n := max(1, req.N)
	texts := make([]string, n)
	events := make([][]Event, n)
	if _, err := r.Generate(context.Background(), req, func(ev Event) error {
		texts[ev.Index] += ev.Text
		events[ev.Index] = append(events[ev.Index], ev)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return texts, events, out
}

// TestChoicesComputePromptOnce: n = 3 computes the prompt in one sequence only, and each
// seeded choice is the generation a single request with that choice's seed makes, so the
// copied cache is the prompt's.
func TestChoicesComputePromptOnce(t *testing.T) {
	var mu sync.Mutex
	prefill := 0
	r := openHooked(t, Options{ContextLength: 512, Parallel: 4}, func(batch []*model.Seq) {
		mu.Lock()
		defer mu.Unlock()
		for _, s := range batch {
			if len(s.Tokens) > 1 || s.Cache.Len() == 0 {
				prefill += len(s.Tokens)
			}
		}
	})
	prompt := encode(r, "Once upon a time")
	req := Request{Prompt: prompt, MaxTokens: 24, N: 3, Sample: sample.Params{Temperature: 1, TopP: 1, Seed: 40}}
	texts, _, out := genChoices(t, r, req)
	if prefill != len(prompt) {
		t.Errorf("%d prompt tokens computed for n=3, want %d (once)", prefill, len(prompt))
	}
	if len(out.Choices) != 3 {
		t.Fatalf("outcome has %d choices", len(out.Choices))
	}
	for i := range 3 {
		alone := gen(r, Request{Prompt: prompt, MaxTokens: 24, Sample: sample.Params{Temperature: 1, TopP: 1, Seed: 40 + int64(i)}})
		if alone.err != nil {
			t.Fatal(alone.err)
		}
		if texts[i] != alone.text {
			t.Errorf("choice %d = %q\nalone with seed %d = %q", i, texts[i], 40+i, alone.text)
		}
		if out.Choices[i].CompletionTokens != alone.res.CompletionTokens || out.Choices[i].FinishReason != alone.res.FinishReason {
			t.Errorf("choice %d outcome %+v, alone %+v", i, out.Choices[i], alone.res)
		}
	}
	if texts[0] == texts[1] && texts[1] == texts[2] {
		t.Error("three seeded choices are identical")
	}
	// Greedy choices are all the documented continuation.
	texts, _, _ = genChoices(t, r, Request{Prompt: prompt, N: 2, MaxTokens: 60, Sample: sample.Params{Temperature: 0}})
	for i, s := range texts {
		if !strings.HasPrefix(s, storiesContinuation) || s != texts[0] {
			t.Errorf("greedy choice %d = %q", i, s)
		}
	}
}

// TestLogprobs checks the generated tokens' logprobs against the prompt logprobs of the
// same text computed in one prefill: two code paths, one distribution.
func TestLogprobs(t *testing.T) {
	r := openStories(t, Options{PrefillChunk: 5})
	prompt := encode(r, "Once upon a time")
	_, events, _ := genChoices(t, r, Request{Prompt: prompt, MaxTokens: 12, Logprobs: true, TopLogprobs: 3, Sample: sample.Params{Temperature: 0}})
	evs := events[0]
	if len(evs) != 12 {
		t.Fatalf("%d events", len(evs))
	}
	full := append([]int32(nil), prompt...)
	for _, ev := range evs {
		if len(ev.Top) != 3 || ev.Top[0].Token != ev.Token || ev.Top[0].Logprob != ev.Logprob {
			t.Fatalf("greedy token %d (logprob %v) is not the top one: %+v", ev.Token, ev.Logprob, ev.Top)
		}
		if !(ev.Top[0].Logprob >= ev.Top[1].Logprob && ev.Top[1].Logprob >= ev.Top[2].Logprob) || ev.Logprob > 0 {
			t.Fatalf("top logprobs out of order or positive: %+v", ev.Top)
		}
		var p float64
		for _, tl := range ev.Top {
			p += math.Exp(float64(tl.Logprob))
		}
		if p > 1.0001 {
			t.Fatalf("top probabilities sum to %v", p)
		}
		full = append(full, ev.Token)
	}
	_, _, out := genChoices(t, r, Request{Prompt: full, MaxTokens: 1, PromptLogprobs: true, Sample: sample.Params{Temperature: 0}})
	if len(out.PromptLogprobs) != len(full)-1 {
		t.Fatalf("%d prompt logprobs for %d tokens", len(out.PromptLogprobs), len(full))
	}
	for i, ev := range evs {
		pl := out.PromptLogprobs[len(prompt)-1+i]
		if pl.Token != ev.Token || math.Abs(float64(pl.Logprob-ev.Logprob)) > 1e-3 {
			t.Errorf("token %d: decoded logprob %v, prompt logprob %+v", i, ev.Logprob, pl)
		}
	}
}

func TestChoicesValidation(t *testing.T) {
	r := openStories(t, Options{Parallel: 2})
	prompt := encode(r, "Once")
	for _, req := range []Request{{Prompt: prompt, N: 3}, {Prompt: prompt, N: -1}, {Prompt: prompt, Logprobs: true, TopLogprobs: 21}} {
		if _, err := r.Generate(context.Background(), req, nil); !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("%+v: %v, want ErrInvalidRequest", req, err)
		}
	}
}
