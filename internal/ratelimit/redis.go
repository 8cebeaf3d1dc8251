package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"

	"github.com/open-autoglm/autoglm/internal/config"
)

// admitLua is gcraTake and the concurrency check for every bucket and slot of an admission,
// in one atomic script (one round trip). Times are microseconds from Redis's own clock, counted
// from 2025-01-01 so that a Lua double resolves them to about a hundredth of a microsecond
// (counted from 1970 it would be a quarter, too coarse for very high rates). A bucket is a string key holding its TAT, expiring when the bucket
// is full again (so a missing key is a full bucket); a concurrency counter is a sorted set of
// lease ids scored by their expiry, so slots held by a replica that died free themselves.
//
// KEYS: n bucket keys, then m slot keys.
// ARGV: n, m, lease id, lease ms, then per bucket: emission interval (µs), cost; then per slot:
// limit.
// Returns: ok, retry (µs), then per bucket: remaining, reset (µs), refused; then per slot: count.
const admitLua = `
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = (tonumber(t[1]) - 1735689600) * 1000000 + tonumber(t[2])
local period = 60000000
local n, m = tonumber(ARGV[1]), tonumber(ARGV[2])
local lease = tonumber(ARGV[4])
local ok, retry = 1, 0
local out = {0, 0}
local nexts, costs, bases, ivs = {}, {}, {}, {}
local a = 5
for i = 1, n do
  local iv, cost = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  a = a + 2
  local tat = tonumber(redis.call('GET', KEYS[i])) or now
  if tat < now then tat = now end
  local nx = tat + cost * iv
  local refused = 0
  if cost > 0 and nx - now > period then
    refused = 1
    ok = 0
    if nx - now - period > retry then retry = nx - now - period end
    nx = tat
  end
  nexts[i], costs[i], bases[i], ivs[i] = nx, cost, tat, iv
  out[#out + 1] = math.max(0, math.floor((period - (nx - now) + 0.001) / iv))
  out[#out + 1] = math.ceil(nx - now)
  out[#out + 1] = refused
end
for j = 1, m do
  local k = KEYS[n + j]
  local limit = tonumber(ARGV[a])
  a = a + 1
  redis.call('ZREMRANGEBYSCORE', k, '-inf', now)
  local c = redis.call('ZCARD', k)
  if c >= limit then
    ok = 0
    if retry < 1000000 then retry = 1000000 end
  end
  out[#out + 1] = c
end
out[1], out[2] = ok, math.ceil(retry)
if ok == 0 then
  -- Nothing is taken: report every bucket as it stands.
  for i = 1, n do
    out[3 * i] = math.max(0, math.floor((period - (bases[i] - now) + 0.001) / ivs[i]))
    out[3 * i + 1] = math.ceil(bases[i] - now)
  end
else
  for i = 1, n do
    if costs[i] > 0 then
      redis.call('SET', KEYS[i], string.format('%.3f', nexts[i]), 'PX', math.max(1, math.ceil((nexts[i] - now) / 1000)))
    end
  end
  for j = 1, m do
    redis.call('ZADD', KEYS[n + j], now + lease * 1000, ARGV[3])
    redis.call('PEXPIRE', KEYS[n + j], lease)
  end
end
return out
`

// finishLua is gcraAdjust for each token bucket and the release of the request's slots.
//
// KEYS: n bucket keys, then slot keys. ARGV: n, lease id, then per bucket: emission interval
// (µs), delta.
const finishLua = `
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = (tonumber(t[1]) - 1735689600) * 1000000 + tonumber(t[2])
local n = tonumber(ARGV[1])
for i = 1, n do
  local iv, d = tonumber(ARGV[1 + 2 * i]), tonumber(ARGV[2 + 2 * i])
  local tat = tonumber(redis.call('GET', KEYS[i])) or now
  if tat < now then tat = now end
  tat = math.min(tat + d * iv, now + 86400000000) -- debt capped at a day, as gcraAdjust
  if tat <= now then
    redis.call('DEL', KEYS[i])
  else
    redis.call('SET', KEYS[i], string.format('%.3f', tat), 'PX', math.max(1, math.ceil((tat - now) / 1000)))
  end
end
for j = n + 1, #KEYS do
  redis.call('ZREM', KEYS[j], ARGV[2])
end
return 1
`

const (
	// downFor is how long a failed Redis is left alone before it is tried again, so an
	// outage costs one timeout a second rather than one per request.
	downFor     = time.Second
	dialTimeout = time.Second
)

// redisStore keeps state in Redis, shared by every replica using the same prefix. It connects
// lazily and in the background, so a replica starts (and applies its fail mode) while Redis is
// down.
type redisStore struct {
	cfg config.RateLimitRedis
	log *slog.Logger
	// The scripts run as EVALSHA, falling back to EVAL when Redis answers NOSCRIPT.
	admitScript, finishScript *rueidis.Lua

	client    atomic.Pointer[rueidis.Client]
	downUntil atomic.Int64 // Unix ns until which Redis is not tried; 0 when up

	mu      sync.Mutex
	dialing bool
	closed  bool
	wg      sync.WaitGroup
}

var _ store = (*redisStore)(nil)

