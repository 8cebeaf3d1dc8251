package h1_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/open-autoglm/autoglm/internal/h1"
)

// start serves h with srv's settings on a loopback listener and stops it when the test ends.
func start(t *testing.T, srv *h1.Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- h1.ServeForTest(srv, ln) }()
	t.Cleanup(func() {
		_ = srv.Close()
		if err := <-done; !errors.Is(err, h1.ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	return ln.Addr().String()
}

func dial(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return c, bufio.NewReader(c)
}

func readResp(t *testing.T, br *bufio.Reader, method string) (*http.Response, string) {
	t.Helper()
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("reading the response: %v", err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the body: %v", err)
	}
	return resp, string(b)
}

func echo() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "read: "+err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("X-Path", r.URL.Path)
		fmt.Fprintf(w, "%s %s %d %s", r.Method, r.URL.RequestURI(), r.ContentLength, b)
	})
}

func TestKeepAliveReusesOneConnection(t *testing.T) {
	var opened atomic.Int32
	addr := start(t, &h1.Server{Handler: echo(), ConnState: func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			opened.Add(1)
		}
	}})
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	for i := range 5 {
		resp, err := client.Post("http://"+addr+"/v1/x?i="+fmt.Sprint(i), "application/json", strings.NewReader(`{"a":1}`))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := fmt.Sprintf(`POST /v1/x?i=%d 7 {"a":1}`, i); string(b) != want || resp.StatusCode != 200 {
			t.Fatalf("answer %d: %d %q, want 200 %q", i, resp.StatusCode, b, want)
		}
		if resp.ContentLength != int64(len(b)) {
			t.Errorf("Content-Length %d, body %d bytes", resp.ContentLength, len(b))
		}
		if resp.Header.Get("Date") == "" {
			t.Error("no Date header")
		}
	}
	if n := opened.Load(); n != 1 {
		t.Errorf("five requests opened %d connections, want 1", n)
	}
}

func TestPipelinedRequestsAnsweredInOrder(t *testing.T) {
	addr := start(t, &h1.Server{Handler: echo()})
	c, br := dial(t, addr)
	var reqs strings.Builder
	for i := range 3 {
		body := strings.Repeat("x", i+1)
		fmt.Fprintf(&reqs, "POST /p%d HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n%s", i, len(body), body)
	}
	reqs.WriteString("GET /last HTTP/1.1\r\nHost: h\r\n\r\n")
	if _, err := io.WriteString(c, reqs.String()); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		_, body := readResp(t, br, "POST")
		if want := fmt.Sprintf("POST /p%d %d %s", i, i+1, strings.Repeat("x", i+1)); body != want {
			t.Fatalf("answer %d: %q, want %q", i, body, want)
		}
	}
	if _, body := readResp(t, br, "GET"); body != "GET /last 0 " {
		t.Fatalf("last answer %q", body)
	}
}

func TestChunkedRequestBody(t *testing.T) {
	addr := start(t, &h1.Server{Handler: echo()})
	c, br := dial(t, addr)
	io.WriteString(c, "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"+
		"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nX-Trailer: t\r\n\r\n"+
		"GET /after HTTP/1.1\r\nHost: h\r\n\r\n")
	if _, body := readResp(t, br, "POST"); body != "POST /c -1 hello, world" {
		t.Fatalf("chunked body answer %q", body)
	}
	if _, body := readResp(t, br, "GET"); body != "GET /after 0 " {
		t.Fatalf("request after the chunked one: %q", body)
	}
	// A malformed chunk size fails the body read; the handler answers 400 and the connection closes.
	c2, br2 := dial(t, addr)
	io.WriteString(c2, "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n")
	resp, _ := readResp(t, br2, "POST")
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad chunk: status %d", resp.StatusCode)
	}
	if _, err := br2.ReadByte(); err == nil {
		t.Fatal("connection still open after a malformed chunked body")
	}
}

func TestUnreadBodyIsDrainedForTheNextRequest(t *testing.T) {
	addr := start(t, &h1.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.URL.Path) // ignores the body
	})})
	c, br := dial(t, addr)
	io.WriteString(c, "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n0123456789GET /b HTTP/1.1\r\nHost: h\r\n\r\n")
	if _, b := readResp(t, br, "POST"); b != "/a" {
		t.Fatalf("first: %q", b)
	}
	if _, b := readResp(t, br, "GET"); b != "/b" {
		t.Fatalf("second: %q (the unread body was taken for a request)", b)
	}
}

