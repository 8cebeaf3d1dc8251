package ratelimit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/open-autoglm/autoglm/internal/apierr"
	"github.com/open-autoglm/autoglm/internal/config"
	"github.com/open-autoglm/autoglm/internal/evloop"
)

const (
	// maxBuckets is the most rate buckets one request takes from: requests and tokens, for
	// the key and for the user.
	maxBuckets = 4
	// concurrencyRetry is the Retry-After of a refusal for concurrency: nobody knows when a
	// request in flight will end, so clients are told to try again in a second.
	concurrencyRetry = time.Second
	// minRetry keeps Retry-After positive, so that a refusal always carries one.
	minRetry = time.Millisecond
)

// Subject is who a request is charged to.
type Subject struct {
	// KeyID is the API key's id; "" when the credential is not a key (a JWT).
	KeyID string
	// UserID is the user's id; "" when the key belongs to no user.
	UserID string
	// Role selects the default limits of both the key and the user.
	Role string
}

// Request is what Admit needs to know about one request.
type Request struct {
	Subject Subject
	// Tokens is the estimate of the tokens the request will use (prompt plus the most it may
	// generate), reserved from the tokens-per-minute buckets until Settle corrects it. 0 for
	// requests that use no tokens. See EstimateTokens.
	Tokens int64
}

// QuotaUsage is the usage store as quotas need it. The store's usage totals implement it.
type QuotaUsage interface {
	// KeyTokens returns the tokens (prompt plus completion) recorded for the key from since
	// until now. It is called off the request path except for a key's first request in a
	// period, and must be safe for concurrent use.
	KeyTokens(ctx context.Context, keyID string, since time.Time) (int64, error)
	// UserTokens is KeyTokens for every request of a user (all its keys and its JWTs).
	UserTokens(ctx context.Context, userID string, since time.Time) (int64, error)
}

// Options are a Limiter's collaborators.
type Options struct {
	// Logger receives the store-down and store-recovered lines. Default: slog.Default().
	Logger *slog.Logger
	// Usage gives quota checks the recorded totals. Default: none (quotas count only this
	// process's usage since it started).
	Usage QuotaUsage
	// Now is the clock of in-memory buckets and quota periods. Default: time.Now. Buckets in
	// Redis use Redis's clock, so replicas with skewed clocks still agree.
	Now func() time.Time
}

// Stats are counters since the Limiter was made.
type Stats struct {
	Admitted      uint64 // requests admitted (including those admitted because the store failed open)
	RateLimited   uint64 // requests refused for a rate or concurrency limit
	QuotaExceeded uint64 // requests refused for a quota
	StoreErrors   uint64 // failed store calls (admissions and releases)
	FailedOpen    uint64 // admissions let through because the shared store did not answer
	FailedClosed  uint64 // admissions refused because the shared store did not answer
	FailedLocal   uint64 // admissions limited in memory because the shared store did not answer
	UsageErrors   uint64 // failed reads of quota totals
}

// Limiter admits requests against rate limits, concurrency limits and quotas. It is safe for
// concurrent use. Close releases its Redis connection.
type Limiter struct {
	cfg config.RateLimit
	// limits are the per-request limits in force (cfg's roles, keys, users and
	// default_max_tokens); SetLimits replaces them while requests run.
	limits atomic.Pointer[config.RateLimit]
	log    *slog.Logger
	now    func() time.Time
	local  *localStore
	shared *redisStore // nil without Redis
	quotas *quotas

	leasePrefix string
	leaseSeq    atomic.Uint64

	admitted, rateLimited, quotaExceeded  atomic.Uint64
	storeErrors, failedOpen, failedClosed atomic.Uint64
	failedLocal, usageErrors              atomic.Uint64
}

// New makes a Limiter for cfg (defaults applied by config.Parse; zero fields get them here
// too). With cfg.Redis.Addr set, limits are shared through Redis; New does not fail when Redis
// is down (the fail mode applies until it answers).
func New(cfg config.RateLimit, o Options) (*Limiter, error) {
	cfg = fill(cfg)
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	l := &Limiter{
		cfg:         cfg,
		log:         o.Logger,
		now:         o.Now,
		local:       newLocalStore(o.Now),
		leasePrefix: hex.EncodeToString(rnd[:]) + ":",
	}
	l.limits.Store(&cfg)
	l.quotas = newQuotas(l, o.Usage, cfg.QuotaRefresh.D())
	if cfg.Redis.Addr != "" {
		l.shared = newRedisStore(cfg.Redis, o.Logger)
	}
	return l, nil
}

