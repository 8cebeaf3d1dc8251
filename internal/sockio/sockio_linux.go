//go:build linux

package sockio

import (
	"io"
	"net"
	"os"
	"sync"
	"syscall"
)

func wrap(c net.Conn) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return c
	}
	r := &conn{TCPConn: tc, rc: rc}
	r.readFn, r.writeFn = r.read, r.write
	return r
}

// conn is a *net.TCPConn whose Read and Write go through its RawConn. The read and write
// states are each guarded by a mutex: net.Conn allows concurrent calls, and the RawConn
// callbacks read the buffer from the struct (a method value made once, so that a call
// allocates nothing).
type conn struct {
	*net.TCPConn
	rc syscall.RawConn

	rmu    sync.Mutex
	rbuf   []byte
	rn     int
	rerr   syscall.Errno
	readFn func(uintptr) bool

	wmu     sync.Mutex
	wbuf    []byte
	wn      int
	werr    syscall.Errno
	writeFn func(uintptr) bool
}

// read is the RawConn read callback: one read(2), again after EINTR; false (wait for the
// socket to be readable) on EAGAIN.
func (c *conn) read(fd uintptr) bool {
	for {
		n, e := sysRead(fd, c.rbuf)
		switch e {
		case 0:
			c.rn = n
			return true
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		default:
			c.rerr = e
			return true
		}
	}
}

// write is the RawConn write callback: write(2) until the buffer is out; false (wait for the
// socket to be writable) on EAGAIN with bytes left.
func (c *conn) write(fd uintptr) bool {
	for c.wn < len(c.wbuf) {
		rest := c.wbuf[c.wn:]
		n, e := sysWrite(fd, rest)
		switch e {
		case 0:
			c.wn += n
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			c.werr = e
			return true
		}
	}
	return true
}

func (c *conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c.rmu.Lock()
	defer c.rmu.Unlock()
	c.rbuf, c.rn, c.rerr = p, 0, 0
	err := c.rc.Read(c.readFn)
	c.rbuf = nil
	switch {
	case err != nil:
		return 0, c.opError("read", unwrapRaw(err))
	case c.rerr != 0:
		return 0, c.opError("read", os.NewSyscallError("read", c.rerr))
	case c.rn == 0:
		return 0, io.EOF
	}
	return c.rn, nil
}

func (c *conn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.wbuf, c.wn, c.werr = p, 0, 0
	err := c.rc.Write(c.writeFn)
	c.wbuf = nil
	switch {
	case err != nil:
		return c.wn, c.opError("write", unwrapRaw(err))
	case c.werr != 0:
		return c.wn, c.opError("write", os.NewSyscallError("write", c.werr))
	}
	return c.wn, nil
}

// opError shapes an error as net.Conn's own: a *net.OpError naming the operation and the
// addresses, so that callers' checks (net.Error's Timeout, errors.Is with
// os.ErrDeadlineExceeded, net.ErrClosed or a syscall errno) see what they would see without
// the wrapper.
func (c *conn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}

// unwrapRaw takes the cause out of the *net.OpError ("raw-read"/"raw-write") the RawConn
// returns for a deadline or a closed connection.
func unwrapRaw(err error) error {
	if oe, ok := err.(*net.OpError); ok {
		return oe.Err
	}
	return err
}

// SyscallConn gives the connection's RawConn, as *net.TCPConn does.
func (c *conn) SyscallConn() (syscall.RawConn, error) { return c.rc, nil }
