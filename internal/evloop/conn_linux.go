//go:build linux && (amd64 || arm64)

package evloop

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Conn is a TCP connection registered with a loop. It is a net.Conn: a read or write by one
// of the loop's coroutines is a raw system call, and one that would block parks the
// coroutine until epoll reports the socket ready. Any other goroutine may use it too: its
// reads and writes go through a duplicate of the socket in the runtime's poller (foreign).
// Deadlines, Close and CloseWrite may be called from any goroutine.
type Conn struct {
	l     *Loop
	fd    int
	raddr net.Addr
	laddr atomic.Pointer[net.TCPAddr]

	r, w side

	refs   atomic.Int32 // calls using fd now
	closed atomic.Bool  // Close was called; fd is closed once refs is zero
	shut   atomic.Bool  // fd has been closed (or is being)
	fdShut bool         // on the loop: fd left the epoll set and was closed

	dmu    sync.Mutex // deadlines' timers, shadow
	shadow net.Conn   // the socket for other goroutines (foreign)
}

// side is one direction of a connection.
type side struct {
	seq   atomic.Uint32 // events the loop has seen on it
	dl    atomic.Int64  // deadline, Unix nanoseconds; 0 none
	timer *time.Timer   // wakes the waiters at the deadline; under Conn.dmu

	task *task // the loop's coroutine waiting on it; on the loop only
}

var _ net.Conn = (*Conn)(nil)

// acquire counts a call using the descriptor; false when the connection is closed.
func (c *Conn) acquire() bool {
	c.refs.Add(1)
	if c.closed.Load() {
		c.releaseRef()
		return false
	}
	return true
}

func (c *Conn) releaseRef() {
	if c.refs.Add(-1) == 0 && c.closed.Load() {
		c.closeFD()
	}
}

// closeFD closes the descriptor once (on the loop, so that no event for it is being handled
// while its number is reused).
func (c *Conn) closeFD() {
	if !c.shut.CompareAndSwap(false, true) {
		return
	}
	if c.l.onLoop() {
		c.shutFD(false)
		return
	}
	c.l.postReq(post{c: c, close: true})
}

// shutFD takes the descriptor out of the epoll set and closes it: on the loop, or (ended)
// after the loop has ended, when there is no epoll set and no waiter left.
func (c *Conn) shutFD(ended bool) {
	if c.fdShut {
		return
	}
	c.fdShut = true
	if ended {
		unix.Close(c.fd)
		return
	}
	l := c.l
	if c.fd < len(l.conns) && l.conns[c.fd] == c {
		l.conns[c.fd] = nil
	}
	_ = unix.EpollCtl(l.ep, unix.EPOLL_CTL_DEL, c.fd, nil)
	unix.Close(c.fd)
	l.wakeSide(&c.r)
	l.wakeSide(&c.w)
}

// wait parks the caller until s may have changed since seq (an event, a deadline moved, the
// connection closed). The caller then tries its system call again.
func (c *Conn) wait(s *side, seq uint32) error {
	if c.closed.Load() {
		return net.ErrClosed
	}
	if dl := s.dl.Load(); dl != 0 && dl <= time.Now().UnixNano() {
		return os.ErrDeadlineExceeded
	}
	t := c.l.curTask // the caller is the running coroutine (Read and Write checked)
	if s.seq.Load() != seq {
		return nil
	}
	s.task = t
	ok := t.park()
	s.task = nil
	if !ok {
		return net.ErrClosed
	}
	return nil
}

// foreign is the connection as seen by goroutines other than its loop's coroutines: a
// duplicate of the socket in the runtime's own network poller, made at the first such call.
// Their reads and writes go through it and wait without the loop, so that they end (at a
// deadline, at Close) even while a coroutine holds the loop up.
func (c *Conn) foreign() (net.Conn, error) {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	if c.shadow != nil {
		return c.shadow, nil
	}
	if !c.acquire() {
		return nil, net.ErrClosed
	}
	dup, err := unix.FcntlInt(uintptr(c.fd), unix.F_DUPFD_CLOEXEC, 0)
	c.releaseRef()
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(dup), "tcp")
	nc, err := net.FileConn(f)
	_ = f.Close()
	if err != nil {
		return nil, err
	}
	if c.closed.Load() {
		_ = nc.Close()
		return nil, net.ErrClosed
	}
	if dl := c.r.dl.Load(); dl != 0 {
		_ = nc.SetReadDeadline(time.Unix(0, dl))
	}
	if dl := c.w.dl.Load(); dl != 0 {
		_ = nc.SetWriteDeadline(time.Unix(0, dl))
	}
	c.shadow = nc
	return nc, nil
}

