package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func testEnv(vars map[string]string) LookupEnv {
	return func(name string) (string, bool) {
		v, ok := vars[name]
		return v, ok
	}
}

// TestBadConfigs checks that each file in testdata/bad is refused with the message its first
// line promises.
func TestBadConfigs(t *testing.T) {
	files, err := filepath.Glob("testdata/bad/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no bad configs: %v", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".yaml"), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			first, _, _ := strings.Cut(string(data), "\n")
			want, ok := strings.CutPrefix(first, "# error: ")
			if !ok {
				t.Fatalf("%s: first line must be '# error: <message>'", f)
			}
			_, err = Parse(data, testEnv(nil))
			if err == nil {
				t.Fatalf("Parse accepted a bad config; want error %q", want)
			}
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error = %q\nwant it to contain %q", err, want)
			}
		})
	}
}

func TestFullConfig(t *testing.T) {
	c, err := Load("testdata/good/full.yaml")
	if err == nil {
		t.Fatal("Load without UPSTREAM_KEY set must fail")
	}
	data, err := os.ReadFile("testdata/good/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err = Parse(data, testEnv(map[string]string{"UPSTREAM_KEY": "sk-upstream", "HF_TOKEN": "hf-token"}))
	if err != nil {
		t.Fatal(err)
	}
	// Scheduling defaults of a model that sets none of them.
	defSched := func(m Model) Model {
		m.Strategy = "weighted"
		m.Timeouts = Timeouts{Connect: Duration(5 * time.Second), TTFT: Duration(time.Minute), Idle: Duration(time.Minute)}
		m.Retry = Retry{Attempts: 3, Backoff: Duration(25 * time.Millisecond), MaxBackoff: Duration(time.Second), Budget: 0.2, MinRetries: 10}
		m.Breaker = Breaker{Window: Duration(30 * time.Second), Failures: 5, FailureRatio: 0.5, OpenFor: Duration(10 * time.Second)}
		m.Health = Health{Probe: "models", Interval: Duration(10 * time.Second), Timeout: Duration(2 * time.Second)}
		m.QueueTimeout = Duration(10 * time.Second)
		return m
	}
	one, queue := 1, 256
	glmTimeouts := Timeouts{Connect: Duration(2 * time.Second), TTFT: Duration(20 * time.Second), Idle: Duration(30 * time.Second), Total: Duration(5 * time.Minute)}
	want := &Config{
		Server: Server{
			Addr:                 "127.0.0.1:8081",
			MaxBodyBytes:         1 << 20,
			ReadHeaderTimeout:    Duration(5 * time.Second),
			ReadTimeout:          Duration(30 * time.Second),
			WriteTimeout:         Duration(5 * time.Minute),
			StreamWriteTimeout:   Duration(15 * time.Second),
			IdleTimeout:          Duration(60 * time.Second),
			ShutdownTimeout:      Duration(20 * time.Second),
			ProfileMutexFraction: 5,
			ProfileBlockRate:     Duration(10 * time.Microsecond),
			Admission:            Admission{MaxInFlight: 512, Queue: &queue, MaxWait: Duration(50 * time.Millisecond)},
			HTTP1:                HTTP1Net,
			CodePages:            CodePagesNormal,
			CPUPlacement:         CPUPlacementSpread,
		},
		Log: Log{Level: "debug"},
		Models: []Model{
			{
				Name:    "glm-4-flash",
				Aliases: []string{"glm4"},
				Backends: []Backend{
					{Type: "openai", Name: "vllm-a", BaseURL: "http://127.0.0.1:9001/v1", APIKey: "sk-upstream",
						Model: "THUDM/glm-4-9b-chat", Weight: 3, Headers: map[string]string{"X-Team": "search"},
						Timeouts: Timeouts{Connect: Duration(2 * time.Second), TTFT: Duration(10 * time.Second),
							Idle: Duration(30 * time.Second), Total: Duration(5 * time.Minute)},
						MaxInflight: 8, Queue: 4},
					{Type: "openai", Name: "glm-4-flash#1", BaseURL: "http://127.0.0.1:9002/v1", Model: "glm-4-flash", Weight: 1,
						Timeouts: glmTimeouts, MaxInflight: 64, Queue: 16},
				},
				Strategy:  "latency",
				Sticky:    Sticky{By: "header", Header: "X-Session-Id"},
				Fallbacks: []string{"stories"},
				Timeouts:  glmTimeouts,
				Retry: Retry{Attempts: 4, Backoff: Duration(10 * time.Millisecond), MaxBackoff: Duration(500 * time.Millisecond),
					Budget: 0.1, MinRetries: 5},
				Breaker:      Breaker{Window: Duration(20 * time.Second), Failures: 3, FailureRatio: 0.25, OpenFor: Duration(5 * time.Second)},
				Health:       Health{Probe: "completion", Stream: true, Interval: Duration(15 * time.Second), Timeout: Duration(3 * time.Second)},
				MaxInflight:  64,
				Queue:        16,
				QueueTimeout: Duration(2 * time.Second),
			},
			defSched(Model{
				Name: "stories",
				Backends: []Backend{{Type: "local", Name: "stories#0", Path: "models/stories260K.gguf", Model: "stories", Weight: 1,
					ContextLength: 512, Threads: 2, Parallel: 4, Template: "plain", KVCacheType: "f16",
					Timeouts: Timeouts{Connect: Duration(5 * time.Second), TTFT: Duration(time.Minute), Idle: Duration(time.Minute)}}},
			}),
			defSched(Model{
				Name:   "glm-4",
				Split:  []SplitEntry{{Model: "glm-4-flash", Weight: 90}, {Model: "stories", Weight: 1}},
				Sticky: Sticky{By: "api_key"},
			}),
		},
		Store: Store{
			Driver:         "postgres",
			DSN:            "postgres://autoglm@127.0.0.1:5432/autoglm?sslmode=disable&pool_max_conns=16",
			Batch:          StoreBatch{Size: 256, Interval: Duration(100 * time.Millisecond), Queue: 10000},
			AuditRetention: Duration(720 * time.Hour),
			UsageRetention: Duration(8760 * time.Hour),
		},
		Auth: Auth{
			Enabled:    true,
			KeyRefresh: Duration(250 * time.Millisecond),
			JWT: JWT{Secret: "0123456789abcdef0123456789abcdef", Issuer: "https://login.example.com", Audience: "autoglm",
				UserClaim: "sub", RoleClaim: "autoglm_role", ModelsClaim: "models", DefaultRole: "reader",
				Leeway: Duration(30 * time.Second)},
			Roles: map[string][]string{"reader": {"models.list", "self.keys"}},
		},
		RateLimit: RateLimit{
			Roles: map[string]Limits{
				"user": {RequestsPerMinute: 600, TokensPerMinute: 200000, Concurrent: 8, TokensPerDay: 2000000, TokensPerMonth: 30000000},
				// guest keeps its built-in limits when the file does not set them.
				"guest": {RequestsPerMinute: 20, TokensPerMinute: 10000, Concurrent: 2},
			},
			Keys:             map[string]Limits{"key-batch": {RequestsPerMinute: 6000, Concurrent: -1}},
			Users:            map[string]Limits{"alice": {TokensPerMinute: 500000}},
			DefaultMaxTokens: 1024,
			QuotaRefresh:     Duration(5 * time.Second),
			Redis: RateLimitRedis{Addr: "127.0.0.1:6379", Username: "autoglm", Password: "redis-secret", DB: 2,
				Prefix: "gw:rl:", Timeout: Duration(50 * time.Millisecond), Fail: "local", Lease: Duration(15 * time.Minute)},
		},
		Cache: Cache{
			Enabled: true, MaxBytes: 32 << 20, MaxEntryBytes: 256 << 10, TTL: Duration(5 * time.Minute), Scope: "key",
			Models: map[string]CacheModel{
				"glm-4-flash": {TTL: Duration(time.Hour), CacheSampled: true},
				"stories":     {Disabled: true},
			},
			Redis:      CacheRedis{Addr: "127.0.0.1:6379", Password: "cache-secret", DB: 1, Prefix: "autoglm:cache:", Timeout: Duration(500 * time.Millisecond)},
			WarmupFile: "warmup.jsonl",
		},
		Tasks: Task{
			Workers: 8, ModelWorkers: map[string]int{"stories": 2}, Policy: "shortest_first",
			Timeout: Duration(2 * time.Minute), MaxAttempts: 5, Lease: Duration(10 * time.Second),
			RetryBackoff: Duration(500 * time.Millisecond), DefaultMaxTokens: 512, EventFlush: Duration(50 * time.Millisecond),
			WebhookSecret: "whsec-0123456789abcdef", WebhookAllow: []string{"10.0.0.0/8", "::1/128"},
			WebhookTimeout: Duration(5 * time.Second), WebhookRetryFor: Duration(time.Hour),
			WebhookBackoff: Duration(2 * time.Second), WebhookMaxBackoff: Duration(5 * time.Minute),
			Retention: Duration(168 * time.Hour), MaxWatchers: 2000,
		},
		Hub: Hub{Endpoint: "https://hf-mirror.com", Token: "hf-token"},
		CodeCheck: CodeCheck{
			RepairRounds: &one, MaxRepairRounds: 2,
			Sandbox: Sandbox{Enabled: true, Bwrap: "bwrap", Timeout: Duration(5 * time.Second), MemoryMB: 512,
				MaxProcesses: DefaultSandboxProcesses, MaxOutputBytes: DefaultSandboxOutputSize, ExternalCheckers: true},
		},
		Batch: Batch{MaxFileBytes: 50 << 20, Concurrency: 4},
		Telemetry: Telemetry{Tracing: Tracing{Enabled: true, Protocol: TracingGRPC, Endpoint: "http://otel-collector:4317",
			Headers: map[string]string{"x-api-key": "secret"}, ServiceName: "autoglm-edge", SampleRatio: 0.25,
			Timeout: Duration(5 * time.Second)}},
	}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("config mismatch (-want +got):\n%s", diff)
	}
}

