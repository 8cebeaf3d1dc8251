// Package sample turns a model's next-token logits into a token id.
//
// A Sampler applies, in this fixed order:
//
//  1. penalties over the recent history: the llama.cpp-style repeat penalty
//     (positive logits divided by RepeatPenalty, negative ones multiplied)
//     and the OpenAI-style frequency and presence penalties
//     (logit -= count*FrequencyPenalty + PresencePenalty for every token seen);
//  2. top-k: keep the TopK highest logits;
//  3. temperature: divide the logits by Temperature;
//  4. softmax;
//  5. top-p (nucleus): keep the smallest set of most likely tokens whose
//     probabilities sum to at least TopP;
//  6. min-p: drop tokens whose probability is below MinP times the
//     probability of the most likely token;
//  7. a draw from the remaining (renormalised) distribution using a PCG
//     generator from math/rand/v2, so a fixed Seed reproduces the output.
//
// Temperature 0 (or below) is greedy decoding: after the penalties the token
// with the highest logit is returned, the lowest id winning ties.
//
// The sampler keeps its working buffers between calls, so sampling does not
// allocate once the buffers have grown to the vocabulary size. Top-k uses a
// bounded heap over the logits and top-p without top-k a heap that is popped
// only until the nucleus is complete, so neither sorts the whole vocabulary.
package sample

import (
	"math"
	"math/rand/v2"
	"slices"

	"github.com/open-autoglm/autoglm/internal/engine/fastmath"
)

// Params configures a Sampler. The zero value is greedy decoding with no
// penalties.
type Params struct {
	// Temperature scales the logits before the softmax. 0 (or below) selects
	// greedy decoding.
	Temperature float32
	// TopP is the nucleus mass to keep; 0 or ≥ 1 disables it.
	TopP float32
	// MinP drops tokens less likely than MinP × the top probability; 0
	// disables it.
	MinP float32
	// TopK keeps only the K most likely tokens; 0 (or ≥ the vocabulary size)
	// disables it.
	TopK int
	// RepeatPenalty divides positive and multiplies negative logits of tokens
	// seen in the window; 0 or 1 disables it.
	RepeatPenalty float32
	// FrequencyPenalty is subtracted once per occurrence of a token in the
	// window; 0 disables it.
	FrequencyPenalty float32
	// PresencePenalty is subtracted once from every token present in the
	// window; 0 disables it.
	PresencePenalty float32
	// RepeatLastN is the window, in tokens at the end of the history, that
	// all three penalties look at. 0 or below means the whole history.
	RepeatLastN int
	// Seed seeds the generator; 0 picks a random seed.
	Seed int64
}

// cand is a candidate token during sampling; p holds the logit until the
// softmax and the probability after it.
type cand struct {
	id int32
	p  float32
}

// before reports whether a ranks strictly before b: higher value first,
// lower id on ties, which makes every selection deterministic.
func before(a, b cand) bool {
	return a.p > b.p || (a.p == b.p && a.id < b.id)
}

// Sampler draws tokens according to its Params. It is not safe for
// concurrent use; use one Sampler per sequence.
type Sampler struct {
	p     Params
	rng   *rand.Rand
	cands []cand
	// counts holds per-token occurrence counts in the penalty window; it is
	// cleared after each call through touched so clearing costs O(window).
	counts  []int32
	touched []int32
}

// New returns a Sampler for p.
func New(p Params) *Sampler {
	seed := uint64(p.Seed)
	if p.Seed == 0 {
		seed = rand.Uint64()
	}
	return &Sampler{
		p: p,
		// The second PCG word is fixed so that the seed alone determines
		// the stream.
		rng: rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15)),
	}
}

// Params returns the sampler's parameters.
func (s *Sampler) Params() Params { return s.p }

// Sample returns the next token id for logits, given the tokens seen so far
// in history (the prompt and/or the generated tokens, as the caller
// chooses; only its last RepeatLastN entries are used by the penalties).
// It modifies logits in place: penalties are applied to it, and its values
// are unspecified afterwards. Ids in history outside the vocabulary are
// ignored. It returns -1 only for empty logits.
func (s *Sampler) Sample(logits []float32, history []int32) int32 {
	if len(logits) == 0 {
		return -1
	}
	s.penalize(logits, history)
	if s.p.Temperature <= 0 {
		return argmax(logits)
	}
	c := s.topK(logits)
	sorted := len(c) < len(logits)
	maxL := float32(math.Inf(-1))
	for i := range c {
		// A plain comparison: the builtin max's NaN and ±0 handling made
		// this loop several times slower.
		if c[i].p > maxL {
			maxL = c[i].p
		}
	}
	if math.IsInf(float64(maxL), 0) || maxL != maxL {
		// Degenerate logits (all -Inf, +Inf or NaN): fall back to greedy
		// rather than dividing by a zero or NaN sum.
		return argmax(logits)
	}
	// Temperature and softmax in one pass. The weights stay unnormalised
	// (the later stages only need their total), which saves a pass over
	// the vocabulary.
	invT := 1 / s.p.Temperature
	var total float64
	for i := range c {
		e := fastmath.Exp((c[i].p - maxL) * invT)
		c[i].p = e
		total += float64(e)
	}
	filtered := false
	if tp := s.p.TopP; tp > 0 && tp < 1 {
		c = topP(c, float32(float64(tp)*total), sorted)
		sorted, filtered = true, true
	}
	if s.p.MinP > 0 {
		c = minP(c, s.p.MinP, sorted)
		filtered = true
	}
	if filtered {
		total = 0
		for i := range c {
			total += float64(c[i].p)
		}
	}
	r := s.rng.Float64() * total
	var acc float64
	for i := range c {
		acc += float64(c[i].p)
		if r < acc {
			return c[i].id
		}
	}
	// Rounding can leave r at the very end of the range.
	return c[len(c)-1].id
}

