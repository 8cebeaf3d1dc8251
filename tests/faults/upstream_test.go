package faults_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// badUpstream is an OpenAI-compatible upstream that misbehaves in the way its path names:
// base URL http://ADDR/<mode>/v1.
type badUpstream struct {
	srv    *http.Server
	addr   string
	hits   sync.Map     // mode -> *atomic.Int64
	active atomic.Int64 // requests being answered now
}

// upstream modes.
const (
	modeSilenceStream = "silence-stream"   // SSE headers, then nothing
	modeSilenceJSON   = "silence-json"     // JSON headers, then nothing
	modeEndlessJSON   = "endless-json"     // a JSON body that never ends
	modeEndlessEvent  = "endless-event"    // one SSE event that never ends
	modeEndlessStream = "endless-stream"   // well-formed SSE events that never end
	modeBigEvent      = "big-event"        // one 10 MB SSE event, then [DONE]
	modeInvalidJSON   = "invalid-json"     // 200 with a body that is not JSON
	modeInvalidStream = "invalid-stream"   // SSE whose events are not JSON
	modeResetStream   = "reset-stream"     // SSE events, then a TCP reset
	modeResetJSON     = "reset-json"       // half a JSON body, then a TCP reset
	modeError200      = "error-200"        // HTTP 200 whose body is an error object
	modeError200SSE   = "error-200-stream" // SSE whose only event is an error object
	modeGood          = "good"             // a correct answer
)

// endlessLimit is how much an endless upstream sends before falling silent: far more than a
// bounded gateway may hold, little enough for a loaded machine to push through in seconds.
const endlessLimit = 256 << 20

// bigEventBytes is the content of the single big SSE event.
const bigEventBytes = 10 << 20

func startBadUpstream(t *testing.T) *badUpstream {
	t.Helper()
	u := &badUpstream{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u.addr = ln.Addr().String()
	u.srv = &http.Server{Handler: http.HandlerFunc(u.serve), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = u.srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = u.srv.Shutdown(ctx)
		_ = u.srv.Close()
	})
	return u
}

func (u *badUpstream) base(mode string) string { return "http://" + u.addr + "/" + mode + "/v1" }

func (u *badUpstream) count(mode string) int64 {
	v, _ := u.hits.LoadOrStore(mode, new(atomic.Int64))
	return v.(*atomic.Int64).Load()
}

func (u *badUpstream) serve(w http.ResponseWriter, r *http.Request) {
	mode, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if strings.HasSuffix(r.URL.Path, "/models") {
		_, _ = io.WriteString(w, `{"object":"list","data":[{"id":"m","object":"model"}]}`)
		return
	}
	v, _ := u.hits.LoadOrStore(mode, new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
	u.active.Add(1)
	defer u.active.Add(-1)
	_, _ = io.Copy(io.Discard, r.Body)
	ctx := r.Context()
	rc := http.NewResponseController(w)
	sse := func() {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		_ = rc.Flush()
	}
	jsonHeader := func() {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_ = rc.Flush()
	}
	endless := func(prefix string, fill byte) {
		_, _ = io.WriteString(w, prefix)
		chunk := bytes.Repeat([]byte{fill}, 64<<10)
		for sent := 0; sent < endlessLimit && ctx.Err() == nil; sent += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
		_ = rc.Flush()
		<-ctx.Done()
	}
	reset := func() {
		_ = rc.Flush()
		conn, _, err := rc.Hijack()
		if err != nil {
			return
		}
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // close with RST
		}
		_ = conn.Close()
	}
	chunk := func(s string) string {
		return `data: {"id":"chatcmpl-bad","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"` + s + `"},"finish_reason":null}]}` + "\n\n"
	}
	switch mode {
	case modeSilenceStream:
		sse()
		<-ctx.Done()
	case modeSilenceJSON:
		jsonHeader()
		<-ctx.Done()
	case modeEndlessJSON:
		jsonHeader()
		endless(`{"id":"chatcmpl-bad","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"`, 'a')
	case modeEndlessEvent:
		sse()
		endless(`data: {"choices":[{"index":0,"delta":{"content":"`, 'a')
	case modeEndlessStream:
		sse()
		ev := []byte(chunk(strings.Repeat("a", 1000)))
		for sent := 0; sent < endlessLimit && ctx.Err() == nil; sent += len(ev) {
			if _, err := w.Write(ev); err != nil {
				return
			}
		}
		_ = rc.Flush()
		<-ctx.Done()
	case modeBigEvent:
		sse()
		_, _ = io.WriteString(w, chunk(strings.Repeat("b", bigEventBytes)))
		_, _ = io.WriteString(w, "data: [DONE]\n\n")
	case modeInvalidJSON:
		jsonHeader()
		_, _ = io.WriteString(w, `{"id":"chatcmpl-bad","choices":[{"message":{"content":"cut`+"\x00"+` here, <html>oops</html>`)
	case modeInvalidStream:
		sse()
		_, _ = io.WriteString(w, "data: {not json at all\n\ndata: [DONE]\n\n")
	case modeResetStream:
		sse()
		for i := range 3 {
			_, _ = io.WriteString(w, chunk(fmt.Sprint("part", i)))
		}
		reset()
	case modeResetJSON:
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "1000")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, `{"id":"chatcmpl-bad","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"half`)
		reset()
	case modeError200:
		jsonHeader()
		_, _ = io.WriteString(w, `{"error":{"message":"the upstream is overloaded","type":"server_error","code":"overloaded"}}`)
	case modeError200SSE:
		sse()
		_, _ = io.WriteString(w, `data: {"error":{"message":"the upstream is overloaded","type":"server_error","code":"overloaded"}}`+"\n\n")
	case modeGood:
		if bytes.Contains([]byte(r.Header.Get("Accept")), []byte("event-stream")) {
			sse()
			_, _ = io.WriteString(w, chunk("fine")+"data: [DONE]\n\n")
			return
		}
		jsonHeader()
		_, _ = io.WriteString(w, `{"id":"chatcmpl-good","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"fine"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`)
	default:
		http.NotFound(w, r)
	}
}

