//go:build !unix

package openai

import "net"

// alive cannot peek here; a connection the upstream closed fails its request instead.
func alive(net.Conn) bool { return true }