func TestStreamFlushesEventByEvent(t *testing.T) {
	next := make(chan struct{})
	addr := start(t, &h1.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range 3 {
			fmt.Fprintf(w, "data: %d\n\n", i)
			w.(http.Flusher).Flush()
			if i < 2 {
				select {
				case <-next:
				case <-r.Context().Done():
					return
				}
			}
		}
	})})
	c, br := dial(t, addr)
	io.WriteString(c, "GET /s HTTP/1.1\r\nHost: h\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.TransferEncoding) != 1 || resp.TransferEncoding[0] != "chunked" {
		t.Fatalf("a flushed answer is not chunked: %v", resp.TransferEncoding)
	}
	ev := bufio.NewReader(resp.Body)
	for i := range 3 {
		// Each event must arrive before the handler is allowed to write the next.
		line, err := ev.ReadString('\n')
		if err != nil || line != fmt.Sprintf("data: %d\n", i) {
			t.Fatalf("event %d: %q, %v", i, line, err)
		}
		ev.ReadString('\n')
		if i < 2 {
			next <- struct{}{}
		}
	}
	if rest, err := io.ReadAll(ev); err != nil || len(rest) != 0 {
		t.Fatalf("after the last event: %q, %v", rest, err)
	}
}

func TestClientLeavingCancelsTheStream(t *testing.T) {
	canceled := make(chan struct{})
	addr := start(t, &h1.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-r.Context().Done():
				close(canceled)
				return
			case <-tick.C:
				io.WriteString(w, "data: x\n\n")
				w.(http.Flusher).Flush()
			}
		}
	})})
	c, br := dial(t, addr)
	io.WriteString(c, "GET /s HTTP/1.1\r\nHost: h\r\n\r\n")
	if _, err := http.ReadResponse(br, nil); err != nil {
		t.Fatal(err)
	}
	c.Close()
	select {
	case <-canceled:
	case <-time.After(10 * time.Second):
		t.Fatal("the handler's context was not canceled after the client left")
	}
}

func TestHeadLimitsRefusedBeforeTheHandler(t *testing.T) {
	var called atomic.Bool
	addr := start(t, &h1.Server{MaxHeaderBytes: 1 << 10, MaxHeaders: 8,
		Handler: http.HandlerFunc(func(http.ResponseWriter, *http.Request) { called.Store(true) })})
	for name, req := range map[string]string{
		"long":    "GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + strings.Repeat("a", 2<<10) + "\r\n\r\n",
		"many":    "GET / HTTP/1.1\r\nHost: h\r\n" + strings.Repeat("X-A: 1\r\n", 9) + "\r\n",
		"line":    "GET /" + strings.Repeat("a", 8<<10) + " HTTP/1.1\r\nHost: h\r\n\r\n",
		"endless": "GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + strings.Repeat("a", 64<<10),
	} {
		c, br := dial(t, addr)
		io.WriteString(c, req)
		resp, body := readResp(t, br, "GET")
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge || !resp.Close {
			t.Errorf("%s: %d %q (close %v), want 431 and close", name, resp.StatusCode, body, resp.Close)
		}
	}
	if called.Load() {
		t.Fatal("the handler ran for a refused head")
	}
}

func TestMalformedHeadsRefused(t *testing.T) {
	addr := start(t, &h1.Server{Handler: echo()})
	for req, want := range map[string]int{
		"GET / HTTP/1.1\r\n\r\n":                                                                400, // no Host
		"GET / HTTP/1.1\r\nHost: h\r\n folded\r\n\r\n":                                          400,
		"GET / HTTP/1.1\r\nHost: h\r\nBad Name: v\r\n\r\n":                                      400,
		"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab":        400,
		"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n":                              400,
		"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n":                         501,
		"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n": 400,
		"GET / HTTP/3.0\r\nHost: h\r\n\r\n":                                                     505,
		"GET /\r\n\r\n":                                                                         400,
	} {
		c, br := dial(t, addr)
		io.WriteString(c, req)
		resp, _ := readResp(t, br, "GET")
		if resp.StatusCode != want {
			t.Errorf("%q: status %d, want %d", req, resp.StatusCode, want)
		}
	}
}

