package router_test

// Chaos tests: the gateway in front of real `autoglm mockllm` processes, one of which is
// killed (and restarted) while traffic flows. Assertions are counts and ratios only; the
// timeouts below are hang guards, not measurements.

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/open-autoglm/autoglm/internal/backend/openai"
	"github.com/open-autoglm/autoglm/internal/config"
	"github.com/open-autoglm/autoglm/internal/openai"
	"github.com/open-autoglm/autoglm/internal/router"
	"github.com/open-autoglm/autoglm/internal/server"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
	binDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// autoglmBinary builds the autoglm command once per test run.
func autoglmBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "autoglm-chaos-")
		if binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "autoglm")
		cmd := exec.Command("go", "build", "-o", binPath, "../../cmd/autoglm")
		out, err := cmd.CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// mock is a running `autoglm mockllm` process.
type mock struct {
	addr string // host:port
	cmd  *exec.Cmd
	done chan struct{}
}

func (m *mock) URL() string { return "http://" + m.addr + "/v1" }

var listening = regexp.MustCompile(`listening on http://([0-9.:]+)/v1`)

// startMock runs mockllm on addr ("127.0.0.1:0" for any port) with extra flags and waits
// until it listens. The process is killed when the test ends.
func startMock(t *testing.T, addr string, flags ...string) *mock {
	t.Helper()
	args := append([]string{"mockllm", "--addr", addr}, flags...)
	cmd := exec.Command(autoglmBinary(t), args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	m := &mock{cmd: cmd, done: make(chan struct{})}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if g := listening.FindStringSubmatch(sc.Text()); g != nil {
				select {
				case found <- g[1]:
				default:
				}
			}
		}
		cmd.Wait()
		close(m.done)
	}()
	t.Cleanup(m.kill)
	select {
	case m.addr = <-found:
	case <-m.done:
		t.Fatalf("mockllm %v exited before listening", flags)
	case <-time.After(30 * time.Second):
		t.Fatalf("mockllm %v did not start", flags)
	}
	return m
}

// kill ends the process at once (SIGKILL: no graceful close of its connections).
func (m *mock) kill() {
	select {
	case <-m.done:
		return
	default:
	}
	_ = m.cmd.Process.Kill()
	<-m.done
}

// gateway serves cfg (YAML) in-process and returns its URL and registry.
func gateway(t *testing.T, yaml string) (string, *router.Registry) {
	t.Helper()
	cfg, err := config.Parse([]byte(yaml), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	log := slog.New(slog.DiscardHandler)
	reg, err := router.New(cfg.Models, router.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	oa := openai.New(reg, openai.Options{Logger: log})
	ts := httptest.NewServer(server.New(cfg.Server, reg, log, oa.Routes()...).Handler())
	t.Cleanup(ts.Close)
	return ts.URL, reg
}

var client = &http.Client{Timeout: 60 * time.Second} // hang guard

// chat posts a chat completion and returns the status, the body and the Retry-After header.
func chat(t *testing.T, url, model string, stream bool) (int, string, string) {
	t.Helper()
	body := fmt.Sprintf(`{"model":%q,"max_tokens":4,"stream":%v,"messages":[{"role":"user","content":"hi"}]}`, model, stream)
	resp, err := client.Post(url+"/v1/chat/completions", "application/json", strings.NewReader(body))
	if err != nil {
		t.Errorf("client: %v", err)
		return 0, "", ""
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Errorf("reading the answer: %v", err)
	}
	return resp.StatusCode, string(b), resp.Header.Get("Retry-After")
}

func status(t *testing.T, reg *router.Registry, model string) router.ModelStatus {
	t.Helper()
	for _, s := range reg.Status() {
		if s.Name == model {
			return s
		}
	}
	t.Fatalf("no model %s", model)
	return router.ModelStatus{}
}

func backendStatus(s router.ModelStatus, name string) router.BackendStatus {
	for _, b := range s.Backends {
		if b.Name == name {
			return b
		}
	}
	return router.BackendStatus{}
}

// run sends n requests with the given concurrency; after each completed request, hook (if
// not nil) sees the count done so far. It returns the statuses seen.
func run(t *testing.T, n, concurrency int, send func() int, hook func(done int)) map[int]int {
	t.Helper()
	var (
		mu    sync.Mutex
		codes = map[int]int{}
		next  atomic.Int64
		done  atomic.Int64
		wg    sync.WaitGroup
	)
	for range concurrency {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				code := send()
				mu.Lock()
				codes[code]++
				mu.Unlock()
				if hook != nil {
					hook(int(done.Add(1)))
				}
			}
		})
	}
	wg.Wait()
	return codes
}

