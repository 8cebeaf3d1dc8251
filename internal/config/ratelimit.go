package config

import (
	"fmt"
	"net"
	"sort"
	"time"
)

// RateLimit is the "ratelimit" section: request and token rates, concurrency and token quotas,
// per API key and per user (see internal/ratelimit for the exact semantics).
//
// Limits are resolved field by field: an override for the key id (or user id) wins over the
// role's limits, which win over nothing (unlimited). In a role, 0 means unlimited; in an
// override, 0 means "inherit the role's value" and -1 means unlimited.
type RateLimit struct {
	// Roles holds the limits of every key and every user with the role, by role name. A
	// user's limits cap the sum over all of the user's keys. Default: guest gets 20 requests
	// and 10000 tokens per minute and 2 concurrent requests; other roles are unlimited.
	Roles map[string]Limits `yaml:"roles"`
	// Keys overrides limits per API key id. Default: none.
	Keys map[string]Limits `yaml:"keys"`
	// Users overrides limits per user id. Default: none.
	Users map[string]Limits `yaml:"users"`
	// DefaultMaxTokens is the completion size assumed when reserving tokens for a request
	// that sets no max_tokens; the reservation is corrected when the request settles.
	// Default 512.
	DefaultMaxTokens int64 `yaml:"default_max_tokens"`
	// QuotaRefresh is how often a key's daily and monthly totals are re-read from the usage
	// store (between reads, this replica's own usage is counted in memory). Default 10s.
	QuotaRefresh Duration `yaml:"quota_refresh"`
	// Redis shares the request, token and concurrency limits across replicas. Default: off
	// (each replica limits on its own, in memory).
	Redis RateLimitRedis `yaml:"redis"`
}

// Limits are the limits of one key or user.
type Limits struct {
	// RequestsPerMinute is the request rate; the bucket holds one minute's worth. Default 0.
	RequestsPerMinute int64 `yaml:"requests_per_minute"`
	// TokensPerMinute is the token rate (prompt + completion); the bucket holds one
	// minute's worth. Default 0.
	TokensPerMinute int64 `yaml:"tokens_per_minute"`
	// Concurrent caps requests in flight, streams included. Default 0.
	Concurrent int64 `yaml:"concurrent"`
	// TokensPerDay is a quota per UTC day, for each key and each user (a user's counts all
	// its keys and JWT requests together). Default 0.
	TokensPerDay int64 `yaml:"tokens_per_day"`
	// TokensPerMonth is a quota per UTC calendar month, per key and per user as
	// TokensPerDay. Default 0.
	TokensPerMonth int64 `yaml:"tokens_per_month"`
}

// Fail modes: what a replica does when Redis cannot answer.
const (
	FailOpen   = "open"   // admit the request (logged and counted)
	FailClosed = "closed" // refuse it with 503 and Retry-After
	FailLocal  = "local"  // limit in memory on this replica until Redis is back
)

// RateLimitRedis configures the shared limits.
type RateLimitRedis struct {
	// Addr is the Redis host:port. Default: none (limits are in memory).
	Addr string `yaml:"addr"`
	// Username authenticates to Redis with ACLs. Default: none.
	Username string `yaml:"username"`
	// Password authenticates to Redis. Default: none.
	Password string `yaml:"password"`
	// DB selects the Redis database. Default 0.
	DB int `yaml:"db"`
	// Prefix starts every key. Default "autoglm:rl:".
	Prefix string `yaml:"prefix"`
	// Timeout bounds one limit check. Default 100ms.
	Timeout Duration `yaml:"timeout"`
	// Fail is "open", "closed" or "local": what happens while Redis is unreachable.
	// Default "open".
	Fail string `yaml:"fail"`
	// Lease is how long a concurrency slot stays taken when the replica holding it dies
	// without releasing it; a request running longer than this stops counting. Default 10m.
	Lease Duration `yaml:"lease"`
}

// Rate limit defaults.
const (
	DefaultRateLimitMaxTokens = 512
	DefaultQuotaRefresh       = 10 * time.Second
	DefaultRateLimitPrefix    = "autoglm:rl:"
	DefaultRateLimitTimeout   = 100 * time.Millisecond
	DefaultRateLimitLease     = 10 * time.Minute
)

// DefaultGuestLimits returns the guest role's limits when the configuration gives none.
func DefaultGuestLimits() Limits {
	return Limits{RequestsPerMinute: 20, TokensPerMinute: 10000, Concurrent: 2}
}

