package testenv

import (
	"context"
	"net"
	"testing"
	"time"
)

// ServeLoopback runs serve on a fresh loopback listener until the test ends, and returns the
// listener's address (host:port). At cleanup it cancels serve's context and waits up to 10 s
// for it to return; a server that does not stop fails the test.
func ServeLoopback(t testing.TB, serve func(context.Context, net.Listener) error) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("server did not stop")
		}
	})
	return ln.Addr().String()
}
