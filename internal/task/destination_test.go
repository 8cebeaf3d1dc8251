package task

import (
	"fmt"
	"net"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/open-autoglm/autoglm/internal/config"
	"github.com/open-autoglm/autoglm/internal/mockllm"
)

// TestSpecialPurposeRefused: only global unicast addresses are webhook destinations; the
// table follows the IANA special-purpose registries.
func TestSpecialPurposeRefused(t *testing.T) {
	for addr, want := range map[string]string{
		// IPv4
		"0.1.2.3":         "this-network",
		"10.1.2.3":        "private",
		"100.64.0.1":      "shared address space",
		"127.0.0.1":       "loopback",
		"169.254.169.254": "link-local",
		"172.16.0.1":      "private",
		"172.31.255.255":  "private",
		"192.0.0.1":       "IETF protocol assignment",
		"192.0.0.9":       "IETF protocol assignment",
		"192.0.2.10":      "documentation",
		"192.88.99.1":     "6to4 relay anycast",
		"192.168.1.1":     "private",
		"198.18.0.1":      "benchmarking",
		"198.19.255.254":  "benchmarking",
		"198.51.100.7":    "documentation",
		"203.0.113.9":     "documentation",
		"224.0.0.1":       "multicast",
		"239.255.255.250": "multicast",
		"240.0.0.1":       "reserved",
		"254.1.1.1":       "reserved",
		"255.255.255.255": "broadcast",
		"::ffff:10.0.0.1": "private",
		// IPv6
		"::":                "unspecified",
		"::1":               "loopback",
		"64:ff9b::a00:1":    "NAT64 address of a private",
		"64:ff9b::7f00:1":   "NAT64 address of a loopback",
		"64:ff9b::c612:1":   "NAT64 address of a benchmarking",
		"64:ff9b:1::1":      "local-use IPv4/IPv6 translation",
		"100::1":            "discard-only",
		"2001::1":           "IETF protocol assignment",
		"2001:db8::1":       "documentation",
		"2002:a00:1::1":     "6to4 address of a private",
		"2002:7f00:1::":     "6to4 address of a loopback",
		"2002:a9fe:a9fe::1": "6to4 address of a link-local",
		"3fff::1":           "documentation",
		"5f00::1":           "segment routing",
		"fc00::1":           "unique-local",
		"fd12:3456::1":      "unique-local",
		"fe80::1":           "link-local",
		"ff02::1":           "multicast",
		"::a00:1":           "non-global IPv6",
		"4000::1":           "non-global IPv6",
		"::ffff:0:a00:1":    "non-global IPv6",
		// Global unicast: allowed.
		"8.8.8.8":              "",
		"1.1.1.1":              "",
		"192.0.1.1":            "",
		"198.20.0.1":           "",
		"223.255.255.1":        "",
		"192.31.196.1":         "",
		"2606:4700::1111":      "",
		"64:ff9b::808:808":     "",
		"2002:808:808::1":      "",
		"2620:4f:8000::1":      "",
		"::ffff:8.8.4.4":       "",
		"2a00:1450:4001::200e": "",
	} {
		got := special(netip.MustParseAddr(addr))
		if (want == "") != (got == "") || !strings.HasPrefix(got, want) {
			t.Errorf("special(%s) = %q, want %q", addr, got, want)
		}
	}
}

// TestAllowListPorts: an allow-list entry with a port admits that port only; without one,
// every port; the gateway's own listeners stay refused even when an entry covers them.
func TestAllowListPorts(t *testing.T) {
	var d destinations
	for _, e := range []string{"127.0.0.1:9000", "10.0.0.0/8:443", "[fd00::/8]:8443", "192.168.1.0/24", "[::1]:9001"} {
		a, err := config.ParseWebhookTarget(e)
		if err != nil {
			t.Fatal(err)
		}
		d.allow = append(d.allow, a)
	}
	d.refuseListener(netip.MustParseAddrPort("127.0.0.1:8080"))
	d.refuseListener(netip.MustParseAddrPort("[::]:7070"))
	for ap, want := range map[string]string{
		"127.0.0.1:9000":          "",
		"127.0.0.1:9001":          "loopback",
		"127.0.0.1:8080":          ownListener,
		"10.9.8.7:443":            "",
		"10.9.8.7:80":             "private",
		"[fd00::5]:8443":          "",
		"[fd00::5]:443":           "unique-local",
		"192.168.1.20:1":          "",
		"192.168.1.20:80":         "",
		"192.168.2.20:80":         "private",
		"[::1]:9001":              "",
		"[::1]:9000":              "loopback",
		"127.0.0.1:7070":          ownListener, // a wildcard listener: every local address on its port
		"[::1]:7070":              ownListener,
		"8.8.8.8:8080":            "",
		"8.8.8.8:7070":            "",
		"[::ffff:127.0.0.1]:8080": ownListener,
	} {
		if got := d.check(netip.MustParseAddrPort(ap)); !strings.HasPrefix(got, want) || (want == "") != (got == "") {
			t.Errorf("check(%s) = %q, want %q", ap, got, want)
		}
	}
	// An allow-list that covers the listener does not open it.
	var all destinations
	a, _ := config.ParseWebhookTarget("127.0.0.0/8")
	all.allow = []config.WebhookTarget{a}
	all.refuseListener(netip.MustParseAddrPort("127.0.0.1:8080"))
	if got := all.check(netip.MustParseAddrPort("127.0.0.1:8080")); got != ownListener {
		t.Errorf("own listener under an allowing CIDR: %q", got)
	}
	if got := all.check(netip.MustParseAddrPort("127.0.0.1:8081")); got != "" {
		t.Errorf("another loopback port under the CIDR: %q", got)
	}
}

// TestWebhookRefusesOwnListener: with loopback allowed, a callback to the gateway's own
// address is still refused and never reaches it, while another loopback receiver is reached.
func TestWebhookRefusesOwnListener(t *testing.T) {
	rc := newReceiver(testSecret)
	hook := httptest.NewServer(rc)
	defer hook.Close()
	e := setup(t, mockllm.Options{Tokens: 3}, fmt.Sprintf("  webhook_secret: %s\n  webhook_allow: [127.0.0.0/8]\n  webhook_backoff: 20ms\n", testSecret))
	ln := strings.TrimPrefix(e.URL, "http://")
	addr, err := net.ResolveTCPAddr("tcp", ln)
	if err != nil {
		t.Fatal(err)
	}
	e.svc.RefuseListener(addr)
	own := e.submit(t, fmt.Sprintf(`{"model":"coder","prompt":"x","callback_url":"%s/v1/tasks"}`, e.URL))
	done := e.wait(t, own.ID, 10*time.Second, func(tk Task) bool { return tk.Webhook != nil && tk.Webhook.Status != "pending" })
	if done.Webhook.Status != "failed" || len(done.Webhook.Attempts) != 1 || !strings.Contains(done.Webhook.Attempts[0].Error, "own listener") {
		t.Errorf("callback to the gateway: %+v", done.Webhook)
	}
	other := e.submit(t, fmt.Sprintf(`{"model":"coder","prompt":"x","callback_url":"%s/hook"}`, hook.URL))
	done = e.wait(t, other.ID, 10*time.Second, func(tk Task) bool { return tk.Webhook != nil && tk.Webhook.Status != "pending" })
	if done.Webhook.Status != "delivered" {
		t.Errorf("callback to an allowed receiver: %+v", done.Webhook)
	}
}
