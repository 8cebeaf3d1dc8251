// Package deny is the "deny" plugin, a deny-list content filter: a request whose text holds a
// listed word, phrase or pattern is refused with a configured message, and in answers the
// matches are masked (streams included, with the same hold-back as redaction).
package deny

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/open-autoglm/autoglm/internal/plugin"
)

func init() {
	plugin.Register(plugin.Info{ID: "deny", New: func() plugin.Plugin { return new(Plugin) }})
}

// Config is the plugin's section.
type Config struct {
	// Words are words or phrases matched whole and without regard to case.
	Words []string `yaml:"words"`
	// Patterns are regular expressions (RE2 syntax).
	Patterns []string `yaml:"patterns"`
	// Message is what a refused client is told. Default "the request contains content that
	// is not allowed".
	Message string `yaml:"message"`
	// Mask replaces a match in answers. Default "***". Set response: false to leave answers
	// alone.
	Mask string `yaml:"mask"`
	// Response masks matches in answers. Default true.
	Response *bool `yaml:"response"`
	// Window is the most text held back from a stream while it could be the start of a
	// match. Default 64.
	Window int `yaml:"window"`
}

// Plugin filters.
type Plugin struct {
	re     *regexp.Regexp
	msg    string
	mask   string
	resp   bool
	window int
}

var (
	_ plugin.RequestHook  = (*Plugin)(nil)
	_ plugin.ResponseHook = (*Plugin)(nil)
	_ plugin.ChunkHook    = (*Plugin)(nil)
)

// Provision decodes the section and compiles one expression of every entry.
func (p *Plugin) Provision(_ context.Context, s plugin.Section, _ plugin.Env) error {
	var cfg Config
	if err := s.Decode(&cfg); err != nil {
		return err
	}
	if len(cfg.Words) == 0 && len(cfg.Patterns) == 0 {
		return errors.New("set words or patterns")
	}
	var alts []string
	for i, w := range cfg.Words {
		w = strings.TrimSpace(w)
		if w == "" {
			return fmt.Errorf("words[%d]: empty", i)
		}
		alts = append(alts, `\b`+regexp.QuoteMeta(w)+`\b`)
	}
	for i, pt := range cfg.Patterns {
		re, err := regexp.Compile(pt)
		if err != nil {
			return fmt.Errorf("patterns[%d]: %v", i, err)
		}
		if re.MatchString("") {
			return fmt.Errorf("patterns[%d]: must not match the empty string", i)
		}
		alts = append(alts, "(?:"+pt+")")
	}
	re, err := regexp.Compile("(?i)" + strings.Join(alts, "|"))
	if err != nil {
		return err
	}
	p.re = re
	p.msg = cfg.Message
	if p.msg == "" {
		p.msg = "the request contains content that is not allowed"
	}
	p.mask = cfg.Mask
	if p.mask == "" {
		p.mask = "***"
	}
	p.resp = cfg.Response == nil || *cfg.Response
	p.window = cfg.Window
	if p.window == 0 {
		p.window = 64
	}
	if p.window < 0 {
		return errors.New("window must not be negative")
	}
	return nil
}

// OnRequest refuses a request that holds a listed entry.
func (p *Plugin) OnRequest(_ context.Context, c *plugin.Call) error {
	r := c.Req
	if r.HasPrompt() {
		if p.re.MatchString(r.Prompt) {
			return plugin.Refuse(p.msg)
		}
		return nil
	}
	for i := range r.Messages {
		if p.re.MatchString(r.Messages[i].Text()) {
			return plugin.Refuse(p.msg)
		}
	}
	if in, ok := r.Param("input"); ok && p.re.Match(in) {
		return plugin.Refuse(p.msg)
	}
	return nil
}

// OnResponse masks matches in a whole answer.
func (p *Plugin) OnResponse(_ context.Context, _ *plugin.Call, r *plugin.Response) error {
	if !p.resp {
		return nil
	}
	for i := range r.Choices {
		r.Choices[i].Text = p.re.ReplaceAllLiteralString(r.Choices[i].Text, p.mask)
	}
	return nil
}

// OnChunk masks matches in a stream. Text after the last space (at most the window) is held
// back until the next chunk, so a word split across chunks is still found.
func (p *Plugin) OnChunk(_ context.Context, c *plugin.Call, ch *plugin.Chunk) error {
	if !p.resp {
		return nil
	}
	st := c.State()
	held, _ := (*st).(map[int]string)
	if held == nil {
		held = map[int]string{}
		*st = held
	}
	buf := held[ch.Index] + ch.Text
	if ch.End || ch.Finish != "" {
		held[ch.Index] = ""
		ch.Text = p.re.ReplaceAllLiteralString(buf, p.mask)
		return nil
	}
	cut := strings.LastIndexAny(buf, " \n\t") + 1
	cut = max(cut, len(buf)-p.window)
	// A match across the cut is not complete yet.
	for _, loc := range p.re.FindAllStringIndex(buf, -1) {
		if loc[0] < cut && loc[1] >= cut {
			cut = loc[0]
			break
		}
	}
	held[ch.Index] = buf[cut:]
	ch.Text = p.re.ReplaceAllLiteralString(buf[:cut], p.mask)
	return nil
}
