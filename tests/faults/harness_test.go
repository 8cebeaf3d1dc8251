package faults_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/open-autoglm/autoglm/internal/testenv"
)

// adminKey is the bootstrap admin key of the servers that run with authentication on.
const adminKey = "faults-admin-0123456789abcdef"

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
	buildDir  string
)

// TestMain removes the binary built for the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// binary builds autoglm once per test binary, from the module root two levels up.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "autoglm-faults-")
		if buildErr != nil {
			return
		}
		builtBin = filepath.Join(buildDir, "autoglm")
		cmd := exec.Command("go", "build", "-o", builtBin, "./cmd/autoglm")
		cmd.Dir = filepath.Join("..", "..")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

// proc is a child process of the test: an `autoglm serve` or `autoglm mockllm`.
type proc struct {
	name string
	cmd  *exec.Cmd
	logs *testenv.ServeLog
	done chan struct{}
	URL  string // http://host:port, once ready
}

// start runs autoglm with args and stops it when the test ends (SIGTERM, then SIGKILL after
// 15 s). Its output is kept and shown when the test failed.
func start(t *testing.T, name string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, logs: testenv.NewServeLog(), done: make(chan struct{})}
	p.cmd = exec.Command(binary(t), args...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Dir = t.TempDir()
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	p.cmd.WaitDelay = 5 * time.Second
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop(t)
		if t.Failed() {
			t.Logf("%s output (last 8 KiB):\n%s", name, p.logs.Tail(8<<10))
		}
	})
	p.waitReady(t)
	return p
}

// serve starts `autoglm serve` with the configuration yml, on a free port, with its own data
// directory (dataDir, or a new one when empty).
func serve(t *testing.T, name, yml, dataDir string, env ...string) *proc {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "autoglm.yaml")
	if err := os.WriteFile(cfg, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	if dataDir == "" {
		dataDir = t.TempDir()
	}
	return start(t, name, env, "serve", "--config", cfg, "--addr", "127.0.0.1:0", "--data-dir", dataDir)
}

// mockllm starts `autoglm mockllm` with extra flags.
func mockllm(t *testing.T, name string, flags ...string) *proc {
	t.Helper()
	return start(t, name, nil, append([]string{"mockllm", "--addr", "127.0.0.1:0"}, flags...)...)
}

func (p *proc) stop(t *testing.T) {
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		t.Errorf("%s did not stop within 15s of SIGTERM; killing it", p.name)
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *proc) waitReady(t *testing.T) {
	t.Helper()
	select {
	case <-p.logs.Ready():
		p.URL = "http://" + p.logs.Addr()
	case <-p.done:
		t.Fatalf("%s exited before listening: %v\n%s", p.name, p.cmd.ProcessState, p.logs.Tail(8<<10))
	case <-time.After(60 * time.Second):
		t.Fatalf("%s did not listen within 60s:\n%s", p.name, p.logs.Tail(8<<10))
	}
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// rss returns the process's resident set size in bytes, from /proc.
func (p *proc) rss(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		t.Fatalf("rss of %s: %v", p.name, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("rss of %s: %q", p.name, line)
			}
			return kb << 10
		}
	}
	t.Fatalf("rss of %s: no VmRSS", p.name)
	return 0
}

// metric returns the sum of the samples of a metric from /metrics whose labels contain every
// one of labels (written as name="value"); -1 when there is no such sample.
func (p *proc) metric(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	a := do(t, "GET", p.URL+"/metrics", adminKey, "")
	if a.status != http.StatusOK {
		t.Fatalf("metrics of %s: %d %s", p.name, a.status, a.body)
	}
	sum, found := 0.0, false
	sc := bufio.NewScanner(bytes.NewReader(a.body))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) || (len(line) > len(name) && line[len(name)] != '{' && line[len(name)] != ' ') {
			continue
		}
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(line, l)
		}
		if !ok {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		sum, found = sum+v, true
	}
	if !found {
		return -1
	}
	return sum
}

// logged reports whether the process's output has a line containing s.
func (p *proc) logged(s string) bool {
	return p.logs.Contains(s)
}

// answer is an HTTP answer read whole; status 0 is a transport failure, its text in body.
type answer struct {
	status int
	header http.Header
	body   []byte
}

var client = &http.Client{
	Transport: &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second},
	Timeout:   90 * time.Second,
}

func do(t *testing.T, method, url, key, body string) answer {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := client.Do(req)
	if err != nil {
		return answer{body: []byte(err.Error())}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return answer{status: resp.StatusCode, header: resp.Header, body: []byte("reading the body: " + err.Error())}
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: b}
}

// openAIError decodes an OpenAI-shaped error body; ok is false when the body is not one.
func openAIError(b []byte) (code, typ, msg string, ok bool) {
	var e struct {
		Error *struct {
			Message string `json:"message"`
			Type    string `json:"type"`
			Code    string `json:"code"`
		} `json:"error"`
	}
	if json.Unmarshal(b, &e) != nil || e.Error == nil {
		return "", "", "", false
	}
	return e.Error.Code, e.Error.Type, e.Error.Message, true
}

// envelope decodes a native envelope's data into v (when not nil) and returns its success.
func envelope(t *testing.T, b []byte, v any) bool {
	t.Helper()
	var env struct {
		Success bool            `json:"success"`
		Data    json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(b, &env); err != nil {
		t.Fatalf("not an envelope (%v): %.300s", err, b)
	}
	if v != nil && env.Success {
		if err := json.Unmarshal(env.Data, v); err != nil {
			t.Fatalf("envelope data: %v: %.300s", err, env.Data)
		}
	}
	return env.Success
}

// eventually polls cond every 50 ms until it holds or limit passes (a hang detector: limits
// are generous).
func eventually(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, limit)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

const chatBody = `{"model":"mock","max_tokens":8,"messages":[{"role":"user","content":"Hello"}]}`

// jsonOK decodes b into v and reports whether it worked.
func jsonOK(b []byte, v any) bool { return json.Unmarshal(b, v) == nil }

// sockets counts the process's open sockets, from /proc.
func (p *proc) sockets(t *testing.T) int {
	t.Helper()
	n := 0
	for _, target := range p.fdTargets(t) {
		if strings.HasPrefix(target, "socket:") {
			n++
		}
	}
	return n
}

// descriptors lists the process's open descriptors with their TCP endpoints and states, for
// a failure's message.
func (p *proc) descriptors(t *testing.T) string {
	t.Helper()
	tcp := map[string]string{} // socket inode: "local -> remote state"
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			c := strings.Fields(line)
			if len(c) > 9 {
				tcp[c[9]] = c[1] + " -> " + c[2] + " state " + c[3]
			}
		}
	}
	var out strings.Builder
	for fd, target := range p.fdTargets(t) {
		fmt.Fprintf(&out, "%s %s", fd, target)
		if inode, ok := strings.CutPrefix(target, "socket:["); ok {
			if s, ok := tcp[strings.TrimSuffix(inode, "]")]; ok {
				fmt.Fprintf(&out, " %s", s)
			}
		}
		out.WriteByte('\n')
	}
	return out.String()
}

func (p *proc) fdTargets(t *testing.T) map[string]string {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fd", p.cmd.Process.Pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("descriptors of %s: %v", p.name, err)
	}
	out := make(map[string]string, len(ents))
	for _, e := range ents {
		if target, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil {
			out[e.Name()] = target
		}
	}
	return out
}