// fill applies defaults to a configuration made in code rather than parsed.
func fill(c config.RateLimit) config.RateLimit {
	if c.DefaultMaxTokens == 0 {
		c.DefaultMaxTokens = config.DefaultRateLimitMaxTokens
	}
	if c.QuotaRefresh <= 0 {
		c.QuotaRefresh = config.Duration(config.DefaultQuotaRefresh)
	}
	r := &c.Redis
	if r.Prefix == "" {
		r.Prefix = config.DefaultRateLimitPrefix
	}
	if r.Timeout <= 0 {
		r.Timeout = config.Duration(config.DefaultRateLimitTimeout)
	}
	if r.Fail == "" {
		r.Fail = config.FailOpen
	}
	if r.Lease <= 0 {
		r.Lease = config.Duration(config.DefaultRateLimitLease)
	}
	return c
}

// Close stops background quota refreshes and closes the Redis connection.
func (l *Limiter) Close() error {
	l.quotas.close()
	if l.shared != nil {
		return l.shared.close()
	}
	return nil
}

// Stats returns the counters.
func (l *Limiter) Stats() Stats {
	return Stats{
		Admitted: l.admitted.Load(), RateLimited: l.rateLimited.Load(), QuotaExceeded: l.quotaExceeded.Load(),
		StoreErrors: l.storeErrors.Load(), FailedOpen: l.failedOpen.Load(), FailedClosed: l.failedClosed.Load(),
		FailedLocal: l.failedLocal.Load(), UsageErrors: l.usageErrors.Load(),
	}
}

// SetLimits puts the roles, keys, users and default_max_tokens of cfg in force for every
// request admitted from now on; requests already admitted keep what they took. The other
// settings (Redis, quota_refresh) stay as New set them. Buckets keep their state: the time a
// subject's past requests owe stays owed, and refills at the new rate.
func (l *Limiter) SetLimits(cfg config.RateLimit) {
	cfg = fill(cfg)
	cur := l.cfg
	cur.Roles, cur.Keys, cur.Users, cur.DefaultMaxTokens = cfg.Roles, cfg.Keys, cfg.Users, cfg.DefaultMaxTokens
	l.limits.Store(&cur)
}

// Limits returns the resolved limits of a subject's key and user (zero Limits for an empty id).
func (l *Limiter) Limits(s Subject) (key, user config.Limits) {
	lim := l.limits.Load()
	if s.KeyID != "" {
		key = lim.LimitsFor(s.Role, s.KeyID, "")
	}
	if s.UserID != "" {
		user = lim.LimitsFor(s.Role, "", s.UserID)
	}
	return key, user
}

// Admit checks a request against its subject's limits and quotas and, when it passes, takes
// one request, the token estimate and a concurrency slot from the key's and the user's
// buckets, all at once. The Ticket must be finished (Finish) when the response ends; Status
// is for the x-ratelimit-* headers and is filled on refusals too.
//
// A refusal is an *apierr.Error: RateLimited (with RetryAfter) for rates and concurrency,
// QuotaExceeded (with RetryAfter until the period ends) for quotas, Unavailable when the shared
// store is down and the fail mode is closed, Canceled when ctx ended first. An estimate above
// a tokens-per-minute limit reserves the whole bucket, so such a request waits for a full
// bucket instead of being refused forever.
func (l *Limiter) Admit(ctx context.Context, req Request) (*Ticket, Status, error) {
	var st Status
	key, user := l.Limits(req.Subject)
	t := &Ticket{l: l, estimate: max(req.Tokens, 0), ctx: ctx}
	a := &t.adm
	a.buckets, a.slots = t.bucketBuf[:0], t.slotBuf[:0]
	add := func(sc scope, id string, lim config.Limits) {
		if lim.RequestsPerMinute > 0 {
			a.buckets = append(a.buckets, bucket{id: bucketID{dimRequests, sc, id}, limit: lim.RequestsPerMinute, cost: 1})
		}
		if lim.TokensPerMinute > 0 {
			a.buckets = append(a.buckets, bucket{id: bucketID{dimTokens, sc, id}, limit: lim.TokensPerMinute,
				cost: min(t.estimate, lim.TokensPerMinute)})
		}
		if lim.Concurrent > 0 {
			a.slots = append(a.slots, slot{id: bucketID{dimConcurrent, sc, id}, limit: lim.Concurrent})
		}
	}
	if req.Subject.KeyID != "" {
		add(scopeKey, req.Subject.KeyID, key)
	}
	if req.Subject.UserID != "" {
		add(scopeUser, req.Subject.UserID, user)
	}
	// Quotas apply to the key and to the user, each with its own limits: a user's quota
	// counts every key of the user and its JWT requests together.
	for _, q := range [...]struct {
		id  quotaID
		lim config.Limits
	}{{quotaID{id: req.Subject.KeyID}, key}, {quotaID{user: true, id: req.Subject.UserID}, user}} {
		if q.id.id == "" || (q.lim.TokensPerDay <= 0 && q.lim.TokensPerMonth <= 0) {
			continue
		}
		if err := l.quotas.check(ctx, q.id, q.lim); err != nil {
			l.quotaExceeded.Add(1)
			return nil, l.peek(ctx, a), err
		}
		t.quotaIDs[t.nquota] = q.id
		t.nquota++
	}
	if len(a.buckets) == 0 && len(a.slots) == 0 {
		l.admitted.Add(1)
		return t, st, nil
	}
	if len(a.slots) > 0 && l.shared != nil {
		a.lease = l.leasePrefix + strconv.FormatUint(l.leaseSeq.Add(1), 36)
	}
	s, err := l.admitIn(ctx, a)
	if err != nil {
		return nil, st, err
	}
	if s == nil { // the shared store failed open: admitted, nothing taken, no headers
		l.admitted.Add(1)
		t.adm = admission{}
		return t, st, nil
	}
	t.store = s
	st = statusOf(a)
	if !a.ok {
		l.rateLimited.Add(1)
		return nil, st, refusal(a)
	}
	l.admitted.Add(1)
	return t, st, nil
}

