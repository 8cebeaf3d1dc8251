package openai

import (
	"syscall"
	"unsafe"
)

// peek reads one byte without taking it or blocking, and gives its errno (0 when there was a
// byte or an end of stream). A raw system call, as the connection's reads and writes are
// (internal/sockio): it cannot block, and so need not wake the runtime's monitor thread.
func peek(fd uintptr) syscall.Errno {
	var b [1]byte
	_, _, e := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), 1,
		syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
	return e
}
