// Package config is autoglm's YAML configuration: the types, their defaults, strict decoding
// (an unknown key is an error that names it), explicit ${ENV} expansion, and validation whose
// errors name the field at fault.
//
// Every field's comment states its default. Parse applies defaults; Validate checks fields
// and their relations and reports every problem at once.
package config

import (
	_ "embed"
	"fmt"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/open-autoglm/autoglm/internal/evloop"
)

// Config is the whole configuration file.
type Config struct {
	// Server configures the HTTP listener.
	Server Server `yaml:"server"`
	// Log configures structured logging.
	Log Log `yaml:"log"`
	// Models lists the models clients can ask for by name. Default: none.
	Models []Model `yaml:"models"`
	// Store configures persistence (keys, users, usage, audit, tasks). See store.go.
	Store Store `yaml:"store"`
	// Auth configures authentication and roles. See auth.go.
	Auth Auth `yaml:"auth"`
	// RateLimit configures rate limits and quotas. See ratelimit.go.
	RateLimit RateLimit `yaml:"ratelimit"`
	// Cache configures the response cache. See cache.go.
	Cache Cache `yaml:"cache"`
	// Tasks configures asynchronous tasks. See task.go.
	Tasks Task `yaml:"tasks"`
	// Hub configures model downloads (autoglm pull). See hub.go.
	Hub Hub `yaml:"hub"`
	// CodeCheck configures checks and repairs of generated code. See codecheck.go.
	CodeCheck CodeCheck `yaml:"code_check"`
	// Batch configures the Batch API. See batch.go.
	Batch Batch `yaml:"batch"`
	// Telemetry configures tracing. See telemetry.go.
	Telemetry Telemetry `yaml:"telemetry"`
	// Plugins is the plugin chain, in the order the request hooks run. See plugin.go.
	// Default: none.
	Plugins []Plugin `yaml:"plugins"`
}