func (c *Conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if !c.l.onLoop() {
		nc, err := c.foreign()
		if err != nil {
			return 0, c.opError("read", err)
		}
		return nc.Read(p)
	}
	if !c.acquire() {
		return 0, c.opError("read", net.ErrClosed)
	}
	defer c.releaseRef()
	for {
		if c.closed.Load() {
			return 0, c.opError("read", net.ErrClosed)
		}
		if dl := c.r.dl.Load(); dl != 0 && dl <= time.Now().UnixNano() {
			return 0, c.opError("read", os.ErrDeadlineExceeded)
		}
		seq := c.r.seq.Load()
		n, e := sysRead(c.fd, p)
		switch e {
		case 0:
			if n == 0 {
				return 0, io.EOF
			}
			return n, nil
		case unix.EINTR:
		case unix.EAGAIN:
			if err := c.wait(&c.r, seq); err != nil {
				return 0, c.opError("read", err)
			}
		default:
			return 0, c.opError("read", os.NewSyscallError("read", e))
		}
	}
}

func (c *Conn) Write(p []byte) (int, error) {
	if !c.l.onLoop() {
		nc, err := c.foreign()
		if err != nil {
			return 0, c.opError("write", err)
		}
		return nc.Write(p)
	}
	if !c.acquire() {
		return 0, c.opError("write", net.ErrClosed)
	}
	defer c.releaseRef()
	done := 0
	for done < len(p) {
		if c.closed.Load() {
			return done, c.opError("write", net.ErrClosed)
		}
		if dl := c.w.dl.Load(); dl != 0 && dl <= time.Now().UnixNano() {
			return done, c.opError("write", os.ErrDeadlineExceeded)
		}
		seq := c.w.seq.Load()
		n, e := sysWrite(c.fd, p[done:])
		switch e {
		case 0:
			done += n
		case unix.EINTR:
		case unix.EAGAIN:
			if err := c.wait(&c.w, seq); err != nil {
				return done, c.opError("write", err)
			}
		default:
			return done, c.opError("write", os.NewSyscallError("write", e))
		}
	}
	return done, nil
}

// Close closes the connection; calls blocked on it return net.ErrClosed.
func (c *Conn) Close() error {
	if !c.acquire() {
		return c.opError("close", net.ErrClosed)
	}
	defer c.releaseRef() // the last call out closes the descriptor
	if c.closed.Swap(true) {
		return c.opError("close", net.ErrClosed)
	}
	if !c.l.onLoop() {
		// The peer learns of it now, even while the loop is held up and cannot close the
		// descriptor yet.
		_ = unix.Shutdown(c.fd, unix.SHUT_RDWR)
	}
	c.dmu.Lock()
	for _, s := range []*side{&c.r, &c.w} {
		if s.timer != nil {
			s.timer.Stop()
		}
	}
	if c.shadow != nil {
		_ = c.shadow.Close()
	}
	c.dmu.Unlock()
	c.wakeWaiters() // a call blocked on the connection returns net.ErrClosed
	return nil
}

// CloseWrite shuts down the sending side.
func (c *Conn) CloseWrite() error {
	if !c.acquire() {
		return c.opError("close", net.ErrClosed)
	}
	defer c.releaseRef()
	if err := unix.Shutdown(c.fd, unix.SHUT_WR); err != nil {
		return c.opError("close", err)
	}
	return nil
}

// wakeWaiters makes every call waiting on the connection look again.
func (c *Conn) wakeWaiters() {
	if c.l.onLoop() {
		c.l.wakeSide(&c.r)
		c.l.wakeSide(&c.w)
		return
	}
	c.l.postReq(post{c: c})
}

