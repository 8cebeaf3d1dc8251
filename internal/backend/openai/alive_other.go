//go:build !unix

package openai

import (
	"net"
	"syscall"
)

// rawConn has nothing to give here: alive cannot peek.
func rawConn(net.Conn) syscall.RawConn { return nil }

// alive cannot peek here; a connection the upstream closed fails its request instead.
func alive(syscall.RawConn) bool { return true }

// keepAlive has nothing to do here: there are no event loops.
func keepAlive(net.Conn) {}
