package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/open-autoglm/autoglm/internal/apierr"
	"github.com/open-autoglm/autoglm/internal/config"
	"github.com/open-autoglm/autoglm/internal/plugin"
	"github.com/open-autoglm/autoglm/internal/router"
	"github.com/open-autoglm/autoglm/internal/telemetry"

	// The built-in plugin types, registered at init. A build of autoglm with a team's own
	// plugin adds one blank import of its package here (see examples/plugin-hello).
	_ "github.com/open-autoglm/autoglm/internal/plugin/standard"
)

// plugins is the plugin chain of a running server. The configuration reload (serve_reload.go)
// puts a new chain in force through manager.
type plugins struct {
	manager *plugin.Manager
	metrics *plugin.Metrics
}

// startPlugins builds the configured plugin chain and installs it around every model request.
// Close retires the chain. source names the configuration file, whose folder resolves relative
// paths in plugin sections, unless the embedded configuration is in use.
func startPlugins(ctx context.Context, cfg *config.Config, source string, reg *router.Registry, log *slog.Logger) (*plugins, error) {
	p := &plugins{metrics: plugin.NewMetrics()}
	opt := plugin.Options{Registry: reg, Logger: log, Metrics: p.metrics, Span: pluginSpan}
	if st, err := os.Stat(source); err == nil && st.Mode().IsRegular() {
		opt.Dir = filepath.Dir(source)
	}
	p.manager = plugin.NewManager(opt)
	if err := p.manager.Load(ctx, cfg.Plugins); err != nil {
		return nil, err
	}
	reg.SetHook(p.manager)
	if len(cfg.Plugins) > 0 {
		log.Info("plugins loaded", "plugins", p.manager.Names())
	}
	return p, nil
}

// Close retires the chain; requests still running keep theirs.
func (p *plugins) Close() { p.manager.Close() }

// pluginSpan traces one plugin hook call as an autoglm.plugin span (a no-op with tracing off).
// name is the chain's "plugin.<id>.<hook>".
func pluginSpan(ctx context.Context, name string) (context.Context, func(error)) {
	id, hook := strings.TrimPrefix(name, "plugin."), ""
	if i := strings.LastIndexByte(id, '.'); i >= 0 {
		id, hook = id[:i], id[i+1:]
	}
	ctx, span := telemetry.StartHook(ctx, id, hook)
	return ctx, func(err error) {
		if err != nil {
			telemetry.Fail(span, string(apierr.CodePluginFailed), "the plugin hook failed")
		}
		span.End()
	}
}
