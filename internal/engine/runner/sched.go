package runner

import (
	"fmt"
	"runtime/debug"
	"strings"
	"time"

	"github.com/open-autoglm/autoglm/internal/engine/model"
	"github.com/open-autoglm/autoglm/internal/engine/sample"
	"github.com/open-autoglm/autoglm/internal/engine/tokenizer"
)

// seq is a job holding a slot: everything the scheduler keeps per sequence.
// Only the scheduler goroutine touches it.
type seq struct {
	j        *job
	step     model.Seq // Cache, Tokens and Logits of the current step
	slot     *slot     // the KV cache held, step.Cache
	cached   int       // prompt tokens found in the cache when admitted
	fed      int       // prompt tokens already in the cache
	broken   bool      // a step failed: the cache's contents are unknown
	next     [1]int32  // the token to feed in the next decode step
	sampler  *sample.Sampler
	history  []int32 // prompt and generated tokens, for the penalties
	dec      *tokenizer.Decoder
	stop     stopper
	made     int  // tokens sampled
	finished bool // result delivered; leaves after this step
	index    int  // choice index (Request.N)
	extra    seqExtra
}

func (r *Runner) newSeq(j *job) *seq {
	s := &seq{
		j:       j,
		sampler: sample.New(choiceParams(j.req.Sample, 0)),
		history: append(make([]int32, 0, len(j.prompt)+16), j.prompt...),
		dec:     r.tok.NewDecoderWith(tokenizer.DecodeOptions{Continuation: true}),
		stop:    newStopper(j.req.Stop),
	}
	s.slot, s.cached = r.takeSlot(j.prompt)
	if j.admitted.IsZero() {
		j.admitted = time.Now()
		r.counters.admitted(s.cached)
	}
	if j.req.PromptLogprobs && s.cached > 0 {
		// Prompt logprobs need the logits of every prompt token: compute them all.
		s.slot.c.Truncate(0)
		s.slot.toks, s.cached = s.slot.toks[:0], 0
	}
	s.fed = s.cached
	s.step.Cache = s.slot.c
	r.initSeq(s)
	return s
}

// schedule is the scheduler goroutine: it admits waiting jobs into free
// slots, runs one forward step for all sequences holding a slot, and hands
// out the sampled tokens, until Close.
func (r *Runner) schedule() {
	defer close(r.done)
	var (
		active  []*seq
		batch   []*model.Seq
		members []*seq
	)
	drop := func(s *seq) {
		fed := s.history
		if s.broken {
			fed = nil
		}
		r.releaseSlot(s.slot, fed)
		s.step.Cache, s.slot = nil, nil
	}
	defer func() {
		// Closing: fail everything still queued or running.
		r.mu.Lock()
		waiting := r.waiting
		r.waiting = nil
		r.running = 0
		r.mu.Unlock()
		for _, j := range waiting {
			j.box.finish(Result{PromptTokens: len(j.prompt)}, ErrClosed)
		}
		for _, s := range active {
			s.j.box.finish(s.result(""), ErrClosed)
		}
	}()

	for {
		if r.runCtx.Err() != nil {
			return
		}
		// Sequences whose caller left go first, so that their slots are
		// free for this step's admissions.
		kept := active[:0]
		for _, s := range active {
			if s.j.abandoned() {
				drop(s)
				continue
			}
			kept = append(kept, s)
		}
		clear(active[len(kept):])
		active = kept
		active = r.admit(active)
		if len(active) == 0 {
			select {
			case <-r.wake:
			case <-r.runCtx.Done():
			}
			continue
		}

		forked, closing, err := r.step(active, &batch, &members)
		if closing {
			return
		}
		if err != nil {
			// A panic outside the model: the state of every sequence is
			// in doubt, so every sequence of this step fails and the scheduler
			// carries on with an empty slate.
			for _, s := range active {
				if !s.finished {
					s.j.box.finish(s.result(""), err)
					s.finished, s.broken = true, true
				}
			}
		}
		active = append(active, forked...)
		kept = active[:0]
		for _, s := range active {
			if s.finished {
				drop(s)
				continue
			}
			kept = append(kept, s)
		}
		clear(active[len(kept):])
		active = kept
		r.mu.Lock()
		r.running = len(active)
		r.mu.Unlock()
	}
}

// admit moves waiting jobs into free slots, first come first served,
// and discards queued jobs whose caller has already left (so that they do
// not count against QueueSize).
func (r *Runner) admit(active []*seq) []*seq {
	r.mu.Lock()
	if len(r.waiting) == 0 {
		r.running = len(active)
		r.mu.Unlock()
		return active
	}
	var admitted []*job
	rest := r.waiting[:0]
	for _, j := range r.waiting {
		switch {
		case j.abandoned():
		case slotsUsed(active, admitted)+j.n <= r.opt.Parallel:
			admitted = append(admitted, j)
		default:
			rest = append(rest, j)
		}
	}
	clear(r.waiting[len(rest):])
	r.waiting = rest
	r.running = len(active) + len(admitted)
	r.mu.Unlock()
	for _, j := range admitted {
		active = append(active, r.newSeq(j))
	}
	return active
}

