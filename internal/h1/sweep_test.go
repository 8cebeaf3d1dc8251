package h1

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// countingListener hands out connections that count the deadlines set on them.
type countingListener struct {
	net.Listener
	sets atomic.Int64
}

type countingConn struct {
	net.Conn
	sets *atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, sets: &l.sets}, nil
}

func (c *countingConn) SetDeadline(t time.Time) error {
	c.sets.Add(1)
	return c.Conn.SetDeadline(t)
}

func (c *countingConn) SetReadDeadline(t time.Time) error {
	c.sets.Add(1)
	return c.Conn.SetReadDeadline(t)
}

func (c *countingConn) SetWriteDeadline(t time.Time) error {
	c.sets.Add(1)
	return c.Conn.SetWriteDeadline(t)
}

func serveTest(t *testing.T, s *Server, ln net.Listener) string {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- ServeForTest(s, ln) }()
	t.Cleanup(func() {
		_ = s.Close()
		if err := <-done; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v", err)
		}
	})
	return ln.Addr().String()
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// With the product's timeouts, keep-alive requests set no deadline on the socket: every one
// is the sweep's (each would otherwise be a runtime timer, and often a thread wake-up, per
// request).
func TestSweepKeepsDeadlinesOffTheSocket(t *testing.T) {
	ln := &countingListener{Listener: listen(t)}
	s := &Server{ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, WriteTimeout: time.Minute,
		IdleTimeout: 2 * time.Minute,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			// As a streaming handler moves its write deadline before each write.
			_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(30 * time.Second))
			_, _ = io.WriteString(w, "ok")
		})}
	addr := serveTest(t, s, ln)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	for i := range 20 {
		_, _ = io.WriteString(c, "POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n{}")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if n := ln.sets.Load(); n != 0 {
		t.Errorf("%d socket deadlines set over 20 requests, want 0", n)
	}
}

// A coarse deadline is enforced no earlier than it is due, and not much later: a head that
// never ends, a keep-alive connection left idle, and an answer the client does not read.
func TestSweepEnforcesCoarseDeadlines(t *testing.T) {
	const timeout = 400 * time.Millisecond
	// WatchAfter 40 ms: a 10 ms sweep, so deadlines from 80 ms on are coarse.
	var writeErr atomic.Value
	var wrote sync.WaitGroup
	s := &Server{ReadHeaderTimeout: timeout, IdleTimeout: timeout, WriteTimeout: timeout, WatchAfter: 40 * time.Millisecond,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/big" {
				_, _ = io.WriteString(w, "ok")
				return
			}
			defer wrote.Done()
			chunk := make([]byte, 1<<20)
			for range 256 {
				if _, err := w.Write(chunk); err != nil {
					writeErr.Store(time.Now())
					return
				}
			}
		})}
	if !s.coarse(time.Now().Add(timeout)) {
		t.Fatal("the test's timeout is not coarse")
	}
	addr := serveTest(t, s, listen(t))
	closedAfter := func(c net.Conn, br *bufio.Reader, from time.Time) time.Duration {
		t.Helper()
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err := br.ReadByte()
		if errors.Is(err, os.ErrDeadlineExceeded) || err == nil {
			t.Fatalf("the server kept the connection open: %v", err)
		}
		return time.Since(from)
	}
	dial := func() (net.Conn, *bufio.Reader) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c, bufio.NewReader(c)
	}

	c, br := dial()
	begun := time.Now()
	_, _ = io.WriteString(c, "GET /x HTTP/1.1\r\nHost: h\r\n") // and never the empty line
	if d := closedAfter(c, br, begun); d < timeout-10*time.Millisecond || d > 5*time.Second {
		t.Errorf("unfinished head: closed after %v, want %v or a little more", d, timeout)
	}

	c, br = dial()
	_, _ = io.WriteString(c, "GET /x HTTP/1.1\r\nHost: h\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	idle := time.Now()
	if d := closedAfter(c, br, idle); d < timeout-10*time.Millisecond || d > 5*time.Second {
		t.Errorf("idle connection: closed after %v, want %v or a little more", d, timeout)
	}

	c, _ = dial()
	wrote.Add(1)
	asked := time.Now()
	_, _ = io.WriteString(c, "GET /big HTTP/1.1\r\nHost: h\r\n\r\n") // and never read the answer
	wrote.Wait()
	at, _ := writeErr.Load().(time.Time)
	if d := at.Sub(asked); at.IsZero() || d < timeout-10*time.Millisecond || d > 5*time.Second {
		t.Errorf("unread answer: the write failed after %v, want %v or a little more", d, timeout)
	}
}

