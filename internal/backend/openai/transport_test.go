package openai

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// testTransport is a Transport whose two paths count their dials.
type testTransport struct {
	*Transport
	direct, std atomic.Int64
}

func newTestTransport(t *testing.T) *testTransport {
	t.Helper()
	tt := &testTransport{}
	d := &net.Dialer{Timeout: 5 * time.Second}
	tt.Transport = &Transport{
		Std: &http.Transport{
			ForceAttemptHTTP2:  true,
			DisableCompression: true,
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				tt.std.Add(1)
				return d.DialContext(ctx, network, addr)
			},
		},
		Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			tt.direct.Add(1)
			return d.DialContext(ctx, network, addr)
		},
	}
	t.Cleanup(tt.CloseIdleConnections)
	return tt
}

func post(t *testing.T, rt http.RoundTripper, ctx context.Context, u, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// echo answers with the request's method, path, host and body.
func echo(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, r.Method+" "+r.URL.RequestURI()+" "+r.Host+" "+r.Header.Get("Content-Type")+" "+string(b))
}

func TestDirectPathKeepsOneConnection(t *testing.T) {
	var conns atomic.Int64
	up := httptest.NewUnstartedServer(http.HandlerFunc(echo))
	up.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	up.Start()
	defer up.Close()
	tt := newTestTransport(t)
	host := strings.TrimPrefix(up.URL, "http://")
	for i := range 20 {
		body := strings.Repeat("x", i*700) // up to ~13 KB, past the 4 KiB buffers
		resp := post(t, tt, context.Background(), up.URL+"/v1/chat/completions?a=b", body)
		if got, want := readAll(t, resp), "POST /v1/chat/completions?a=b "+host+" application/json "+body; got != want {
			t.Fatalf("request %d: answer %.80q, want %.80q", i, got, want)
		}
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("request %d: status %d, headers %v", i, resp.StatusCode, resp.Header)
		}
	}
	// A GET without a body (the health probe) takes the same path.
	req, _ := http.NewRequest(http.MethodGet, up.URL+"/v1/models", nil)
	resp, err := tt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, resp); got != "GET /v1/models "+host+"  " {
		t.Errorf("GET answer %q", got)
	}
	if tt.direct.Load() != 1 || tt.std.Load() != 0 || conns.Load() != 1 {
		t.Errorf("dials: direct %d, std %d; upstream saw %d connections; want 1, 0, 1",
			tt.direct.Load(), tt.std.Load(), conns.Load())
	}
}

// TestDirectPathEndAtClose: an answer read to its end keeps its connection until the caller
// closes it, and then the connection goes back to the pool; an answer that arrived with its
// head is ready (its reads cannot wait), a chunked one still streaming is not.
func TestDirectPathEndAtClose(t *testing.T) {
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/stream" {
			_, _ = io.WriteString(w, "first")
			w.(http.Flusher).Flush()
			<-release
			_, _ = io.WriteString(w, " second")
			return
		}
		echo(w, r)
	}))
	defer up.Close()
	tt := newTestTransport(t)
	addr := strings.TrimPrefix(up.URL, "http://")
	pooled := func() int {
		tt.mu.Lock()
		defer tt.mu.Unlock()
		return len(tt.idle[poolKey{addr: addr}])
	}
	resp := post(t, tt, context.Background(), up.URL+"/v1/embeddings", "x")
	if r, ok := resp.Body.(interface{ Ready() bool }); !ok || !r.Ready() {
		t.Error("an answer that came whole with its head is not ready")
	}
	if b, err := io.ReadAll(resp.Body); err != nil || !strings.HasSuffix(string(b), " x") {
		t.Fatalf("answer %q, %v", b, err)
	}
	if n := pooled(); n != 0 {
		t.Fatalf("%d connections pooled before Close; want the answer's still held", n)
	}
	_ = resp.Body.Close()
	if n := pooled(); n != 1 {
		t.Fatalf("%d connections pooled after Close; want 1", n)
	}

	resp = post(t, tt, context.Background(), up.URL+"/stream", "")
	buf := make([]byte, 64)
	if n, err := resp.Body.Read(buf); err != nil || string(buf[:n]) != "first" {
		t.Fatalf("first chunk %q, %v", buf[:n], err)
	}
	if resp.Body.(interface{ Ready() bool }).Ready() {
		t.Error("a chunked answer still streaming says it is ready")
	}
	close(release)
	if got := readAll(t, resp); got != " second" {
		t.Errorf("rest of the stream %q", got)
	}
	if tt.direct.Load() != 1 {
		t.Errorf("%d dials; want the pooled connection reused", tt.direct.Load())
	}
}

