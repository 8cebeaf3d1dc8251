package sockio

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// pair returns the two ends of a loopback TCP connection, both wrapped.
func pair(t testing.TB) (client, server net.Conn) {
	t.Helper()
	c, s := tcpPair(t)
	client, server = Wrap(c), Wrap(s)
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// tcpPair returns the two ends of a loopback TCP connection, as net gives them.
func tcpPair(t testing.TB) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			accepted <- nil
			return
		}
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s := <-accepted
	if s == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return c, s
}

func TestWrapsOnlyTCPOnLinux(t *testing.T) {
	c, s := pair(t)
	_, wrapped := c.(*conn)
	if wrapped != (runtime.GOOS == "linux") {
		t.Fatalf("Wrap on %s gave %T", runtime.GOOS, c)
	}
	if _, ok := s.(syscall.Conn); !ok {
		t.Fatal("the wrapped connection does not give its RawConn")
	}
	if _, ok := s.(interface{ CloseWrite() error }); !ok {
		t.Fatal("the wrapped connection lost CloseWrite")
	}
	p1, p2 := net.Pipe()
	defer p1.Close()
	defer p2.Close()
	if Wrap(p1) != p1 {
		t.Fatal("a connection that is not TCP must come back unchanged")
	}
}

// Megabytes in both directions at once: writes larger than the socket buffers wait for the
// peer to read (EAGAIN, then the poller) and every byte arrives in order.
func TestLargeTransfersBothWays(t *testing.T) {
	c, s := pair(t)
	const size = 6 << 20
	a, b := make([]byte, size), make([]byte, size)
	rand.Read(a)
	rand.Read(b)
	errs := make(chan error, 2)
	go func() { _, err := c.Write(a); errs <- err }()
	go func() { _, err := s.Write(b); errs <- err }()
	gotA, gotB := make([]byte, size), make([]byte, size)
	readErr := make(chan error, 1)
	go func() { _, err := io.ReadFull(c, gotB); readErr <- err }()
	if _, err := io.ReadFull(s, gotA); err != nil {
		t.Fatal(err)
	}
	if err := <-readErr; err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(a, gotA) || !bytes.Equal(b, gotB) {
		t.Fatal("bytes differ after the round trip")
	}
}

func TestReadDeadline(t *testing.T) {
	c, s := pair(t)
	_ = s.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	buf := make([]byte, 16)
	_, err := s.Read(buf)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past its deadline: %v", err)
	}
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "read" {
		t.Fatalf("error is not a read *net.OpError: %#v", err)
	}
	// Cleared, the connection reads again.
	_ = s.SetReadDeadline(time.Time{})
	if _, err := c.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	n, err := s.Read(buf)
	if err != nil || string(buf[:n]) != "hello" {
		t.Fatalf("read after the deadline was cleared: %q, %v", buf[:n], err)
	}
}

func TestWriteDeadlineReportsWhatWasWritten(t *testing.T) {
	c, _ := pair(t)
	_ = c.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
	big := make([]byte, 64<<20) // the peer reads nothing: the buffers fill, then the deadline passes
	n, err := c.Write(big)
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("write past its deadline: %v", err)
	}
	if n <= 0 || n >= len(big) {
		t.Fatalf("write reported %d bytes of %d", n, len(big))
	}
}

func TestCloseUnblocksRead(t *testing.T) {
	_, s := pair(t)
	done := make(chan error, 1)
	go func() {
		_, err := s.Read(make([]byte, 8))
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	s.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("read on a closed connection: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not unblock a waiting Read")
	}
	if _, err := s.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write on a closed connection: %v", err)
	}
}

func TestPeerCloseAndReset(t *testing.T) {
	c, s := pair(t)
	if err := c.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Read(make([]byte, 8)); n != 0 || err != io.EOF {
		t.Fatalf("read after the peer's FIN: %d, %v", n, err)
	}

	c2, s2 := pair(t)
	_ = c2.(interface{ SetLinger(int) error }).SetLinger(0) // close with RST
	c2.Close()
	var err error
	for range 100 { // the RST may follow a first write
		if _, err = s2.Read(make([]byte, 8)); err != nil {
			break
		}
	}
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read after the peer's reset: %v", err)
	}
}

func TestEmptyReadAndWrite(t *testing.T) {
	c, s := pair(t)
	if n, err := s.Read(nil); n != 0 || err != nil {
		t.Fatalf("empty read: %d, %v", n, err)
	}
	if n, err := c.Write(nil); n != 0 || err != nil {
		t.Fatalf("empty write: %d, %v", n, err)
	}
}

// Reads and writes from several goroutines at once on one connection (net.Conn allows it):
// every message arrives whole, and -race sees no shared state unguarded.
func TestConcurrentCallers(t *testing.T) {
	c, s := pair(t)
	const writers, each = 4, 200
	msg := bytes.Repeat([]byte("0123456789abcdef"), 4) // 64 bytes
	errs := make(chan error, writers)
	for range writers {
		go func() {
			for range each {
				if _, err := c.Write(msg); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	total := make(chan int, 2)
	for range 2 {
		go func() {
			n := 0
			buf := make([]byte, 100)
			for {
				k, err := s.Read(buf)
				n += k
				if err != nil {
					total <- n
					return
				}
			}
		}()
	}
	for range writers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	c.Close()
	if got := <-total + <-total; got != writers*each*len(msg) {
		t.Fatalf("read %d bytes, want %d", got, writers*each*len(msg))
	}
}

func BenchmarkPingPong(b *testing.B) {
	for _, tc := range []struct {
		name string
		wrap func(net.Conn) net.Conn
	}{{"net", func(c net.Conn) net.Conn { return c }}, {"sockio", Wrap}} {
		b.Run(tc.name, func(b *testing.B) {
			c0, s0 := tcpPair(b)
			c, s := tc.wrap(c0), tc.wrap(s0)
			go func() {
				buf := make([]byte, 64)
				for {
					n, err := s.Read(buf)
					if err != nil {
						return
					}
					if _, err := s.Write(buf[:n]); err != nil {
						return
					}
				}
			}()
			msg, buf := make([]byte, 64), make([]byte, 64)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Write(msg); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(c, buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// Writing to a connection the peer has closed fails with EPIPE or ECONNRESET; the process,
// which the kernel signals with SIGPIPE, carries on.
func TestWriteAfterPeerClosed(t *testing.T) {
	c, s := pair(t)
	s.Close()
	var err error
	for range 100 {
		if _, err = c.Write([]byte("after the close")); err != nil {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if !errors.Is(err, syscall.EPIPE) && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("write after the peer closed: %v", err)
	}
}
