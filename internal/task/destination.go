package task

import (
	"net"
	"net/netip"
	"sync"

	"github.com/open-autoglm/autoglm/internal/config"
)

// specialPurpose are the address blocks of the IANA IPv4 and IPv6 Special-Purpose Address
// Registries that are not globally reachable, with the reason a webhook may not reach them.
// Blocks the registries mark globally reachable are left out (AS112 and AMT; 192.0.0.9/32 and
// 192.0.0.10/32 stay refused with the rest of 192.0.0.0/24: anycast protocol services, never a
// webhook receiver). IPv6 outside 2000::/3, which holds all global unicast, is refused
// separately; NAT64 (64:ff9b::/96) and 6to4 (2002::/16) addresses are judged by the IPv4
// address they carry.
var specialPurpose = []struct {
	prefix netip.Prefix
	why    string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "this-network"},
	{netip.MustParsePrefix("10.0.0.0/8"), "private"},
	{netip.MustParsePrefix("100.64.0.0/10"), "shared address space (100.64.0.0/10)"},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local"},
	{netip.MustParsePrefix("172.16.0.0/12"), "private"},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignment"},
	{netip.MustParsePrefix("192.0.2.0/24"), "documentation"},
	{netip.MustParsePrefix("192.88.99.0/24"), "6to4 relay anycast"},
	{netip.MustParsePrefix("192.168.0.0/16"), "private"},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking"},
	{netip.MustParsePrefix("198.51.100.0/24"), "documentation"},
	{netip.MustParsePrefix("203.0.113.0/24"), "documentation"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
	{netip.MustParsePrefix("255.255.255.255/32"), "broadcast"}, // before 240.0.0.0/4, which holds it
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved"},

	{netip.MustParsePrefix("::/128"), "unspecified"},
	{netip.MustParsePrefix("::1/128"), "loopback"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "local-use IPv4/IPv6 translation"},
	{netip.MustParsePrefix("100::/64"), "discard-only"},
	{netip.MustParsePrefix("2001::/23"), "IETF protocol assignment"},
	{netip.MustParsePrefix("2001:db8::/32"), "documentation"},
	{netip.MustParsePrefix("3fff::/20"), "documentation"},
	{netip.MustParsePrefix("5f00::/16"), "segment routing (SRv6) SID"},
	{netip.MustParsePrefix("fc00::/7"), "unique-local"},
	{netip.MustParsePrefix("fe80::/10"), "link-local"},
	{netip.MustParsePrefix("ff00::/8"), "multicast"},
}

var (
	globalUnicast6 = netip.MustParsePrefix("2000::/3")
	nat64          = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour      = netip.MustParsePrefix("2002::/16")
)

// special reports why ip is not a global unicast address, or "" when it is.
func special(ip netip.Addr) string {
	ip = ip.Unmap()
	if !ip.IsValid() {
		return "invalid"
	}
	if ip.Is6() {
		switch {
		case nat64.Contains(ip):
			b := ip.As16()
			if why := special(netip.AddrFrom4([4]byte(b[12:16]))); why != "" {
				return "NAT64 address of a " + why
			}
			return ""
		case sixToFour.Contains(ip):
			b := ip.As16()
			if why := special(netip.AddrFrom4([4]byte(b[2:6]))); why != "" {
				return "6to4 address of a " + why
			}
			return ""
		}
	}
	for _, s := range specialPurpose {
		if s.prefix.Contains(ip) {
			return s.why
		}
	}
	if ip.Is6() && !globalUnicast6.Contains(ip) {
		return "non-global IPv6"
	}
	return ""
}

// destinations decides which addresses webhooks may reach: global unicast addresses, and
// those tasks.webhook_allow names (an address or CIDR, with or without a port) — never the
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
// global unicast), or "" when it may.
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
