package runner

import (
	"fmt"
	"math"
	"sort"

	"github.com/open-autoglm/autoglm/internal/engine/sample"
	"github.com/open-autoglm/autoglm/internal/engine/tokenizer"
)

// Constraint restricts what a generation may sample, such as output that must follow a
// grammar. The runner asks it for one State per choice, in the scheduler goroutine.
type Constraint interface {
	NewState() ConstraintState
}

// ConstraintState follows one choice's output. Its methods run in the scheduler goroutine
// and must be quick: Mask runs once per generated token over the whole vocabulary.
type ConstraintState interface {
	// Mask sets the logits of the tokens that may not come next to -Inf. It must leave at
	// least one token (an end-of-generation token once the output is complete).
	Mask(logits []float32)
	// Accept advances the state past the sampled token.
	Accept(tok int32)
}

// Outcome is what a finished generation reports beyond Result (see Request.Outcome).
type Outcome struct {
	// Choices holds each choice's counts and finish reason, by index.
	Choices []ChoiceResult
	// PromptLogprobs holds, with Request.PromptLogprobs, the log-probability of prompt
	// tokens 1..n-1 given the tokens before them.
	PromptLogprobs []TokenLogprob
}

// ChoiceResult summarises one choice.
type ChoiceResult struct {
	CompletionTokens int
	FinishReason     string
}

// maxTopLogprobs is the most alternatives Request.TopLogprobs may ask for (OpenAI's limit).
const maxTopLogprobs = 20

// choices is a job's scheduler-only state for N > 1 and prompt logprobs.
type choices struct {
	n        int
	forked   bool
	left     int // choices still generating
	results  []ChoiceResult
	cached   int // prompt tokens the first choice found in a KV cache
	promptLP []TokenLogprob
}

// seqExtra is a sequence's scheduler-only state for logprobs and constraints.
type seqExtra struct {
	raw   []float32 // the step's logits before sampling changed them (for logprobs)
	state ConstraintState
}

func (j *job) initChoices() {
	j.n = max(1, j.req.N)
	j.left = j.n
	j.results = make([]ChoiceResult, j.n)
}

func (r *Runner) validateChoices(req Request) error {
	switch {
	case req.N < 0:
		return fmt.Errorf("%w: n must be at least 1", ErrInvalidRequest)
	case req.N > r.opt.Parallel:
		return fmt.Errorf("%w: n = %d exceeds the %d sequences this model decodes together", ErrInvalidRequest, req.N, r.opt.Parallel)
	case req.TopLogprobs < 0 || req.TopLogprobs > maxTopLogprobs:
		return fmt.Errorf("%w: top logprobs must be between 0 and %d", ErrInvalidRequest, maxTopLogprobs)
	}
	return nil
}

// choiceParams gives each choice its own seed, so that seeded choices differ from each
// other and are still reproducible.
func choiceParams(p sample.Params, index int) sample.Params {
	if p.Seed != 0 {
		p.Seed += int64(index)
	}
	return p
}

func (r *Runner) initSeq(s *seq) {
	if c := s.j.req.Constraint; c != nil {
		s.extra.state = c.NewState()
	}
}

// slotsUsed counts the slots held: a job waiting to fork holds one per choice.
func slotsUsed(active []*seq, admitted []*job) int {
	n := 0
	for _, s := range active {
		if !s.j.forked {
			n += s.j.n
		} else {
			n++
		}
	}
	for _, j := range admitted {
		n += j.n
	}
	return n
}

// fork is called once s has computed its whole prompt. For N > 1 it makes the other
// choices: each copies the prompt's cache and last logits and starts sampling at once.
func (r *Runner) fork(s *seq) []*seq {
	j := s.j
	if j.forked {
		return nil
	}
	j.forked = true
	if j.n == 1 {
		return nil
	}
	row := lastRow(s.step.Logits, r.cfg.Vocab)
	out := make([]*seq, 0, j.n-1)
	for i := 1; i < j.n; i++ {
		sib := &seq{
			j:       j,
			fed:     s.fed,
			sampler: sample.New(choiceParams(j.req.Sample, i)),
			history: append(make([]int32, 0, len(j.prompt)+16), j.prompt...),
			dec:     r.tok.NewDecoderWith(tokenizer.DecodeOptions{Continuation: true}),
			stop:    newStopper(j.req.Stop),
			index:   i,
		}
		sib.slot = r.forkSlot(s.slot)
		sib.step.Cache = sib.slot.c
		sib.step.Logits = append(sib.step.Logits[:0], row...)
		r.initSeq(sib)
		r.advance(sib)
		out = append(out, sib)
	}
	return out
}

