// Package ratelimit admits requests against per-key and per-user rate limits, concurrency
// limits and token quotas, in memory or shared by every replica through Redis.
//
// # Limits
//
// Each request is charged to a Subject: its API key, its user, or both (see
// config.RateLimit.LimitsFor for how role defaults and overrides resolve). For each of them:
//
//   - requests per minute: one unit per request;
//   - tokens per minute: the request's estimate (EstimateTokens: body bytes / 4 plus max_tokens)
//     is reserved on admission; Ticket.Settle records the real usage and Ticket.Finish gives
//     back the difference, or charges it when the request used more than reserved (the bucket
//     then owes tokens, up to a day's worth, and later requests wait);
//   - concurrent requests: a slot taken on admission and freed by Finish when the response
//     ends, including streams and clients that went away;
//   - tokens per UTC day and per UTC month: checked on admission against the usage so far
//     (see quota.go); a user's quota counts all its keys and JWT requests together.
//
// A request passes only if every limit of the key and the user passes, and then takes from all
// of them at once; a refused request takes nothing.
//
// # Buckets: a hand-written GCRA
//
// Every rate is a bucket that holds one minute's worth of units and refills continuously. The
// buckets are the generic cell rate algorithm rather than golang.org/x/time/rate, because:
// the same arithmetic must run in memory and as a Redis Lua script, so both modes answer
// alike; a bucket is one number (its theoretical arrival time), which makes the Redis state one
// small key per bucket; a refund of unused tokens is a subtraction, where rate.Limiter can only
// cancel a whole reservation; and the headers need "remaining" and "time until full", which
// fall out of that number.
//
// # Headers
//
// Status.SetHeaders writes OpenAI's x-ratelimit-{limit,remaining,reset}-{requests,tokens} on
// every limited response, admitted or refused: the per-minute limit, the units left in the
// bucket, and the time until the bucket is full again ("20ms", "1s", "6m0s"). With both key and
// user limits, each dimension reports whichever bucket has fewer units left. Refusals are
// *apierr.Error of kind RateLimited with RetryAfter (the time until the request's units fit;
// one second for concurrency) or QuotaExceeded (until the period ends).
//
// # Sharing through Redis
//
// With ratelimit.redis.addr set, buckets and concurrency slots live in Redis and every check is
// one EVALSHA (falling back to EVAL when the script is not cached) of a Lua script that checks
// and takes all of a request's buckets and slots atomically, using Redis's clock, so any number
// of replicas together admit the configured rate. Slots are leases in a sorted set, so slots
// held by a replica that died expire after ratelimit.redis.lease. A request costs one round
// trip to admit and, when it holds a concurrency slot or its settled usage differs from its
// reservation, a second one when it finishes (both about 60µs on loopback). When Redis does not answer
// within ratelimit.redis.timeout, the fail mode applies: open (admit; the default), closed
// (refuse with 503) or local (limit in this replica's memory). An outage is logged once,
// counted in Stats, and Redis is left alone for a second before it is tried again.
//
// # Locks
//
// Each lock is a leaf: localStore.mu, quotas.mu, redisStore.mu and Ticket.mu are never held
// while another is taken or while calling out.
package ratelimit
