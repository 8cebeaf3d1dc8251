package config

import (
	"fmt"
	"time"
)

// Cache is the "cache" section: the response cache in front of the backends. Answers are
// cached by exact match of the normalised request (see internal/cache).
type Cache struct {
	// Enabled turns the response cache on. Default false.
	Enabled bool `yaml:"enabled"`
	// MaxBytes bounds the in-memory tier by the size of the cached answers. Default 67108864 (64 MiB).
	MaxBytes int64 `yaml:"max_bytes"`
	// MaxEntryBytes is the largest answer that is cached. Default 1048576 (1 MiB).
	MaxEntryBytes int64 `yaml:"max_entry_bytes"`
	// TTL is how long an answer stays cached. Default 10m.
	TTL Duration `yaml:"ttl"`
	// Scope is who shares an entry: "user" (callers of the same user; a key without a user
	// is its own scope), "key" (callers with the same API key; a JWT or the admin key is
	// scoped by its user) or "global" (every caller, which tells one tenant what another
	// asked). Requests without a credential (authentication off) share one scope.
	// Default "user".
	Scope string `yaml:"scope"`
	// Models overrides the settings per public model name. Default: none.
	Models map[string]CacheModel `yaml:"models"`
	// Redis adds a second tier shared by every replica. Default: off.
	Redis CacheRedis `yaml:"redis"`
	// WarmupFile is a file of requests, one JSON object per line
	// ({"path":"/v1/chat/completions","body":{...}}), sent through the gateway at start to fill
	// the cache. Default: none.
	WarmupFile string `yaml:"warmup_file"`
}

// CacheModel overrides cache settings for one model.
type CacheModel struct {
	// Disabled turns caching off for this model. Default false.
	Disabled bool `yaml:"disabled"`
	// TTL replaces cache.ttl for this model. Default: cache.ttl.
	TTL Duration `yaml:"ttl"`
	// CacheSampled caches answers to requests with temperature > 0 (or no temperature, which
	// means 1), which are otherwise not cached because each call may answer differently.
	// Default false.
	CacheSampled bool `yaml:"cache_sampled"`
}

// CacheRedis is the shared second tier.
type CacheRedis struct {
	// Addr is the Redis host:port. Default: none (no second tier).
	Addr string `yaml:"addr"`
	// Password authenticates to Redis. Default: none.
	Password string `yaml:"password"`
	// DB selects the Redis database. Default 0.
	DB int `yaml:"db"`
	// Prefix starts every key. Default "autoglm:cache:".
	Prefix string `yaml:"prefix"`
	// Timeout bounds one read or write of the second tier; a request never waits longer
	// for Redis, and after a failure the tier is skipped for a second (answers come from
	// memory and the upstream meanwhile). Default 200ms; at most 10s.
	Timeout Duration `yaml:"timeout"`
}

// Cache scopes (cache.scope).
const (
	CacheScopeUser   = "user"
	CacheScopeKey    = "key"
	CacheScopeGlobal = "global"
)

// Cache defaults.
const (
	DefaultCacheMaxBytes      = 64 << 20
	DefaultCacheMaxEntryBytes = 1 << 20
	DefaultCacheRedisTimeout  = Duration(200 * time.Millisecond)
	DefaultCacheTTL           = Duration(10 * time.Minute)
)

func (x Cache) withDefaults() Cache {
	if x.MaxBytes == 0 {
		x.MaxBytes = DefaultCacheMaxBytes
	}
	if x.MaxEntryBytes == 0 {
		x.MaxEntryBytes = DefaultCacheMaxEntryBytes
	}
	if x.TTL == 0 {
		x.TTL = DefaultCacheTTL
	}
	if x.Scope == "" {
		x.Scope = CacheScopeUser
	}
	if x.Redis.Prefix == "" {
		x.Redis.Prefix = "autoglm:cache:"
	}
	if x.Redis.Timeout == 0 {
		x.Redis.Timeout = DefaultCacheRedisTimeout
	}
	return x
}

func (x Cache) validate(bad func(path, format string, args ...any)) {
	if x.MaxBytes < 0 {
		bad("cache.max_bytes", "must not be negative")
	}
	if x.MaxEntryBytes < 0 || x.MaxEntryBytes > x.MaxBytes {
		bad("cache.max_entry_bytes", "must be between 0 and cache.max_bytes (%d)", x.MaxBytes)
	}
	if x.TTL < 0 {
		bad("cache.ttl", "must not be negative")
	}
	switch x.Scope {
	case CacheScopeUser, CacheScopeKey, CacheScopeGlobal:
	default:
		bad("cache.scope", "must be user, key or global, got %q", x.Scope)
	}
	for name, m := range x.Models {
		if m.TTL < 0 {
			bad(fmt.Sprintf("cache.models.%s.ttl", name), "must not be negative")
		}
	}
	if x.Redis.DB < 0 {
		bad("cache.redis.db", "must not be negative")
	}
	if d := x.Redis.Timeout.D(); d <= 0 || d > 10*time.Second {
		bad("cache.redis.timeout", "must be between 1ns and 10s, got %s", d)
	}
}

// ModelTTL is the TTL for a model, or 0 when the model is not cached.
func (x Cache) ModelTTL(model string) (ttl Duration, cacheSampled bool) {
	m, ok := x.Models[model]
	if ok && m.Disabled {
		return 0, false
	}
	ttl = x.TTL
	if ok && m.TTL > 0 {
		ttl = m.TTL
	}
	return ttl, ok && m.CacheSampled
}
