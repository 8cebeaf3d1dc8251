package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/open-autoglm/autoglm/internal/apierr"
	"github.com/open-autoglm/autoglm/internal/config"
	"github.com/open-autoglm/autoglm/internal/plugin"
	"github.com/open-autoglm/autoglm/internal/router"
	"github.com/open-autoglm/autoglm/internal/telemetry"

	// The built-in plugin types, registered at init. A build of autoglm with a team's own
	// plugin adds one blank import of its package here (see examples/plugin-hello).
	_ "github.com/open-autoglm/autoglm/internal/plugin/standard"
)

// configWatchInterval is how often serve checks its configuration file for a change.
const configWatchInterval = 2 * time.Second

// plugins is the plugin chain of a running server and the watch that reloads it.
type plugins struct {
	manager *plugin.Manager
	metrics *plugin.Metrics
	stop    context.CancelFunc
	wg      sync.WaitGroup
}

// startPlugins builds the configured plugin chain, installs it around every model request,
// and, when the configuration came from a file, reloads the chain when the file changes or
// the process gets SIGHUP. Close stops the watch and retires the chain.
func startPlugins(ctx context.Context, cfg *config.Config, source string, reg *router.Registry, log *slog.Logger) (*plugins, error) {
	p := &plugins{metrics: plugin.NewMetrics()}
	// source names the configuration file, unless the embedded configuration is in use.
	file := ""
	if st, err := os.Stat(source); err == nil && st.Mode().IsRegular() {
		file = source
	}
	opt := plugin.Options{Registry: reg, Logger: log, Metrics: p.metrics, Span: pluginSpan}
	if file != "" {
		opt.Dir = filepath.Dir(file)
	}
	p.manager = plugin.NewManager(opt)
	if err := p.manager.Load(ctx, cfg.Plugins); err != nil {
		return nil, err
	}
	reg.SetHook(p.manager)
	if len(cfg.Plugins) > 0 {
		log.Info("plugins loaded", "plugins", p.manager.Names())
	}
	wctx, stop := context.WithCancel(ctx)
	p.stop = stop
	if file == "" {
		return p, nil
	}
	rl := plugin.NewReloader(file, p.manager, configWatchInterval)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	p.wg.Go(func() { rl.Run(wctx) })
	p.wg.Go(func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-wctx.Done():
				return
			case <-hup:
				log.Info("SIGHUP: reloading the configuration", "file", file)
				rl.Trigger()
			}
		}
	})
	return p, nil
}

// Close stops the reload watch and retires the chain; requests still running keep theirs.
func (p *plugins) Close() {
	p.stop()
	p.wg.Wait()
	p.manager.Close()
}

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