const chaosBackends = `
      - {type: openai, name: fast, base_url: "%s"}
      - {type: openai, name: slow, base_url: "%s"}
      - {type: openai, name: failing, base_url: "%s"}
      - {type: openai, name: doomed, base_url: "%s"}
`

// TestChaosZeroErrors: with a fast, a slow, a half-failing and a killed-then-restarted
// backend behind a model, no client sees an error; the killed backend's circuit opens within
// its threshold and closes once it is back; retries stay within the budget.
func TestChaosZeroErrors(t *testing.T) {
	fast := startMock(t, "127.0.0.1:0")
	slow := startMock(t, "127.0.0.1:0", "--ttft", "300ms")
	failing := startMock(t, "127.0.0.1:0", "--fail-rate", "0.5", "--seed", "7")
	doomed := startMock(t, "127.0.0.1:0", "--ttft", "20ms")
	const (
		n           = 240
		concurrency = 6
		failures    = 3
		ratio       = 0.3
	)
	url, reg := gateway(t, fmt.Sprintf(`
models:
  - name: chaos
    strategy: weighted
    retry: {attempts: 4, backoff: 1ms, max_backoff: 5ms, budget: 0.5, min_retries: 20}
    breaker: {window: 10s, failures: %d, failure_ratio: %v, open_for: 300ms}
    health: {probe: none}
    backends:`+chaosBackends, failures, ratio, fast.URL(), slow.URL(), failing.URL(), doomed.URL()))

	// Traffic flows in the background; the doomed backend is killed (from the traffic
	// itself, so requests are in flight) after a third of the requests, and restarted on the
	// same address from the test goroutine after two thirds.
	var (
		progress     atomic.Int64
		okBeforeKill uint64 // successes of the doomed backend when it was killed
		finished     = make(chan map[int]int, 1)
	)
	start := time.Now()
	go func() {
		finished <- run(t, n, concurrency, func() int {
			code, body, _ := chat(t, url, "chaos", false)
			if code != 200 {
				t.Errorf("client got %d: %s", code, body)
			}
			return code
		}, func(done int) {
			if done == n/3 {
				doomed.kill()
				for _, m := range reg.Status() {
					okBeforeKill = backendStatus(m, "doomed").Successes
				}
			}
			progress.Store(int64(done))
		})
	}()
	var codes map[int]int
wait:
	for {
		select {
		case codes = <-finished:
			t.Fatal("traffic ended before the killed backend was restarted")
		case <-time.After(5 * time.Millisecond):
			if progress.Load() >= 2*n/3 {
				break wait
			}
		}
	}
	startMock(t, doomed.addr, "--ttft", "20ms")
	codes = <-finished
	elapsed := time.Since(start)
	if codes[200] != n {
		t.Fatalf("statuses %v: want all %d to succeed", codes, n)
	}
	// Let the restarted backend's circuit close: one trial after open_for.
	deadline := time.Now().Add(20 * time.Second)
	for backendStatus(status(t, reg, "chaos"), "doomed").Circuit != "closed" && time.Now().Before(deadline) {
		chat(t, url, "chaos", false)
		time.Sleep(20 * time.Millisecond)
	}
	st := status(t, reg, "chaos")
	d := backendStatus(st, "doomed")
	if d.CircuitOpens == 0 {
		t.Errorf("the killed backend's circuit never opened: %+v", d)
	}
	if d.Circuit != "closed" {
		t.Errorf("the restarted backend's circuit did not close: %+v", d)
	}
	// The first opening needs `failures` failures and a failure ratio of 0.3 over the window,
	// whose successes are at most those before the kill; requests already in flight when it
	// opened fail too, and each later opening is one failed trial.
	need := max(uint64(failures), uint64(math.Ceil(ratio*float64(okBeforeKill)/(1-ratio))))
	dfail := d.Errors["connect"] + d.Errors["status_5xx"] + d.Errors["stream_broken"]
	if limit := need + concurrency + d.CircuitOpens; dfail > limit {
		t.Errorf("killed backend failed %d times for %d openings; thresholds allow %d", dfail, d.CircuitOpens, limit)
	}
	if f := backendStatus(st, "failing"); f.Errors["status_5xx"] == 0 || f.CircuitOpens == 0 {
		t.Errorf("half-failing backend: %+v", f)
	}
	windows := 1 + uint64(elapsed/(10*time.Second))
	if limit := uint64(0.5*float64(st.Requests)) + 20*windows; st.Retries > limit {
		t.Errorf("retries %d exceed the budget %d for %d requests", st.Retries, limit, st.Requests)
	}
	t.Logf("requests %d, retries %d, denied %d; doomed opens %d, failing opens %d", st.Requests, st.Retries,
		st.RetriesDenied, d.CircuitOpens, backendStatus(st, "failing").CircuitOpens)
}