// Server configures the HTTP listener and its limits.
type Server struct {
	// Addr is the listen address. Default "127.0.0.1:8080".
	Addr string `yaml:"addr"`
	// MaxBodyBytes caps a request body. Default 4194304 (4 MiB).
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// ReadHeaderTimeout bounds reading request headers. Default 10s.
	ReadHeaderTimeout Duration `yaml:"read_header_timeout"`
	// ReadTimeout bounds reading a whole request, body included. Default 60s.
	ReadTimeout Duration `yaml:"read_timeout"`
	// WriteTimeout bounds writing a non-streamed response, which includes waiting for the
	// upstream to finish generating it. Default 10m. Streams are not bound by it: each chunk
	// gets StreamWriteTimeout instead.
	WriteTimeout Duration `yaml:"write_timeout"`
	// StreamWriteTimeout bounds the write of each chunk of a stream to a slow client: a
	// write gets between 15/16 of it and all of it (the deadline moves once a sixteenth
	// has passed, not at every chunk). Default 30s.
	StreamWriteTimeout Duration `yaml:"stream_write_timeout"`
	// IdleTimeout closes keep-alive connections idle this long. Default 120s.
	IdleTimeout Duration `yaml:"idle_timeout"`
	// ShutdownTimeout is how long a graceful shutdown waits for in-flight requests and
	// streams before closing them. Default 30s.
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`
	// ProfileMutexFraction turns on the mutex contention profile (/debug/pprof/mutex): on
	// average 1 in this many contention events is sampled (runtime.SetMutexProfileFraction).
	// 0 leaves it off. Default 0.
	ProfileMutexFraction int `yaml:"profile_mutex_fraction"`
	// ProfileBlockRate turns on the blocking profile (/debug/pprof/block): one blocking event
	// is sampled per this much time spent blocked (runtime.SetBlockProfileRate); "1ns" samples
	// every event. 0 leaves it off. Default 0.
	ProfileBlockRate Duration `yaml:"profile_block_rate"`
	// Admission bounds the requests served at once and queued, refusing the excess early.
	Admission Admission `yaml:"admission"`
	// TLS serves HTTPS on Addr instead of plain HTTP and h2c. Default: off.
	TLS TLS `yaml:"tls"`
	// HTTP1 picks the server of plain HTTP/1.1 on a listener without TLS: "lean" (internal/h1:
	// one goroutine per connection, no background read per request; h2c, Upgrade and Expect
	// are handed to net/http's server on the same listener), "loop" (the same server on
	// event loops, one per CPU: each connection a coroutine of its loop, and the OpenAI
	// routes to plain-HTTP upstreams served on the loop from the client's read to the
	// upstream's answer; see internal/evloop) or "net" (net/http's server for everything).
	// With TLS, net/http serves. Default "loop" where there are event loops (Linux on amd64
	// and arm64), "lean" elsewhere.
	HTTP1 string `yaml:"http1"`
	// EventLoops is how many event loops serve with http1 "loop": 0 (the default) one per
	// CPU the Go runtime uses (GOMAXPROCS), as nginx's "worker_processes auto".
	EventLoops int `yaml:"event_loops"`
	// CodePages says where `autoglm serve` keeps its machine code: "huge" (2 MiB transparent
	// huge pages, where the kernel offers them: fewer instruction-TLB misses on the request
	// path, at the cost of up to 26 MiB more resident memory and of perf's symbols for
	// the moved code) or "normal" (the executable's own 4 KiB file pages). Default "huge".
	// See internal/hugetext.
	CodePages string `yaml:"code_pages"`
	// CPUPlacement says where `autoglm serve` lets its threads run: "gather" (on the idlest
	// CPU while the process used less than a quarter of one over two seconds, over all of its
	// CPUs again within 25 ms of using half of one: fewer wake-ups across CPUs and warmer
	// caches at a low request rate; never with a model on the built-in engine; see
	// internal/cpuplace) or "spread" (wherever the kernel puts them). Default "gather".
	CPUPlacement string `yaml:"cpu_placement"`
	// Deprecations mark routes deprecated: their answers carry the Deprecation (RFC 9745)
	// and Sunset (RFC 8594) headers. Default: none.
	Deprecations []Deprecation `yaml:"deprecations"`
}

// TLS configures HTTPS on the listener. The certificate and key are read again when either
// file changes, so a renewed certificate is served without a restart.
type TLS struct {
	// CertFile is the PEM certificate chain, leaf first. Setting it and KeyFile turns TLS
	// on. Default "" (off).
	CertFile string `yaml:"cert_file"`
	// KeyFile is the PEM private key of the certificate. Default "".
	KeyFile string `yaml:"key_file"`
	// ClientCAFile is a PEM bundle of the authorities client certificates are verified
	// against. Default "" (none).
	ClientCAFile string `yaml:"client_ca_file"`
	// ClientAuth is "none" (do not ask for a client certificate), "request" (ask, verify
	// one if sent against ClientCAFile) or "require_and_verify" (refuse connections without
	// a certificate ClientCAFile verifies). Default "none".
	ClientAuth string `yaml:"client_auth"`
	// ReloadInterval is how often the files are checked for changes. Default 10s.
	ReloadInterval Duration `yaml:"reload_interval"`
}

// Enabled reports whether TLS is configured.
func (t TLS) Enabled() bool { return t.CertFile != "" || t.KeyFile != "" }

// TLS client authentication modes.
const (
	ClientAuthNone             = "none"
	ClientAuthRequest          = "request"
	ClientAuthRequireAndVerify = "require_and_verify"
)

// Deprecation marks one route deprecated.
type Deprecation struct {
	// Route is the route as registered: "METHOD pattern", e.g. "GET /v1/task/{task_id}".
	// Required.
	Route string `yaml:"route"`
	// Since is when the route was deprecated (RFC 3339). Required.
	Since Time `yaml:"since"`
	// Sunset is when the route will stop working (RFC 3339). Default: not announced.
	Sunset Time `yaml:"sunset"`
	// Link is a page that says why and how to migrate, sent as Link rel="deprecation".
	// Default: none.
	Link string `yaml:"link"`
}

// Admission bounds the work the server takes on. Requests from the listener (health probes and
// metrics scrapes excepted) take one of MaxInFlight slots; when none is free they wait in a
// queue of Queue for at most MaxWait; past either limit they are refused at once with 503 and
// Retry-After, before their body is read. Size MaxInFlight above the open streams you expect:
// a stream holds its slot until it ends.
type Admission struct {
	// MaxInFlight is how many requests are served at once. Default 0: unbounded (admission off).
	MaxInFlight int `yaml:"max_in_flight"`
	// Queue is how many requests may wait for a slot. Default: MaxInFlight.
	Queue *int `yaml:"queue"`
	// MaxWait is the longest a request waits for a slot. Default 100ms.
	MaxWait Duration `yaml:"max_wait"`
}

// Log configures logging.
type Log struct {
	// Level is one of debug, info, warn, error. Default "info".
	Level string `yaml:"level"`
}

// Model is one public model name and the backends that serve it.
type Model struct {
	// Name is what clients send as "model". Required, unique across names and aliases.
	Name string `yaml:"name"`
	// Aliases are other names that resolve to this model. Default: none.
	Aliases []string `yaml:"aliases"`
	// Backends serve the model. A model has either backends or a split, not both.
	Backends []Backend `yaml:"backends"`
	// Strategy chooses among the backends: "weighted" (smooth weighted round-robin),
	// "latency" (power of two choices on live time-to-first-token and latency) or
	// "least_outstanding" (fewest requests in flight per unit of weight). Default "weighted".
	Strategy string `yaml:"strategy"`
	// Split sends the model's traffic to other configured models by weight, for canary
	// releases. Each entry names a model that has backends. Default: none.
	Split []SplitEntry `yaml:"split"`
	// Sticky keeps one client on the same backend (and the same split entry) while it is
	// available. Default: not sticky.
	Sticky Sticky `yaml:"sticky"`
	// Fallbacks are models tried in order when every backend of this one failed or is
	// unavailable. Default: none.
	Fallbacks []string `yaml:"fallbacks"`
	// Timeouts apply to every backend of the model that does not set its own.
	Timeouts Timeouts `yaml:"timeouts"`
	// Retry says when and how often a failed request is tried again elsewhere.
	Retry Retry `yaml:"retry"`
	// Breaker configures the passive health check: the circuit breaker of each backend.
	Breaker Breaker `yaml:"breaker"`
	// Health configures the active health check: a periodic probe of each backend.
	Health Health `yaml:"health"`
	// MaxInflight caps the requests in flight on each backend that does not set its own.
	// Default 0 (no cap).
	MaxInflight int `yaml:"max_inflight"`
	// Queue is how many requests may wait for a backend's in-flight slot when it is at
	// MaxInflight, for backends that do not set their own. Default 0 (refuse at once).
	Queue int `yaml:"queue"`
	// QueueTimeout bounds the wait in a backend's queue. Default 10s.
	QueueTimeout Duration `yaml:"queue_timeout"`
}

// Balancing strategies.
const (
	StrategyWeighted         = "weighted"
	StrategyLatency          = "latency"
	StrategyLeastOutstanding = "least_outstanding"
)

// SplitEntry is one model of a canary split.
type SplitEntry struct {
	// Model names another configured model (not an alias). Required.
	Model string `yaml:"model"`
	// Weight is the entry's share of traffic. Default 1.
	Weight int `yaml:"weight"`
}

// Sticky says what identifies a client for sticky routing.
type Sticky struct {
	// By is "api_key" (the client's bearer key) or "header". Default "" (not sticky).
	By string `yaml:"by"`
	// Header names the request header whose value identifies the client when By is
	// "header". Required then.
	Header string `yaml:"header"`
}

// Timeouts bound the phases of a request to one backend.
type Timeouts struct {
	// Connect bounds establishing a connection (TCP and TLS) to an upstream. Default 5s.
	Connect Duration `yaml:"connect"`
	// TTFT bounds the time from sending a streamed request to its first body byte; on
	// expiry another backend is tried. Default 60s.
	TTFT Duration `yaml:"ttft"`
	// Idle bounds the gap between two chunks of a response body. Default 60s.
	Idle Duration `yaml:"idle"`
	// Total bounds one request from the first try to the end of the answer, retries
	// included. Default 0 (no bound beyond the client's own deadline).
	Total Duration `yaml:"total"`
}

// Retry configures retries.
type Retry struct {
	// Attempts is the most backends one request may be sent to, the first included, across
	// the model and its fallbacks. 1 disables retries. Default 3.
	Attempts int `yaml:"attempts"`
	// Backoff is the base of the jittered exponential wait before a retry. Default 25ms.
	Backoff Duration `yaml:"backoff"`
	// MaxBackoff caps the wait before a retry. Default 1s.
	MaxBackoff Duration `yaml:"max_backoff"`
	// Budget is the fraction of the model's requests in the last 10 seconds that may be
	// retries, in (0, 1]. Default 0.2.
	Budget float64 `yaml:"budget"`
	// MinRetries is how many retries the budget allows in any 10 seconds whatever the
	// traffic, so that a quiet model can still retry. Default 10.
	MinRetries int `yaml:"min_retries"`
}

// Breaker configures the circuit breaker of each backend.
type Breaker struct {
	// Window is the sliding window over which outcomes are counted. Default 30s.
	Window Duration `yaml:"window"`
	// Failures is the least number of failures in the window that opens the circuit.
	// Default 5.
	Failures int `yaml:"failures"`
	// FailureRatio is the least fraction of failed outcomes in the window that opens the
	// circuit, in (0, 1]; both thresholds must be reached. Default 0.5.
	FailureRatio float64 `yaml:"failure_ratio"`
	// OpenFor is how long an open circuit refuses requests before letting one trial through.
	// Default 10s.
	OpenFor Duration `yaml:"open_for"`
}

// Active probe kinds.
const (
	ProbeModels     = "models"
	ProbeCompletion = "completion"
	ProbeNone       = "none"
)

// Health configures the active probe.
type Health struct {
	// Probe is "models" (GET the upstream's model list; any HTTP answer is up), "completion"
	// (a one-token chat completion; a 2xx answer is up) or "none". Local backends are not
	// probed. Default "models".
	Probe string `yaml:"probe"`
	// Stream makes the completion probe a streamed request. Default false.
	Stream bool `yaml:"stream"`
	// Interval is the time between probes. Default 10s.
	Interval Duration `yaml:"interval"`
	// Timeout bounds one probe. Default 2s.
	Timeout Duration `yaml:"timeout"`
}

// Backend types.
const (
	// BackendOpenAI is any OpenAI-compatible upstream: vLLM, SGLang, TGI, Ollama,
	// llama-server, hosted APIs.
	BackendOpenAI = "openai"
	// BackendLocal is a GGUF model run by the built-in engine.
	BackendLocal = "local"
)

// Backend is one place a model's requests can go.
type Backend struct {
	// Type is "openai" or "local". Required.
	Type string `yaml:"type"`
	// Name labels the backend in logs, metrics and the admin API. Default "<model>#<index>".
	Name string `yaml:"name"`
	// BaseURL is the upstream's API root, including its version path, e.g.
	// "http://127.0.0.1:8000/v1". Required for type openai.
	BaseURL string `yaml:"base_url"`
	// APIKey is sent upstream as "Authorization: Bearer <key>". Default: none.
	APIKey string `yaml:"api_key"`
	// Model is the model name the upstream knows. Default: the public model name. For type
	// local without a path, it names a pulled model, REPO[:FILE|:QUANT], which the store
	// must hold when the server starts; answers carry it as their model.
	Model string `yaml:"model"`
	// Weight is the backend's share of traffic relative to its siblings. Default 1.
	Weight int `yaml:"weight"`
	// Headers are extra headers sent upstream with every request. Default: none.
	Headers map[string]string `yaml:"headers"`
	// Organization is sent upstream as OpenAI-Organization. Clients cannot choose it: their
	// own OpenAI-Organization header is never forwarded. Default: none.
	Organization string `yaml:"organization"`
	// Project is sent upstream as OpenAI-Project; as for Organization, a client's own is never
	// forwarded. Default: none.
	Project string `yaml:"project"`
	// Path is the GGUF file to load. Type local: either path, or model naming a model
	// pulled into the store ("Qwen/Qwen2.5-0.5B-Instruct-GGUF:Q4_K_M", see `autoglm pull`).
	Path string `yaml:"path"`
	// ContextLength is the context window of a local model, in tokens. Default: the model's
	// metadata. Type local only.
	ContextLength int `yaml:"context_length"`
	// Threads is the number of threads a local model computes with. Default: all cores.
	// Type local only.
	Threads int `yaml:"threads"`
	// Parallel is how many sequences a local model decodes together (continuous batching).
	// Default 4. Type local only.
	Parallel int `yaml:"parallel"`
	// Template names the chat template of a local model: llama2, chatml, glm4, chatglm3,
	// llama3, llama3.1 or plain. Default: detected from the model's metadata. Type local only.
	Template string `yaml:"template"`
	// KVCacheType is the element type of a local model's KV cache: f32 (exact), f16 (half the
	// memory) or q8_0 (about a quarter; needs a head size that is a multiple of 32). Default
	// f32. Type local only.
	KVCacheType string `yaml:"kv_cache_type"`
	// Timeouts override the model's timeouts for this backend, field by field. Default: the
	// model's.
	Timeouts Timeouts `yaml:"timeouts"`
	// MaxInflight overrides the model's max_inflight. Default: the model's.
	MaxInflight int `yaml:"max_inflight"`
	// Queue overrides the model's queue. Default: the model's.
	Queue int `yaml:"queue"`
	// Responses says how POST /v1/responses reaches this backend: "translate" (the gateway
	// turns it into a chat completion and back) or "native" (the body is passed through to
	// the upstream's own /responses, which then keeps the conversation state). A model
	// passes Responses requests through only when every one of its backends is native.
	// Default "translate". Type openai only.
	Responses string `yaml:"responses"`
}

// How a backend serves the Responses API (Backend.Responses).
const (
	ResponsesTranslate = "translate"
	ResponsesNative    = "native"
)

// Duration is a time.Duration written in YAML as a Go duration string ("300ms", "2m").
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// UnmarshalYAML parses a duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("invalid duration %q (want a value such as 300ms, 10s or 2m)", n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration as a string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// Where the server's machine code lives (Server.CodePages).
const (
	CodePagesHuge   = "huge"
	CodePagesNormal = "normal"
)

// Where the server's threads run (Server.CPUPlacement).
const (
	CPUPlacementGather = "gather"
	CPUPlacementSpread = "spread"
)

// Servers of plain HTTP/1.1 (Server.HTTP1).
const (
	HTTP1Lean = "lean"
	HTTP1Loop = "loop"
	HTTP1Net  = "net"
)

// Defaults for fields left empty.
const (
	DefaultAddr               = "127.0.0.1:8080"
	DefaultMaxBodyBytes       = 4 << 20
	DefaultReadHeaderTimeout  = 10 * time.Second
	DefaultReadTimeout        = 60 * time.Second
	DefaultWriteTimeout       = 10 * time.Minute
	DefaultStreamWriteTimeout = 30 * time.Second
	DefaultIdleTimeout        = 120 * time.Second
	DefaultShutdownTimeout    = 30 * time.Second
	DefaultAdmissionWait      = 100 * time.Millisecond

	DefaultQueueTimeout   = 10 * time.Second
	DefaultConnectTimeout = 5 * time.Second
	DefaultTTFTTimeout    = 60 * time.Second
	DefaultIdleGap        = 60 * time.Second
	DefaultRetryAttempts  = 3
	DefaultRetryBackoff   = 25 * time.Millisecond
	DefaultMaxBackoff     = time.Second
	DefaultRetryBudget    = 0.2
	DefaultMinRetries     = 10
	DefaultBreakerWindow  = 30 * time.Second
	DefaultBreakerFails   = 5
	DefaultBreakerRatio   = 0.5
	DefaultBreakerOpenFor = 10 * time.Second
	DefaultProbeInterval  = 10 * time.Second
	DefaultProbeTimeout   = 2 * time.Second
)

// WithDefaults returns a copy of c with every empty field set to its default.
func (c Config) WithDefaults() Config {
	s := &c.Server
	if s.Addr == "" {
		s.Addr = DefaultAddr
	}
	if s.MaxBodyBytes == 0 {
		s.MaxBodyBytes = DefaultMaxBodyBytes
	}
	setDur(&s.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	setDur(&s.ReadTimeout, DefaultReadTimeout)
	setDur(&s.WriteTimeout, DefaultWriteTimeout)
	setDur(&s.StreamWriteTimeout, DefaultStreamWriteTimeout)
	setDur(&s.IdleTimeout, DefaultIdleTimeout)
	setDur(&s.ShutdownTimeout, DefaultShutdownTimeout)
	if s.CodePages == "" {
		s.CodePages = CodePagesHuge
	}
	if s.HTTP1 == "" {
		s.HTTP1 = HTTP1Lean
		if evloop.Supported {
			s.HTTP1 = HTTP1Loop
		}
	}
	if s.TLS.Enabled() {
		if s.TLS.ClientAuth == "" {
			s.TLS.ClientAuth = ClientAuthNone
		}
		setDur(&s.TLS.ReloadInterval, DefaultTLSReloadInterval)
	}
	if a := &s.Admission; a.MaxInFlight > 0 {
		if a.Queue == nil {
			q := a.MaxInFlight
			a.Queue = &q
		}
		setDur(&a.MaxWait, DefaultAdmissionWait)
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	models := make([]Model, len(c.Models))
	for i, m := range c.Models {
		if m.Strategy == "" {
			m.Strategy = StrategyWeighted
		}
		setDur(&m.QueueTimeout, DefaultQueueTimeout)
		setDur(&m.Timeouts.Connect, DefaultConnectTimeout)
		setDur(&m.Timeouts.TTFT, DefaultTTFTTimeout)
		setDur(&m.Timeouts.Idle, DefaultIdleGap)
		r := &m.Retry
		if r.Attempts == 0 {
			r.Attempts = DefaultRetryAttempts
		}
		setDur(&r.Backoff, DefaultRetryBackoff)
		setDur(&r.MaxBackoff, DefaultMaxBackoff)
		if r.Budget == 0 {
			r.Budget = DefaultRetryBudget
		}
		if r.MinRetries == 0 {
			r.MinRetries = DefaultMinRetries
		}
		br := &m.Breaker
		setDur(&br.Window, DefaultBreakerWindow)
		if br.Failures == 0 {
			br.Failures = DefaultBreakerFails
		}
		if br.FailureRatio == 0 {
			br.FailureRatio = DefaultBreakerRatio
		}
		setDur(&br.OpenFor, DefaultBreakerOpenFor)
		if m.Health.Probe == "" {
			m.Health.Probe = ProbeModels
		}
		setDur(&m.Health.Interval, DefaultProbeInterval)
		setDur(&m.Health.Timeout, DefaultProbeTimeout)
		if len(m.Split) > 0 {
			split := make([]SplitEntry, len(m.Split))
			for j, e := range m.Split {
				if e.Weight == 0 {
					e.Weight = 1
				}
				split[j] = e
			}
			m.Split = split
		}
		var backends []Backend
		if len(m.Backends) > 0 {
			backends = make([]Backend, len(m.Backends))
		}
		for j, b := range m.Backends {
			if b.Name == "" {
				b.Name = fmt.Sprintf("%s#%d", m.Name, j)
			}
			if b.Model == "" {
				b.Model = m.Name
			}
			if b.Weight == 0 {
				b.Weight = 1
			}
			setDur(&b.Timeouts.Connect, m.Timeouts.Connect.D())
			setDur(&b.Timeouts.TTFT, m.Timeouts.TTFT.D())
			setDur(&b.Timeouts.Idle, m.Timeouts.Idle.D())
			setDur(&b.Timeouts.Total, m.Timeouts.Total.D())
			if b.MaxInflight == 0 {
				b.MaxInflight = m.MaxInflight
			}
			if b.Queue == 0 {
				b.Queue = m.Queue
			}
			backends[j] = b
		}
		m.Backends = backends
		models[i] = m
	}
	c.Models = models
	c.Store = c.Store.withDefaults()
	c.Auth = c.Auth.withDefaults()
	c.RateLimit = c.RateLimit.withDefaults()
	c.Cache = c.Cache.withDefaults()
	c.Tasks = c.Tasks.withDefaults()
	c.Hub = c.Hub.withDefaults()
	c.CodeCheck = c.CodeCheck.withDefaults()
	c.Batch = c.Batch.withDefaults()
	c.Plugins = pluginsWithDefaults(c.Plugins)
	return c
}

func setDur(d *Duration, def time.Duration) {
	if *d == 0 {
		*d = Duration(def)
	}
}

//go:embed default.yaml
var defaultYAML []byte

// DefaultYAML is the configuration `autoglm serve` runs without --config.
func DefaultYAML() []byte { return defaultYAML }
