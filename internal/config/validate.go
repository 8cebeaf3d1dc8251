package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
)

// Validate checks every field and the relations between fields. It expects defaults to be
// applied (see WithDefaults) and returns all problems joined, each naming its field path.
func (c *Config) Validate() error {
	var errs []error
	bad := func(path, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
	}
	s := c.Server
	if host, port, err := net.SplitHostPort(s.Addr); err != nil || port == "" {
		bad("server.addr", "must be host:port, got %q", s.Addr)
	} else if host != "" && net.ParseIP(host) == nil && !validHostname(host) {
		bad("server.addr", "invalid host %q", host)
	}
	if s.MaxBodyBytes < 1024 || s.MaxBodyBytes > 1<<30 {
		bad("server.max_body_bytes", "must be between 1024 and 1073741824, got %d", s.MaxBodyBytes)
	}
	for name, d := range map[string]Duration{
		"server.read_header_timeout":  s.ReadHeaderTimeout,
		"server.read_timeout":         s.ReadTimeout,
		"server.write_timeout":        s.WriteTimeout,
		"server.stream_write_timeout": s.StreamWriteTimeout,
		"server.idle_timeout":         s.IdleTimeout,
		"server.shutdown_timeout":     s.ShutdownTimeout,
	} {
		if d < 0 {
			bad(name, "must not be negative")
		}
	}
	if s.ProfileMutexFraction < 0 || s.ProfileMutexFraction > 1_000_000 {
		bad("server.profile_mutex_fraction", "must be between 0 (off) and 1000000, got %d", s.ProfileMutexFraction)
	}
	if s.ProfileBlockRate < 0 {
		bad("server.profile_block_rate", "must not be negative")
	}
	if a := s.Admission; a.MaxInFlight < 0 {
		bad("server.admission.max_in_flight", "must not be negative, got %d", a.MaxInFlight)
	} else if a.MaxInFlight == 0 && (a.Queue != nil || a.MaxWait != 0) {
		bad("server.admission", "queue and max_wait need max_in_flight")
	} else if a.Queue != nil && *a.Queue < 0 {
		bad("server.admission.queue", "must not be negative, got %d", *a.Queue)
	} else if a.MaxWait < 0 {
		bad("server.admission.max_wait", "must not be negative")
	}
	validateTLS(s.TLS, bad)
	if s.CodePages != "" && s.CodePages != CodePagesHuge && s.CodePages != CodePagesNormal {
		bad("server.code_pages", "must be huge or normal, got %q", s.CodePages)
	}
	if s.CPUPlacement != "" && s.CPUPlacement != CPUPlacementGather && s.CPUPlacement != CPUPlacementSpread {
		bad("server.cpu_placement", "must be gather or spread, got %q", s.CPUPlacement)
	}
	if s.EventLoops < 0 {
		bad("server.event_loops", "must not be negative, got %d", s.EventLoops)
	}
	if s.HTTP1 != "" && s.HTTP1 != HTTP1Lean && s.HTTP1 != HTTP1Loop && s.HTTP1 != HTTP1Net {
		bad("server.http1", "must be lean, loop or net, got %q", s.HTTP1)
	}
	validateDeprecations(s.Deprecations, bad)
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "must be one of debug, info, warn, error, got %q", c.Log.Level)
	}

	names := make(map[string]string) // public name or alias → path that claimed it
	claim := func(name, path string) {
		if prev, ok := names[name]; ok {
			bad(path, "%q is already used by %s", name, prev)
			return
		}
		names[name] = path
	}
	for i, m := range c.Models {
		mp := fmt.Sprintf("models[%d]", i)
		if m.Name == "" {
			bad(mp+".name", "is required")
		} else if !validModelName(m.Name) {
			bad(mp+".name", "%q is not a valid model name (1-256 printable characters, no spaces)", m.Name)
		} else {
			claim(m.Name, mp+".name")
		}
		for j, a := range m.Aliases {
			ap := fmt.Sprintf("%s.aliases[%d]", mp, j)
			if !validModelName(a) {
				bad(ap, "%q is not a valid model name (1-256 printable characters, no spaces)", a)
				continue
			}
			claim(a, ap)
		}
		switch {
		case len(m.Backends) == 0 && len(m.Split) == 0:
			bad(mp+".backends", "at least one backend is required (or a split)")
		case len(m.Backends) > 0 && len(m.Split) > 0:
			bad(mp+".split", "a model has either backends or a split, not both")
		case len(m.Backends) > MaxBackends:
			bad(mp+".backends", "at most %d backends per model, got %d", MaxBackends, len(m.Backends))
		}
		c.validateScheduling(m, mp, bad)
		backendNames := make(map[string]bool)
		for j, b := range m.Backends {
			bp := fmt.Sprintf("%s.backends[%d]", mp, j)
			if backendNames[b.Name] {
				bad(bp+".name", "%q is used by another backend of this model", b.Name)
			}
			backendNames[b.Name] = true
			if b.Weight < 0 {
				bad(bp+".weight", "must not be negative")
			}
			validateTimeouts(b.Timeouts, bp+".timeouts", bad)
			if b.MaxInflight < 0 {
				bad(bp+".max_inflight", "must not be negative")
			}
			if b.Queue < 0 {
				bad(bp+".queue", "must not be negative")
			} else if b.Queue > 0 && b.MaxInflight == 0 {
				bad(bp+".queue", "needs max_inflight: without a cap nothing ever waits")
			}
			for k := range b.Headers {
				if !validHeaderName(k) {
					bad(bp+".headers", "%q is not a valid header name", k)
				}
			}
			if !validHeaderValue(b.Organization) {
				bad(bp+".organization", "must not contain control characters")
			}
			if !validHeaderValue(b.Project) {
				bad(bp+".project", "must not contain control characters")
			}
			switch b.Responses {
			case "", ResponsesTranslate:
			case ResponsesNative:
				if b.Type != BackendOpenAI {
					bad(bp+".responses", "native applies only to type openai")
				}
			default:
				bad(bp+".responses", "must be translate or native, got %q", b.Responses)
			}
			switch b.Type {
			case BackendOpenAI:
				if b.BaseURL == "" {
					bad(bp+".base_url", "is required for type openai")
				} else if u, err := url.Parse(b.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
					bad(bp+".base_url", "must be an absolute http or https URL, got %q", b.BaseURL)
				} else if strings.ContainsAny(b.BaseURL, "?#") {
					// Even an empty one ("/v1?"): the operation's path is appended to the
					// address, and would land after the mark.
					bad(bp+".base_url", "must not have a query or fragment")
				}
				if b.Path != "" {
					bad(bp+".path", "applies only to type local")
				}
				if b.ContextLength != 0 || b.Threads != 0 || b.Parallel != 0 || b.Template != "" || b.KVCacheType != "" {
					bad(bp, "context_length, threads, parallel, template and kv_cache_type apply only to type local")
				}
			case BackendLocal:
				if b.Path == "" && !validPulledRef(b.Model) {
					bad(bp+".path", "is required for type local, unless model names a pulled model as owner/name[:QUANT|:FILE] (got model %q)", b.Model)
				}
				if b.BaseURL != "" {
					bad(bp+".base_url", "applies only to type openai")
				}
				if b.APIKey != "" || len(b.Headers) > 0 {
					bad(bp, "api_key and headers apply only to type openai")
				}
				if b.Organization != "" || b.Project != "" {
					bad(bp, "organization and project apply only to type openai")
				}
				if b.ContextLength < 0 || b.ContextLength > 1<<20 {
					bad(bp+".context_length", "must be between 0 (model default) and 1048576")
				}
				if b.Threads < 0 || b.Threads > 1024 {
					bad(bp+".threads", "must be between 0 (all cores) and 1024")
				}
				if b.Parallel < 0 || b.Parallel > 256 {
					bad(bp+".parallel", "must be between 0 (default 4) and 256")
				}
				switch b.Template {
				case "", "llama2", "chatml", "glm4", "chatglm3", "llama3", "llama3.1", "plain":
				default:
					bad(bp+".template", "unknown chat template %q (want llama2, chatml, glm4, chatglm3, llama3, llama3.1 or plain)", b.Template)
				}
				switch b.KVCacheType {
				case "", "f32", "f16", "q8_0":
				default:
					bad(bp+".kv_cache_type", "unknown KV cache type %q (want f32, f16 or q8_0)", b.KVCacheType)
				}
			case "":
				bad(bp+".type", "is required (openai or local)")
			default:
				bad(bp+".type", "unknown backend type %q (want openai or local)", b.Type)
			}
		}
	}
	c.Store.validate(bad)
	c.Hub.validate(bad)
	c.Batch.validate(bad)
	c.Auth.validate(bad)
	c.RateLimit.validate(bad)
	c.Cache.validate(bad)
	c.Tasks.validate(bad)
	c.CodeCheck.validate(bad)
	c.Telemetry.validate(bad)
	validatePlugins(c.Plugins, bad)
	return errors.Join(errs...)
}