// TestChaosLatency: with strategy latency, once warmed up, at least 80% of requests go to
// the fast backend, without errors.
func TestChaosLatency(t *testing.T) {
	fast := startMock(t, "127.0.0.1:0")
	slow := startMock(t, "127.0.0.1:0", "--ttft", "300ms")
	failing := startMock(t, "127.0.0.1:0", "--fail-rate", "0.5", "--seed", "3")
	url, reg := gateway(t, fmt.Sprintf(`
models:
  - name: chaos
    strategy: latency
    retry: {attempts: 3, backoff: 1ms, max_backoff: 5ms, budget: 0.5}
    health: {probe: none}
    backends:
      - {type: openai, name: fast, base_url: "%s"}
      - {type: openai, name: slow, base_url: "%s"}
      - {type: openai, name: failing, base_url: "%s"}
`, fast.URL(), slow.URL(), failing.URL()))
	send := func() int {
		code, body, _ := chat(t, url, "chaos", false)
		if code != 200 {
			t.Errorf("client got %d: %s", code, body)
		}
		return code
	}
	run(t, 30, 3, send, nil) // warm-up
	before := status(t, reg, "chaos")
	const n = 300
	codes := run(t, n, 3, send, nil)
	after := status(t, reg, "chaos")
	if codes[200] != n {
		t.Fatalf("statuses %v", codes)
	}
	var total uint64
	for i := range after.Backends {
		total += after.Backends[i].Requests - before.Backends[i].Requests
	}
	fastN := backendStatus(after, "fast").Requests - backendStatus(before, "fast").Requests
	share := float64(fastN) / float64(total)
	t.Logf("fast backend took %d of %d attempts (%.1f%%)", fastN, total, 100*share)
	if share < 0.8 {
		t.Errorf("fast backend share %.2f, want ≥ 0.80", share)
	}
}

