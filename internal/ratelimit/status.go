package ratelimit

import (
	"net/http"
	"strconv"
	"time"
)

// Window is the state of one rate limit as the x-ratelimit-* headers report it.
type Window struct {
	// Limit is the configured rate per minute; 0 means the dimension is not limited and no
	// headers are sent for it.
	Limit int64
	// Remaining is how many units the bucket holds now: after this request's own units were
	// taken when it was admitted, before them when it was refused.
	Remaining int64
	// Reset is how long until the bucket is full again at the configured rate, if nothing
	// more is taken.
	Reset time.Duration
}

// Status is what a request learns about its limits. When a request is limited both per key
// and per user, each dimension reports the tighter bucket: the one with fewer units
// remaining (on a tie, the one that takes longer to refill).
type Status struct {
	Requests Window
	Tokens   Window
}

// Header names, in OpenAI's spelling (HTTP header names are case-insensitive).
const (
	HeaderLimitRequests     = "x-ratelimit-limit-requests"
	HeaderRemainingRequests = "x-ratelimit-remaining-requests"
	HeaderResetRequests     = "x-ratelimit-reset-requests"
	HeaderLimitTokens       = "x-ratelimit-limit-tokens"
	HeaderRemainingTokens   = "x-ratelimit-remaining-tokens"
	HeaderResetTokens       = "x-ratelimit-reset-tokens"
)

// SetHeaders writes the x-ratelimit-* headers for each limited dimension:
// limit-* is the per-minute limit, remaining-* the units left in the bucket, reset-* the time
// until the bucket is full again, written as a duration the way OpenAI does ("20ms", "1s",
// "6m0s"; rounded up to the millisecond).
func (s Status) SetHeaders(h http.Header) {
	set := func(limit, remaining, reset string, w Window) {
		if w.Limit <= 0 {
			return
		}
		h.Set(limit, strconv.FormatInt(w.Limit, 10))
		h.Set(remaining, strconv.FormatInt(w.Remaining, 10))
		h.Set(reset, formatReset(w.Reset))
	}
	set(HeaderLimitRequests, HeaderRemainingRequests, HeaderResetRequests, s.Requests)
	set(HeaderLimitTokens, HeaderRemainingTokens, HeaderResetTokens, s.Tokens)
}

// formatReset writes d rounded up to the millisecond: "0s", "17ms", "1s", "1.5s", "6m0s".
func formatReset(d time.Duration) string {
	if d <= 0 {
		return "0s"
	}
	ms := (d + time.Millisecond - 1) / time.Millisecond
	if ms < 1000 {
		return strconv.FormatInt(int64(ms), 10) + "ms"
	}
	return (ms * time.Millisecond).String()
}

// statusOf summarises an admission's buckets.
func statusOf(a *admission) Status {
	var s Status
	for _, b := range a.buckets {
		w := &s.Requests
		if b.id.dim == dimTokens {
			w = &s.Tokens
		}
		if w.Limit == 0 || b.remaining < w.Remaining || (b.remaining == w.Remaining && b.reset > w.Reset) {
			*w = Window{Limit: b.limit, Remaining: b.remaining, Reset: b.reset}
		}
	}
	return s
}
