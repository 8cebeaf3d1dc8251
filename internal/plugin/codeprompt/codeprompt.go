// Package codeprompt is the "code_templates" plugin: prompt templates for code generation,
// per language. It acts on requests whose metadata names a language in code.language, as the
// task system's code generation sets it (and as a client may, in the body's metadata): the
// system message and the user's prompt are rendered from the language's templates with
// {{.Language}}, {{.Prompt}} (the user's prompt) and the usual variables.
package codeprompt

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/open-autoglm/autoglm/internal/plugin"
)

// MetaLanguage is the metadata entry that names a code request's language.
const MetaLanguage = "code.language"

func init() {
	plugin.Register(plugin.Info{ID: "code_templates", New: func() plugin.Plugin { return new(Plugin) }})
}

// Config is the plugin's section.
type Config struct {
	// Languages maps a language name (lower case, as the task system normalises it) to its
	// templates.
	Languages map[string]Templates `yaml:"languages"`
	// Default applies to languages not listed. Optional.
	Default *Templates `yaml:"default"`
}

// Templates are one language's texts.
type Templates struct {
	// System replaces the system message. Empty: left as it is.
	System string `yaml:"system"`
	// Prompt replaces the last user message; {{.Prompt}} is its text. Empty: left as it is.
	Prompt string `yaml:"prompt"`

	system, prompt *plugin.Template
}

func (t *Templates) compile() error {
	var err error
	if t.system, err = plugin.ParseTemplate("system", t.System); err != nil {
		return fmt.Errorf("system: %v", err)
	}
	if t.prompt, err = plugin.ParseTemplate("prompt", t.Prompt); err != nil {
		return fmt.Errorf("prompt: %v", err)
	}
	if t.System == "" && t.Prompt == "" {
		return errors.New("set system or prompt")
	}
	return nil
}

// Plugin renders code prompts.
type Plugin struct {
	cfg Config
}

var _ plugin.RequestHook = (*Plugin)(nil)

// Provision decodes and compiles the templates.
func (p *Plugin) Provision(_ context.Context, s plugin.Section, _ plugin.Env) error {
	if err := s.Decode(&p.cfg); err != nil {
		return err
	}
	if len(p.cfg.Languages) == 0 && p.cfg.Default == nil {
		return errors.New("set languages or default")
	}
	langs := make(map[string]Templates, len(p.cfg.Languages))
	for name, t := range p.cfg.Languages {
		if err := t.compile(); err != nil {
			return fmt.Errorf("languages.%s.%v", name, err)
		}
		langs[strings.ToLower(name)] = t
	}
	p.cfg.Languages = langs
	if p.cfg.Default != nil {
		if err := p.cfg.Default.compile(); err != nil {
			return fmt.Errorf("default.%v", err)
		}
	}
	return nil
}

// OnRequest applies the language's templates.
func (p *Plugin) OnRequest(_ context.Context, c *plugin.Call) error {
	r := c.Req
	lang := strings.ToLower(r.Metadata[MetaLanguage])
	if lang == "" || r.HasPrompt() {
		return nil
	}
	t, ok := p.cfg.Languages[lang]
	if !ok {
		if p.cfg.Default == nil {
			return nil
		}
		t = *p.cfg.Default
	}
	v := plugin.VarsOf(r, time.Now())
	v.Language = lang
	u := r.LastUser()
	if u != nil {
		v.Prompt = u.Text()
	}
	if t.System != "" {
		s, err := t.system.Render(v)
		if err != nil {
			return err
		}
		r.SetSystem(s)
	}
	if t.Prompt != "" && u != nil && u.RawContent == nil {
		s, err := t.prompt.Render(v)
		if err != nil {
			return err
		}
		u.Content = s
	}
	return nil
}
