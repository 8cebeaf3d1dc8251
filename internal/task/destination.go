package task

import (
	"net"
	"net/netip"
	"sync"

	"github.com/open-autoglm/autoglm/internal/config"
)

// special reports why ip may not be reached by a webhook, or "" when it may: loopback,
// private, link-local, unspecified and multicast addresses are refused.
func special(ip netip.Addr) string {
	ip = ip.Unmap()
	switch {
	case ip.IsLoopback():
		return "loopback"
	case ip.IsPrivate():
		return "private"
	case ip.IsLinkLocalUnicast(), ip.IsLinkLocalMulticast():
		return "link-local"
	case ip.IsUnspecified():
		return "unspecified"
	case ip.IsMulticast():
		return "multicast"
	case ip.Is4() && ip.As4()[0] == 100 && ip.As4()[1]&0xc0 == 64:
		return "shared address space (100.64.0.0/10)"
	}
	return ""
}

// destinations decides which addresses webhooks may reach: public addresses, and those
// tasks.webhook_allow names (an address or CIDR, with or without a port) — never the
// gateway's own listeners, whatever the allow-list says. It is safe for concurrent use.
type destinations struct {
	allow []config.WebhookTarget

	mu  sync.RWMutex
	own []netip.AddrPort // the gateway's listeners; an unspecified address means every local one
}

// refuseListener adds one of the gateway's own listening addresses.
func (d *destinations) refuseListener(ap netip.AddrPort) {
	d.mu.Lock()
	d.own = append(d.own, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
	d.mu.Unlock()
}

// check reports why a webhook may not connect to ap (ownListener, or why the address is not
// public), or "" when it may.
func (d *destinations) check(ap netip.AddrPort) string {
	ip := ap.Addr().Unmap()
	if d.isOwn(ip, ap.Port()) {
		return ownListener
	}
	for _, a := range d.allow {
		if a.Prefix.Contains(ip) && (a.Port == 0 || a.Port == ap.Port()) {
			return ""
		}
	}
	return special(ip)
}

// ownListener is check's answer for the gateway's own listeners.
const ownListener = "the gateway's own listener"

func (d *destinations) isOwn(ip netip.Addr, port uint16) bool {
	d.mu.RLock()
	defer d.mu.RUnlock()
	for _, own := range d.own {
		if own.Port() != port {
			continue
		}
		if own.Addr() == ip {
			return true
		}
		if own.Addr().IsUnspecified() && (ip.IsLoopback() || ip.IsUnspecified() || localAddr(ip)) {
			return true
		}
	}
	return false
}

// localAddr reports whether ip belongs to one of this host's interfaces.
func localAddr(ip netip.Addr) bool {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return true // cannot tell: treat as local, the safe answer
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if x, ok := netip.AddrFromSlice(n.IP); ok && x.Unmap() == ip {
				return true
			}
		}
	}
	return false
}
