// Package instructions is the "instructions" plugin: it adds a system prompt, or a prefix and
// suffix around the user's message, to the requests its rules match (by model, key, user,
// role, route, header, metadata). Texts may use variables: {{.User}}, {{.Key}}, {{.Date}},
// {{.Model}}, {{.Metadata.name}} (see plugin.Vars). Every matching rule applies, in order.
package instructions

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/open-autoglm/autoglm/internal/plugin"
)

func init() {
	plugin.Register(plugin.Info{ID: "instructions", New: func() plugin.Plugin { return new(Plugin) }})
}

// Config is the plugin's section.
type Config struct {
	Rules []Rule `yaml:"rules"`
}

// Rule is a match and what to add.
type Rule struct {
	Match            plugin.Match `yaml:"match"`
	plugin.Injection `yaml:",inline"`
}

// Plugin adds instructions.
type Plugin struct {
	cfg Config
	now func() time.Time
}

var (
	_ plugin.RequestHook = (*Plugin)(nil)
	_ plugin.Validator   = (*Plugin)(nil)
)

// Provision decodes the section and compiles the templates.
func (p *Plugin) Provision(_ context.Context, s plugin.Section, _ plugin.Env) error {
	if err := s.Decode(&p.cfg); err != nil {
		return err
	}
	p.now = time.Now
	for i := range p.cfg.Rules {
		r := &p.cfg.Rules[i]
		if err := r.Match.Compile(); err != nil {
			return fmt.Errorf("rules[%d].%v", i, err)
		}
		if err := r.Injection.Compile(); err != nil {
			return fmt.Errorf("rules[%d].%v", i, err)
		}
	}
	return nil
}

// Validate checks that every rule adds something.
func (p *Plugin) Validate() error {
	if len(p.cfg.Rules) == 0 {
		return errors.New("rules: at least one rule is required")
	}
	for i, r := range p.cfg.Rules {
		if r.Injection.Empty() {
			return fmt.Errorf("rules[%d]: set system, prefix or suffix", i)
		}
	}
	return nil
}

// OnRequest applies every matching rule.
func (p *Plugin) OnRequest(_ context.Context, c *plugin.Call) error {
	now := p.now()
	for i := range p.cfg.Rules {
		r := &p.cfg.Rules[i]
		if r.Match.Matches(c.Req, now) {
			if err := r.Injection.Apply(c.Req, now); err != nil {
				return err
			}
		}
	}
	return nil
}
