//go:build unix && !linux

package openai

import "syscall"

// peek reads one byte without taking it or blocking, and gives its errno (0 when there was a
// byte or an end of stream).
func peek(fd uintptr) syscall.Errno {
	var b [1]byte
	_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	if e, ok := err.(syscall.Errno); ok {
		return e
	}
	return 0
}
