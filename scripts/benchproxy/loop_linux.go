//go:build linux

package main

// The event-loop floor (-loop N): N threads, each with its own listening socket (SO_REUSEPORT),
// epoll set and upstream keep-alive pool, relaying HTTP/1.1 requests that carry a
// Content-Length body, and answers framed by Content-Length or chunked. No goroutine per
// connection, no hand-off between threads and no allocation per request: the model nginx's
// workers follow. It measures what a Go process pays per request on that model, so that it can
// be set against the goroutine-per-connection floor (-lean) and nginx; it serves nothing else
// (no pipelining beyond one request in flight per connection, no request chunking, no
// timeouts).

import (
	"bytes"
	"errors"
	"net"
	"runtime"
	"strconv"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// side is one connection: a client's, or an upstream's from the pool.
type side struct {
	fd         int
	buf        []byte // read and not yet relayed
	peer       *side  // the other end of the exchange in flight
	upstream   bool
	connecting bool
	pending    []byte // an upstream's request, written once its connect completes
}

type loop struct {
	ep     int
	ln     int
	conns  map[int]*side
	idle   []*side
	to     unix.SockaddrInet4
	events [256]unix.EpollEvent
	raw    bool // wait with a raw system call (the P stays held) instead of a runtime-visible one
	// idle, with raw: how long a raw wait lasts before the loop, finding nothing, waits through
	// the runtime's hooks instead (0: raw waits of 10 ms throughout).
	idleMs int
	quiet  bool // the last raw wait found nothing
}

// serveLoops runs n event loops on addr, relaying to upstream (host:port, IPv4), until one fails.
func serveLoops(addr, upstream string, n int, raw bool, idle time.Duration) error {
	la, err := net.ResolveTCPAddr("tcp4", addr)
	if err != nil {
		return err
	}
	ua, err := net.ResolveTCPAddr("tcp4", upstream)
	if err != nil {
		return err
	}
	errs := make(chan error, n)
	for range n {
		l := &loop{conns: map[int]*side{}, raw: raw, idleMs: int(idle.Milliseconds())}
		l.to.Port = ua.Port
		copy(l.to.Addr[:], ua.IP.To4())
		if err := l.listen(la); err != nil {
			return err
		}
		go func() { errs <- l.run() }()
	}
	return <-errs
}

func (l *loop) listen(la *net.TCPAddr) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
		return err
	}
	sa := &unix.SockaddrInet4{Port: la.Port}
	copy(sa.Addr[:], la.IP.To4())
	if err := unix.Bind(fd, sa); err != nil {
		return err
	}
	if err := unix.Listen(fd, 4096); err != nil {
		return err
	}
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return err
	}
	l.ep, l.ln = ep, fd
	return unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)})
}

func (l *loop) run() error {
	runtime.LockOSThread()
	for {
		n, err := l.wait()
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return err
		}
		for i := range n {
			ev := &l.events[i]
			fd := int(ev.Fd)
			if fd == l.ln {
				l.accept()
				continue
			}
			s := l.conns[fd]
			if s == nil {
				continue
			}
			if s.connecting {
				l.connected(s)
				continue
			}
			l.readable(s)
		}
	}
}

// wait is epoll_wait: through the runtime's system-call hooks (the P is handed back while the
// thread sleeps) or, raw, holding the P; raw waits wake every 10 ms so that a stop-the-world
// is never held up for longer.
//
// With an idle time, a raw wait lasts that long; one that finds nothing is followed by a wait
// through the hooks, without a timeout, so that an idle loop neither wakes nor holds its P.
func (l *loop) wait() (int, error) {
	if !l.raw || l.quiet {
		l.quiet = false
		return unix.EpollWait(l.ep, l.events[:], -1)
	}
	timeout := 10
	if l.idleMs > 0 {
		timeout = l.idleMs
	}
	r, _, e := syscall.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(l.ep), uintptr(unsafe.Pointer(&l.events[0])),
		uintptr(len(l.events)), uintptr(timeout), 0, 0)
	if e != 0 {
		return 0, e
	}
	l.quiet = r == 0 && l.idleMs > 0
	return int(r), nil
}

func (l *loop) accept() {
	for {
		fd, _, err := unix.Accept4(l.ln, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		if err != nil {
			return
		}
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		l.conns[fd] = &side{fd: fd, buf: make([]byte, 0, 16<<10)}
		_ = unix.EpollCtl(l.ep, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(fd)})
	}
}

func rawRead(fd int, b []byte) (int, syscall.Errno) {
	r, _, e := syscall.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	return int(r), e
}

// rawWrite writes all of b; a socket buffer too full to take it fails the connection (the
// floor's messages are a few hundred bytes).
func rawWrite(fd int, b []byte) bool {
	for len(b) > 0 {
		r, _, e := syscall.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return false
		}
		b = b[r:]
	}
	return true
}

