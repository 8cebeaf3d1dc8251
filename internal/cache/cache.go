// Package cache is the response cache: answers of the OpenAI-compatible routes kept by exact
// match of the normalised request, in memory (L1, bounded by bytes) and optionally in Redis
// (L2, shared by replicas), with coalescing of identical requests in flight.
//
// What is cached is the answer as a JSON document (a chat.completion, text_completion or
// embedding list). A streamed request is answered from it as SSE; a streamed answer from an
// upstream is assembled into the document before it is stored (see sse.go).
package cache

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/maypok86/otter/v2"
	"github.com/redis/rueidis"

	"github.com/open-autoglm/autoglm/internal/config"
	"github.com/open-autoglm/autoglm/internal/evloop"
)

// Entry is one cached answer.
type Entry struct {
	// Body is the answer as a JSON document.
	Body []byte
	// TTL is how long the entry lives from when it is stored.
	TTL time.Duration
}

// Stats count what the cache did since it was created.
type Stats struct {
	Hits, Misses, Bypasses, Coalesced, Stores, L2Hits, L2Errors int64
}

// Cache holds answers in memory and, when configured, in Redis. It is safe for concurrent use.
type Cache struct {
	cfg config.Cache
	l1  *otter.Cache[string, *Entry]
	l2  rueidis.Client // nil without Redis
	log *slog.Logger

	mu       sync.Mutex
	inflight map[string]*call

	hits, misses, bypasses, coalesced, stores, l2hits, l2errs atomic.Int64
	l2PausedUntil                                             atomic.Int64 // unix ns; see l2Up
}

