package config

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// DefaultTLSReloadInterval is how often the certificate files are checked for changes.
const DefaultTLSReloadInterval = 10 * time.Second

func validateTLS(t TLS, bad func(path, format string, args ...any)) {
	if !t.Enabled() {
		if t.ClientCAFile != "" || (t.ClientAuth != "" && t.ClientAuth != ClientAuthNone) {
			bad("server.tls", "client certificates need cert_file and key_file")
		}
		return
	}
	if t.CertFile == "" {
		bad("server.tls.cert_file", "is required with key_file")
	}
	if t.KeyFile == "" {
		bad("server.tls.key_file", "is required with cert_file")
	}
	switch t.ClientAuth {
	case ClientAuthNone:
	case ClientAuthRequest, ClientAuthRequireAndVerify:
		if t.ClientCAFile == "" {
			bad("server.tls.client_ca_file", "is required with client_auth %q", t.ClientAuth)
		}
	default:
		bad("server.tls.client_auth", "must be one of none, request, require_and_verify, got %q", t.ClientAuth)
	}
	if t.ReloadInterval < 0 {
		bad("server.tls.reload_interval", "must not be negative")
	}
}

func validateDeprecations(ds []Deprecation, bad func(path, format string, args ...any)) {
	seen := map[string]bool{}
	for i, d := range ds {
		path := fmt.Sprintf("server.deprecations[%d]", i)
		method, pattern, ok := strings.Cut(d.Route, " ")
		if !ok || !validMethod(method) || !strings.HasPrefix(pattern, "/") {
			bad(path+".route", "must be \"METHOD /pattern\" as the route is registered, got %q", d.Route)
		} else if seen[d.Route] {
			bad(path+".route", "%q is listed twice", d.Route)
		}
		seen[d.Route] = true
		if d.Since.IsZero() {
			bad(path+".since", "is required (RFC 3339)")
		}
		if !d.Sunset.IsZero() && !d.Sunset.After(d.Since.Time) {
			bad(path+".sunset", "must be after since")
		}
		if d.Link != "" {
			if u, err := url.Parse(d.Link); err != nil || !u.IsAbs() {
				bad(path+".link", "must be an absolute URL, got %q", d.Link)
			}
		}
	}
}

func validMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		return true
	}
	return false
}

// Time is an instant written in RFC 3339 ("2026-01-01T00:00:00Z").
type Time struct{ time.Time }

// UnmarshalYAML reads an RFC 3339 time.
func (t *Time) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.Parse(time.RFC3339, n.Value)
	if err != nil {
		return fmt.Errorf("invalid time %q (want RFC 3339, such as 2026-01-01T00:00:00Z)", n.Value)
	}
	t.Time = v
	return nil
}

// MarshalYAML writes the time in RFC 3339.
func (t Time) MarshalYAML() (any, error) { return t.Format(time.RFC3339), nil }
