//go:build !linux || !(amd64 || arm64)

package evloop

import (
	"context"
	"net"
	"time"
)

// Supported reports whether this platform has event loops.
const Supported = false

// Group is a set of loops; there are none on this platform.
type Group struct{ Spin time.Duration }

// NewGroup fails with ErrUnsupported here.
func NewGroup(net.Listener, int, func(*Conn)) (*Group, error) { return nil, ErrUnsupported }

func (g *Group) Addr() net.Addr { return nil }
func (g *Group) Serve() error   { return ErrUnsupported }
func (g *Group) Close() error   { return nil }

// Loop is an event loop; there are none on this platform.
type Loop struct{}

func (l *Loop) onLoop() bool { return false }

// Dial fails with ErrUnsupported here.
func (l *Loop) Dial(context.Context, string) (*Conn, error) { return nil, ErrUnsupported }

// Conn is a loop's connection; there are none on this platform.
type Conn struct{ net.Conn }

// Loop is the connection's loop.
func (c *Conn) Loop() *Loop { return nil }

// Detach gives the connection as it is.
func (c *Conn) Detach() (net.Conn, error) { return c.Conn, nil }

// Block calls fn.
func Block(_ context.Context, fn func()) { fn() }