// rssWatch samples a process's RSS every 50 ms until stopped and returns the largest.
func rssWatch(t *testing.T, p *proc) (stop func() int64) {
	var peak atomic.Int64
	peak.Store(p.rss(t))
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				if r := p.rss(t); r > peak.Load() {
					peak.Store(r)
				}
			}
		}
	}()
	return func() int64 {
		close(done)
		wg.Wait()
		return peak.Load()
	}
}

// streamResult is what a client read from a stream: the bytes (up to keep), how many in all,
// and how the read ended.
type streamResult struct {
	status int
	header http.Header
	head   []byte // the first keep bytes
	tail   []byte // the last keep bytes
	total  int64
	err    error
}

func readAll(t *testing.T, url, body string, keep int) streamResult {
	t.Helper()
	req, err := http.NewRequest("POST", url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	// A hang detector only: the gateway's own timeouts must end every exchange far sooner.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	resp, err := client.Do(req.WithContext(ctx))
	if err != nil {
		return streamResult{err: err}
	}
	defer resp.Body.Close()
	res := streamResult{status: resp.StatusCode, header: resp.Header}
	br := bufio.NewReaderSize(resp.Body, 64<<10)
	buf := make([]byte, 64<<10)
	for {
		n, err := br.Read(buf)
		if n > 0 {
			if len(res.head) < keep {
				res.head = append(res.head, buf[:min(n, keep-len(res.head))]...)
			}
			res.tail = append(res.tail, buf[:n]...)
			if len(res.tail) > keep {
				res.tail = append(res.tail[:0], res.tail[len(res.tail)-keep:]...)
			}
			res.total += int64(n)
		}
		if err != nil {
			if err != io.EOF {
				res.err = err
			}
			return res
		}
	}
}

// TestMisbehavingUpstreams sends requests through one gateway to upstreams that misbehave
// and checks what the client gets, that the gateway's memory stays bounded whatever the
// upstream sends, that nothing broken is cached, and that the gateway still serves
// well-behaved requests afterwards with no goroutine left behind.
func TestMisbehavingUpstreams(t *testing.T) {
	u := startBadUpstream(t)
	modes := []string{modeSilenceStream, modeSilenceJSON, modeEndlessJSON, modeEndlessEvent, modeEndlessStream,
		modeBigEvent, modeInvalidJSON, modeInvalidStream, modeResetStream, modeResetJSON, modeError200, modeError200SSE, modeGood}
	var models strings.Builder
	for _, m := range modes {
		// One attempt: a retry would only repeat the fault. The idle gap ends silences.
		fmt.Fprintf(&models, `  - name: %s
    backends: [{type: openai, base_url: %q}]
    health: {probe: none}
    retry: {attempts: 1}
    timeouts: {ttft: 3s, idle: 2s}
`, m, u.base(m))
	}
	yml := `server:
  shutdown_timeout: 2s
cache:
  enabled: true
models:
` + models.String()
	g := serve(t, "gateway", yml, "")
	body := func(model string, stream bool) string {
		return fmt.Sprintf(`{"model":%q,"temperature":0,"max_tokens":8,"stream":%v,"messages":[{"role":"user","content":"Hello"}]}`, model, stream)
	}
	if a := do(t, "POST", g.URL+"/v1/chat/completions", "", body(modeGood, false)); a.status != http.StatusOK || !bytes.Contains(a.body, []byte("fine")) {
		t.Fatalf("good upstream: %d %s", a.status, a.body)
	}
	baseRSS, baseG := g.rss(t), g.metric(t, "go_goroutines")
	// Generous: the faults below push hundreds of megabytes through the gateway; holding any
	// of them whole would exceed this many times over.
	const rssMargin = 128 << 20

	type check func(t *testing.T, res streamResult)
	errorCode := func(status int, code string) check {
		return func(t *testing.T, res streamResult) {
			c, _, _, ok := openAIError(res.head)
			if res.status != status || !ok || c != code {
				t.Errorf("got %d %.300q, want %d with an OpenAI error of code %s", res.status, res.head, status, code)
			}
		}
	}
	streamEndsWith := func(code string) check {
		return func(t *testing.T, res streamResult) {
			if res.status != http.StatusOK || res.err != nil {
				t.Errorf("status %d, read error %v; want 200 and a stream that ends cleanly", res.status, res.err)
			}
			if !bytes.Contains(res.tail, []byte(`"code":"`+code+`"`)) {
				t.Errorf("the stream does not end with an error event of code %s: ...%q", code, tailOf(res.tail, 400))
			}
		}
	}
	// A body that broke off after the status went out: the client must see a broken
	// exchange (the connection cut before the body or the headers are complete), never a
	// truncated body that looks whole.
	aborted := func(t *testing.T, res streamResult) {
		if res.err == nil {
			t.Errorf("status %d, %d bytes read to a clean end; want the connection cut before the answer is complete", res.status, res.total)
		}
	}
	passedThrough := func(want string) check {
		return func(t *testing.T, res streamResult) {
			if res.status != http.StatusOK || res.err != nil || !bytes.Contains(res.head, []byte(want)) {
				t.Errorf("got %d %.300q (read error %v), want the upstream's answer containing %q as it came", res.status, res.head, res.err, want)
			}
		}
	}
	for _, tc := range []struct {
		mode   string
		stream bool
		check  check
		cached bool // ask twice: the second must not be a cache hit
	}{
		{modeSilenceStream, true, errorCode(http.StatusGatewayTimeout, "upstream_timeout"), false},
		{modeSilenceJSON, false, errorCode(http.StatusGatewayTimeout, "upstream_idle_timeout"), false},
		{modeEndlessJSON, false, aborted, false},
		{modeEndlessEvent, true, streamEndsWith("upstream_idle_timeout"), false},
		{modeEndlessStream, true, streamEndsWith("upstream_idle_timeout"), false},
		{modeBigEvent, true, func(t *testing.T, res streamResult) {
			if res.status != http.StatusOK || res.err != nil || res.total < bigEventBytes || !bytes.HasSuffix(res.tail, []byte("data: [DONE]\n\n")) {
				t.Errorf("got %d, %d bytes, read error %v, ending %q; want the whole 10 MB event and [DONE]", res.status, res.total, res.err, tailOf(res.tail, 100))
			}
		}, false},
		{modeInvalidJSON, false, passedThrough("<html>oops"), true},
		{modeInvalidStream, true, passedThrough("{not json at all"), true},
		{modeResetStream, true, streamEndsWith("upstream_stream_interrupted"), false},
		{modeResetJSON, false, aborted, false},
		{modeError200, false, passedThrough(`"code":"overloaded"`), true},
		{modeError200SSE, true, passedThrough(`"code":"overloaded"`), true},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			stop := rssWatch(t, g)
			res := readAll(t, g.URL+"/v1/chat/completions", body(tc.mode, tc.stream), 2048)
			peak := stop()
			t.Logf("status %d, %d bytes, read error %v; gateway RSS %d MiB before the test, %d MiB at most during this case",
				res.status, res.total, res.err, baseRSS>>20, peak>>20)
			tc.check(t, res)
			if peak > baseRSS+rssMargin {
				t.Errorf("gateway RSS reached %d MiB, more than %d MiB over the %d MiB it had before", peak>>20, rssMargin>>20, baseRSS>>20)
			}
			if tc.cached {
				again := readAll(t, g.URL+"/v1/chat/completions", body(tc.mode, tc.stream), 2048)
				if h := again.header.Get("X-Autoglm-Cache"); h == "hit" {
					t.Errorf("a broken answer was cached: the second request was a cache hit")
				}
				if n := u.count(tc.mode); n != 2 {
					t.Errorf("the upstream got %d requests, want 2 (nothing cached)", n)
				}
			}
		})
	}
	t.Run("Afterwards", func(t *testing.T) {
		for _, stream := range []bool{false, true} {
			a := do(t, "POST", g.URL+"/v1/chat/completions", "", body(modeGood, stream))
			if a.status != http.StatusOK || !bytes.Contains(a.body, []byte("fine")) {
				t.Errorf("good upstream (stream %v) after the faults: %d %s", stream, a.status, a.body)
			}
		}
		// Every exchange above has ended: its goroutines must be gone (a hang detector; the
		// margin covers the runtime's and keep-alive connections' own).
		eventually(t, 30*time.Second, "goroutines back to where they were", func() bool {
			return g.metric(t, "go_goroutines") <= baseG+20
		})
	})
}

func tailOf(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