// With ReadTimeout and no ReadHeaderTimeout, ReadTimeout bounds the head and the body together,
// from the request's first byte: a head that never ends and a body that stops coming are both
// cut off once it has passed, and not before.
func TestReadTimeoutAloneBoundsHeadAndBody(t *testing.T) {
	const timeout = 400 * time.Millisecond
	bodyErr := make(chan time.Time, 1)
	s := &Server{ReadTimeout: timeout, WatchAfter: 40 * time.Millisecond,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if _, err := io.Copy(io.Discard, r.Body); err != nil {
				bodyErr <- time.Now()
			}
		})}
	addr := serveTest(t, s, listen(t))
	dial := func() net.Conn {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}

	c := dial()
	begun := time.Now()
	_, _ = io.WriteString(c, "POST /x HTTP/1.1\r\nHost: h\r\n") // and never the empty line
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := bufio.NewReader(c).ReadByte(); errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("the server kept a connection with an unfinished head open")
	}
	if d := time.Since(begun); d < timeout-10*time.Millisecond || d > 5*time.Second {
		t.Errorf("unfinished head: closed after %v, want %v or a little more", d, timeout)
	}

	c = dial()
	begun = time.Now()
	_, _ = io.WriteString(c, "POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nhalf.") // and never the rest
	select {
	case at := <-bodyErr:
		if d := at.Sub(begun); d < timeout-10*time.Millisecond || d > 5*time.Second {
			t.Errorf("unfinished body: the handler's read failed after %v, want %v or a little more", d, timeout)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the handler's read of an unfinished body never failed")
	}
}

// The sweep runs while the server has connections and stops with the last one.
func TestSweepStopsWithTheLastConnection(t *testing.T) {
	s := &Server{WatchAfter: 4 * time.Millisecond, Handler: http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})}
	addr := serveTest(t, s, listen(t))
	sweeping := func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.sweeping
	}
	eventually := func(want bool) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); sweeping() != want; {
			if time.Now().After(deadline) {
				t.Fatalf("sweeping %v, want %v", !want, want)
			}
			time.Sleep(time.Millisecond)
		}
	}
	if sweeping() {
		t.Fatal("sweeping before any connection")
	}
	for range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
		if _, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil {
			t.Fatal(err)
		}
		eventually(true)
		c.Close()
		eventually(false)
	}
}

// After a second without requests the sweep rests; the next request wakes it, so that its
// watch still starts after WatchAfter, not at the resting sweep's next tick.
func TestSweepRestsAndWakes(t *testing.T) {
	canceled := make(chan time.Time, 1)
	s := &Server{WatchAfter: 40 * time.Millisecond, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/wait" {
			<-r.Context().Done()
			canceled <- time.Now()
		}
	})}
	addr := serveTest(t, s, listen(t))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	if _, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); !s.sweepIdle.Load(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the sweep did not rest after a second without requests")
		}
	}
	_, _ = io.WriteString(c, "GET /wait HTTP/1.1\r\nHost: h\r\n\r\n")
	time.Sleep(20 * time.Millisecond)
	if s.sweepIdle.Load() {
		t.Error("the request did not wake the resting sweep")
	}
	time.Sleep(80 * time.Millisecond) // past WatchAfter: the watch reads the connection by now
	left := time.Now()
	c.Close()
	select {
	case at := <-canceled:
		// A resting sweep would start the watch only at its next tick, up to a second on.
		if d := at.Sub(left); d > 500*time.Millisecond {
			t.Errorf("the request was canceled %v after the client left", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the request was not canceled after the client left")
	}
	if s.sweepIdle.Load() {
		t.Error("the sweep still rests while a request runs")
	}
}