// advance samples s's next token from the step's logits and delivers it.
func (r *Runner) advance(s *seq) {
	logits := lastRow(s.step.Logits, r.cfg.Vocab)
	r.beforeSample(s, logits)
	tok := s.sampler.Sample(logits, s.history)
	s.history = append(s.history, tok)
	s.made++
	r.counters.generated.Add(1)
	if s.j.firstToken.IsZero() {
		s.j.firstToken = time.Now()
	}
	r.afterSample(s, tok)

	if r.tok.IsEOG(tok) {
		// Release what was held back, as its own event on the EOG token.
		text, _ := s.stop.add(validUTF8(s.dec.Flush()))
		text += s.stop.flush()
		if text != "" {
			s.put(Event{Text: text, Token: tok})
		}
		s.finish("stop")
		return
	}
	text, stopped := s.stop.add(s.dec.Add(tok))
	if stopped {
		s.put(Event{Text: text, Token: tok})
		s.finish("stop")
		return
	}
	// The next step would feed tok at position Cache.Len().
	if s.made == s.j.req.MaxTokens || s.step.Cache.Len() >= s.step.Cache.Cap() {
		tail, stopped := s.stop.add(validUTF8(s.dec.Flush()))
		text += tail
		reason := "stop"
		if !stopped {
			text += s.stop.flush()
			reason = "length"
		}
		s.put(Event{Text: text, Token: tok})
		s.finish(reason)
		return
	}
	s.put(Event{Text: text, Token: tok})
	s.next[0] = tok
}

func (s *seq) finish(reason string) {
	s.j.choiceDone(s.index, s.result(reason))
	s.finished = true
}

func (s *seq) result(reason string) Result {
	return Result{PromptTokens: len(s.j.prompt), CachedTokens: s.cached, CompletionTokens: s.made, FinishReason: reason}
}

// validUTF8 replaces the bytes of a character cut short by the end of the
// generation, so that events are always valid UTF-8.
func validUTF8(s string) string {
	return strings.ToValidUTF8(s, "\uFFFD")
}

// step runs one forward step for the sequences holding a slot and hands out
// the sampled tokens; closing reports that the Runner is closing. A panic in
// it (a bug) is returned as an error wrapping ErrInternal instead of taking
// the process down.
func (r *Runner) step(active []*seq, batchp *[]*model.Seq, membersp *[]*seq) (forked []*seq, closing bool, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("%w: panic in the scheduler: %v\n%s", ErrInternal, v, debug.Stack())
		}
	}()
	batch, members := (*batchp)[:0], (*membersp)[:0]
	defer func() { *batchp, *membersp = batch, members }()
	// One step: every generating sequence feeds its last token; the
	// prompt budget goes to the sequences still prefilling, oldest
	// first (active is in admission order).
	budget := r.opt.PrefillChunk
	for _, s := range active {
		if rest := len(s.j.prompt) - s.fed; rest > 0 {
			if budget == 0 {
				continue
			}
			n := min(rest, budget)
			budget -= n
			s.step.Tokens = s.j.prompt[s.fed : s.fed+n]
			s.step.AllLogits = s.j.req.PromptLogprobs
		} else {
			s.step.Tokens = s.next[:]
			s.step.AllLogits = false
		}
		batch = append(batch, &s.step)
		members = append(members, s)
	}
	if r.beforeStep != nil {
		r.beforeStep(batch)
	}
	start := time.Now()
	err = r.m.Forward(r.runCtx, batch)
	r.counters.step(len(batch), time.Since(start))
	if err != nil {
		if r.runCtx.Err() != nil {
			return nil, true, nil
		}
		// Forward validates before doing any work, so this is a bug
		// (a panic in a kernel comes back as a *model.PanicError)
		// rather than a state to recover; fail the step's sequences
		// and keep serving the others.
		err = fmt.Errorf("%w: %w", ErrInternal, err)
		for _, s := range members {
			s.j.box.finish(s.result(""), err)
			s.finished, s.broken = true, true
		}
	} else {
		for _, s := range members {
			if s.fed < len(s.j.prompt) {
				if s.j.req.PromptLogprobs {
					r.notePromptLogprobs(s)
				}
				s.fed += len(s.step.Tokens)
				r.counters.prompt.Add(uint64(len(s.step.Tokens)))
				if s.fed < len(s.j.prompt) {
					continue
				}
				forked = append(forked, r.fork(s)...)
			}
			r.advance(s)
		}
	}
	return forked, false, nil
}
