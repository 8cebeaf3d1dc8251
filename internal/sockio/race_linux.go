//go:build linux && race

package sockio

import "syscall"

// Under the race detector reads and writes go through package syscall, whose Read and Write
// tell the detector that bytes written to a descriptor happen before their reading. Raw
// system calls carry no such edge, and tests that order two goroutines through a socket (a
// handler's state set before it answers, read by the caller after the answer) would be
// reported as races. The path through the connection's poller is the same either way.
func sysRead(fd uintptr, p []byte) (int, syscall.Errno) {
	n, err := syscall.Read(int(fd), p)
	if err != nil {
		return 0, err.(syscall.Errno)
	}
	return n, 0
}

func sysWrite(fd uintptr, p []byte) (int, syscall.Errno) {
	n, err := syscall.Write(int(fd), p)
	if err != nil {
		return 0, err.(syscall.Errno)
	}
	return n, 0
}
