// Package maxtokens is the "max_tokens" plugin: it caps how many tokens a request may ask
// the model to generate (max_tokens, max_completion_tokens, max_output_tokens), per model or
// for all, and sets a default when the request names none.
package maxtokens

import (
	"context"
	"errors"
	"fmt"

	"github.com/open-autoglm/autoglm/internal/plugin"
)

func init() {
	plugin.Register(plugin.Info{ID: "max_tokens", New: func() plugin.Plugin { return new(Plugin) }})
}

// Config is the plugin's section.
type Config struct {
	// Max caps the limit a request asks for. 0: no cap except per model.
	Max int `yaml:"max"`
	// Default is set as max_tokens when the request sets none. 0: none is set.
	Default int `yaml:"default"`
	// Models overrides Max per model (patterns with '*' allowed), first match wins.
	Models []ModelCap `yaml:"models"`
}

// ModelCap is a cap for the models matching Model.
type ModelCap struct {
	Model string `yaml:"model"`
	Max   int    `yaml:"max"`
}

// fields are the names a request's generation limit goes by, in the order they are read.
var fields = []string{"max_tokens", "max_completion_tokens", "max_output_tokens"}

// Plugin clamps generation limits.
type Plugin struct{ cfg Config }

var _ plugin.RequestHook = (*Plugin)(nil)

// Provision decodes the section.
func (p *Plugin) Provision(_ context.Context, s plugin.Section, _ plugin.Env) error {
	return s.Decode(&p.cfg)
}

// Validate checks the numbers.
func (p *Plugin) Validate() error {
	if p.cfg.Max < 0 || p.cfg.Default < 0 {
		return errors.New("max and default must not be negative")
	}
	if p.cfg.Max == 0 && p.cfg.Default == 0 && len(p.cfg.Models) == 0 {
		return errors.New("set max, default or models")
	}
	for i, m := range p.cfg.Models {
		if m.Model == "" || m.Max <= 0 {
			return fmt.Errorf("models[%d]: model and a positive max are required", i)
		}
	}
	return nil
}

func (p *Plugin) capFor(model string) int {
	for _, m := range p.cfg.Models {
		if plugin.Glob(m.Model, model) {
			return m.Max
		}
	}
	return p.cfg.Max
}

// OnRequest clamps the limit.
func (p *Plugin) OnRequest(_ context.Context, c *plugin.Call) error {
	r := c.Req
	if r.Op == "embedding" {
		return nil
	}
	limit := p.capFor(r.Model)
	found := false
	for _, f := range fields {
		v, ok := r.Number(f)
		if !ok {
			continue
		}
		found = true
		if limit > 0 && v > float64(limit) {
			if err := r.SetParam(f, limit); err != nil {
				return err
			}
		}
	}
	if found {
		return nil
	}
	field := "max_tokens"
	if r.Op == "responses" {
		field = "max_output_tokens"
	}
	if p.cfg.Default > 0 {
		d := p.cfg.Default
		if limit > 0 {
			d = min(d, limit)
		}
		return r.SetParam(field, d)
	}
	if limit > 0 {
		return r.SetParam(field, limit)
	}
	return nil
}
