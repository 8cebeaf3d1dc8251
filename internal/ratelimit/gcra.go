package ratelimit

import (
	"math"
	"time"
)

// period is the window every rate is expressed over, and the capacity of every bucket: a
// bucket holds one period's worth of units, so a full bucket admits the whole per-minute
// limit at once and then refills continuously (the token-bucket semantics OpenAI documents).
const period = time.Minute

// dim is what a bucket counts.
type dim uint8

const (
	dimRequests dim = iota
	dimTokens
	dimConcurrent
)

// scope is whose bucket it is.
type scope uint8

const (
	scopeKey scope = iota
	scopeUser
)

// bucketID names one bucket (or concurrency counter) in a store.
type bucketID struct {
	dim   dim
	scope scope
	id    string
}

// interval is the emission interval of a rate of limit units per period, in nanoseconds.
func interval(limit int64) float64 { return float64(period) / float64(limit) }

// gcraResult is the outcome of one GCRA step.
type gcraResult struct {
	tat       int64 // the new theoretical arrival time when ok; the old one (at least now) otherwise
	ok        bool
	remaining int64         // units left in the bucket after the step
	reset     time.Duration // time until the bucket is full again
	retry     time.Duration // when refused: time until cost units fit
}

// gcraTake is the generic cell rate algorithm: a bucket is one number, the theoretical arrival
// time (TAT) at which it would be full again. Taking cost units moves TAT forward by cost
// emission intervals; the step is refused when that would put TAT more than one period past
// now (the bucket would go below empty). A cost of zero never refuses: it only reads the
// state. All times are Unix nanoseconds. The Lua script in redis.go is the same computation in
// microseconds; keep them in step.
func gcraTake(tat, now, limit, cost int64) gcraResult {
	iv := interval(limit)
	base := max(tat, now)
	next := base + int64(math.Round(float64(cost)*iv))
	if cost > 0 && next-now > int64(period) {
		return gcraResult{tat: base, remaining: remainingAt(base-now, iv), reset: time.Duration(base - now),
			retry: time.Duration(next - now - int64(period))}
	}
	return gcraResult{tat: next, ok: true, remaining: remainingAt(next-now, iv), reset: time.Duration(next - now)}
}

// gcraAdjust moves a bucket by delta units without an admission check: positive delta charges
// tokens used beyond a reservation (the bucket may go into debt, delaying later requests),
// negative delta refunds an unused reservation (never past full).
func gcraAdjust(tat, now, limit, delta int64) int64 {
	base := max(tat, now)
	next := float64(base) + math.Round(float64(delta)*interval(limit))
	// Debt is capped (and the arithmetic kept clear of int64 overflow) at maxDebt: a usage
	// report that absurd is a bug upstream, not a reason to lock a key out for years.
	next = min(next, float64(now+int64(maxDebt)))
	return max(int64(next), now)
}

// maxDebt is the furthest ahead of now a bucket's TAT may be pushed by settling.
const maxDebt = 24 * time.Hour

// remainingAt is how many whole units are left when the bucket is ahead by ahead ns. The 1ns
// slack keeps float rounding from losing a unit at exact multiples.
func remainingAt(ahead int64, iv float64) int64 {
	r := int64((float64(int64(period)-ahead) + 1) / iv)
	return max(r, 0)
}
