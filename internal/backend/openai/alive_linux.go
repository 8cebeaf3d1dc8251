package openai

import (
	"net"
	"syscall"
	"unsafe"
)

// alive reports whether an idle keep-alive connection may still be used: the upstream has
// neither closed it nor sent anything unasked. It peeks without blocking, so a connection the
// upstream closed while it sat in the pool is dropped before a request is written to it. The
// peek is a raw system call, as the connection's reads and writes are (internal/sockio): it
// cannot block, and so need not wake the runtime's monitor thread.
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
	var b [1]byte
	err = rc.Read(func(fd uintptr) bool {
		for {
			_, _, e := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), 1,
				syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
			if e == syscall.EINTR {
				continue
			}
			// Nothing to read is the one good answer; anything else is a close (n == 0),
			// unasked-for bytes (n > 0) or an error.
			ok = e == syscall.EAGAIN
			return true
		}
	})
	return ok && err == nil
}
