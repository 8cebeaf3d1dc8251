package config

import (
	"slices"
	"testing"
)

func parseT(t *testing.T, yaml string) *Config {
	t.Helper()
	c, err := Parse([]byte(yaml), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("%v\n%s", err, yaml)
	}
	return c
}

func TestCompare(t *testing.T) {
	const base = `
server: {addr: "127.0.0.1:8080"}
log: {level: info}
models:
  - name: m
    backends: [{type: openai, base_url: "http://127.0.0.1:9/v1"}]
ratelimit:
  roles: {guest: {requests_per_minute: 20}}
`
	for _, tc := range []struct {
		name       string
		next       string
		reloadable []string
		restart    []string
	}{
		{"same file", base, nil, nil},
		{"a default written out is no change", base + "cache: {enabled: false}\n", nil, nil},
		{"log level", `
server: {addr: "127.0.0.1:8080"}
log: {level: debug}
models:
  - name: m
    backends: [{type: openai, base_url: "http://127.0.0.1:9/v1"}]
ratelimit:
  roles: {guest: {requests_per_minute: 20}}
`, []string{"log.level"}, nil},
		{"models, limits and the listener", `
server: {addr: "127.0.0.1:9090"}
log: {level: info}
models:
  - name: m
    backends: [{type: openai, base_url: "http://127.0.0.1:9/v1", weight: 2}]
ratelimit:
  roles: {guest: {requests_per_minute: 40}}
  redis: {addr: "127.0.0.1:6379"}
plugins:
  - type: max_tokens
    config: {max: 100}
`, []string{"models", "ratelimit", "plugins"}, []string{"server.addr", "ratelimit.redis"}},
		{"store", base + "store: {path: other.db}\n", nil, []string{"store.path"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := Compare(parseT(t, base), parseT(t, tc.next))
			if got := d.Reloadable(); !slices.Equal(got, tc.reloadable) {
				t.Errorf("reloadable = %v, want %v", got, tc.reloadable)
			}
			if !slices.Equal(d.Restart, tc.restart) {
				t.Errorf("restart = %v, want %v", d.Restart, tc.restart)
			}
			if d.Empty() != (tc.reloadable == nil && tc.restart == nil) {
				t.Errorf("Empty() = %v", d.Empty())
			}
		})
	}
}

func TestComparePluginsByContent(t *testing.T) {
	const models = "models:\n  - name: m\n    backends: [{type: openai, base_url: \"http://127.0.0.1:9/v1\"}]\n"
	const plugins = "plugins:\n  - type: max_tokens\n    config: {max: 100}\n"
	a, b := parseT(t, models+plugins), parseT(t, plugins+"\n\n"+models)
	if d := Compare(a, b); !d.Empty() {
		t.Fatalf("the same plugins on other lines: %+v", d)
	}
	c := parseT(t, models+"plugins:\n  - type: max_tokens\n    config: {max: 200}\n")
	if d := Compare(a, c); !d.Plugins || d.Models {
		t.Fatalf("a changed plugin section: %+v", d)
	}
}