// peek reads the state of an admission's buckets without taking anything, for the headers of
// a request refused before its buckets were asked (a quota refusal). A failure leaves the
// status empty.
func (l *Limiter) peek(ctx context.Context, a *admission) Status {
	if len(a.buckets) == 0 {
		return Status{}
	}
	for i := range a.buckets {
		a.buckets[i].cost = 0 // cost 0 only reads
	}
	a.slots = a.slots[:0]
	var err error
	if l.shared == nil {
		err = l.local.admit(ctx, a)
	} else if l.shared.available() {
		cctx, cancel := context.WithTimeout(ctx, l.cfg.Redis.Timeout.D())
		evloop.Block(ctx, func() { err = l.shared.admit(cctx, a) }) // a round trip to Redis, off an event loop
		cancel()
	} else {
		return Status{}
	}
	if err != nil {
		return Status{}
	}
	return statusOf(a)
}

// admitIn runs the admission in the shared store, or in memory. It returns the store that
// holds the taken units, or nil when the shared store failed open.
func (l *Limiter) admitIn(ctx context.Context, a *admission) (store, error) {
	if l.shared == nil {
		return l.local, l.local.admit(ctx, a)
	}
	if l.shared.available() {
		cctx, cancel := context.WithTimeout(ctx, l.cfg.Redis.Timeout.D())
		var err error
		evloop.Block(ctx, func() { err = l.shared.admit(cctx, a) }) // a round trip to Redis, off an event loop
		cancel()
		if err == nil {
			l.shared.up()
			return l.shared, nil
		}
		if ctx.Err() != nil {
			return nil, apierr.From(ctx.Err())
		}
		l.storeErrors.Add(1)
		l.shared.down(err)
	}
	switch l.cfg.Redis.Fail {
	case config.FailClosed:
		l.failedClosed.Add(1)
		return nil, &apierr.Error{Kind: apierr.Unavailable, Code: apierr.CodeRateLimiterUnavailable,
			Message: "rate limiter unavailable; try again shortly", RetryAfter: time.Second}
	case config.FailLocal:
		l.failedLocal.Add(1)
		return l.local, l.local.admit(ctx, a)
	default:
		l.failedOpen.Add(1)
		return nil, nil
	}
}

// refusal is the error for a refused admission, naming the first limit that refused.
func refusal(a *admission) *apierr.Error {
	msg := "rate limit reached"
	for _, b := range a.buckets {
		if b.refused {
			msg = "rate limit reached: " + dimName[b.id.dim] + " per minute for this " + scopeName[b.id.scope]
			break
		}
	}
	if msg == "rate limit reached" {
		for _, s := range a.slots {
			if s.full {
				msg = "rate limit reached: concurrent requests for this " + scopeName[s.id.scope] +
					" (" + strconv.FormatInt(s.limit, 10) + " allowed)"
				break
			}
		}
	}
	return &apierr.Error{Kind: apierr.RateLimited, Code: apierr.CodeRateLimitExceeded, Message: msg,
		RetryAfter: max(a.retry, minRetry)}
}

var (
	dimName   = [...]string{dimRequests: "requests", dimTokens: "tokens", dimConcurrent: "concurrent requests"}
	scopeName = [...]string{scopeKey: "API key", scopeUser: "user"}
)

