package h1

import (
	"net"
	"sync"
)

// HandOff is a net.Listener whose connections are those a Server hands over: give its Deliver
// as Server.Fallback and serve it with net/http's server.
type HandOff struct {
	addr  net.Addr
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

// NewHandOff makes a HandOff that reports addr as its address.
func NewHandOff(addr net.Addr) *HandOff {
	return &HandOff{addr: addr, conns: make(chan net.Conn), done: make(chan struct{})}
}

// Deliver passes c to the server accepting on h; after Close it closes c instead.
func (h *HandOff) Deliver(c net.Conn) {
	select {
	case h.conns <- c:
	case <-h.done:
		_ = c.Close()
	}
}

// Accept waits for the next delivered connection.
func (h *HandOff) Accept() (net.Conn, error) {
	select {
	case c := <-h.conns:
		return c, nil
	case <-h.done:
		return nil, net.ErrClosed
	}
}

// Close ends Accept; connections delivered afterwards are closed.
func (h *HandOff) Close() error {
	h.once.Do(func() { close(h.done) })
	return nil
}

// Addr is the address given to NewHandOff.
func (h *HandOff) Addr() net.Addr { return h.addr }
