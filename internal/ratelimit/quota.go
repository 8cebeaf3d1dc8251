package ratelimit

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/open-autoglm/autoglm/internal/apierr"
	"github.com/open-autoglm/autoglm/internal/config"
)

// usageReadTimeout bounds one read of a key's totals from the usage store.
const usageReadTimeout = 2 * time.Second

// quotaID names what a quota count belongs to: an API key or a user.
type quotaID struct {
	user bool
	id   string
}

func (q quotaID) String() string {
	if q.user {
		return "user " + q.id
	}
	return "key " + q.id
}

// quotas counts each key's and each user's tokens in the current UTC day and month.
//
// The usage store is written asynchronously and in batches, so its totals lag. Each count is
// therefore the larger of the store's total (read on the key's first request of a period and
// then every refresh interval, in the background) and the store's last total plus this
// replica's settled usage since. Taking the larger never counts a request twice; it misses at
// most the other replicas' usage the store has not recorded yet.
type quotas struct {
	l       *Limiter
	usage   QuotaUsage // nil: count this process's usage only
	refresh time.Duration

	mu     sync.Mutex
	keys   map[quotaID]*quotaCount
	wg     sync.WaitGroup
	ctx    context.Context
	cancel context.CancelFunc
}

type quotaCount struct {
	day, month         time.Time // start of the periods the counts belong to
	dayUsed, monthUsed int64
	read               time.Time // when the store's totals were last read; zero: never
	reading            bool
}

func newQuotas(l *Limiter, usage QuotaUsage, refresh time.Duration) *quotas {
	ctx, cancel := context.WithCancel(context.Background())
	return &quotas{l: l, usage: usage, refresh: refresh, keys: make(map[quotaID]*quotaCount), ctx: ctx, cancel: cancel}
}

func (q *quotas) close() {
	q.cancel()
	q.wg.Wait()
}

func periodStarts(now time.Time) (day, month time.Time) {
	now = now.UTC()
	y, m, d := now.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC), time.Date(y, m, 1, 0, 0, 0, 0, time.UTC)
}

// entry returns the counts of id rolled over to the current periods. The caller holds mu.
func (q *quotas) entry(id quotaID, now time.Time) *quotaCount {
	day, month := periodStarts(now)
	c := q.keys[id]
	if c == nil {
		c = &quotaCount{day: day, month: month}
		q.keys[id] = c
	}
	if !c.day.Equal(day) {
		c.day, c.dayUsed, c.read = day, 0, time.Time{}
	}
	if !c.month.Equal(month) {
		c.month, c.monthUsed, c.read = month, 0, time.Time{}
	}
	return c
}

// check refuses the request when the key or user id has used its daily or monthly quota. The
// request that crosses a quota is let through whole: quotas are checked on admission against
// the usage so far, not against the request's estimate.
func (q *quotas) check(ctx context.Context, id quotaID, lim config.Limits) error {
	now := q.l.now()
	q.mu.Lock()
	c := q.entry(id, now)
	first := q.usage != nil && c.read.IsZero() && !c.reading
	stale := q.usage != nil && !c.read.IsZero() && !c.reading && now.Sub(c.read) >= q.refresh
	if first || stale {
		c.reading = true
	}
	day, month := c.day, c.month
	q.mu.Unlock()

	if first {
		// The key's first request of the period waits for the totals, so a key that used its
		// quota on another replica (or before a restart) is refused from the start.
		q.read(ctx, id, day, month)
	} else if stale {
		q.wg.Add(1)
		go func() {
			defer q.wg.Done()
			q.read(q.ctx, id, day, month)
		}()
	}

	q.mu.Lock()
	c = q.entry(id, now)
	dayUsed, monthUsed := c.dayUsed, c.monthUsed
	q.mu.Unlock()
	switch {
	case lim.TokensPerDay > 0 && dayUsed >= lim.TokensPerDay:
		return quotaError(id, "daily", lim.TokensPerDay, day.AddDate(0, 0, 1).Sub(now))
	case lim.TokensPerMonth > 0 && monthUsed >= lim.TokensPerMonth:
		return quotaError(id, "monthly", lim.TokensPerMonth, month.AddDate(0, 1, 0).Sub(now))
	}
	return nil
}

func quotaError(id quotaID, which string, limit int64, retry time.Duration) *apierr.Error {
	who := "this API key"
	if id.user {
		who = "this user"
	}
	return &apierr.Error{Kind: apierr.QuotaExceeded, Code: apierr.CodeQuotaExceeded,
		Message:    who + " has used its " + which + " quota of " + strconv.FormatInt(limit, 10) + " tokens",
		RetryAfter: max(retry, time.Second)}
}

// tokens reads the store's total for id since the given time.
func (q *quotas) tokens(ctx context.Context, id quotaID, since time.Time) (int64, error) {
	if id.user {
		return q.usage.UserTokens(ctx, id.id, since)
	}
	return q.usage.KeyTokens(ctx, id.id, since)
}

// read fetches the totals of id for the given periods and raises the counts to them. A failed
// read is logged and counted; the in-memory counts carry on until the next refresh.
func (q *quotas) read(ctx context.Context, id quotaID, day, month time.Time) {
	ctx, cancel := context.WithTimeout(ctx, usageReadTimeout)
	defer cancel()
	d, err := q.tokens(ctx, id, day)
	var m int64
	if err == nil {
		m, err = q.tokens(ctx, id, month)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	c := q.keys[id]
	if c == nil {
		return
	}
	c.reading = false
	if !c.day.Equal(day) || !c.month.Equal(month) {
		return // the period rolled over meanwhile; the next check reads again
	}
	c.read = q.l.now()
	if err != nil {
		q.l.usageErrors.Add(1)
		q.l.log.Warn("quota: reading usage totals failed; counting in memory until the next refresh", "for", id.String(), "err", err)
		return
	}
	c.dayUsed = max(c.dayUsed, d)
	c.monthUsed = max(c.monthUsed, m)
}

// add counts settled tokens (negative to correct an earlier count).
func (q *quotas) add(id quotaID, tokens int64) {
	if tokens == 0 {
		return
	}
	now := q.l.now()
	q.mu.Lock()
	c := q.entry(id, now)
	c.dayUsed += tokens
	c.monthUsed += tokens
	q.mu.Unlock()
}