// TestDirectPathStreams checks that each event is handed out as soon as the upstream sends
// it: the upstream sends the second only after the client has read the first.
func TestDirectPathStreams(t *testing.T) {
	next := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range 3 {
			_, _ = io.WriteString(w, "data: "+string(rune('a'+i))+"\n\n")
			w.(http.Flusher).Flush()
			select {
			case <-next:
			case <-r.Context().Done():
				return
			}
		}
		_, _ = io.WriteString(w, "data: [DONE]\n\n")
	}))
	defer up.Close()
	tt := newTestTransport(t)
	for range 2 {
		resp := post(t, tt, context.Background(), up.URL+"/v1/chat/completions", `{"stream":true}`)
		br := bufio.NewReader(resp.Body)
		for i := range 3 {
			line, err := br.ReadString('\n')
			if err != nil || line != "data: "+string(rune('a'+i))+"\n" {
				t.Fatalf("event %d: %q, %v", i, line, err)
			}
			_, _ = br.ReadString('\n')
			next <- struct{}{}
		}
		if rest, _ := io.ReadAll(br); string(rest) != "data: [DONE]\n\n" {
			t.Fatalf("end of stream %q", rest)
		}
		_ = resp.Body.Close()
	}
	if tt.direct.Load() != 1 {
		t.Errorf("%d connections for two streams read to the end, want 1", tt.direct.Load())
	}
}

// TestDirectPathCancel: a read that waits for the upstream is ended at once, from another
// goroutine, by canceling the request's context or by the body's Interrupt (the router's idle
// watch uses it when the attempt has no context of its own): the read fails, the upstream
// sees the request abandoned, and the connection is not reused.
func TestDirectPathCancel(t *testing.T) {
	for _, by := range []string{"cancel", "interrupt"} {
		t.Run(by, func(t *testing.T) {
			gone := make(chan struct{})
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/ok" {
					echo(w, r)
					return
				}
				w.Header().Set("Content-Type", "text/event-stream")
				_, _ = io.WriteString(w, "data: first\n\n")
				w.(http.Flusher).Flush()
				<-r.Context().Done()
				close(gone)
			}))
			defer up.Close()
			tt := newTestTransport(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			resp := post(t, tt, ctx, up.URL+"/stream", "{}")
			buf := make([]byte, 64)
			if n, err := resp.Body.Read(buf); err != nil || !strings.HasPrefix(string(buf[:n]), "data: first") {
				t.Fatalf("first read %q, %v", buf[:n], err)
			}
			done := make(chan error, 1)
			go func() {
				_, err := resp.Body.Read(buf)
				done <- err
			}()
			if by == "cancel" {
				cancel()
			} else {
				time.Sleep(20 * time.Millisecond) // the read is waiting for the upstream
				resp.Body.(interface{ Interrupt() }).Interrupt()
			}
			select {
			case err := <-done:
				if err == nil {
					t.Errorf("read after %s succeeded", by)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("read not ended by %s", by)
			}
			_ = resp.Body.Close()
			select {
			case <-gone:
			case <-time.After(10 * time.Second):
				t.Fatalf("upstream request not ended by %s", by)
			}
			if got := readAll(t, post(t, tt, context.Background(), up.URL+"/ok", "x")); !strings.HasSuffix(got, " x") {
				t.Errorf("after %s: %q", by, got)
			}
			if tt.direct.Load() != 2 {
				t.Errorf("%d dials, want 2: an abandoned connection must not be reused", tt.direct.Load())
			}
			if by == "cancel" {
				// A request whose context is already done is not sent.
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, up.URL+"/ok", strings.NewReader("x"))
				if _, err := tt.RoundTrip(req); !errors.Is(err, context.Canceled) {
					t.Errorf("canceled request: %v", err)
				}
			}
		})
	}
}