// New builds the cache for cfg. With cfg.Redis.Addr set it connects to Redis; an unreachable
// Redis is an error here (at start), but later Redis failures only skip L2.
func New(cfg config.Cache, log *slog.Logger) (*Cache, error) {
	l1, err := otter.New(&otter.Options[string, *Entry]{
		MaximumWeight: uint64(cfg.MaxBytes),
		Weigher: func(k string, e *Entry) uint32 {
			return uint32(min(len(k)+len(e.Body)+64, 1<<31))
		},
		ExpiryCalculator: otter.ExpiryCreatingFunc(func(e otter.Entry[string, *Entry]) time.Duration {
			return e.Value.TTL
		}),
	})
	if err != nil {
		return nil, err
	}
	if cfg.Redis.Timeout <= 0 {
		cfg.Redis.Timeout = config.DefaultCacheRedisTimeout
	}
	c := &Cache{cfg: cfg, l1: l1, log: log, inflight: make(map[string]*call)}
	if cfg.Redis.Addr != "" {
		c.l2, err = rueidis.NewClient(rueidis.ClientOption{
			InitAddress:       []string{cfg.Redis.Addr},
			Password:          cfg.Redis.Password,
			SelectDB:          cfg.Redis.DB,
			DisableCache:      true,
			ConnWriteTimeout:  2 * time.Second,
			ForceSingleClient: true,
		})
		if err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Close releases the Redis connection.
func (c *Cache) Close() {
	if c.l2 != nil {
		c.l2.Close()
	}
	c.l1.StopAllGoroutines()
}

// Stats returns the counters.
func (c *Cache) Stats() Stats {
	return Stats{Hits: c.hits.Load(), Misses: c.misses.Load(), Bypasses: c.bypasses.Load(),
		Coalesced: c.coalesced.Load(), Stores: c.stores.Load(), L2Hits: c.l2hits.Load(), L2Errors: c.l2errs.Load()}
}

// Count records a bypass (requests the cache was asked about and did not serve).
func (c *Cache) Count(bypass bool) {
	if bypass {
		c.bypasses.Add(1)
	}
}

// Policy is the cache decision for one request.
type Policy struct {
	// Key identifies the normalised request. Empty when the request is not cacheable.
	Key string
	// TTL for entries stored under Key.
	TTL time.Duration
	// Read reports whether a cached answer may be served (false for Cache-Control: no-cache).
	Read bool
	// Write reports whether the answer may be stored (false for no-store).
	Write bool
}

// Cacheable reports whether the policy allows the cache at all.
func (p Policy) Cacheable() bool { return p.Key != "" && (p.Read || p.Write) }

// Owner is the caller a request is cached for: its user and API key ids, empty without a
// credential. cache.scope decides which of them an entry is shared by.
type Owner struct {
	UserID, KeyID string
}

// scope is the part of the key that keeps one caller's entries from another's: by user (a
// key without a user stands for itself), by key (a caller without a key, such as a JWT,
// stands for its user), or none for the global scope and for callers without a credential.
// The kind prefix keeps a user id from matching a key id.
func (c *Cache) scope(o Owner) string {
	byKey := c.cfg.Scope == config.CacheScopeKey
	switch {
	case c.cfg.Scope == config.CacheScopeGlobal:
		return ""
	case byKey && o.KeyID != "":
		return "key:" + o.KeyID
	case o.UserID != "":
		return "user:" + o.UserID
	case o.KeyID != "":
		return "key:" + o.KeyID
	}
	return ""
}

// fields that do not change the answer and are left out of the key.
var ignored = []string{"model", "stream", "stream_options", "user", "metadata", "store"}

// Decide works out whether and how a request may use the cache. route is the route path
// ("/v1/chat/completions"), model the public model name after alias resolution, cacheControl
// the request's Cache-Control header, owner the caller.
//
// body must be what wire.Peek accepted: valid UTF-8 without unpaired surrogate escapes or
// repeated keys, so that the normalisation below (which would turn invalid UTF-8 into U+FFFD
// and keep the last of repeated keys) maps different upstream requests to different keys. A
// body that is not valid UTF-8 is not cached.
//
// The key is a SHA-256 of the caller's scope (see Owner), the route, the model and the body
// with the fields above removed,
// re-encoded with sorted keys, so whitespace and key order do not matter. A chat or
// completion request is cacheable only when its temperature is 0, unless the model's
// cache_sampled is set (no temperature means OpenAI's default, 1). Embeddings are always
// cacheable.
func (c *Cache) Decide(route, model string, body []byte, cacheControl string, owner Owner) Policy {
	if c == nil || !c.cfg.Enabled {
		return Policy{}
	}
	ttl, sampled := c.cfg.ModelTTL(model)
	if ttl <= 0 {
		return Policy{}
	}
	p := Policy{TTL: ttl.D(), Read: true, Write: true}
	for _, d := range bytes.Split([]byte(cacheControl), []byte(",")) {
		switch string(bytes.ToLower(bytes.TrimSpace(d))) {
		case "no-store":
			return Policy{}
		case "no-cache":
			p.Read = false
		}
	}
	if !utf8.Valid(body) {
		return Policy{}
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return Policy{}
	}
	if route != "/v1/embeddings" && !sampled {
		t, ok := m["temperature"]
		var temp float64
		if !ok || json.Unmarshal(t, &temp) != nil || temp != 0 {
			return Policy{}
		}
	}
	for _, k := range ignored {
		delete(m, k)
	}
	norm := make(map[string]any, len(m))
	for k, v := range m {
		var x any
		dec := json.NewDecoder(bytes.NewReader(v))
		dec.UseNumber()
		if dec.Decode(&x) != nil {
			return Policy{}
		}
		norm[k] = canonicalNumbers(x)
	}
	enc, err := json.Marshal(norm) // maps encode with sorted keys
	if err != nil {
		return Policy{}
	}
	h := sha256.New()
	h.Write([]byte(c.scope(owner)))
	h.Write([]byte{0})
	h.Write([]byte(route))
	h.Write([]byte{0})
	h.Write([]byte(model))
	h.Write([]byte{0})
	h.Write(enc)
	p.Key = hex.EncodeToString(h.Sum(nil))
	return p
}

// canonicalNumbers rewrites numbers so that equal values encode alike ("0.0" and "0"):
// numbers with a fraction or exponent become float64; integers keep their exact digits, so
// large seeds stay distinct.
func canonicalNumbers(x any) any {
	switch v := x.(type) {
	case json.Number:
		if strings.ContainsAny(string(v), ".eE") {
			if f, err := v.Float64(); err == nil {
				return f
			}
		}
		return v
	case map[string]any:
		for k, e := range v {
			v[k] = canonicalNumbers(e)
		}
	case []any:
		for i, e := range v {
			v[i] = canonicalNumbers(e)
		}
	}
	return x
}

// Get returns the entry under key from L1, else from L2 (promoting it to L1).
func (c *Cache) Get(ctx context.Context, key string) (*Entry, bool) {
	if e, ok := c.l1.GetIfPresent(key); ok {
		c.hits.Add(1)
		return e, true
	}
	if c.l2Up() {
		ctx, cancel := context.WithTimeout(ctx, c.cfg.Redis.Timeout.D())
		defer cancel()
		cmd := c.l2.B().Get().Key(c.cfg.Redis.Prefix + key).Build()
		body, err := c.l2.Do(ctx, cmd).AsBytes()
		if err == nil {
			ttl := c.l2TTL(ctx, key)
			e := &Entry{Body: body, TTL: ttl}
			c.l1.Set(key, e)
			c.hits.Add(1)
			c.l2hits.Add(1)
			return e, true
		}
		if !rueidis.IsRedisNil(err) {
			c.l2Failed(ctx, "read", err)
		}
	}
	c.misses.Add(1)
	return nil, false
}

// l2TTL reads the remaining lifetime of a Redis entry, so a promoted entry expires with it.
func (c *Cache) l2TTL(ctx context.Context, key string) time.Duration {
	ms, err := c.l2.Do(ctx, c.l2.B().Pttl().Key(c.cfg.Redis.Prefix+key).Build()).AsInt64()
	if err != nil || ms <= 0 {
		return time.Second
	}
	return time.Duration(ms) * time.Millisecond
}

// Set stores an entry in L1 and L2. Entries larger than cache.max_entry_bytes are skipped.
func (c *Cache) Set(ctx context.Context, key string, e *Entry) {
	if int64(len(e.Body)) > c.cfg.MaxEntryBytes || e.TTL <= 0 {
		return
	}
	c.l1.Set(key, e)
	c.stores.Add(1)
	if c.l2Up() {
		ctx, cancel := context.WithTimeout(ctx, c.cfg.Redis.Timeout.D())
		defer cancel()
		cmd := c.l2.B().Set().Key(c.cfg.Redis.Prefix + key).Value(rueidis.BinaryString(e.Body)).Px(e.TTL).Build()
		if err := c.l2.Do(ctx, cmd).Error(); err != nil {
			c.l2Failed(ctx, "write", err)
		}
	}
}

// l2PauseAfterError is how long the Redis tier is skipped after it failed, so that while
// Redis is down requests pay its timeout at most once a second, not each.
const l2PauseAfterError = time.Second

// l2Up reports whether the Redis tier is configured and not paused after a failure.
func (c *Cache) l2Up() bool {
	return c.l2 != nil && time.Now().UnixNano() >= c.l2PausedUntil.Load()
}

// l2Failed counts a Redis failure, pauses the tier and logs (once per pause).
func (c *Cache) l2Failed(ctx context.Context, op string, err error) {
	c.l2errs.Add(1)
	now := time.Now().UnixNano()
	prev := c.l2PausedUntil.Load()
	if now >= prev && c.l2PausedUntil.CompareAndSwap(prev, now+int64(l2PauseAfterError)) {
		c.log.WarnContext(ctx, "cache: redis "+op+" failed; serving from memory for a second", "err", err)
	}
}

// call is one computation in flight that identical requests wait for.
type call struct {
	done  chan struct{}
	entry *Entry
	err   error
}

// ErrNotCached is returned to waiters when the leader's answer could not be cached (an error
// status, a stream that could not be assembled): each waiter must then ask the backend itself.
var ErrNotCached = errors.New("cache: the coalesced answer was not cacheable")

// Join either makes the caller the leader for key (leader true: it must call finish exactly
// once with the answer, or nil and an error) or waits for the current leader and returns its
// entry. Waiting ends early when ctx ends.
func (c *Cache) Join(ctx context.Context, key string) (leader bool, finish func(*Entry, error), e *Entry, err error) {
	c.mu.Lock()
	if cl, ok := c.inflight[key]; ok {
		c.mu.Unlock()
		// Off an event loop: the leader may be a request of the same loop.
		var ended error
		evloop.Block(ctx, func() {
			select {
			case <-cl.done:
			case <-ctx.Done():
				ended = ctx.Err()
			}
		})
		if ended != nil {
			return false, nil, nil, ended
		}
		if cl.err != nil {
			return false, nil, nil, cl.err
		}
		c.coalesced.Add(1)
		return false, nil, cl.entry, nil
	}
	cl := &call{done: make(chan struct{})}
	c.inflight[key] = cl
	c.mu.Unlock()
	var once sync.Once
	return true, func(e *Entry, err error) {
		once.Do(func() {
			if e == nil && err == nil {
				err = ErrNotCached
			}
			cl.entry, cl.err = e, err
			c.mu.Lock()
			delete(c.inflight, key)
			c.mu.Unlock()
			close(cl.done)
		})
	}, nil, nil
}

// CleanUp runs pending maintenance of the in-memory tier now (eviction to the byte bound,
// expiry). The cache does this by itself; tests call it to observe the bound at once.
func (c *Cache) CleanUp() { c.l1.CleanUp() }

// MaxEntryBytes is the largest answer the cache stores.
func (c *Cache) MaxEntryBytes() int64 { return c.cfg.MaxEntryBytes }