// MaxBackends is the most backends one model may have.
const MaxBackends = 64

// validateScheduling checks a model's balancing, retry, breaker, health and split settings.
func (c *Config) validateScheduling(m Model, mp string, bad func(path, format string, args ...any)) {
	switch m.Strategy {
	case StrategyWeighted, StrategyLatency, StrategyLeastOutstanding:
	default:
		bad(mp+".strategy", "unknown strategy %q (want weighted, latency or least_outstanding)", m.Strategy)
	}
	byName := make(map[string]*Model, len(c.Models))
	for i := range c.Models {
		byName[c.Models[i].Name] = &c.Models[i]
	}
	for j, e := range m.Split {
		ep := fmt.Sprintf("%s.split[%d]", mp, j)
		target, ok := byName[e.Model]
		switch {
		case e.Model == "":
			bad(ep+".model", "is required")
		case e.Model == m.Name:
			bad(ep+".model", "a model cannot split to itself")
		case !ok:
			bad(ep+".model", "%q is not a configured model name", e.Model)
		case len(target.Backends) == 0:
			bad(ep+".model", "%q has no backends of its own (splits do not nest)", e.Model)
		}
		if e.Weight < 0 {
			bad(ep+".weight", "must not be negative")
		}
	}
	switch m.Sticky.By {
	case "":
		if m.Sticky.Header != "" {
			bad(mp+".sticky.header", "applies only with by: header")
		}
	case "api_key":
		if m.Sticky.Header != "" {
			bad(mp+".sticky.header", "applies only with by: header")
		}
	case "header":
		if !validHeaderName(m.Sticky.Header) {
			bad(mp+".sticky.header", "must be a valid header name, got %q", m.Sticky.Header)
		}
	default:
		bad(mp+".sticky.by", "unknown value %q (want api_key or header)", m.Sticky.By)
	}
	for j, f := range m.Fallbacks {
		fp := fmt.Sprintf("%s.fallbacks[%d]", mp, j)
		if f == m.Name {
			bad(fp, "a model cannot fall back to itself")
		} else if _, ok := byName[f]; !ok {
			bad(fp, "%q is not a configured model name", f)
		}
	}
	validateTimeouts(m.Timeouts, mp+".timeouts", bad)
	if m.MaxInflight < 0 {
		bad(mp+".max_inflight", "must not be negative")
	}
	if m.Queue < 0 {
		bad(mp+".queue", "must not be negative")
	}
	if m.QueueTimeout < 0 {
		bad(mp+".queue_timeout", "must not be negative")
	}
	r := m.Retry
	if r.Attempts < 1 || r.Attempts > MaxBackends {
		bad(mp+".retry.attempts", "must be between 1 (no retries) and %d, got %d", MaxBackends, r.Attempts)
	}
	if r.Backoff < 0 {
		bad(mp+".retry.backoff", "must not be negative")
	}
	if r.MaxBackoff < r.Backoff {
		bad(mp+".retry.max_backoff", "must not be less than retry.backoff")
	}
	if !(r.Budget > 0 && r.Budget <= 1) {
		bad(mp+".retry.budget", "must be in (0, 1], got %v", r.Budget)
	}
	if r.MinRetries < 0 {
		bad(mp+".retry.min_retries", "must not be negative")
	}
	br := m.Breaker
	if br.Window < Duration(time.Second) {
		bad(mp+".breaker.window", "must be at least 1s")
	}
	if br.Failures < 1 {
		bad(mp+".breaker.failures", "must be at least 1")
	}
	if !(br.FailureRatio > 0 && br.FailureRatio <= 1) {
		bad(mp+".breaker.failure_ratio", "must be in (0, 1], got %v", br.FailureRatio)
	}
	if br.OpenFor <= 0 {
		bad(mp+".breaker.open_for", "must be positive")
	}
	switch m.Health.Probe {
	case ProbeModels, ProbeCompletion, ProbeNone:
	default:
		bad(mp+".health.probe", "unknown probe %q (want models, completion or none)", m.Health.Probe)
	}
	if m.Health.Stream && m.Health.Probe != ProbeCompletion {
		bad(mp+".health.stream", "applies only to probe: completion")
	}
	if m.Health.Interval < Duration(100*time.Millisecond) {
		bad(mp+".health.interval", "must be at least 100ms")
	}
	if m.Health.Timeout <= 0 || m.Health.Timeout > m.Health.Interval {
		bad(mp+".health.timeout", "must be positive and at most health.interval")
	}
}

func validateTimeouts(t Timeouts, path string, bad func(path, format string, args ...any)) {
	for _, f := range []struct {
		name string
		d    Duration
	}{{"connect", t.Connect}, {"ttft", t.TTFT}, {"idle", t.Idle}, {"total", t.Total}} {
		if f.d < 0 {
			bad(path+"."+f.name, "must not be negative")
		}
	}
}

func validModelName(s string) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	for _, r := range s {
		if r <= ' ' || r == 0x7f {
			return false
		}
	}
	return true
}

func validHostname(s string) bool {
	if len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if c != '-' && (c < '0' || c > '9') && (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') {
				return false
			}
		}
	}
	return true
}

func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("()<>@,;:\\\"/[]?={}", c) >= 0 {
			return false
		}
	}
	return true
}

// validHeaderValue reports whether s can be sent as a header value: no control characters
// (a newline would end the header), tabs aside.
func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}
