package runner

import (
	"sync/atomic"
	"time"
)

// BatchBuckets are the upper bounds of Counters.Batches: a step of n sequences counts in the
// first bucket whose bound is at least n; the last bucket takes the rest.
var BatchBuckets = [...]int{1, 2, 4, 8, 16, 32, 64}

// Counters are cumulative figures of the scheduler since Open, for rates (tokens per second)
// and distributions (batch sizes).
type Counters struct {
	// PromptTokens were computed by forward passes; CachedTokens were found in a KV cache
	// left by an earlier request instead (prefix reuse).
	PromptTokens, CachedTokens uint64
	// GeneratedTokens were sampled.
	GeneratedTokens uint64
	// Forward is the time spent in forward passes, and Steps their number.
	Forward time.Duration
	Steps   uint64
	// Batches counts steps by the number of sequences in them: Batches[i] steps had at most
	// BatchBuckets[i] sequences (and more than the bound before); the last entry counts steps
	// larger than every bound.
	Batches [len(BatchBuckets) + 1]uint64
	// BatchSum is the total of the steps' sequence counts.
	BatchSum uint64
	// PrefixHits and PrefixMisses count admitted sequences whose prompt did or did not start
	// with tokens already in a free KV cache.
	PrefixHits, PrefixMisses uint64
}

// counters are the live atomics behind Counters; only the scheduler goroutine writes them.
type counters struct {
	prompt, cached, generated atomic.Uint64
	forwardNs, steps          atomic.Uint64
	batches                   [len(BatchBuckets) + 1]atomic.Uint64
	batchSum                  atomic.Uint64
	hits, misses              atomic.Uint64
}

func (c *counters) step(size int, d time.Duration) {
	c.steps.Add(1)
	c.forwardNs.Add(uint64(max(d, 0)))
	c.batchSum.Add(uint64(size))
	i := 0
	for i < len(BatchBuckets) && size > BatchBuckets[i] {
		i++
	}
	c.batches[i].Add(1)
}

func (c *counters) admitted(cached int) {
	if cached > 0 {
		c.hits.Add(1)
		c.cached.Add(uint64(cached))
	} else {
		c.misses.Add(1)
	}
}

// Counters returns the scheduler's cumulative figures.
func (r *Runner) Counters() Counters {
	c := &r.counters
	out := Counters{
		PromptTokens: c.prompt.Load(), CachedTokens: c.cached.Load(), GeneratedTokens: c.generated.Load(),
		Forward: time.Duration(c.forwardNs.Load()), Steps: c.steps.Load(), BatchSum: c.batchSum.Load(),
		PrefixHits: c.hits.Load(), PrefixMisses: c.misses.Load(),
	}
	for i := range c.batches {
		out.Batches[i] = c.batches[i].Load()
	}
	return out
}

// Timing is when one generation passed each stage (Request.Timing).
type Timing struct {
	// Queued is when Generate put the request in the queue, Admitted when it got a slot,
	// FirstToken when its first token was sampled (the end of its prompt's computation),
	// and Done when its last one was. Admitted and FirstToken are zero when it never got
	// that far.
	Queued, Admitted, FirstToken, Done time.Time
}
