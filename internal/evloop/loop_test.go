//go:build linux && (amd64 || arm64)

package evloop

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// startGroup serves serve on loops until the test ends.
func startGroup(t *testing.T, n int, serve func(*Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g, err := NewGroup(ln, n, func(c *Conn) {
		defer c.Close()
		serve(c)
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- g.Serve() }()
	t.Cleanup(func() {
		_ = g.Close()
		select {
		case err := <-done:
			if !errors.Is(err, ErrClosed) {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("loops did not end after Close")
		}
		_ = ln.Close()
	})
	return ln.Addr().String()
}

// echoLines answers each line with the line upper-cased.
func echoLines(c *Conn) {
	br := bufio.NewReader(c)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		if _, err := c.Write([]byte(strings.ToUpper(line))); err != nil {
			return
		}
	}
}

func TestEchoManyConnections(t *testing.T) {
	addr := startGroup(t, 2, echoLines)
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			nc, err := net.Dial("tcp", addr)
			if err != nil {
				t.Error(err)
				return
			}
			defer nc.Close()
			br := bufio.NewReader(nc)
			for j := range 20 {
				msg := strings.Repeat("ab", i+j) + "\n"
				if _, err := nc.Write([]byte(msg)); err != nil {
					t.Error(err)
					return
				}
				got, err := br.ReadString('\n')
				if err != nil || got != strings.ToUpper(msg) {
					t.Errorf("conn %d line %d: %q, %v", i, j, got, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// A large write that fills the socket waits for the peer to read, without holding up the
// loop's other connections.
func TestLargeWriteWaits(t *testing.T) {
	const size = 16 << 20
	addr := startGroup(t, 1, func(c *Conn) {
		var b [1]byte
		if _, err := c.Read(b[:]); err != nil {
			return
		}
		if b[0] == 'B' {
			_, _ = c.Write(make([]byte, size))
			return
		}
		echoLines(c)
	})
	big, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer big.Close()
	if _, err := big.Write([]byte("B")); err != nil {
		t.Fatal(err)
	}
	// While the big answer waits for its reader, another connection on the same loop is served.
	small, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer small.Close()
	if _, err := small.Write([]byte("xhello\n")); err != nil {
		t.Fatal(err)
	}
	_ = small.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := bufio.NewReader(small).ReadString('\n')
	if err != nil || got != "HELLO\n" {
		t.Fatalf("small connection: %q, %v", got, err)
	}
	n, err := io.Copy(io.Discard, big)
	if err != nil || n != size {
		t.Fatalf("big answer: %d bytes, %v", n, err)
	}
}

// A coroutine dials an upstream on its loop and relays a line through it.
func TestDialRelay(t *testing.T) {
	up, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	go func() {
		for {
			c, err := up.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				line, _ := bufio.NewReader(c).ReadString('\n')
				_, _ = io.WriteString(c, "up:"+line)
			}()
		}
	}()
	addr := startGroup(t, 1, func(c *Conn) {
		ctx := NewContext(context.Background(), c.Loop())
		l := FromContext(ctx)
		if l == nil {
			_, _ = io.WriteString(c, "not on loop\n")
			return
		}
		uc, err := l.Dial(ctx, up.Addr().String())
		if err != nil {
			_, _ = io.WriteString(c, "dial: "+err.Error()+"\n")
			return
		}
		defer uc.Close()
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			return
		}
		_, _ = io.WriteString(uc, line)
		answer, _ := bufio.NewReader(uc).ReadString('\n')
		_, _ = io.WriteString(c, answer)
	})
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_, _ = io.WriteString(nc, "ping\n")
	got, err := bufio.NewReader(nc).ReadString('\n')
	if err != nil || got != "up:ping\n" {
		t.Fatalf("got %q, %v", got, err)
	}
	// Off its loop, a context's loop is not given out.
	var l Loop
	if FromContext(NewContext(context.Background(), &l)) != nil {
		t.Fatal("FromContext gave a loop to a goroutine that is not its coroutine")
	}
}

// Dial to a closed port fails with a dial error, and the loop goes on.
func TestDialRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	_ = ln.Close()
	addr := startGroup(t, 1, func(c *Conn) {
		ctx := NewContext(context.Background(), c.Loop())
		_, err := FromContext(ctx).Dial(ctx, dead)
		var oe *net.OpError
		if errors.As(err, &oe) && oe.Op == "dial" {
			_, _ = io.WriteString(c, "refused\n")
			return
		}
		_, _ = io.WriteString(c, "unexpected\n")
	})
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	got, _ := bufio.NewReader(nc).ReadString('\n')
	if got != "refused\n" {
		t.Fatalf("got %q", got)
	}
}

// Deadlines end a coroutine's read, whether set before it waits or from another goroutine
// while it waits; other goroutines may read a loop's connection too.
func TestDeadlinesAndForeignReads(t *testing.T) {
	results := make(chan string, 4)
	addr := startGroup(t, 1, func(c *Conn) {
		var b [8]byte
		_ = c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		_, err := c.Read(b[:])
		results <- "timer:" + timeoutText(err)
		_ = c.SetReadDeadline(time.Time{})
		go func() {
			time.Sleep(50 * time.Millisecond)
			_ = c.SetReadDeadline(time.Unix(1, 0))
		}()
		_, err = c.Read(b[:])
		results <- "moved:" + timeoutText(err)
		_ = c.SetReadDeadline(time.Time{})
		// Another goroutine reads what the client sends next, while the coroutine waits on it.
		got := make(chan string, 1)
		go func() {
			n, err := c.Read(b[:])
			if err != nil {
				got <- err.Error()
				return
			}
			got <- string(b[:n])
		}()
		Block(NewContext(context.Background(), c.Loop()), func() { results <- "foreign:" + <-got })
		_, _ = io.WriteString(c, "done\n")
	})
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	for _, want := range []string{"timer:timeout", "moved:timeout"} {
		if got := <-results; got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	time.Sleep(20 * time.Millisecond)
	_, _ = io.WriteString(nc, "hi")
	if got := <-results; got != "foreign:hi" {
		t.Fatalf("got %q", got)
	}
	got, _ := bufio.NewReader(nc).ReadString('\n')
	if got != "done\n" {
		t.Fatalf("got %q", got)
	}
}

func timeoutText(err error) string {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return "timeout"
	}
	if err == nil {
		return "nil"
	}
	return err.Error()
}

// Close from another goroutine ends a coroutine's wait with net.ErrClosed.
func TestForeignClose(t *testing.T) {
	results := make(chan error, 1)
	conns := make(chan *Conn, 1)
	addr := startGroup(t, 1, func(c *Conn) {
		conns <- c
		var b [8]byte
		_, err := c.Read(b[:])
		results <- err
	})
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	c := <-conns
	time.Sleep(20 * time.Millisecond)
	_ = c.Close()
	select {
	case err := <-results:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("read after Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("read did not end after Close")
	}
	// The client sees the connection closed.
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := nc.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("client read: %v", err)
	}
}

// Detach gives an ordinary connection that keeps the bytes and the peer.
func TestDetach(t *testing.T) {
	addr := startGroup(t, 1, func(c *Conn) {
		nc, err := c.Detach()
		if err != nil {
			return
		}
		if _, ok := nc.(*net.TCPConn); !ok {
			_ = nc.Close()
			return
		}
		go func() {
			defer nc.Close()
			line, _ := bufio.NewReader(nc).ReadString('\n')
			_, _ = io.WriteString(nc, "detached:"+line)
		}()
	})
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_, _ = io.WriteString(nc, "x\n")
	got, _ := bufio.NewReader(nc).ReadString('\n')
	if got != "detached:x\n" {
		t.Fatalf("got %q", got)
	}
}