// readable reads what s has and relays every complete message in it.
func (l *loop) readable(s *side) {
	for {
		if len(s.buf) == cap(s.buf) {
			s.buf = append(s.buf, 0)[:len(s.buf)]
		}
		n, e := rawRead(s.fd, s.buf[len(s.buf):cap(s.buf)])
		if e == unix.EAGAIN {
			break
		}
		if e == unix.EINTR {
			continue
		}
		if e != 0 || n == 0 {
			l.drop(s)
			return
		}
		s.buf = s.buf[:len(s.buf)+n]
	}
	if s.upstream {
		l.answer(s)
	} else {
		l.request(s)
	}
}

var (
	crlf2     = []byte("\r\n\r\n")
	lengthKey = []byte("\ncontent-length:")
	chunkKey  = []byte("\ntransfer-encoding: chunked")
	lastChunk = []byte("\r\n0\r\n\r\n")
)

// messageLen is the length of the complete message at the start of b, or 0 while incomplete.
// Its fields are looked for in the head's first 2 KiB: enough for the bench's messages, which
// are all this framer serves.
func messageLen(b []byte) int {
	head := bytes.Index(b, crlf2)
	if head < 0 {
		return 0
	}
	h := b[:head+2]
	var lower [2048]byte
	m := copy(lower[:], h)
	low := lower[:m]
	for i, c := range low {
		if 'A' <= c && c <= 'Z' {
			low[i] = c + 'a' - 'A'
		}
	}
	body := head + 4
	if i := bytes.Index(low, lengthKey); i >= 0 {
		v := low[i+len(lengthKey):]
		v = v[:bytes.IndexByte(v, '\r')]
		n, err := strconv.Atoi(string(bytes.TrimSpace(v)))
		if err != nil || len(b) < body+n {
			return 0
		}
		return body + n
	}
	if bytes.Contains(low, chunkKey) {
		if i := bytes.Index(b[body-2:], lastChunk); i >= 0 {
			return body - 2 + i + len(lastChunk)
		}
		return 0
	}
	return body
}

// request relays c's next complete request upstream, if no exchange is in flight.
func (l *loop) request(c *side) {
	if c.peer != nil {
		return
	}
	n := messageLen(c.buf)
	if n == 0 {
		return
	}
	u := l.upstream()
	if u == nil {
		l.drop(c)
		return
	}
	c.peer, u.peer = u, c
	if u.connecting {
		u.pending = append(u.pending[:0], c.buf[:n]...)
	} else if !rawWrite(u.fd, c.buf[:n]) {
		l.drop(u)
		return
	}
	c.buf = c.buf[:copy(c.buf, c.buf[n:])]
}

// answer relays u's complete answer to its client and returns u to the pool.
func (l *loop) answer(u *side) {
	c := u.peer
	if c == nil {
		l.drop(u)
		return
	}
	n := messageLen(u.buf)
	if n == 0 {
		return
	}
	if !rawWrite(c.fd, u.buf[:n]) {
		l.drop(c)
		return
	}
	u.buf = u.buf[:copy(u.buf, u.buf[n:])]
	u.peer, c.peer = nil, nil
	l.idle = append(l.idle, u)
	l.request(c)
}

// upstream takes an idle pooled connection or starts a new one.
func (l *loop) upstream() *side {
	if k := len(l.idle); k > 0 {
		u := l.idle[k-1]
		l.idle = l.idle[:k-1]
		return u
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	u := &side{fd: fd, upstream: true, buf: make([]byte, 0, 16<<10)}
	switch err := unix.Connect(fd, &l.to); err {
	case nil:
	case unix.EINPROGRESS:
		u.connecting = true
	default:
		unix.Close(fd)
		return nil
	}
	l.conns[fd] = u
	ev := uint32(unix.EPOLLIN | unix.EPOLLRDHUP)
	if u.connecting {
		ev |= unix.EPOLLOUT
	}
	_ = unix.EpollCtl(l.ep, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: ev, Fd: int32(fd)})
	return u
}

// connected finishes u's connect and writes the request waiting for it.
func (l *loop) connected(u *side) {
	if v, err := unix.GetsockoptInt(u.fd, unix.SOL_SOCKET, unix.SO_ERROR); err != nil || v != 0 {
		l.drop(u)
		return
	}
	u.connecting = false
	_ = unix.EpollCtl(l.ep, unix.EPOLL_CTL_MOD, u.fd, &unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(u.fd)})
	if !rawWrite(u.fd, u.pending) {
		l.drop(u)
	}
	u.pending = u.pending[:0]
}

// drop closes s and whatever it was exchanging with.
func (l *loop) drop(s *side) {
	for _, x := range []*side{s, s.peer} {
		if x == nil {
			continue
		}
		if x.upstream {
			for i, u := range l.idle {
				if u == x {
					l.idle = append(l.idle[:i], l.idle[i+1:]...)
					break
				}
			}
		}
		delete(l.conns, x.fd)
		unix.Close(x.fd)
		x.peer = nil
	}
}