func TestDefaults(t *testing.T) {
	c, err := Parse(DefaultYAML(), testEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Server.Addr != DefaultAddr || c.Server.MaxBodyBytes != DefaultMaxBodyBytes ||
		c.Server.ShutdownTimeout.D() != DefaultShutdownTimeout || c.Log.Level != "info" ||
		c.Batch.MaxFileBytes != 100<<20 || c.Batch.Concurrency != 2 {
		t.Errorf("defaults not applied: %+v", c.Server)
	}
	empty, err := Parse(nil, testEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	if empty.Server.Addr != DefaultAddr {
		t.Errorf("empty config: addr %q", empty.Server.Addr)
	}
}

func TestEnvExpansion(t *testing.T) {
	env := testEnv(map[string]string{"PORT": "9100", "KEY": "k$1"})
	cases := []struct {
		in, want string
		err      bool
	}{
		{"plain", "plain", false},
		{"${KEY}", "k$1", false},
		{"a-${KEY}-b-${KEY}", "a-k$1-b-k$1", false},
		{"${NOPE:-fallback}", "fallback", false},
		{"${NOPE:-}", "", false},
		{"$${KEY}", "${KEY}", false},
		{"$KEY", "$KEY", false}, // only ${...} expands
		{"${NOPE}", "", true},
		{"${KEY", "", true},
		{"${1BAD}", "", true},
	}
	for _, tc := range cases {
		got, err := expandString(tc.in, env)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("expandString(%q) = %q, %v; want %q, err=%v", tc.in, got, err, tc.want, tc.err)
		}
	}
	// An expanded plain scalar is re-typed, so a number can come from the environment.
	c, err := Parse([]byte("server:\n  max_body_bytes: ${SIZE}\n"), testEnv(map[string]string{"SIZE": "2048"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Server.MaxBodyBytes != 2048 {
		t.Errorf("max_body_bytes = %d, want 2048", c.Server.MaxBodyBytes)
	}
}

func TestAllErrorsReported(t *testing.T) {
	_, err := Parse([]byte("server:\n  addr: nope\n  max_body_bytes: 1\nlog:\n  level: x\n"), testEnv(nil))
	if err == nil {
		t.Fatal("want errors")
	}
	for _, want := range []string{"server.addr", "server.max_body_bytes", "log.level"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}

func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*/*.yaml")
	for _, s := range seeds {
		data, err := os.ReadFile(s)
		if err == nil {
			f.Add(data)
		}
	}
	f.Add(DefaultYAML())
	f.Add([]byte("models: [{name: a, backends: [{type: openai, base_url: 'http://x/v1'}]}]"))
	env := testEnv(map[string]string{"UPSTREAM_KEY": "k"})
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, env)
		if err != nil {
			if c != nil {
				t.Fatal("config returned with an error")
			}
			return
		}
		// Whatever Parse accepts must be valid and fully defaulted.
		if err := c.Validate(); err != nil {
			t.Fatalf("accepted config does not validate: %v", err)
		}
		if c.Server.Addr == "" || c.Server.MaxBodyBytes == 0 {
			t.Fatal("defaults missing")
		}
		for _, m := range c.Models {
			for _, b := range m.Backends {
				if b.Weight < 1 || b.Name == "" || b.Model == "" {
					t.Fatalf("backend defaults missing: %+v", b)
				}
			}
		}
	})
}

func TestLocalBackendNamesPulledModel(t *testing.T) {
	c, err := Parse([]byte("models:\n  - name: qwen\n    backends: [{type: local, model: \"Qwen/Qwen2.5-0.5B-Instruct-GGUF:Q4_K_M\"}]\n"), testEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	if b := c.Models[0].Backends[0]; b.Path != "" || b.Model != "Qwen/Qwen2.5-0.5B-Instruct-GGUF:Q4_K_M" {
		t.Errorf("backend = %+v", b)
	}
	if c.Hub.Endpoint != "https://huggingface.co" {
		t.Errorf("hub endpoint default = %q", c.Hub.Endpoint)
	}
}
