package config

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Task is the "tasks" section: the asynchronous task system (durable queue, workers, scheduling
// policy, webhooks). Task rows live in the store's database (store.driver).
type Task struct {
	// Workers is how many tasks of one model run at once in this process. Default 4.
	Workers int `yaml:"workers"`
	// ModelWorkers overrides Workers for the models it names (public names). Default: none.
	ModelWorkers map[string]int `yaml:"model_workers"`
	// Policy orders the queue of each model: "fifo" (oldest first), "priority" (highest
	// priority first, then oldest), "shortest_first" (smallest estimated run time first:
	// max_tokens over the model's measured tokens per second) or "load_aware" (oldest first,
	// started only while one of the model's backends has room). Whatever the policy, the
	// next task goes to the key with the fewest running tasks, so no key starves the others.
	// Default "fifo".
	Policy string `yaml:"policy"`
	// Timeout bounds one run of a task; a task that reaches it fails with a timeout.
	// Default 10m.
	Timeout Duration `yaml:"timeout"`
	// MaxAttempts is how many times a task may be started, the first included: a run
	// interrupted by a crash or a retryable upstream failure is tried again until then.
	// Default 3.
	MaxAttempts int `yaml:"max_attempts"`
	// Lease is how long a running task stays claimed by its process without a heartbeat; a
	// task whose process died is queued again once its lease ran out. Default 30s.
	Lease Duration `yaml:"lease"`
	// RetryBackoff is the base of the exponential wait before a failed run is tried again.
	// Default 1s.
	RetryBackoff Duration `yaml:"retry_backoff"`
	// DefaultMaxTokens is the max_tokens of a task that does not set it. Default 1024.
	DefaultMaxTokens int `yaml:"default_max_tokens"`
	// EventFlush is how long generated tokens are gathered before they are written as one
	// event. Default 100ms.
	EventFlush Duration `yaml:"event_flush"`
	// WebhookSecret signs webhook deliveries (X-AutoGLM-Signature). Write it as an ${ENV}
	// reference. Default: none; then tasks with a callback_url are refused.
	WebhookSecret string `yaml:"webhook_secret"`
	// WebhookAllow lists destinations that webhooks may reach although they are not global
	// unicast addresses (loopback, private, link-local and the other special-purpose blocks
	// are refused otherwise). An entry is an IP address or CIDR, alone (every port) or with a
	// port: "10.0.0.0/8", "10.1.2.3:8443", "10.0.0.0/8:443", "[fd00::/8]:443", "[::1]:9000".
	// The gateway's own listeners are refused whatever this says. Default: none.
	WebhookAllow []string `yaml:"webhook_allow"`
	// WebhookTimeout bounds one delivery attempt. Default 10s.
	WebhookTimeout Duration `yaml:"webhook_timeout"`
	// WebhookRetryFor is how long failed deliveries are retried after the first attempt.
	// Default 24h.
	WebhookRetryFor Duration `yaml:"webhook_retry_for"`
	// WebhookBackoff is the first wait between delivery attempts; it doubles each time up to
	// WebhookMaxBackoff. Default 1s.
	WebhookBackoff Duration `yaml:"webhook_backoff"`
	// WebhookMaxBackoff caps the wait between delivery attempts. Default 10m.
	WebhookMaxBackoff Duration `yaml:"webhook_max_backoff"`
	// MaxWatchers caps the task event streams (SSE and WebSocket together) this process
	// serves at once; each holds a connection, a goroutine and a database poll. One more is
	// refused with 503 and code too_many_watchers until one ends. Default 10000.
	MaxWatchers int `yaml:"max_watchers"`
	// Retention is how long a finished task, its events and its webhook record are kept;
	// at least WebhookRetryFor, so a delivery still being retried keeps its task.
	// Default 720h (30 days).
	Retention Duration `yaml:"retention"`
}

// Task policies.
const (
	PolicyFIFO          = "fifo"
	PolicyPriority      = "priority"
	PolicyShortestFirst = "shortest_first"
	PolicyLoadAware     = "load_aware"
)

// Task defaults.
const (
	DefaultTaskWorkers           = 4
	DefaultTaskPolicy            = PolicyFIFO
	DefaultTaskTimeout           = 10 * time.Minute
	DefaultTaskMaxAttempts       = 3
	DefaultTaskLease             = 30 * time.Second
	DefaultTaskRetryBackoff      = time.Second
	DefaultTaskMaxTokens         = 1024
	DefaultTaskEventFlush        = 100 * time.Millisecond
	DefaultWebhookTimeout        = 10 * time.Second
	DefaultWebhookRetryFor       = 24 * time.Hour
	DefaultWebhookBackoff        = time.Second
	DefaultWebhookMaxBackoff     = 10 * time.Minute
	DefaultTaskRetention         = 30 * 24 * time.Hour
	DefaultTaskMaxWatchers       = 10000
	maxTaskWatchers              = 1000000
	maxTaskWorkers               = 4096
	minTaskLease                 = time.Second
	maxTaskEventFlush            = 10 * time.Second
	maxTaskAttempts              = 100
	maxTaskDefaultMaxTokensValue = 1 << 20
)

// withDefaults returns a copy with empty fields set to their defaults.
func (x Task) withDefaults() Task {
	if x.Workers == 0 {
		x.Workers = DefaultTaskWorkers
	}
	if x.Policy == "" {
		x.Policy = DefaultTaskPolicy
	}
	setDur(&x.Timeout, DefaultTaskTimeout)
	if x.MaxAttempts == 0 {
		x.MaxAttempts = DefaultTaskMaxAttempts
	}
	setDur(&x.Lease, DefaultTaskLease)
	setDur(&x.RetryBackoff, DefaultTaskRetryBackoff)
	if x.DefaultMaxTokens == 0 {
		x.DefaultMaxTokens = DefaultTaskMaxTokens
	}
	setDur(&x.EventFlush, DefaultTaskEventFlush)
	setDur(&x.WebhookTimeout, DefaultWebhookTimeout)
	setDur(&x.WebhookRetryFor, DefaultWebhookRetryFor)
	setDur(&x.WebhookBackoff, DefaultWebhookBackoff)
	setDur(&x.WebhookMaxBackoff, DefaultWebhookMaxBackoff)
	setDur(&x.Retention, DefaultTaskRetention)
	if x.MaxWatchers == 0 {
		x.MaxWatchers = DefaultTaskMaxWatchers
	}
	return x
}

// validate reports each bad field through bad, naming it by its full path ("tasks.…").
func (x Task) validate(bad func(path, format string, args ...any)) {
	if x.Workers < 1 || x.Workers > maxTaskWorkers {
		bad("tasks.workers", "must be between 1 and %d, got %d", maxTaskWorkers, x.Workers)
	}
	for name, n := range x.ModelWorkers {
		if n < 1 || n > maxTaskWorkers {
			bad("tasks.model_workers."+name, "must be between 1 and %d, got %d", maxTaskWorkers, n)
		}
	}
	switch x.Policy {
	case PolicyFIFO, PolicyPriority, PolicyShortestFirst, PolicyLoadAware:
	default:
		bad("tasks.policy", "must be one of fifo, priority, shortest_first, load_aware, got %q", x.Policy)
	}
	if x.Timeout < 0 {
		bad("tasks.timeout", "must not be negative")
	}
	if x.MaxWatchers < 1 || x.MaxWatchers > maxTaskWatchers {
		bad("tasks.max_watchers", "must be between 1 and %d, got %d", maxTaskWatchers, x.MaxWatchers)
	}
	if x.MaxAttempts < 1 || x.MaxAttempts > maxTaskAttempts {
		bad("tasks.max_attempts", "must be between 1 and %d, got %d", maxTaskAttempts, x.MaxAttempts)
	}
	if x.Lease.D() < minTaskLease {
		bad("tasks.lease", "must be at least 1s, got %s", x.Lease.D())
	}
	if x.RetryBackoff < 0 {
		bad("tasks.retry_backoff", "must not be negative")
	}
	if x.DefaultMaxTokens < 1 || x.DefaultMaxTokens > maxTaskDefaultMaxTokensValue {
		bad("tasks.default_max_tokens", "must be between 1 and %d, got %d", maxTaskDefaultMaxTokensValue, x.DefaultMaxTokens)
	}
	if d := x.EventFlush.D(); d < 0 || d > maxTaskEventFlush {
		bad("tasks.event_flush", "must be between 0 and 10s, got %s", d)
	}
	if x.WebhookSecret != "" && len(x.WebhookSecret) < 16 {
		bad("tasks.webhook_secret", "must be at least 16 bytes")
	}
	for i, c := range x.WebhookAllow {
		if _, err := ParseWebhookTarget(c); err != nil {
			bad("tasks.webhook_allow", "entry %d: %v", i, err)
		}
	}
	for name, d := range map[string]Duration{
		"tasks.webhook_timeout":     x.WebhookTimeout,
		"tasks.webhook_retry_for":   x.WebhookRetryFor,
		"tasks.webhook_backoff":     x.WebhookBackoff,
		"tasks.webhook_max_backoff": x.WebhookMaxBackoff,
	} {
		if d <= 0 {
			bad(name, "must be positive")
		}
	}
	if x.WebhookMaxBackoff < x.WebhookBackoff {
		bad("tasks.webhook_max_backoff", "must be at least tasks.webhook_backoff (%s)", x.WebhookBackoff.D())
	}
	if x.Retention < x.WebhookRetryFor {
		bad("tasks.retention", "must be at least tasks.webhook_retry_for (%s), got %s", x.WebhookRetryFor.D(), x.Retention.D())
	}
}

// WebhookTarget is one tasks.webhook_allow entry: addresses, and a port (0: every port).
type WebhookTarget struct {
	Prefix netip.Prefix
	Port   uint16
}

// ParseWebhookTarget parses a tasks.webhook_allow entry: an IP address or CIDR, optionally
// followed by ":port" (IPv6 in brackets when a port follows: "[fd00::/8]:443").
func ParseWebhookTarget(s string) (WebhookTarget, error) {
	bad := fmt.Errorf("%q is not an address or CIDR with an optional port, such as 10.0.0.0/8, 10.1.2.3:8443 or [fd00::/8]:443", s)
	addrs := func(h string) (netip.Prefix, bool) {
		if p, err := netip.ParsePrefix(h); err == nil {
			return p.Masked(), true
		}
		if a, err := netip.ParseAddr(h); err == nil && a.Zone() == "" {
			a = a.Unmap()
			return netip.PrefixFrom(a, a.BitLen()), true
		}
		return netip.Prefix{}, false
	}
	if p, ok := addrs(s); ok {
		return WebhookTarget{Prefix: p.Masked()}, nil
	}
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return WebhookTarget{}, bad
	}
	host, portStr := s[:i], s[i+1:]
	if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
	} else if strings.Contains(host, ":") {
		return WebhookTarget{}, bad // an IPv6 address with a port needs brackets
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil || port == 0 {
		return WebhookTarget{}, bad
	}
	p, ok := addrs(host)
	if !ok {
		return WebhookTarget{}, bad
	}
	return WebhookTarget{Prefix: p, Port: uint16(port)}, nil
}