// Ticket is an admitted request's claim on its limits. Settle records the real token usage;
// Finish gives back the difference and the concurrency slot. A nil *Ticket is valid and does
// nothing. Settle and Finish are safe to call from different goroutines.
type Ticket struct {
	l        *Limiter
	ctx      context.Context // the request's, for its event loop (finishIn); never for cancellation
	quotaIDs [2]quotaID      // the quota counts settled tokens go to: the key's, the user's
	nquota   int
	estimate int64 // tokens asked for on admission
	store    store // where the units were taken; nil when nothing was

	// Buffers, so that a request costs the limiter one allocation.
	adm        admission
	bucketBuf  [maxBuckets]bucket
	slotBuf    [2]slot
	rel        release
	adjBuf     [maxBuckets]adjustment
	relSlotBuf [2]bucketID

	mu       sync.Mutex
	settled  bool
	actual   int64
	finished bool
}

// Reserved is the token estimate the request was admitted with.
func (t *Ticket) Reserved() int64 {
	if t == nil {
		return 0
	}
	return t.estimate
}

// Settle records the tokens the request really used (prompt plus completion) and returns the
// difference from the reservation: positive when it used more than reserved (charged on
// Finish), negative when less (refunded on Finish). The key's and the user's quota counters
// see the usage at once, so their next request is checked against it. A second call replaces the first.
// After Finish, Settle still corrects the quota count but no longer the buckets.
func (t *Ticket) Settle(tokens int64) int64 {
	if t == nil {
		return 0
	}
	tokens = max(tokens, 0)
	t.mu.Lock()
	prev, was := t.actual, t.settled
	t.actual, t.settled = tokens, true
	t.mu.Unlock()
	delta := tokens
	if was {
		delta = tokens - prev
	}
	for _, id := range t.quotaIDs[:t.nquota] {
		t.l.quotas.add(id, delta)
	}
	return tokens - t.estimate
}

// Finish ends the request: the token buckets are corrected by the settled usage and the
// concurrency slots are released. If Settle was never called, a successful request (ok) is
// charged its estimate and a failed one is refunded entirely. Only the first call counts.
func (t *Ticket) Finish(ok bool) {
	if t == nil {
		return
	}
	t.mu.Lock()
	if t.finished {
		t.mu.Unlock()
		return
	}
	t.finished = true
	countEstimate := false
	if !t.settled {
		t.settled = true
		if ok {
			t.actual = t.estimate
			countEstimate = t.nquota > 0
		}
	}
	actual := t.actual
	t.mu.Unlock()
	if countEstimate {
		for _, id := range t.quotaIDs[:t.nquota] {
			t.l.quotas.add(id, t.estimate)
		}
	}
	if t.store == nil {
		return
	}
	r := &t.rel
	r.adjust, r.slots, r.lease = t.adjBuf[:0], t.relSlotBuf[:0], t.adm.lease
	for _, b := range t.adm.buckets {
		if b.id.dim == dimTokens && actual != b.cost {
			r.adjust = append(r.adjust, adjustment{id: b.id, limit: b.limit, delta: actual - b.cost})
		}
	}
	for _, s := range t.adm.slots {
		r.slots = append(r.slots, s.id)
	}
	if len(r.adjust) == 0 && len(r.slots) == 0 {
		return
	}
	t.l.finishIn(t.ctx, t.store, r)
}

// finishIn applies a release. It is not bound to the request's context: a client that went
// away must still give its slot back. A shared store that is down is not asked (its slots
// free themselves when their leases end); its failures are logged once per outage.
func (l *Limiter) finishIn(reqCtx context.Context, s store, r *release) {
	if l.shared != nil && s == store(l.shared) {
		if !l.shared.available() {
			l.storeErrors.Add(1)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), l.cfg.Redis.Timeout.D())
		defer cancel()
		var err error
		// A round trip to Redis, off the request's event loop if it has one.
		evloop.Block(reqCtx, func() { err = l.shared.finish(ctx, r) })
		if err != nil {
			l.storeErrors.Add(1)
			l.shared.down(err)
		}
		return
	}
	_ = s.finish(context.Background(), r)
}

type ticketKey struct{}

// WithTicket returns ctx carrying t, for handlers to settle through.
func WithTicket(ctx context.Context, t *Ticket) context.Context {
	return context.WithValue(ctx, ticketKey{}, t)
}

// TicketFrom returns the request's ticket, or nil when the request was not limited.
func TicketFrom(ctx context.Context) *Ticket {
	t, _ := ctx.Value(ticketKey{}).(*Ticket)
	return t
}

// Settle records the real token usage of the request whose context this is; see
// Ticket.Settle. It returns 0 when the request was not limited.
func Settle(ctx context.Context, tokens int64) int64 { return TicketFrom(ctx).Settle(tokens) }
