// Package hello is an example autoglm plugin in Go, kept outside the server's internal
// packages as a team's own plugin would be. It answers a bare greeting itself, without a
// model, and tags every answer it lets through with a configured signature.
//
// A team builds its own autoglm with it by adding one blank import to the command, in a file
// of its own beside cmd/autoglm/main.go:
//
//	package main
//
//	import _ "github.com/open-autoglm/autoglm/examples/plugin-hello"
//
// and turns it on in the configuration:
//
//	plugins:
//	  - type: hello
//	    config: {greeting: "Hello, {{.User}}!", signature: " (checked)"}
//
// `autoglm plugins` lists the types a build has.
package hello

import (
	"context"
	"strings"
	"time"

	"github.com/open-autoglm/autoglm/internal/plugin"
)

func init() {
	plugin.Register(plugin.Info{ID: "hello", New: func() plugin.Plugin { return new(Hello) }})
}

// Hello is the plugin.
type Hello struct {
	cfg struct {
		// Greeting answers a request whose last user message is "hello" (any case).
		Greeting string `yaml:"greeting"`
		// Signature is appended to every whole answer.
		Signature string `yaml:"signature"`
	}
	greeting *plugin.Template
}

var (
	_ plugin.RequestHook  = (*Hello)(nil)
	_ plugin.ResponseHook = (*Hello)(nil)
)

// Provision decodes the plugin's section strictly and parses the greeting.
func (h *Hello) Provision(_ context.Context, s plugin.Section, _ plugin.Env) error {
	h.cfg.Greeting = "Hello!"
	if err := s.Decode(&h.cfg); err != nil {
		return err
	}
	var err error
	h.greeting, err = plugin.ParseTemplate("greeting", h.cfg.Greeting)
	return err
}

// OnRequest answers a greeting.
func (h *Hello) OnRequest(_ context.Context, c *plugin.Call) error {
	if u := c.Req.LastUser(); u != nil && strings.EqualFold(strings.TrimSpace(u.Text()), "hello") {
		text, err := h.greeting.Render(plugin.VarsOf(c.Req, time.Now()))
		if err != nil {
			return err
		}
		c.Reply(text)
	}
	return nil
}

// OnResponse signs the answer.
func (h *Hello) OnResponse(_ context.Context, _ *plugin.Call, r *plugin.Response) error {
	for i := range r.Choices {
		r.Choices[i].Text += h.cfg.Signature
	}
	return nil
}
