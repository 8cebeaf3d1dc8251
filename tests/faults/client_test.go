package faults_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestMisbehavingClients runs one gateway and the clients a production deployment meets:
// stream readers that stop reading, hundreds of idle event followers over SSE and
// WebSocket, and request bodies sent a byte at a time.
func TestMisbehavingClients(t *testing.T) {
	u := startBadUpstream(t)
	const watchers = 1000 // 500 SSE + 500 WebSocket
	yml := fmt.Sprintf(`server:
  shutdown_timeout: 2s
  stream_write_timeout: 2s
  read_timeout: 3s
models:
  - name: endless
    backends: [{type: openai, base_url: %q}]
    health: {probe: none}
    retry: {attempts: 1}
    timeouts: {idle: 60s}
  - name: hold
    backends: [{type: openai, base_url: %q}]
    health: {probe: none}
    retry: {attempts: 1}
    timeouts: {ttft: 10m, idle: 10m}
  - name: good
    backends: [{type: openai, base_url: %q}]
    health: {probe: none}
tasks:
  workers: 1
  max_watchers: %d
`, u.base(modeEndlessStream), u.base(modeSilenceStream), u.base(modeGood), watchers)
	g := serve(t, "gateway", yml, "")
	good := func(t *testing.T) {
		t.Helper()
		a := do(t, "POST", g.URL+"/v1/chat/completions", "", `{"model":"good","messages":[{"role":"user","content":"Hi"}]}`)
		if a.status != http.StatusOK {
			t.Errorf("a well-behaved request: %d %s", a.status, a.body)
		}
	}
	good(t)
	// Sockets, not all descriptors: the SQLite reader pool opens more connections (each a
	// database and a WAL descriptor) when reads overlap, as they do on a busy machine, and
	// keeps them.
	baseRSS, baseG, baseSockets := g.rss(t), g.metric(t, "go_goroutines"), g.sockets(t)
	host := strings.TrimPrefix(g.URL, "http://")
	settle := func(t *testing.T) {
		t.Helper()
		good(t)
		eventually(t, 60*time.Second, "gateway goroutines back to where they were", func() bool {
			return g.metric(t, "go_goroutines") <= baseG+20
		})
	}

	t.Run("StreamReaderNeverReads", func(t *testing.T) {
		// Each client asks for a stream that never ends and never reads it. The gateway must
		// give up each one after stream_write_timeout (2s) of a blocked write, close the
		// client's connection and the upstream request, and hold little memory meanwhile.
		const clients = 20
		stop := rssWatch(t, g)
		conns := make([]net.Conn, clients)
		body := `{"model":"endless","stream":true,"messages":[{"role":"user","content":"Hi"}]}`
		for i := range conns {
			c, err := net.Dial("tcp", host)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetReadBuffer(4 << 10) // keep the kernel from absorbing the stream for us
			}
			fmt.Fprintf(c, "POST /v1/chat/completions HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", host, len(body), body)
			conns[i] = c
		}
		eventually(t, 30*time.Second, "every stream reached the upstream", func() bool { return u.count(modeEndlessStream) >= clients })
		if n := g.sockets(t); n < baseSockets+clients {
			t.Fatalf("the gateway has %d sockets open with %d clients streaming (%d before)", n, clients, baseSockets)
		}
		eventually(t, 120*time.Second, "the gateway ended every upstream request of a client that does not read", func() bool { return u.active.Load() == 0 })
		peak := stop()
		t.Logf("gateway RSS %d MiB before, at most %d MiB with %d clients not reading", baseRSS>>20, peak>>20, clients)
		if peak > baseRSS+128<<20 {
			t.Errorf("gateway RSS reached %d MiB with %d clients not reading (%d MiB before)", peak>>20, clients, baseRSS>>20)
		}
		// The gateway closed the clients' connections: its open sockets are back to where
		// they were. (What a client then reads is up to the kernels: the bytes already sent
		// and the close, or a reset once the closed socket's unsent bytes are dropped.)
		deadline := time.Now().Add(60 * time.Second)
		for g.sockets(t) > baseSockets+5 {
			if time.Now().After(deadline) {
				t.Fatalf("the gateway's sockets not back to where they were (%d) within 60s; its descriptors:\n%s", baseSockets, g.descriptors(t))
			}
			time.Sleep(50 * time.Millisecond)
		}
		settle(t)
	})

	t.Run("IdleWatchers", func(t *testing.T) {
		// A task that waits for its first token for ever, and 500 SSE and 500 WebSocket
		// followers of its events; one more of either kind is refused with a clear error.
		a := do(t, "POST", g.URL+"/v1/generate/code", "", `{"model":"hold","prompt":"wait","language":"go"}`)
		var tk struct {
			ID string `json:"task_id"`
		}
		if a.status != http.StatusAccepted || !envelope(t, a.body, &tk) || tk.ID == "" {
			t.Fatalf("submit: %d %s", a.status, a.body)
		}
		eventually(t, 30*time.Second, "the task started", func() bool { return u.count(modeSilenceStream) >= 1 })
		before := g.rss(t)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		tr := &http.Transport{MaxIdleConnsPerHost: -1, DisableKeepAlives: true}
		defer tr.CloseIdleConnections()
		hc := &http.Client{Transport: tr}
		eventsURL := g.URL + "/v1/task/" + tk.ID + "/events"
		wsURL := "ws://" + host + "/v1/task/" + tk.ID + "/ws"

		type follower struct {
			final string // the last status event's data, or the WebSocket's close
			err   error
		}
		results := make(chan follower, watchers)
		var opened sync.WaitGroup
		var failedOpen atomic.Int64
		var firstOpenErr atomic.Value
		openFail := func(err error) {
			failedOpen.Add(1)
			firstOpenErr.CompareAndSwap(nil, err.Error())
			opened.Done()
		}
		for i := range watchers {
			opened.Add(1)
			if i%2 == 0 {
				go func() {
					req, _ := http.NewRequestWithContext(ctx, "GET", eventsURL, nil)
					resp, err := hc.Do(req)
					if err != nil {
						openFail(err)
						return
					}
					if resp.StatusCode != http.StatusOK {
						b, _ := io.ReadAll(resp.Body)
						resp.Body.Close()
						openFail(fmt.Errorf("SSE status %d: %s", resp.StatusCode, b))
						return
					}
					opened.Done()
					defer resp.Body.Close()
					var last string
					sc := bufio.NewScanner(resp.Body)
					for sc.Scan() {
						if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok && strings.Contains(d, `"status"`) {
							last = d
						}
					}
					results <- follower{final: last, err: sc.Err()}
				}()
				continue
			}
			go func() {
				c, resp, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{HTTPClient: hc})
				if err != nil {
					if resp != nil {
						err = fmt.Errorf("WebSocket status %d: %w", resp.StatusCode, err)
					}
					openFail(err)
					return
				}
				opened.Done()
				defer c.CloseNow()
				var last string
				for {
					_, b, err := c.Read(ctx)
					if err != nil {
						if websocket.CloseStatus(err) == websocket.StatusNormalClosure {
							err = nil
						}
						results <- follower{final: last, err: err}
						return
					}
					if strings.Contains(string(b), `"event":"status"`) {
						last = string(b)
					}
				}
			}()
		}
		opened.Wait()
		if n := failedOpen.Load(); n > 0 {
			t.Fatalf("%d of %d followers could not open (the first: %v)", n, watchers, firstOpenErr.Load())
		}
		// Let every follower settle into its idle loop, then measure.
		time.Sleep(2 * time.Second)
		held := g.rss(t)
		t.Logf("gateway RSS %d MiB before, %d MiB with %d idle followers (%d KiB each)", before>>20, held>>20, watchers, (held-before)/watchers>>10)
		if held > before+256<<20 {
			t.Errorf("%d idle followers took the gateway from %d to %d MiB", watchers, before>>20, held>>20)
		}

		// One more of each kind is refused: 503, code too_many_watchers, Retry-After.
		b := do(t, "GET", eventsURL, "", "")
		if b.status != http.StatusServiceUnavailable || !strings.Contains(string(b.body), "too_many_watchers") || b.header.Get("Retry-After") == "" {
			t.Errorf("SSE follower %d: %d %s (Retry-After %q), want 503 too_many_watchers with Retry-After", watchers+1, b.status, b.body, b.header.Get("Retry-After"))
		}
		_, resp, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{HTTPClient: hc})
		if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
			status := 0
			if resp != nil {
				status = resp.StatusCode
			}
			t.Errorf("WebSocket follower %d: status %d, err %v; want 503", watchers+1, status, err)
		}
		// The requests that need no follower slot still work.
		good(t)

		// Cancel the task: every follower gets the final status and its stream ends.
		if a := do(t, "POST", g.URL+"/v1/task/"+tk.ID+"/cancel", "", ""); a.status != http.StatusOK {
			t.Fatalf("cancel: %d %s", a.status, a.body)
		}
		var bad int
		var firstBad string
		for range watchers {
			var f follower
			select {
			case f = <-results:
			case <-ctx.Done():
				t.Fatalf("followers did not all end within 5 minutes of the cancel")
			}
			if f.err != nil || !strings.Contains(f.final, "canceled") {
				if bad++; bad == 1 {
					firstBad = fmt.Sprintf("final %q, err %v", f.final, f.err)
				}
			}
		}
		if bad > 0 {
			t.Errorf("%d of %d followers did not end with the canceled status; the first: %s", bad, watchers, firstBad)
		}
		// The slots are free again.
		if a := do(t, "GET", eventsURL, "", ""); a.status != http.StatusOK || !strings.Contains(string(a.body), "canceled") {
			t.Errorf("a follower after the others ended: %d %.300s", a.status, a.body)
		}
		settle(t)
	})

	t.Run("SlowBodies", func(t *testing.T) {
		// Clients that send a body one byte every 200 ms: the gateway ends each at
		// read_timeout (3s) and keeps serving everyone else meanwhile.
		const clients = 100
		var wg sync.WaitGroup
		var leftOpen atomic.Int64
		stopSlow := make(chan struct{})
		for range clients {
			c, err := net.Dial("tcp", host)
			if err != nil {
				t.Fatal(err)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				fmt.Fprintf(c, "POST /v1/chat/completions HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{", host)
				deadline := time.Now().Add(90 * time.Second)
				for time.Now().Before(deadline) {
					select {
					case <-stopSlow:
						return
					case <-time.After(200 * time.Millisecond):
					}
					if _, err := c.Write([]byte(" ")); err != nil {
						return // closed by the gateway
					}
					// The gateway may answer before closing: a read that returns shows it.
					_ = c.SetReadDeadline(time.Now().Add(time.Millisecond))
					var one [1]byte
					if _, err := c.Read(one[:]); err == nil || errors.Is(err, io.EOF) || !isTimeout(err) {
						return
					}
				}
				leftOpen.Add(1)
			}()
		}
		for range 5 {
			good(t)
			time.Sleep(200 * time.Millisecond)
		}
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(120 * time.Second):
			close(stopSlow)
			<-done
		}
		if n := leftOpen.Load(); n > 0 {
			t.Errorf("%d of %d slow bodies were still being read after 90 s (read_timeout is 3s)", n, clients)
		}
		settle(t)
	})
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
