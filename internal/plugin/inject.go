package plugin

import (
	"fmt"
	"time"
)

// Injection adds text to a request: a system prompt, and a prefix and suffix around the
// last user message (or the prompt of a completion). Each text is a Template.
type Injection struct {
	// System is the system prompt.
	System string `yaml:"system" json:"system"`
	// Mode says what System does to a system message already there: "prepend" (default),
	// "append" or "replace".
	Mode string `yaml:"mode" json:"mode"`
	// Prefix and Suffix go before and after the last user message's text.
	Prefix string `yaml:"prefix" json:"prefix"`
	Suffix string `yaml:"suffix" json:"suffix"`

	system, prefix, suffix *Template
}

// Compile parses the templates.
func (in *Injection) Compile() error {
	switch in.Mode {
	case "", "prepend", "append", "replace":
	default:
		return fmt.Errorf("mode must be prepend, append or replace, got %q", in.Mode)
	}
	var err error
	if in.system, err = ParseTemplate("system", in.System); err != nil {
		return fmt.Errorf("system: %v", err)
	}
	if in.prefix, err = ParseTemplate("prefix", in.Prefix); err != nil {
		return fmt.Errorf("prefix: %v", err)
	}
	if in.suffix, err = ParseTemplate("suffix", in.Suffix); err != nil {
		return fmt.Errorf("suffix: %v", err)
	}
	return nil
}

// Empty reports whether the injection adds nothing.
func (in *Injection) Empty() bool { return in.System == "" && in.Prefix == "" && in.Suffix == "" }

// Apply adds the texts to r.
func (in *Injection) Apply(r *Request, now time.Time) error {
	if in.Empty() {
		return nil
	}
	v := VarsOf(r, now)
	if in.System != "" && !r.HasPrompt() {
		s, err := in.system.Render(v)
		if err != nil {
			return err
		}
		old, has := r.System()
		switch {
		case !has || in.Mode == "replace":
		case in.Mode == "append":
			s = old + "\n\n" + s
		default:
			s = s + "\n\n" + old
		}
		r.SetSystem(s)
	}
	if in.Prefix == "" && in.Suffix == "" {
		return nil
	}
	pre, err := in.prefix.Render(v)
	if err != nil {
		return err
	}
	suf, err := in.suffix.Render(v)
	if err != nil {
		return err
	}
	if r.HasPrompt() {
		r.Prompt = pre + r.Prompt + suf
		return nil
	}
	if m := r.LastUser(); m != nil && m.RawContent == nil {
		m.Content = pre + m.Content + suf
	}
	return nil
}
