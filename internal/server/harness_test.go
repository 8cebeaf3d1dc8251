package server_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/open-autoglm/autoglm/internal/backend/openai"
	"github.com/open-autoglm/autoglm/internal/cache"
	"github.com/open-autoglm/autoglm/internal/config"
	"github.com/open-autoglm/autoglm/internal/httpapi"
	"github.com/open-autoglm/autoglm/internal/mockllm"
	"github.com/open-autoglm/autoglm/internal/openai"
	"github.com/open-autoglm/autoglm/internal/openapi/openapitest"
	"github.com/open-autoglm/autoglm/internal/router"
	"github.com/open-autoglm/autoglm/internal/server"
	"github.com/open-autoglm/autoglm/internal/telemetry"
)

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// gateway is an autoglm server running on a real loopback listener.
type gateway struct {
	URL    string
	srv    *server.Server
	oa     *openai.Handler
	logs   *syncBuffer
	cancel context.CancelFunc
	done   chan error
	// outcomes records what the usage hook was told.
	outcomes *outcomeLog
	// checked counts the exchanges checked against the API description.
	checked *openapitest.Counter
}

// outcomeLog collects the outcomes the server reports.
type outcomeLog struct {
	mu   sync.Mutex
	list []openai.Outcome
}

func (l *outcomeLog) add(_ context.Context, o openai.Outcome) {
	l.mu.Lock()
	l.list = append(l.list, o)
	l.mu.Unlock()
}

// last returns the newest outcome, waiting briefly for it (it is reported after the answer).
func (l *outcomeLog) last(t *testing.T, n int) openai.Outcome {
	t.Helper()
	waitFor(t, "usage outcome", func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return len(l.list) >= n
	})
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.list[n-1]
}

// startGateway parses yamlCfg (with ${MOCK} replaced by mockURL), builds the registry and
// serves it until the test ends.
func startGateway(t testing.TB, yamlCfg string, vars map[string]string, extra ...httpapi.Route) *gateway {
	t.Helper()
	cfg, err := config.Parse([]byte(yamlCfg), func(k string) (string, bool) { v, ok := vars[k]; return v, ok })
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	reg := newRegistry(t, cfg)
	logs := &syncBuffer{}
	// Tests log everything and check every exchange against the API description; a benchmark
	// measures the gateway as it runs, at the configured log level and with no checker
	// around it (the checker's schema validation would cost more than the gateway itself).
	_, bench := t.(*testing.B)
	level := "debug"
	if bench {
		level = cfg.Log.Level
	}
	log := telemetry.NewLogger(logs, telemetry.ParseLevel(level))
	opts := server.Options{Routes: extra}
	var checked *openapitest.Counter
	if !bench {
		opts.Outer = func(h http.Handler) http.Handler {
			var own []string
			for _, rt := range extra {
				own = append(own, rt.Pattern)
			}
			h, checked = openapitest.Middleware(t, h, own...)
			return h
		}
	}
	outcomes := &outcomeLog{}
	models := openai.Options{OnDone: outcomes.add}
	if cfg.Cache.Enabled {
		c, err := cache.New(cfg.Cache, log)
		if err != nil {
			t.Fatalf("cache: %v", err)
		}
		t.Cleanup(c.Close)
		models.Cache = c
	}
	srv, oa := newServer(cfg.Server, reg, log, opts, models)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	g := &gateway{URL: "http://" + ln.Addr().String(), srv: srv, oa: oa, logs: logs, cancel: cancel, done: make(chan error, 1), outcomes: outcomes, checked: checked}
	go func() { g.done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-g.done:
		case <-time.After(10 * time.Second):
			t.Error("server did not stop")
		}
		if t.Failed() && os.Getenv("AUTOGLM_TEST_LOGS") != "" {
			t.Log(logs.String())
		}
	})
	return g
}

// newRegistry builds cfg's model registry, closed when the test ends.
func newRegistry(t testing.TB, cfg *config.Config) *router.Registry {
	t.Helper()
	reg, err := router.New(cfg.Models)
	if err != nil {
		t.Fatalf("registry: %v", err)
	}
	t.Cleanup(func() { reg.Close() })
	return reg
}

// newServer builds a server that serves the OpenAI-compatible routes (over reg, with models)
// before opts.Routes, as `autoglm serve` composes them.
func newServer(cfg config.Server, reg *router.Registry, log *slog.Logger, opts server.Options, models openai.Options) (*server.Server, *openai.Handler) {
	if models.Logger == nil {
		models.Logger = log
	}
	models.StreamWriteTimeout = cfg.StreamWriteTimeout.D()
	oa := openai.New(reg, models)
	opts.Routes = append(oa.Routes(), opts.Routes...)
	return server.NewWith(cfg, reg, log, opts), oa
}

// startMock serves a mockllm on loopback.
func startMock(t testing.TB, opt mockllm.Options) (*mockllm.Server, string) {
	t.Helper()
	m := mockllm.New(opt)
	ts := httptest.NewServer(m)
	t.Cleanup(ts.Close)
	return m, ts.URL + "/v1"
}

func oneModel(mockURL string, extra string) string {
	return fmt.Sprintf(`
models:
  - name: glm-4-flash
    aliases: [glm4]
    backends:
      - type: openai
        base_url: %s
        model: upstream-glm
%s`, mockURL, extra)
}

func post(t *testing.T, url, body string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest("POST", url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func get(t *testing.T, url string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
