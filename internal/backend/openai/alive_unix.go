//go:build unix

package openai

import (
	"net"
	"syscall"
)

// rawConn is nc's raw connection, for alive to peek through; nil when nc has none. It is
// taken once, when the connection is dialled: asking for it costs an interface conversion
// and an allocation, which every reuse of the connection would otherwise pay.
func rawConn(nc net.Conn) syscall.RawConn {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// alive reports whether an idle keep-alive connection may still be used: the upstream has
// neither closed it nor sent anything unasked. It peeks without blocking, so a connection the
// upstream closed while it sat in the pool is dropped before a request is written to it. rc
// is the connection's raw connection (rawConn); with none there is nothing to peek through.
func alive(rc syscall.RawConn) bool {
	if rc == nil {
		return true
	}
	var e syscall.Errno
	err := rc.Control(func(fd uintptr) {
		for e = peek(fd); e == syscall.EINTR; e = peek(fd) {
		}
	})
	// Nothing to read is the one good answer; anything else is a close (n == 0), unasked-for
	// bytes (n > 0) or an error.
	return err == nil && (e == syscall.EAGAIN || e == syscall.EWOULDBLOCK)
}

// keepAlive turns on TCP keep-alive probes on a connection dialled without net.Dialer (on an
// event loop), every 15 s after 15 s idle as net.Dialer's default.
func keepAlive(nc net.Conn) {
	rc := rawConn(nc)
	if rc == nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_KEEPALIVE, 1)
		_ = setKeepAliveIdle(int(fd), 15)
	})
}
