package config

import (
	"fmt"
	"strconv"
	"time"

	"go.yaml.in/yaml/v3"
)

// Plugin on-error policies.
const (
	// PluginFail fails the request when the plugin errs, panics or runs past its timeout.
	PluginFail = "fail"
	// PluginSkip logs the failure and goes on as if the plugin were not there.
	PluginSkip = "skip"
)

// DefaultPluginTimeout bounds each hook call of a plugin that sets no timeout.
const DefaultPluginTimeout = time.Second

// Plugin is one entry of the plugin chain.
type Plugin struct {
	// Type is the registered plugin type ("redact", "instructions", "wasm", ...). Required.
	Type string `yaml:"type"`
	// Name tells two plugins of one type apart in logs and metrics. Default: the type.
	Name string `yaml:"name"`
	// OnError is what a failure of this plugin does to the request: "fail" (the request
	// fails with a clear error) or "skip" (the plugin is left out of that request).
	// Default "fail".
	OnError string `yaml:"on_error"`
	// Timeout bounds each hook call. Default 1s.
	Timeout Duration `yaml:"timeout"`
	// Config is the plugin's own section, decoded strictly by the plugin itself: its
	// unknown keys are errors. Default: empty.
	Config yaml.Node `yaml:"config"`
}

func pluginsWithDefaults(ps []Plugin) []Plugin {
	if ps == nil {
		return nil
	}
	out := make([]Plugin, len(ps))
	for i, p := range ps {
		if p.Name == "" {
			p.Name = p.Type
		}
		if p.OnError == "" {
			p.OnError = PluginFail
		}
		setDur(&p.Timeout, DefaultPluginTimeout)
		out[i] = p
	}
	return out
}

func validatePlugins(ps []Plugin, bad func(path, format string, args ...any)) {
	seen := make(map[string]int, len(ps))
	for i, p := range ps {
		path := "plugins[" + strconv.Itoa(i) + "]"
		if p.Type == "" {
			bad(path+".type", "is required")
		}
		if j, dup := seen[p.Name]; dup {
			bad(path+".name", "%q is also the name of plugins[%d] (set name to tell them apart)", p.Name, j)
		}
		seen[p.Name] = i
		if p.OnError != PluginFail && p.OnError != PluginSkip {
			bad(path+".on_error", "must be %q or %q, got %q", PluginFail, PluginSkip, p.OnError)
		}
		if p.Timeout < 0 {
			bad(path+".timeout", "must not be negative")
		}
		if k := p.Config.Kind; k != 0 && k != yaml.MappingNode && !(k == yaml.ScalarNode && p.Config.ShortTag() == "!!null") {
			bad(path+".config", "must be a mapping")
		}
	}
}

// String names the plugin for logs: name(type).
func (p Plugin) String() string { return fmt.Sprintf("%s(%s)", p.Name, p.Type) }
