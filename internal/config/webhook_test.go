package config

import (
	"net/netip"
	"testing"
)

func TestParseWebhookTarget(t *testing.T) {
	for in, want := range map[string]string{
		"10.0.0.0/8":        "10.0.0.0/8 any",
		"10.1.2.3/8":        "10.0.0.0/8 any",
		"10.1.2.3":          "10.1.2.3/32 any",
		"10.1.2.3:8443":     "10.1.2.3/32 8443",
		"10.0.0.0/8:443":    "10.0.0.0/8 443",
		"::1":               "::1/128 any",
		"[::1]:9000":        "::1/128 9000",
		"fd00::/8":          "fd00::/8 any",
		"[fd00::/8]:443":    "fd00::/8 443",
		"::ffff:127.0.0.1":  "127.0.0.1/32 any",
		"127.0.0.1:65535":   "127.0.0.1/32 65535",
		"fd00::1:443":       "fd00::1:443/128 any", // an IPv6 address; a port needs brackets
		"fd00::/8:443":      "",
		"10.0.0.1:0":        "",
		"10.0.0.1:65536":    "",
		"10.0.0.1:":         "",
		":443":              "",
		"example.com:443":   "",
		"[10.0.0.1]:443":    "10.0.0.1/32 443",
		"10.0.0.0/33":       "",
		"":                  "",
		"fe80::1%eth0":      "",
		"[fe80::1%eth0]:80": "",
	} {
		got, err := ParseWebhookTarget(in)
		if want == "" {
			if err == nil {
				t.Errorf("ParseWebhookTarget(%q) = %v, want an error", in, got)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseWebhookTarget(%q): %v", in, err)
			continue
		}
		port := "any"
		if got.Port != 0 {
			port = itoa(got.Port)
		}
		if s := got.Prefix.String() + " " + port; s != want {
			t.Errorf("ParseWebhookTarget(%q) = %s, want %s", in, s, want)
		}
	}
}

func itoa(p uint16) string {
	return netip.AddrPortFrom(netip.IPv4Unspecified(), p).String()[len("0.0.0.0:"):]
}

func FuzzParseWebhookTarget(f *testing.F) {
	for _, s := range []string{"10.0.0.0/8", "10.1.2.3:8443", "[fd00::/8]:443", "::1", "fd00::1:443", "[::1]:0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseWebhookTarget(s)
		if err != nil {
			return
		}
		if !a.Prefix.IsValid() || a.Prefix != a.Prefix.Masked() || a.Prefix.Addr().Is4In6() {
			t.Fatalf("%q: prefix %v", s, a.Prefix)
		}
	})
}