// TestSlowHeadOnKeptConnectionTimesOut: a later request on a kept-alive connection whose head
// arrives in part is cut off after ReadHeaderTimeout, not after the far longer IdleTimeout
// (a head that arrived whole is read without that deadline).
func TestSlowHeadOnKeptConnectionTimesOut(t *testing.T) {
	addr := start(t, &h1.Server{ReadHeaderTimeout: 100 * time.Millisecond, IdleTimeout: time.Minute,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok "+r.URL.Path) })})
	c, br := dial(t, addr)
	io.WriteString(c, "GET /one HTTP/1.1\r\nHost: h\r\n\r\n")
	if _, b := readResp(t, br, "GET"); b != "ok /one" {
		t.Fatalf("first answer %q", b)
	}
	io.WriteString(c, "GET /two HTTP/1.1\r\nHost: h\r\n") // and never the empty line
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	begun := time.Now()
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("read an answer to an unfinished head")
	} else if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the connection was still open after %v", time.Since(begun))
	}
}

func TestSlowHeadTimesOut(t *testing.T) {
	var called atomic.Bool
	addr := start(t, &h1.Server{ReadHeaderTimeout: 100 * time.Millisecond,
		Handler: http.HandlerFunc(func(http.ResponseWriter, *http.Request) { called.Store(true) })})
	c, br := dial(t, addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: h\r\n") // and never the empty line
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("read an answer to an unfinished head")
	}
	// A connection that sends nothing at all is closed too.
	c2, br2 := dial(t, addr)
	_ = c2
	if _, err := br2.ReadByte(); !errors.Is(err, io.EOF) {
		t.Fatalf("idle new connection: %v, want EOF (closed by the server)", err)
	}
	if called.Load() {
		t.Fatal("handler ran")
	}
}

func TestShutdownDrainsInFlight(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	srv := &h1.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(entered)
			<-release
		}
		io.WriteString(w, "done "+r.URL.Path)
	})}
	addr := start(t, srv)
	idle, idleBR := dial(t, addr)
	io.WriteString(idle, "GET /fast HTTP/1.1\r\nHost: h\r\n\r\n")
	readResp(t, idleBR, "GET")
	busy, busyBR := dial(t, addr)
	io.WriteString(busy, "GET /slow HTTP/1.1\r\nHost: h\r\n\r\n")
	<-entered
	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(context.Background()) }()
	// The idle keep-alive connection is closed; the busy one gets its answer, then closes.
	if _, err := idleBR.ReadByte(); err == nil {
		t.Fatal("idle connection still open during shutdown")
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v with a request in flight", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	resp, body := readResp(t, busyBR, "GET")
	if body != "done /slow" || !resp.Close {
		t.Fatalf("in-flight answer %q close=%v", body, resp.Close)
	}
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if _, err := net.Dial("tcp", addr); err == nil {
		t.Fatal("still accepting after Shutdown")
	}
}

func TestHandOffToFallback(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ho := h1.NewHandOff(ln.Addr())
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	fb := &http.Server{Protocols: &protocols, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "fallback %s %s %s", r.Proto, r.URL.Path, b)
	})}
	go fb.Serve(ho)
	defer fb.Close()
	srv := &h1.Server{Handler: echo(), Fallback: ho.Deliver}
	go h1.ServeForTest(srv, ln)
	defer srv.Close()
	addr := ln.Addr().String()

	// h2c with prior knowledge.
	var h2 http.Protocols
	h2.SetUnencryptedHTTP2(true)
	client := &http.Client{Transport: &http.Transport{Protocols: &h2}}
	resp, err := client.Get("http://" + addr + "/two")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "fallback HTTP/2.0 /two " {
		t.Fatalf("h2c: %q", b)
	}
	// Expect: 100-continue, after a request this server answered on the same connection.
	c, br := dial(t, addr)
	io.WriteString(c, "GET /one HTTP/1.1\r\nHost: h\r\n\r\nPOST /exp HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
	if _, body := readResp(t, br, "GET"); body != "GET /one 0 " {
		t.Fatalf("first request: %q", body)
	}
	cont, err := http.ReadResponse(br, nil)
	if err != nil || cont.StatusCode != http.StatusContinue {
		t.Fatalf("want 100 Continue from the fallback, got %v %v", cont, err)
	}
	io.WriteString(c, "hi")
	if _, body := readResp(t, br, "POST"); body != "fallback HTTP/1.1 /exp hi" {
		t.Fatalf("after 100-continue: %q", body)
	}
}

