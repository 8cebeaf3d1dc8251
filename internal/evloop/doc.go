// Package evloop runs connections on event loops: a few goroutines, one per CPU, each locked
// to its thread and waiting in its own epoll set, instead of a goroutine per connection
// parked in the runtime's network poller.
//
// Why: on an idle or lightly loaded machine, every time a goroutine parked on the network
// poller is readied the runtime wakes a second thread to look for work, and each wake-up
// waits tens of microseconds on a run queue. A proxied request crosses such a hand-off at
// each read and write; measured at 200 requests/s, autoglm's threads ran 4.3-5.1 times a
// request against nginx's 2.5 (docs/BENCHMARKS.md). A loop waits for its sockets itself and
// switches to the connection whose socket is ready without asking the scheduler.
//
// The code a connection runs stays ordinary blocking Go: each connection's serve function
// runs as a coroutine (iter.Pull) of its loop. A read or write that would block parks the
// coroutine and returns to the loop, which resumes it when epoll reports the socket ready.
// Switching between a loop and its coroutines is a direct switch on the same thread, with no
// scheduler in between. Outgoing connections dialled from a coroutine (Dial) belong to the
// same loop, so a proxied request is read, forwarded, answered and relayed without leaving
// it.
//
// The rules a coroutine's code must keep:
//   - It must not block for long other than on its loop's connections: while it blocks on
//     anything else (a lock, a channel, a socket the runtime polls) its loop serves no other
//     connection. Block runs a function that may wait on another goroutine and parks the
//     coroutine meanwhile.
//   - Its connections may be used by other goroutines too (a watch reading for the client
//     leaving, a deadline set from a timer, Close from a shutdown): those calls wait through
//     the loop without parking it, and are safe at any time.
//
// A loop waits in epoll holding its thread's P, out of the runtime's sight, for up to
// SpinFor (5 ms) after its last event: a busy loop then takes the next event without the
// runtime waking anything. Past that it waits through the runtime's system-call hooks, so an
// idle loop holds no P and costs nothing.
//
// Loops exist on Linux (amd64 and arm64); elsewhere Supported is false and Listen fails.
package evloop

import (
	"context"
	"errors"
)

// ErrUnsupported is returned by Listen where there are no loops.
var ErrUnsupported = errors.New("evloop: event loops are not supported on this platform")

// ErrClosed is returned by Serve once Close has been called.
var ErrClosed = errors.New("evloop: group closed")

type ctxKey struct{}

// NewContext returns ctx carrying l, for code further down the call (Dial, Block) to find.
func NewContext(ctx context.Context, l *Loop) context.Context {
	return context.WithValue(ctx, ctxKey{}, l)
}

// FromContext returns the loop ctx carries, but only when the caller is that loop's running
// coroutine: code on any other goroutine gets nil, and must not use the loop.
func FromContext(ctx context.Context) *Loop {
	if ctx == nil {
		return nil
	}
	l, _ := ctx.Value(ctxKey{}).(*Loop)
	if l == nil || !l.onLoop() {
		return nil
	}
	return l
}