func newRedisStore(cfg config.RateLimitRedis, log *slog.Logger) *redisStore {
	s := &redisStore{cfg: cfg, log: log, admitScript: rueidis.NewLuaScript(admitLua), finishScript: rueidis.NewLuaScript(finishLua)}
	if err := s.dial(); err != nil {
		s.down(err)
	}
	return s
}

func (s *redisStore) dial() error {
	c, err := rueidis.NewClient(rueidis.ClientOption{
		InitAddress:  []string{s.cfg.Addr},
		Username:     s.cfg.Username,
		Password:     s.cfg.Password,
		SelectDB:     s.cfg.DB,
		DisableCache: true, // no client-side caching: every check must see the shared state
		Dialer:       net.Dialer{Timeout: dialTimeout},
	})
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		c.Close()
		return errors.New("closed")
	}
	s.client.Store(&c)
	return nil
}

// available reports whether Redis should be asked now. While it is unconnected, it starts
// one background connection attempt at a time.
func (s *redisStore) available() bool {
	if until := s.downUntil.Load(); until != 0 && time.Now().UnixNano() < until {
		return false
	}
	if s.client.Load() != nil {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.dialing && !s.closed {
		s.dialing = true
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			err := s.dial()
			s.mu.Lock()
			s.dialing = false
			s.mu.Unlock()
			if err != nil {
				s.down(err)
			} else {
				s.up()
			}
		}()
	}
	return false
}

// down marks Redis failed for downFor; the first failure of an outage is logged.
func (s *redisStore) down(err error) {
	prev := s.downUntil.Swap(time.Now().Add(downFor).UnixNano())
	if prev == 0 {
		s.log.Warn("rate limit: Redis unreachable; applying the fail mode until it answers",
			"addr", s.cfg.Addr, "fail", s.cfg.Fail, "err", err)
	}
}

// up marks Redis working again after an outage.
func (s *redisStore) up() {
	if s.downUntil.Load() != 0 && s.downUntil.Swap(0) != 0 {
		s.log.Info("rate limit: Redis reachable again", "addr", s.cfg.Addr)
	}
}

func (s *redisStore) key(id bucketID) string {
	return s.cfg.Prefix + dimKey[id.dim] + scopeKeyName[id.scope] + id.id
}

var (
	dimKey       = [...]string{dimRequests: "r:", dimTokens: "t:", dimConcurrent: "c:"}
	scopeKeyName = [...]string{scopeKey: "k:", scopeUser: "u:"}
)

// intervalMicros is interval in microseconds, written for Lua.
func intervalMicros(limit int64) string {
	return strconv.FormatFloat(interval(limit)/1e3, 'g', -1, 64)
}

func (s *redisStore) admit(ctx context.Context, a *admission) error {
	cp := s.client.Load()
	if cp == nil {
		return errors.New("redis: not connected")
	}
	n, m := len(a.buckets), len(a.slots)
	keys := make([]string, 0, n+m)
	args := make([]string, 0, 4+2*n+m)
	args = append(args, strconv.Itoa(n), strconv.Itoa(m), a.lease, strconv.FormatInt(s.cfg.Lease.D().Milliseconds(), 10))
	for _, b := range a.buckets {
		keys = append(keys, s.key(b.id))
		args = append(args, intervalMicros(b.limit), strconv.FormatInt(b.cost, 10))
	}
	for _, sl := range a.slots {
		keys = append(keys, s.key(sl.id))
		args = append(args, strconv.FormatInt(sl.limit, 10))
	}
	vals, err := s.admitScript.Exec(ctx, *cp, keys, args).AsIntSlice()
	if err != nil {
		return err
	}
	if len(vals) != 2+3*n+m {
		return fmt.Errorf("redis: admit script returned %d values, want %d", len(vals), 2+3*n+m)
	}
	a.ok, a.retry = vals[0] == 1, time.Duration(vals[1])*time.Microsecond
	for i := range a.buckets {
		b := &a.buckets[i]
		v := vals[2+3*i:]
		b.remaining, b.reset, b.refused = v[0], time.Duration(v[1])*time.Microsecond, v[2] == 1
	}
	for j := range a.slots {
		sl := &a.slots[j]
		sl.count = vals[2+3*n+j]
		sl.full = sl.count >= sl.limit
	}
	return nil
}

func (s *redisStore) finish(ctx context.Context, r *release) error {
	cp := s.client.Load()
	if cp == nil {
		return errors.New("redis: not connected")
	}
	n := len(r.adjust)
	keys := make([]string, 0, n+len(r.slots))
	args := make([]string, 0, 2+2*n)
	args = append(args, strconv.Itoa(n), r.lease)
	for _, adj := range r.adjust {
		keys = append(keys, s.key(adj.id))
		args = append(args, intervalMicros(adj.limit), strconv.FormatInt(adj.delta, 10))
	}
	for _, id := range r.slots {
		keys = append(keys, s.key(id))
	}
	return s.finishScript.Exec(ctx, *cp, keys, args).Error()
}

func (s *redisStore) close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.wg.Wait()
	if cp := s.client.Swap(nil); cp != nil {
		(*cp).Close()
	}
	return nil
}
