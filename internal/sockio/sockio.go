// Package sockio wraps TCP connections so that their reads and writes do not wake the Go
// runtime's system monitor.
//
// Why: Go's runtime lets its monitor thread (sysmon) sleep while every P is idle, and wakes it
// whenever a goroutine enters a system call, so that it can take the P back if the call blocks.
// A server at a low request rate goes idle between requests, so each request's first socket
// read wakes the monitor, which then naps in 20 µs steps until the runtime is idle again. On a
// proxy at 200 requests/s that was about four context switches per request on a thread of
// their own, against two for the request's own work (docs/BENCHMARKS.md). A read or write on a
// non-blocking socket never blocks, so there is nothing for the monitor to take back: Wrap
// issues them as raw system calls through the connection's poller, which waits for readiness
// exactly as net.Conn does (deadlines, Close) and skips the runtime's system-call hooks.
//
// Where the platform offers no such path (anything but Linux), Wrap returns the connection
// unchanged.
package sockio

import "net"

// Wrap returns c with raw-system-call reads and writes where the platform supports them, and c
// itself otherwise (or when c is not a *net.TCPConn). The result also implements
// syscall.Conn and CloseWrite when c does.
func Wrap(c net.Conn) net.Conn { return wrap(c) }
