// Package rules is the "rules" plugin: context-aware rules that match a request (key, user,
// role, model, route, header, metadata, prompt length, time of day) and act on it: set or
// clamp parameters, route it to another model, inject text, or refuse it with a message.
// Rules are tried in order; every matching rule acts unless one says stop.
package rules

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/open-autoglm/autoglm/internal/plugin"
)

func init() {
	plugin.Register(plugin.Info{ID: "rules", New: func() plugin.Plugin { return new(Plugin) }})
}

// Config is the plugin's section.
type Config struct {
	Rules []Rule `yaml:"rules"`
}

// Rule is a match and its actions, applied in this order: refuse, route, set, clamp,
// inject.
type Rule struct {
	// Name labels the rule in logs.
	Name  string       `yaml:"name"`
	Match plugin.Match `yaml:"match"`
	// Refuse refuses the request with this message.
	Refuse string `yaml:"refuse"`
	// Route sends the request to this model instead.
	Route string `yaml:"route"`
	// Set sets body parameters (temperature: 0.2).
	Set map[string]any `yaml:"set"`
	// Clamp bounds numeric parameters that the request sets.
	Clamp map[string]Bounds `yaml:"clamp"`
	// Inject adds a system prompt, prefix or suffix.
	Inject *plugin.Injection `yaml:"inject"`
	// Stop ends rule evaluation when this rule matched.
	Stop bool `yaml:"stop"`
}

// Bounds are the limits of a clamped parameter; nil is no limit.
type Bounds struct {
	Min *float64 `yaml:"min"`
	Max *float64 `yaml:"max"`
}

// Plugin applies rules.
type Plugin struct {
	cfg Config
	now func() time.Time
}

var _ plugin.RequestHook = (*Plugin)(nil)

// Provision decodes and checks the rules.
func (p *Plugin) Provision(_ context.Context, s plugin.Section, _ plugin.Env) error {
	if err := s.Decode(&p.cfg); err != nil {
		return err
	}
	p.now = time.Now
	if len(p.cfg.Rules) == 0 {
		return errors.New("rules: at least one rule is required")
	}
	for i := range p.cfg.Rules {
		r := &p.cfg.Rules[i]
		if err := r.Match.Compile(); err != nil {
			return fmt.Errorf("rules[%d].%v", i, err)
		}
		if r.Inject != nil {
			if err := r.Inject.Compile(); err != nil {
				return fmt.Errorf("rules[%d].inject.%v", i, err)
			}
		}
		for k, b := range r.Clamp {
			if b.Min != nil && b.Max != nil && *b.Min > *b.Max {
				return fmt.Errorf("rules[%d].clamp.%s: min is above max", i, k)
			}
		}
		for k := range r.Set {
			switch k {
			case "model", "messages", "prompt", "stream":
				return fmt.Errorf("rules[%d].set.%s: not a parameter (use route for the model)", i, k)
			}
		}
		if r.Refuse == "" && r.Route == "" && len(r.Set) == 0 && len(r.Clamp) == 0 && r.Inject == nil && !r.Stop {
			return fmt.Errorf("rules[%d]: no action (refuse, route, set, clamp, inject or stop)", i)
		}
	}
	return nil
}

// OnRequest applies the matching rules.
func (p *Plugin) OnRequest(_ context.Context, c *plugin.Call) error {
	now := p.now()
	r := c.Req
	for i := range p.cfg.Rules {
		rule := &p.cfg.Rules[i]
		if !rule.Match.Matches(r, now) {
			continue
		}
		if rule.Refuse != "" {
			return plugin.Refuse(rule.Refuse)
		}
		if rule.Route != "" {
			r.Model = rule.Route
		}
		for k, v := range rule.Set {
			if err := r.SetParam(k, v); err != nil {
				return err
			}
		}
		for k, b := range rule.Clamp {
			v, ok := r.Number(k)
			if !ok {
				continue
			}
			nv := v
			if b.Min != nil && nv < *b.Min {
				nv = *b.Min
			}
			if b.Max != nil && nv > *b.Max {
				nv = *b.Max
			}
			if nv != v {
				if err := r.SetParam(k, nv); err != nil {
					return err
				}
			}
		}
		if rule.Inject != nil {
			if err := rule.Inject.Apply(r, now); err != nil {
				return err
			}
		}
		if rule.Stop {
			return nil
		}
	}
	return nil
}