// TestChaosTTFT: a backend that is slow to its first token loses the request to another
// backend; the client sees a complete stream.
func TestChaosTTFT(t *testing.T) {
	// The first-token timeout leaves the fast backend room on a starved machine (race
	// detector, busy cores); the slow one stays far past it.
	slow := startMock(t, "127.0.0.1:0", "--ttft", "3s")
	fast := startMock(t, "127.0.0.1:0")
	url, reg := gateway(t, fmt.Sprintf(`
models:
  - name: chaos
    timeouts: {ttft: 500ms}
    breaker: {failures: 1000}
    retry: {budget: 1}
    health: {probe: none}
    backends:
      - {type: openai, name: slow, base_url: "%s", weight: 1000}
      - {type: openai, name: fast, base_url: "%s"}
`, slow.URL(), fast.URL()))
	const n = 5
	for range n {
		code, body, _ := chat(t, url, "chaos", true)
		if code != 200 || !strings.HasSuffix(body, "data: [DONE]\n\n") || strings.Contains(body, `"error"`) {
			t.Fatalf("status %d, body %q", code, body)
		}
	}
	st := status(t, reg, "chaos")
	if got := backendStatus(st, "slow").Errors["ttft_timeout"]; got < n-1 {
		t.Errorf("ttft timeouts on the slow backend = %d, want ≥ %d", got, n-1)
	}
	if got := backendStatus(st, "fast").Successes; got < n-1 {
		t.Errorf("fast backend served %d streams", got)
	}
}

// TestChaosStreamDies: the backend of a running stream is killed; the client's stream ends
// with an SSE error event instead of hanging or ending silently.
func TestChaosStreamDies(t *testing.T) {
	m := startMock(t, "127.0.0.1:0", "--itl", "50ms", "--tokens", "200")
	url, _ := gateway(t, fmt.Sprintf(`
models:
  - name: chaos
    health: {probe: none}
    backends:
      - {type: openai, base_url: "%s"}
`, m.URL()))
	body := `{"model":"chaos","stream":true,"messages":[{"role":"user","content":"hi"}]}`
	resp, err := client.Post(url+"/v1/chat/completions", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	r := bufio.NewReader(resp.Body)
	var events []string
	for {
		line, err := r.ReadString('\n')
		if strings.HasPrefix(line, "data: ") {
			events = append(events, strings.TrimSpace(strings.TrimPrefix(line, "data: ")))
			if len(events) == 3 {
				m.kill()
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatalf("stream read: %v", err)
			}
			break
		}
	}
	if len(events) < 4 {
		t.Fatalf("events: %q", events)
	}
	last := events[len(events)-1]
	var e struct {
		Error struct{ Code string } `json:"error"`
	}
	if err := json.Unmarshal([]byte(last), &e); err != nil || e.Error.Code != "upstream_stream_interrupted" {
		t.Fatalf("last event %q is not the interruption error", last)
	}
	for _, ev := range events {
		if ev == "[DONE]" {
			t.Fatal("a broken stream claimed to be done")
		}
	}
}

// TestChaosQueueFull: with two in-flight slots and two queue places on the only backend,
// a burst of ten requests gets four answers and 429s with Retry-After for the rest.
func TestChaosQueueFull(t *testing.T) {
	m := startMock(t, "127.0.0.1:0", "--ttft", "1s")
	url, reg := gateway(t, fmt.Sprintf(`
models:
  - name: chaos
    max_inflight: 2
    queue: 2
    queue_timeout: 30s
    health: {probe: none}
    backends:
      - {type: openai, base_url: "%s"}
`, m.URL()))
	var refusedWithoutRetryAfter atomic.Int64
	codes := run(t, 10, 10, func() int {
		code, _, ra := chat(t, url, "chaos", false)
		if code == 429 && ra == "" {
			refusedWithoutRetryAfter.Add(1)
		}
		return code
	}, nil)
	if codes[200] < 4 || codes[429] < 1 || codes[200]+codes[429] != 10 {
		t.Fatalf("statuses %v: want ≥4 answers, the rest 429", codes)
	}
	if refusedWithoutRetryAfter.Load() != 0 {
		t.Error("a 429 came without Retry-After")
	}
	if st := status(t, reg, "chaos"); st.QueueRefusals != uint64(codes[429]) {
		t.Errorf("queue refusals %d, 429s %d", st.QueueRefusals, codes[429])
	}
}