// penalize applies the repeat, frequency and presence penalties in place.
func (s *Sampler) penalize(logits []float32, history []int32) {
	rp, fp, pp := s.p.RepeatPenalty, s.p.FrequencyPenalty, s.p.PresencePenalty
	if (rp == 0 || rp == 1) && fp == 0 && pp == 0 {
		return
	}
	if n := s.p.RepeatLastN; n > 0 && len(history) > n {
		history = history[len(history)-n:]
	}
	if len(history) == 0 {
		return
	}
	if len(s.counts) < len(logits) {
		s.counts = make([]int32, len(logits))
	}
	s.touched = s.touched[:0]
	for _, id := range history {
		if id < 0 || int(id) >= len(logits) {
			continue
		}
		if s.counts[id] == 0 {
			s.touched = append(s.touched, id)
		}
		s.counts[id]++
	}
	for _, id := range s.touched {
		l := logits[id]
		if rp != 0 && rp != 1 {
			if l > 0 {
				l /= rp
			} else {
				l *= rp
			}
		}
		l -= float32(s.counts[id])*fp + pp
		logits[id] = l
		s.counts[id] = 0
	}
}

// argmax returns the index of the largest logit, the lowest on ties. NaN
// never wins.
func argmax(logits []float32) int32 {
	best := 0
	for i := 1; i < len(logits); i++ {
		if logits[i] > logits[best] || logits[best] != logits[best] {
			best = i
		}
	}
	return int32(best)
}

// topK fills the candidate buffer. With top-k enabled it keeps the K best
// logits, sorted best first, using a min-heap of size K over one pass of
// the logits (O(n log K) worst case, O(n) typical). Otherwise it holds
// every token, unsorted.
func (s *Sampler) topK(logits []float32) []cand {
	n := len(logits)
	k := s.p.TopK
	if cap(s.cands) < n {
		s.cands = make([]cand, n)
	}
	if k <= 0 || k >= n {
		c := s.cands[:n]
		for i, l := range logits {
			c[i] = cand{int32(i), l}
		}
		return c
	}
	// h is a min-heap by rank: h[0] is the worst of the kept K.
	h := s.cands[:k]
	for i := range h {
		h[i] = cand{int32(i), logits[i]}
	}
	for i := k/2 - 1; i >= 0; i-- {
		siftDownMin(h, i)
	}
	for i := k; i < n; i++ {
		c := cand{int32(i), logits[i]}
		if before(c, h[0]) {
			h[0] = c
			siftDownMin(h, 0)
		}
	}
	slices.SortFunc(h, func(a, b cand) int {
		if before(a, b) {
			return -1
		}
		if before(b, a) {
			return 1
		}
		return 0
	})
	return h
}

// siftDownMin restores the min-heap (worst at the root) below i.
func siftDownMin(h []cand, i int) {
	n := len(h)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && before(h[l], h[r]) {
			m = r
		}
		if !before(h[i], h[m]) {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}

// siftDownMax restores the max-heap (best at the root) below i.
func siftDownMax(h []cand, i int) {
	n := len(h)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && before(h[r], h[l]) {
			m = r
		}
		if !before(h[m], h[i]) {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}

// topP keeps the smallest prefix of most likely candidates whose mass
// reaches p (in the same unnormalised units as the weights) and returns it
// sorted best first. Unsorted input is heapified
// (O(n)) and popped only until the nucleus is complete, heapsort style, so
// the cost is O(n + m log n) for a nucleus of m tokens.
func topP(c []cand, p float32, sorted bool) []cand {
	if sorted {
		var acc float32
		for i := range c {
			acc += c[i].p
			if acc >= p {
				return c[:i+1]
			}
		}
		return c
	}
	for i := len(c)/2 - 1; i >= 0; i-- {
		siftDownMax(c, i)
	}
	// Popped candidates collect at the end of c, best at the very end.
	end := len(c)
	var acc float32
	for end > 0 {
		end--
		c[0], c[end] = c[end], c[0]
		acc += c[end].p
		siftDownMax(c[:end], 0)
		if acc >= p {
			break
		}
	}
	kept := c[end:]
	slices.Reverse(kept)
	return kept
}

// minP drops candidates below m times the top probability, keeping order.
func minP(c []cand, m float32, sorted bool) []cand {
	var top float32
	if sorted {
		top = c[0].p
	} else {
		for i := range c {
			if c[i].p > top {
				top = c[i].p
			}
		}
	}
	thr := m * top
	out := c[:0]
	for _, x := range c {
		if x.p >= thr {
			out = append(out, x)
		}
	}
	return out
}
