// Package redact is the "redact" plugin: it replaces personal data (e-mail addresses, phone
// numbers, card numbers that pass the Luhn check, US social security numbers, PRC resident
// identity numbers, and configured patterns) in requests before they reach a model and in
// answers before they reach the client, streamed answers included: text that could be the
// start of a match is held back until the next chunk shows whether it is one.
package redact

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"

	"github.com/open-autoglm/autoglm/internal/plugin"
)

func init() {
	plugin.Register(plugin.Info{ID: "redact", New: func() plugin.Plugin { return new(Plugin) }})
}

// Config is the plugin's section.
type Config struct {
	// Request redacts what is sent to the model. Default true.
	Request *bool `yaml:"request"`
	// Response redacts what is sent to the client. Default true.
	Response *bool `yaml:"response"`
	// Detectors names the built-in detectors to use: email, phone, card, ssn, cn_id.
	// Default: all.
	Detectors []string `yaml:"detectors"`
	// Patterns are more things to redact.
	Patterns []Pattern `yaml:"patterns"`
	// Window is the most text, in bytes, held back from a stream while it could be the start
	// of a match. Default 64.
	Window int `yaml:"window"`
}

// Pattern is a configured detector.
type Pattern struct {
	Name        string `yaml:"name"`
	Regex       string `yaml:"regex"`
	Replacement string `yaml:"replacement"` // default "[REDACTED]"
}

// Plugin redacts.
type Plugin struct {
	sc            Scanner
	request, resp bool
}

var (
	_ plugin.RequestHook  = (*Plugin)(nil)
	_ plugin.ResponseHook = (*Plugin)(nil)
	_ plugin.ChunkHook    = (*Plugin)(nil)
)

// Provision decodes the section and compiles the patterns.
func (p *Plugin) Provision(_ context.Context, s plugin.Section, _ plugin.Env) error {
	var cfg Config
	if err := s.Decode(&cfg); err != nil {
		return err
	}
	return p.configure(cfg)
}

func (p *Plugin) configure(cfg Config) error {
	p.request, p.resp = cfg.Request == nil || *cfg.Request, cfg.Response == nil || *cfg.Response
	if !p.request && !p.resp {
		return errors.New("request and response are both off: the plugin would do nothing")
	}
	p.sc.window = cfg.Window
	if p.sc.window == 0 {
		p.sc.window = 64
	}
	if p.sc.window < 0 {
		return errors.New("window must not be negative")
	}
	names := cfg.Detectors
	if names == nil {
		for _, d := range builtin {
			names = append(names, d.name)
		}
	}
	for _, d := range builtin {
		if slices.Contains(names, d.name) {
			p.sc.dets = append(p.sc.dets, d)
		}
	}
	for _, n := range names {
		if !slices.ContainsFunc(builtin, func(d detector) bool { return d.name == n }) {
			return fmt.Errorf("detectors: unknown detector %q (have email, phone, card, ssn, cn_id)", n)
		}
	}
	for i, pt := range cfg.Patterns {
		re, err := regexp.Compile(pt.Regex)
		if err != nil {
			return fmt.Errorf("patterns[%d].regex: %v", i, err)
		}
		if pt.Regex == "" || re.MatchString("") {
			return fmt.Errorf("patterns[%d].regex: must not match the empty string", i)
		}
		repl := pt.Replacement
		if repl == "" {
			repl = "[REDACTED]"
		}
		// Configured patterns come first: they are the operator's explicit intent.
		p.sc.dets = slices.Insert(p.sc.dets, i, detector{name: pt.Name, re: re, repl: repl})
	}
	if len(p.sc.dets) == 0 {
		return errors.New("no detector is on")
	}
	return nil
}

// OnRequest redacts the messages or prompt.
func (p *Plugin) OnRequest(_ context.Context, c *plugin.Call) error {
	if !p.request {
		return nil
	}
	r := c.Req
	if r.HasPrompt() {
		r.Prompt = p.sc.Redact(r.Prompt)
	}
	for i := range r.Messages {
		if r.Messages[i].RawContent == nil {
			r.Messages[i].Content = p.sc.Redact(r.Messages[i].Content)
		}
	}
	return nil
}

// OnResponse redacts a whole answer.
func (p *Plugin) OnResponse(_ context.Context, _ *plugin.Call, r *plugin.Response) error {
	if !p.resp {
		return nil
	}
	for i := range r.Choices {
		r.Choices[i].Text = p.sc.Redact(r.Choices[i].Text)
	}
	return nil
}

// OnChunk redacts a stream, holding back per choice what could be the start of a match.
func (p *Plugin) OnChunk(_ context.Context, c *plugin.Call, ch *plugin.Chunk) error {
	if !p.resp {
		return nil
	}
	st := c.State()
	held, _ := (*st).(map[int]Tail)
	if held == nil {
		held = map[int]Tail{}
		*st = held
	}
	final := ch.End || ch.Finish != ""
	ch.Text, held[ch.Index] = p.sc.Stream(held[ch.Index], ch.Text, final)
	return nil
}