// withDefaults returns a copy with empty fields set to their defaults.
func (x RateLimit) withDefaults() RateLimit {
	if _, ok := x.Roles["guest"]; !ok {
		roles := make(map[string]Limits, len(x.Roles)+1)
		for k, v := range x.Roles {
			roles[k] = v
		}
		roles["guest"] = DefaultGuestLimits()
		x.Roles = roles
	}
	if x.DefaultMaxTokens == 0 {
		x.DefaultMaxTokens = DefaultRateLimitMaxTokens
	}
	setDur(&x.QuotaRefresh, DefaultQuotaRefresh)
	r := &x.Redis
	if r.Prefix == "" {
		r.Prefix = DefaultRateLimitPrefix
	}
	setDur(&r.Timeout, DefaultRateLimitTimeout)
	if r.Fail == "" {
		r.Fail = FailOpen
	}
	setDur(&r.Lease, DefaultRateLimitLease)
	return x
}

// validate reports each bad field through bad, naming it by its full path ("ratelimit.…").
func (x RateLimit) validate(bad func(path, format string, args ...any)) {
	check := func(base string, l Limits, min int64) {
		for _, f := range []struct {
			name string
			v    int64
		}{
			{"requests_per_minute", l.RequestsPerMinute},
			{"tokens_per_minute", l.TokensPerMinute},
			{"concurrent", l.Concurrent},
			{"tokens_per_day", l.TokensPerDay},
			{"tokens_per_month", l.TokensPerMonth},
		} {
			if f.v < min {
				if min == 0 {
					bad(base+"."+f.name, "must not be negative (0 is unlimited)")
				} else {
					bad(base+"."+f.name, "must be -1 (unlimited), 0 (the role's value) or positive, got %d", f.v)
				}
			}
		}
	}
	for _, section := range []struct {
		name string
		m    map[string]Limits
		min  int64
	}{{"roles", x.Roles, 0}, {"keys", x.Keys, -1}, {"users", x.Users, -1}} {
		names := make([]string, 0, len(section.m))
		for k := range section.m {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			if k == "" {
				bad("ratelimit."+section.name, "an empty name is not allowed")
				continue
			}
			check(fmt.Sprintf("ratelimit.%s.%s", section.name, k), section.m[k], section.min)
		}
	}
	if x.DefaultMaxTokens < 0 {
		bad("ratelimit.default_max_tokens", "must not be negative")
	}
	if x.QuotaRefresh < Duration(100*time.Millisecond) {
		bad("ratelimit.quota_refresh", "must be at least 100ms, got %s", x.QuotaRefresh.D())
	}
	r := x.Redis
	if r.Addr != "" {
		if _, port, err := net.SplitHostPort(r.Addr); err != nil || port == "" {
			bad("ratelimit.redis.addr", "must be host:port, got %q", r.Addr)
		}
	}
	if r.DB < 0 {
		bad("ratelimit.redis.db", "must not be negative")
	}
	if r.Timeout <= 0 {
		bad("ratelimit.redis.timeout", "must be positive")
	}
	switch r.Fail {
	case FailOpen, FailClosed, FailLocal:
	default:
		bad("ratelimit.redis.fail", "must be one of open, closed, local, got %q", r.Fail)
	}
	if r.Lease < Duration(time.Second) {
		bad("ratelimit.redis.lease", "must be at least 1s, got %s", r.Lease.D())
	}
}

// LimitsFor resolves the limits of an API key (keyID) or a user (userID, when keyID is "")
// with the given role: the override's non-zero fields over the role's, -1 becoming 0
// (unlimited). Quotas resolve the same way: a key and its user each have their own.
func (x RateLimit) LimitsFor(role, keyID, userID string) Limits {
	l := x.Roles[role]
	var o Limits
	var ok bool
	if keyID != "" {
		o, ok = x.Keys[keyID]
	} else {
		o, ok = x.Users[userID]
	}
	if ok {
		merge := func(dst *int64, v int64) {
			switch {
			case v < 0:
				*dst = 0
			case v > 0:
				*dst = v
			}
		}
		merge(&l.RequestsPerMinute, o.RequestsPerMinute)
		merge(&l.TokensPerMinute, o.TokensPerMinute)
		merge(&l.Concurrent, o.Concurrent)
		merge(&l.TokensPerDay, o.TokensPerDay)
		merge(&l.TokensPerMonth, o.TokensPerMonth)
	}
	return l
}