func TestWithoutFallback(t *testing.T) {
	addr := start(t, &h1.Server{Handler: echo()})
	c, br := dial(t, addr)
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
	if resp, _ := readResp(t, br, "POST"); resp.StatusCode != http.StatusExpectationFailed {
		t.Fatalf("Expect without a fallback: %d", resp.StatusCode)
	}
	c2, br2 := dial(t, addr)
	io.WriteString(c2, "GET /u HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	if _, body := readResp(t, br2, "GET"); body != "GET /u 0 " {
		t.Fatalf("Upgrade without a fallback is served as HTTP/1.1: %q", body)
	}
}

func TestResponseFraming(t *testing.T) {
	addr := start(t, &h1.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		case "/big":
			w.Write([]byte(strings.Repeat("b", 40<<10)))
		case "/panic":
			panic("boom")
		case "/abort":
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"partial":`)
			panic(http.ErrAbortHandler)
		case "/close":
			w.Header().Set("Connection", "close")
			io.WriteString(w, "bye")
		default:
			io.WriteString(w, "<html>hi</html>")
		}
	}), Log: discard()})
	c, br := dial(t, addr)
	io.WriteString(c, "HEAD /x HTTP/1.1\r\nHost: h\r\n\r\nGET /empty HTTP/1.1\r\nHost: h\r\n\r\nGET /big HTTP/1.1\r\nHost: h\r\n\r\nGET /x HTTP/1.1\r\nHost: h\r\n\r\n")
	resp, body := readResp(t, br, "HEAD")
	if resp.ContentLength != 15 || body != "" {
		t.Errorf("HEAD: length %d body %q", resp.ContentLength, body)
	}
	if resp, body = readResp(t, br, "GET"); resp.StatusCode != 204 || body != "" {
		t.Errorf("204: %d %q", resp.StatusCode, body)
	}
	if resp, body = readResp(t, br, "GET"); len(body) != 40<<10 || resp.TransferEncoding == nil {
		t.Errorf("big answer: %d bytes, encoding %v", len(body), resp.TransferEncoding)
	}
	if resp, body = readResp(t, br, "GET"); body != "<html>hi</html>" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Errorf("sniffed: %q %q", body, resp.Header.Get("Content-Type"))
	}
	// HTTP/1.0 without keep-alive: answered, then closed.
	c10, br10 := dial(t, addr)
	io.WriteString(c10, "GET /x HTTP/1.0\r\n\r\n")
	if resp, body = readResp(t, br10, "GET"); body != "<html>hi</html>" || !resp.Close {
		t.Errorf("HTTP/1.0: %q close=%v", body, resp.Close)
	}
	// A handler's Connection: close ends the connection after its answer.
	cc, brc := dial(t, addr)
	io.WriteString(cc, "GET /close HTTP/1.1\r\nHost: h\r\n\r\n")
	if resp, body = readResp(t, brc, "GET"); body != "bye" || !resp.Close {
		t.Errorf("Connection: close from the handler: %q close=%v", body, resp.Close)
	}
	if _, err := brc.ReadByte(); err == nil {
		t.Error("connection open after the handler's Connection: close")
	}
	// A panic: 500, and the connection closed.
	cp, brp := dial(t, addr)
	io.WriteString(cp, "GET /panic HTTP/1.1\r\nHost: h\r\n\r\n")
	if resp, _ = readResp(t, brp, "GET"); resp.StatusCode != 500 {
		t.Errorf("panic: %d", resp.StatusCode)
	}
	if _, err := brp.ReadByte(); err == nil {
		t.Error("connection open after a panic")
	}
	// http.ErrAbortHandler after part of an answer: nothing is sent, the connection is cut,
	// so the client cannot take the answer for a complete one.
	ca, bra := dial(t, addr)
	io.WriteString(ca, "GET /abort HTTP/1.1\r\nHost: h\r\n\r\n")
	if b, err := io.ReadAll(bra); len(b) != 0 || err != nil {
		t.Errorf("aborted handler: %d bytes sent (%q), err %v; want the connection closed with nothing", len(b), b, err)
	}
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// A client that leaves while a non-streamed request is being worked on cancels its context
// (net/http does this with a read per request; here a watch starts after WatchAfter).
func TestClientLeavingCancelsLongRequest(t *testing.T) {
	canceled := make(chan struct{})
	addr := start(t, &h1.Server{WatchAfter: 20 * time.Millisecond, ReadTimeout: 50 * time.Millisecond,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.ReadAll(r.Body)
			<-r.Context().Done() // an upstream generating, until the request is canceled
			close(canceled)
		})})
	c, _ := dial(t, addr)
	io.WriteString(c, "POST /slow HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n{}")
	time.Sleep(150 * time.Millisecond) // past WatchAfter and ReadTimeout: the watch must outlive the latter
	c.Close()
	select {
	case <-canceled:
	case <-time.After(10 * time.Second):
		t.Fatal("the request's context was not canceled after the client left")
	}
}

// A request pipelined behind a long one is read by the watch and still served, in order.
func TestPipelinedBehindLongRequest(t *testing.T) {
	addr := start(t, &h1.Server{WatchAfter: 10 * time.Millisecond, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			select {
			case <-time.After(200 * time.Millisecond):
			case <-r.Context().Done():
				return
			}
		}
		io.WriteString(w, "done "+r.URL.Path)
	})})
	c, br := dial(t, addr)
	io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: h\r\n\r\n")
	time.Sleep(50 * time.Millisecond) // the watch is reading now
	io.WriteString(c, "GET /next HTTP/1.1\r\nHost: h\r\n\r\n")
	if _, b := readResp(t, br, "GET"); b != "done /slow" {
		t.Fatalf("first: %q", b)
	}
	if _, b := readResp(t, br, "GET"); b != "done /next" {
		t.Fatalf("pipelined: %q", b)
	}
}

// An answer given before the body is read (a 413) reaches a client that is still sending the
// body: the server half-closes and waits before closing, so the client's unread answer is not
// destroyed by a reset.
func TestEarlyAnswerSurvivesUnreadBody(t *testing.T) {
	addr := start(t, &h1.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "too large", http.StatusRequestEntityTooLarge)
	}), MaxDrainBytes: 1 << 10, Log: discard()})
	for range 5 {
		resp, err := http.Post("http://"+addr+"/", "application/octet-stream", strings.NewReader(strings.Repeat("x", 4<<20)))
		if err != nil {
			t.Fatalf("the early answer was lost: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
}

// TestEndOnFlush: after EndOnFlush, the next flush carries the body's last chunk, so the
// client reads the stream to its end while the handler is still running; a later write fails,
// and the connection serves the next request. A HEAD answer that flushes sends no body at all.
func TestEndOnFlush(t *testing.T) {
	release := make(chan struct{})
	lateWrite := make(chan error, 1)
	addr := start(t, &h1.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		if r.URL.Path == "/plain" {
			io.WriteString(w, "data: one\n\n")
			w.(http.Flusher).Flush()
			return
		}
		io.WriteString(w, "data: one\n\n")
		w.(http.Flusher).Flush()
		w.(interface{ EndOnFlush() }).EndOnFlush()
		io.WriteString(w, "data: two\n\n")
		w.(http.Flusher).Flush()
		_, err := io.WriteString(w, "data: three\n\n")
		lateWrite <- err
		if r.Method != http.MethodHead {
			<-release
		}
	})})
	c, br := dial(t, addr)
	io.WriteString(c, "GET /s HTTP/1.1\r\nHost: h\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	body, err := io.ReadAll(resp.Body)
	if err != nil || string(body) != "data: one\n\ndata: two\n\n" {
		t.Fatalf("the body before the handler returned: %q, %v", body, err)
	}
	if err := <-lateWrite; err == nil {
		t.Error("a write after the body ended succeeded")
	}
	close(release)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET /plain HTTP/1.1\r\nHost: h\r\n\r\n")
	if _, b := readResp(t, br, "GET"); b != "data: one\n\n" {
		t.Fatalf("the next request on the connection: %q", b)
	}
	io.WriteString(c, "HEAD /s HTTP/1.1\r\nHost: h\r\n\r\n")
	if resp, b := readResp(t, br, "HEAD"); resp.StatusCode != 200 || b != "" {
		t.Fatalf("HEAD: %d %q", resp.StatusCode, b)
	}
	<-lateWrite
	io.WriteString(c, "GET /plain HTTP/1.1\r\nHost: h\r\n\r\n")
	if _, b := readResp(t, br, "GET"); b != "data: one\n\n" {
		t.Fatalf("the request after HEAD: %q (a HEAD answer sent body bytes)", b)
	}
}
