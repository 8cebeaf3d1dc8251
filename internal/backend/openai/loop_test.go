package openai

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/open-autoglm/autoglm/internal/evloop"
	"github.com/open-autoglm/autoglm/internal/h1"
)

// A request served on an event loop reaches the upstream over a connection of its loop's
// own, kept in the loop's pool and reused by the loop's next request: answers whole and
// streamed come back unchanged, a canceled request ends its upstream read, and no
// connection is dialled through Dial.
func TestDirectPathOnLoops(t *testing.T) {
	if !evloop.Supported {
		t.Skip("no event loops on this platform")
	}
	var upConns atomic.Int64
	hangEnded := make(chan struct{}, 1)
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		switch r.URL.Path {
		case "/stream":
			for i := range 3 {
				fmt.Fprintf(w, "data: %d %s\n\n", i, b)
				w.(http.Flusher).Flush()
			}
		case "/hang":
			<-r.Context().Done()
			hangEnded <- struct{}{}
		default:
			fmt.Fprintf(w, "answer %s", b)
		}
	}))
	up.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			upConns.Add(1)
		}
	}
	up.Start()
	defer up.Close()
	tt := newTestTransport(t)
	onLoop := make(chan bool, 16)
	srv := &h1.Server{
		Inline: func(*http.Request) bool { return true },
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			onLoop <- evloop.FromContext(r.Context()) != nil
			req, _ := http.NewRequestWithContext(r.Context(), http.MethodPost, up.URL+r.URL.Path, r.Body)
			req.ContentLength = r.ContentLength
			resp, err := tt.RoundTrip(req)
			if err != nil {
				http.Error(w, "upstream: "+err.Error(), http.StatusBadGateway)
				return
			}
			defer resp.Body.Close()
			w.WriteHeader(resp.StatusCode)
			buf := make([]byte, 4096)
			for {
				n, err := resp.Body.Read(buf)
				if n > 0 {
					_, _ = w.Write(buf[:n])
					w.(http.Flusher).Flush()
				}
				if err != nil {
					return
				}
			}
		}),
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.ServeLoops(ln, 1) }()
	defer func() { _ = srv.Close(); <-done }()

	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	ask := func(path, body string) string {
		t.Helper()
		fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n%s", path, len(body), body)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		if !<-onLoop {
			t.Error("the handler did not run on its loop")
		}
		return string(b)
	}
	for i := range 5 {
		if got, want := ask("/x", fmt.Sprint("q", i)), fmt.Sprint("answer q", i); got != want {
			t.Fatalf("answer %q, want %q", got, want)
		}
	}
	if got, want := ask("/stream", "s"), "data: 0 s\n\ndata: 1 s\n\ndata: 2 s\n\n"; got != want {
		t.Fatalf("stream %q, want %q", got, want)
	}
	if n := upConns.Load(); n != 1 {
		t.Errorf("%d upstream connections for six requests in turn, want 1 (reused from the loop's pool)", n)
	}
	if n := tt.direct.Load(); n != 0 {
		t.Errorf("%d connections dialled through Dial, want 0 (dialled on the loop)", n)
	}
	tt.mu.Lock()
	for k, cs := range tt.idle {
		if k.loop == nil && len(cs) > 0 {
			t.Errorf("a pool without a loop holds %d connections", len(cs))
		}
	}
	tt.mu.Unlock()

	// A client that leaves mid-request: the server's watch cancels the request, which ends
	// the upstream read on the loop's connection.
	c2, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c2, "POST /hang HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\nh")
	<-onLoop
	time.Sleep(200 * time.Millisecond) // past the watch's start (100 ms)
	_ = c2.Close()
	select {
	case <-hangEnded:
	case <-time.After(5 * time.Second):
		t.Fatal("the upstream request went on after its client left")
	}
	// The loop goes on serving: the first connection's next request is answered.
	if got := ask("/x", "after"); got != "answer after" {
		t.Fatalf("after a canceled request: %q", got)
	}
}
