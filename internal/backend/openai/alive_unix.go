//go:build unix

package openai

import (
	"net"
	"syscall"
)

// alive reports whether an idle keep-alive connection may still be used: the upstream has
// neither closed it nor sent anything unasked. It peeks without blocking, so a connection the
// upstream closed while it sat in the pool is dropped before a request is written to it.
func alive(nc net.Conn) bool {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	ok = true
	err = rc.Read(func(fd uintptr) bool {
		for {
			e := peek(fd)
			if e == syscall.EINTR {
				continue
			}
			// Nothing to read is the one good answer; anything else is a close (n == 0),
			// unasked-for bytes (n > 0) or an error.
			ok = e == syscall.EAGAIN || e == syscall.EWOULDBLOCK
			return true
		}
	})
	return ok && err == nil
}
