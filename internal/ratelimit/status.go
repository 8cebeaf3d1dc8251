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

// Header names: OpenAI's, in Go's canonical form (header names are case-insensitive; HTTP/2
// sends them in lower case, as OpenAI writes them).
const (
	HeaderLimitRequests     = "X-Ratelimit-Limit-Requests"
	HeaderRemainingRequests = "X-Ratelimit-Remaining-Requests"
	HeaderResetRequests     = "X-Ratelimit-Reset-Requests"
	HeaderLimitTokens       = "X-Ratelimit-Limit-Tokens"
	HeaderRemainingTokens   = "X-Ratelimit-Remaining-Tokens"
	HeaderResetTokens       = "X-Ratelimit-Reset-Tokens"
)

// SetHeaders writes the x-ratelimit-* headers for each limited dimension:
// limit-* is the per-minute limit, remaining-* the units left in the bucket, reset-* the time
// until the bucket is full again, written as a duration the way OpenAI does ("20ms", "1s",
// "6m0s"; rounded up to the millisecond).
func (s Status) SetHeaders(h http.Header) {
	if s.Requests.Limit <= 0 && s.Tokens.Limit <= 0 {
		return
	}
	vals := make([]string, 6) // one allocation for all six values
	set := func(i int, limit, remaining, reset string, w Window) {
		if w.Limit <= 0 {
			return
		}
		vals[i], vals[i+1], vals[i+2] = strconv.FormatInt(w.Limit, 10), strconv.FormatInt(w.Remaining, 10), formatReset(w.Reset)
		h[limit], h[remaining], h[reset] = vals[i:i+1:i+1], vals[i+1:i+2:i+2], vals[i+2:i+3:i+3]
	}
	set(0, HeaderLimitRequests, HeaderRemainingRequests, HeaderResetRequests, s.Requests)
	set(3, HeaderLimitTokens, HeaderRemainingTokens, HeaderResetTokens, s.Tokens)
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