// choiceDone records one choice's end, finishing the job when it was the last.
func (j *job) choiceDone(index int, res Result) {
	j.results[index] = ChoiceResult{CompletionTokens: res.CompletionTokens, FinishReason: res.FinishReason}
	if index == 0 {
		// The first choice computed the prompt; the others copied its cache.
		j.cached = res.CachedTokens
	}
	j.left--
	if j.left > 0 {
		return
	}
	total := Result{PromptTokens: len(j.prompt), CachedTokens: j.cached, FinishReason: j.results[0].FinishReason}
	for _, c := range j.results {
		total.CompletionTokens += c.CompletionTokens
	}
	if o := j.req.Outcome; o != nil {
		*o = Outcome{Choices: j.results, PromptLogprobs: j.promptLP}
	}
	j.box.finish(total, nil)
}

// put delivers an event of s's choice, with its logprobs when asked for.
func (s *seq) put(ev Event) {
	ev.Index = s.index
	if s.j.req.Logprobs && s.extra.raw != nil {
		ev.Logprob = logprobOf(s.extra.raw, ev.Token)
		if k := s.j.req.TopLogprobs; k > 0 {
			ev.Top = topLogprobs(s.extra.raw, k)
		}
	}
	s.j.box.put(ev)
}

// lastRow returns the last row of vocab logits (the whole buffer holds several rows when a
// prompt chunk asked for all of them).
func lastRow(logits []float32, vocab int) []float32 {
	n := len(logits) / vocab
	if n <= 1 {
		return logits[:vocab]
	}
	return logits[(n-1)*vocab : n*vocab]
}

// beforeSample keeps the raw logits for logprobs (sampling changes them in place) and
// applies the constraint's mask.
func (r *Runner) beforeSample(s *seq, logits []float32) {
	if s.j.req.Logprobs {
		s.extra.raw = append(s.extra.raw[:0], logits...)
		logSoftmax(s.extra.raw)
	}
	if s.extra.state != nil {
		s.extra.state.Mask(logits)
	}
}

func (r *Runner) afterSample(s *seq, tok int32) {
	if s.extra.state != nil {
		s.extra.state.Accept(tok)
	}
}

// notePromptLogprobs records, for a prompt chunk computed with all logits, the
// log-probability of each prompt token that the chunk's positions predict.
func (r *Runner) notePromptLogprobs(s *seq) {
	v := r.cfg.Vocab
	rows := len(s.step.Tokens)
	buf := make([]float32, v)
	for i := 0; i < rows; i++ {
		next := s.fed + i + 1 // the prompt position row i predicts
		if next >= len(s.j.prompt) {
			break
		}
		copy(buf, s.step.Logits[i*v:(i+1)*v])
		logSoftmax(buf)
		tok := s.j.prompt[next]
		s.j.promptLP = append(s.j.promptLP, TokenLogprob{Token: tok, Logprob: buf[tok]})
	}
}

// logSoftmax turns logits into log-probabilities in place.
func logSoftmax(x []float32) {
	m := float32(math.Inf(-1))
	for _, v := range x {
		if v > m {
			m = v
		}
	}
	var sum float64
	for _, v := range x {
		sum += math.Exp(float64(v - m))
	}
	lse := m + float32(math.Log(sum))
	for i := range x {
		x[i] -= lse
	}
}

func logprobOf(lp []float32, tok int32) float32 {
	if tok < 0 || int(tok) >= len(lp) {
		return float32(math.Inf(-1))
	}
	return lp[tok]
}

// topLogprobs returns the k most likely tokens, most likely first (ties by id).
func topLogprobs(lp []float32, k int) []TokenLogprob {
	k = min(k, len(lp))
	top := make([]TokenLogprob, 0, k+1)
	for i, v := range lp {
		if len(top) == k && v <= top[k-1].Logprob {
			continue
		}
		at := sort.Search(len(top), func(j int) bool { return top[j].Logprob < v })
		top = append(top, TokenLogprob{})
		copy(top[at+1:], top[at:])
		top[at] = TokenLogprob{Token: int32(i), Logprob: v}
		if len(top) > k {
			top = top[:k]
		}
	}
	return top
}

// Parallel returns the most sequences decoded together: the largest Request.N.
func (r *Runner) Parallel() int { return r.opt.Parallel }