// TestDirectPathDropsDeadConnections covers connections the pool must not hand out again: one
// the upstream closed while idle, one it asked to close, and one whose answer was abandoned.
func TestDirectPathDropsDeadConnections(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/close" {
			w.Header().Set("Connection", "close")
		}
		if r.URL.Path == "/big" {
			_, _ = w.Write(make([]byte, 1<<20))
			return
		}
		echo(w, r)
	}))
	defer up.Close()
	tt := newTestTransport(t)
	readAll(t, post(t, tt, context.Background(), up.URL+"/a", "1"))
	up.CloseClientConnections() // the idle connection is closed by the upstream
	time.Sleep(50 * time.Millisecond)
	if got := readAll(t, post(t, tt, context.Background(), up.URL+"/a", "2")); !strings.HasSuffix(got, " 2") {
		t.Fatalf("after the upstream closed the idle connection: %q", got)
	}
	readAll(t, post(t, tt, context.Background(), up.URL+"/close", "3"))
	readAll(t, post(t, tt, context.Background(), up.URL+"/a", "4"))
	resp := post(t, tt, context.Background(), up.URL+"/big", "5")
	_, _ = resp.Body.Read(make([]byte, 10))
	_ = resp.Body.Close() // abandoned mid-answer: closed, not drained
	readAll(t, post(t, tt, context.Background(), up.URL+"/a", "6"))
	if tt.direct.Load() != 4 {
		t.Errorf("%d dials, want 4 (first, after the idle close, after Connection: close, after an abandoned answer)", tt.direct.Load())
	}
}

func TestDirectPathHeaderLimit(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Big", strings.Repeat("h", 8<<10))
		echo(w, r)
	}))
	defer up.Close()
	tt := newTestTransport(t)
	tt.MaxHeaderBytes = 4 << 10
	req, _ := http.NewRequest(http.MethodPost, up.URL, strings.NewReader("x"))
	if _, err := tt.RoundTrip(req); !errors.Is(err, errHeaderTooLarge) {
		t.Errorf("8 KiB header against a 4 KiB limit: %v", err)
	}
}

// TestOtherRequestsUseStd checks that what the direct path does not do goes through net/http:
// TLS with HTTP/2, a proxy, a body of unknown length.
func TestOtherRequestsUseStd(t *testing.T) {
	tlsUp := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.Proto)
	}))
	tlsUp.EnableHTTP2 = true
	tlsUp.StartTLS()
	defer tlsUp.Close()
	tt := newTestTransport(t)
	tt.Std.TLSClientConfig = &tls.Config{RootCAs: tlsUp.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs}
	resp := post(t, tt, context.Background(), tlsUp.URL+"/v1/chat/completions", "{}")
	if got := readAll(t, resp); got != "HTTP/2.0" || resp.ProtoMajor != 2 {
		t.Errorf("TLS upstream offering h2: served %q, answered %s", got, resp.Proto)
	}

	// A forward proxy answers for the upstream it is asked for.
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "proxied "+r.URL.String())
	}))
	defer proxy.Close()
	pu, _ := url.Parse(proxy.URL)
	tt.Proxy = func(*http.Request) (*url.URL, error) { return pu, nil }
	tt.Std.Proxy = tt.Proxy
	if got := readAll(t, post(t, tt, context.Background(), "http://upstream.invalid/v1/x", "{}")); got != "proxied http://upstream.invalid/v1/x" {
		t.Errorf("through the proxy: %q", got)
	}
	tt.Proxy, tt.Std.Proxy = nil, nil

	up := httptest.NewServer(http.HandlerFunc(echo))
	defer up.Close()
	req, _ := http.NewRequest(http.MethodPost, up.URL+"/x", io.NopCloser(strings.NewReader("unknown length")))
	resp, err := tt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, resp); !strings.HasSuffix(got, " unknown length") {
		t.Errorf("body of unknown length: %q", got)
	}
	if tt.direct.Load() != 0 || tt.std.Load() != 3 {
		t.Errorf("dials: direct %d, std %d; want 0, 3", tt.direct.Load(), tt.std.Load())
	}
}

// BenchmarkRoundTrip sets the direct path against net/http's Transport on the same upstream,
// one request at a time as at a low request rate: most of the difference is the goroutine
// hand-offs the direct path does not make.
func BenchmarkRoundTrip(b *testing.B) {
	answer := []byte(`{"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"sixteen tokens of answer text here"},"finish_reason":"stop"}],"usage":{"prompt_tokens":16,"completion_tokens":16,"total_tokens":32}}`)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(answer)
	}))
	defer up.Close()
	body := `{"model":"m","messages":[{"role":"user","content":"the quick brown fox jumps over a lazy dog"}],"max_tokens":16}`
	tr := newTransport(5 * time.Second)
	defer tr.CloseIdleConnections()
	for _, tc := range []struct {
		name string
		rt   http.RoundTripper
	}{{"direct", tr}, {"std", tr.Std}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				req, _ := http.NewRequest(http.MethodPost, up.URL+"/v1/chat/completions", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				resp, err := tc.rt.RoundTrip(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
			}
		})
	}
}