func (c *Conn) SetDeadline(t time.Time) error {
	c.setDeadline(&c.r, t)
	c.setDeadline(&c.w, t)
	return nil
}

func (c *Conn) SetReadDeadline(t time.Time) error  { c.setDeadline(&c.r, t); return nil }
func (c *Conn) SetWriteDeadline(t time.Time) error { c.setDeadline(&c.w, t); return nil }

func (c *Conn) setDeadline(s *side, t time.Time) {
	var dl int64
	if !t.IsZero() {
		dl = max(t.UnixNano(), 1)
	}
	c.dmu.Lock()
	s.dl.Store(dl)
	if c.shadow != nil {
		if s == &c.r {
			_ = c.shadow.SetReadDeadline(t)
		} else {
			_ = c.shadow.SetWriteDeadline(t)
		}
	}
	wakeNow := false
	switch d := time.Until(t); {
	case dl == 0:
		if s.timer != nil {
			s.timer.Stop()
		}
	case d <= 0:
		if s.timer != nil {
			s.timer.Stop()
		}
		wakeNow = true
	case s.timer == nil:
		s.timer = time.AfterFunc(d, c.wakeWaiters)
	default:
		s.timer.Reset(d)
	}
	c.dmu.Unlock()
	if wakeNow && !c.closed.Load() {
		c.wakeWaiters()
	}
}

func (c *Conn) RemoteAddr() net.Addr { return c.raddr }

func (c *Conn) LocalAddr() net.Addr {
	if a := c.laddr.Load(); a != nil {
		return a
	}
	a := &net.TCPAddr{}
	if c.acquire() {
		if sa, err := unix.Getsockname(c.fd); err == nil {
			a = sockaddrAddr(sa).(*net.TCPAddr)
		}
		c.releaseRef()
	}
	c.laddr.Store(a)
	return a
}

// Loop is the loop the connection belongs to.
func (c *Conn) Loop() *Loop { return c.l }

// Detach hands the connection over to the runtime's own network poller and leaves the loop
// with nothing of it: the result is an ordinary *net.TCPConn, for a server that will run it
// on goroutines of its own (an HTTP/2 or upgraded connection). c is closed.
func (c *Conn) Detach() (net.Conn, error) {
	if !c.acquire() {
		return nil, c.opError("detach", net.ErrClosed)
	}
	dup, err := unix.FcntlInt(uintptr(c.fd), unix.F_DUPFD_CLOEXEC, 0)
	c.releaseRef()
	if err != nil {
		return nil, c.opError("detach", err)
	}
	_ = c.Close()
	f := os.NewFile(uintptr(dup), "tcp")
	nc, err := net.FileConn(f) // duplicates it again, into the runtime's poller
	_ = f.Close()
	if err != nil {
		return nil, c.opError("detach", err)
	}
	return nc, nil
}

// SyscallConn gives a raw connection for Control (a peek at the socket, an option);
// its Read and Write are not offered.
func (c *Conn) SyscallConn() (syscall.RawConn, error) { return rawConn{c}, nil }

type rawConn struct{ c *Conn }

var errRawIO = errors.New("evloop: raw reads and writes are not offered")

func (r rawConn) Control(f func(fd uintptr)) error {
	if !r.c.acquire() {
		return net.ErrClosed
	}
	defer r.c.releaseRef()
	f(uintptr(r.c.fd))
	return nil
}

func (r rawConn) Read(func(fd uintptr) bool) error  { return errRawIO }
func (r rawConn) Write(func(fd uintptr) bool) error { return errRawIO }

func (c *Conn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Source: c.LocalAddr(), Addr: c.raddr, Err: err}
}

func sysRead(fd int, p []byte) (int, syscall.Errno) {
	n, _, e := syscall.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
	return int(n), e
}

func sysWrite(fd int, p []byte) (int, syscall.Errno) {
	if len(p) == 0 {
		return 0, 0
	}
	n, _, e := syscall.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
	return int(n), e
}
