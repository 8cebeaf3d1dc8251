package runner

import (
	"context"
	"fmt"

	"github.com/open-autoglm/autoglm/internal/engine/model"
)

// Embed returns one embedding per input, in order: the final-norm hidden
// states of the input's positions, mean-pooled and L2-normalised (EmbeddingDim
// values of unit length). Each input is run on its own from position 0, with
// no BOS added; the caller decides the tokens. Consecutive inputs share a
// forward pass while their tokens total at most Options.PrefillChunk (an
// input longer than that gets a pass of its own).
//
// Embed runs in the calling goroutine beside the scheduler; the model
// serialises passes, so a running generation waits for at most one embedding
// pass per step. Errors are ErrInvalidRequest (an empty input, a token outside
// the vocabulary), ErrContextLength (an input longer than the context) and
// ErrClosed, wrapped, or ctx's error.
func (r *Runner) Embed(ctx context.Context, inputs [][]int32) ([][]float32, error) {
	for i, in := range inputs {
		switch {
		case len(in) == 0:
			return nil, fmt.Errorf("%w: input %d is empty", ErrInvalidRequest, i)
		case len(in) > r.cfg.ContextLength:
			return nil, fmt.Errorf("%w: input %d has %d tokens, the context has %d", ErrContextLength, i, len(in), r.cfg.ContextLength)
		}
		if err := r.checkTokens(in); err != nil {
			return nil, fmt.Errorf("input %d: %w", i, err)
		}
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, ErrClosed
	}
	r.users.Add(1)
	r.mu.Unlock()
	defer r.users.Done()

	// Close cancels runCtx; make it cancel this call's passes too.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(r.runCtx, cancel)()

	out := make([][]float32, len(inputs))
	var seqs []*model.Seq
	for i := 0; i < len(inputs); {
		seqs = seqs[:0]
		total := 0
		for i < len(inputs) && (len(seqs) == 0 || total+len(inputs[i]) <= r.opt.PrefillChunk) {
			seqs = append(seqs, &model.Seq{Cache: r.getCache(), Tokens: inputs[i], Embed: true})
			total += len(inputs[i])
			i++
		}
		err := r.m.Forward(ctx, seqs)
		for _, s := range seqs {
			r.putCache(s.Cache)
		}
		if err != nil {
			if r.runCtx.Err() != nil {
				return nil, ErrClosed
			}
			return nil, err
		}
		first := i - len(seqs)
		for k, s := range seqs {
			out[first+k] = s.Embedding
		}
	}
	return out, nil
}
