package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/open-autoglm/autoglm/internal/config"
	"github.com/open-autoglm/autoglm/internal/modelstore"
	"github.com/open-autoglm/autoglm/internal/ratelimit"
	"github.com/open-autoglm/autoglm/internal/router"
)

// configWatchInterval is how often serve checks its configuration file for a change.
const configWatchInterval = 2 * time.Second

// serveFlags are the command-line settings serve applies over the configuration file: a
// reloaded file gets them too, so that they do not read as changes.
type serveFlags struct {
	// Addr is --addr: it replaces server.addr. Empty: not given.
	Addr string
	// Level, when set, is the logger's level: a reload changes it to log.level.
	Level *slog.LevelVar
}

// apply puts the flags over cfg and validates it again.
func (f serveFlags) apply(cfg *config.Config) error {
	if f.Addr == "" {
		return nil
	}
	cfg.Server.Addr = f.Addr
	return cfg.Validate()
}

// reloader is serve's one reload path: on SIGHUP, or when the configuration file's content
// changes, it reads and validates the whole file with the code serve starts with, works out
// what changed (config.Compare), prepares every reloadable part that can fail (the model
// table with its new backends, the plugin chain) and only then puts them all in force; the
// rest cannot fail (rate limits, log level). A file that fails any step is refused and the
// configuration in force stays whole. Settings that need a restart are reported, not applied.
// Each attempt logs one line.
type reloader struct {
	file       string
	flags      serveFlags
	log        *slog.Logger
	reg        *router.Registry
	plugins    *plugins
	limiter    *ratelimit.Limiter // nil: no limiter to update
	modelStore *modelstore.Store

	mu  sync.Mutex
	cur *config.Config // what is in force: reloaded sections as loaded, the rest as started
	sum [32]byte       // of the file content last read
	// unreadable is set while the file cannot be read.
	unreadable bool

	reloads *prometheus.CounterVec
	last    prometheus.Gauge
	info    *prometheus.GaugeVec
}

func newReloader(file string, cfg *config.Config, flags serveFlags, log *slog.Logger, reg *router.Registry, plug *plugins,
	limiter *ratelimit.Limiter, ms *modelstore.Store) *reloader {
	r := &reloader{file: file, flags: flags, log: log, reg: reg, plugins: plug, limiter: limiter, modelStore: ms, cur: cfg,
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "autoglm_config_reloads_total",
			Help: "Configuration reloads, by result: ok (the new file is in force) or refused (the file was invalid or could not be applied; the configuration in force stayed).",
		}, []string{"result"}),
		last: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "autoglm_config_last_reload_success_timestamp_seconds",
			Help: "When the configuration was last loaded successfully (at start or by a reload), as a Unix time.",
		}),
		info: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "autoglm_config_info",
			Help: "1 for the configuration file content in force, by its SHA-256 (first 12 hex digits).",
		}, []string{"sha256"}),
	}
	r.reloads.WithLabelValues("ok")
	r.reloads.WithLabelValues("refused")
	r.last.SetToCurrentTime()
	if file != "" {
		if b, err := os.ReadFile(file); err == nil {
			r.sum = sha256.Sum256(b)
			r.info.WithLabelValues(shortSum(r.sum)).Set(1)
		}
	}
	return r
}

func shortSum(s [32]byte) string { return hex.EncodeToString(s[:6]) }

// Describe implements prometheus.Collector.
func (r *reloader) Describe(ch chan<- *prometheus.Desc) {
	r.reloads.Describe(ch)
	r.last.Describe(ch)
	r.info.Describe(ch)
}

// Collect implements prometheus.Collector.
func (r *reloader) Collect(ch chan<- prometheus.Metric) {
	r.reloads.Collect(ch)
	r.last.Collect(ch)
	r.info.Collect(ch)
}

// Run reloads on SIGHUP and when the file changes (checked every interval) until ctx is done.
// With no file (the embedded configuration) there is nothing to reload: SIGHUP is logged.
func (r *reloader) Run(ctx context.Context, interval time.Duration) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	var tick <-chan time.Time
	if r.file != "" && interval > 0 {
		t := time.NewTicker(interval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			if r.file == "" {
				r.log.Warn("SIGHUP: nothing to reload: serve runs the embedded configuration (start it with --config FILE)")
				continue
			}
			r.Reload(ctx, "signal", true)
		case <-tick:
			r.Reload(ctx, "watch", false)
		}
	}
}

// Reload loads the file when force is set or its content changed since it was last read,
// and reports whether the new configuration is in force (false also when nothing was read).
// trigger says what asked for it, for the log.
func (r *reloader) Reload(ctx context.Context, trigger string, force bool) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	data, err := os.ReadFile(r.file)
	if err != nil {
		// A file that stays unreadable (removed, say) is reported once, not at every check.
		if force || !r.unreadable {
			r.refuse(trigger, err)
		}
		r.unreadable = true
		return false
	}
	r.unreadable = false
	sum := sha256.Sum256(data)
	if !force && bytes.Equal(sum[:], r.sum[:]) {
		return false
	}
	prevSum := r.sum
	r.sum = sum // a refused file is not tried again until it changes or SIGHUP asks
	next, err := config.Parse(data, os.LookupEnv)
	if err == nil {
		err = r.flags.apply(next)
	}
	if err == nil {
		err = resolvePulledModels(next, r.modelStore)
	}
	if err != nil {
		r.refuse(trigger, err)
		return false
	}
	d := config.Compare(r.cur, next)
	var (
		pending *router.Pending
		res     router.ReloadResult
	)
	if d.Models {
		if pending, err = r.reg.Prepare(next.Models); err != nil {
			r.refuse(trigger, fmt.Errorf("models: %w", err))
			return false
		}
	}
	// The plugin chain is built again on SIGHUP even when its section is the same, so that a
	// changed Wasm module is picked up.
	if d.Plugins || force {
		if err := r.plugins.manager.Load(ctx, next.Plugins); err != nil {
			if pending != nil {
				pending.Discard()
			}
			r.refuse(trigger, fmt.Errorf("plugins: %w", err))
			return false
		}
	}
	if pending != nil {
		if res, err = pending.Commit(); err != nil {
			// Only a registry closed by shutdown gets here; the plugins may be new.
			r.refuse(trigger, fmt.Errorf("models: %w", err))
			return false
		}
	}
	if d.RateLimits && r.limiter != nil {
		r.limiter.SetLimits(next.RateLimit)
	}
	if d.LogLevel && r.flags.Level != nil {
		var l slog.Level
		if l.UnmarshalText([]byte(next.Log.Level)) == nil {
			r.flags.Level.Set(l)
		}
	}
	// What is in force now: the reloadable sections of next, the rest as before.
	cur := *r.cur
	cur.Models, cur.Plugins, cur.Log.Level = next.Models, next.Plugins, next.Log.Level
	cur.RateLimit.Roles, cur.RateLimit.Keys, cur.RateLimit.Users = next.RateLimit.Roles, next.RateLimit.Keys, next.RateLimit.Users
	cur.RateLimit.DefaultMaxTokens = next.RateLimit.DefaultMaxTokens
	r.cur = &cur

	r.reloads.WithLabelValues("ok").Inc()
	r.last.SetToCurrentTime()
	r.info.DeleteLabelValues(shortSum(prevSum))
	r.info.WithLabelValues(shortSum(sum)).Set(1)
	attrs := []any{"file", r.file, "trigger", trigger, "sha256", shortSum(sum),
		"changed", nonNil(d.Reloadable()), "needs_restart", nonNil(d.Restart)}
	if d.Models {
		attrs = append(attrs, "models_added", nonNil(res.Added), "models_removed", nonNil(res.Removed), "models_changed", nonNil(res.Changed))
	}
	if d.Plugins || force {
		attrs = append(attrs, "plugins", nonNil(r.plugins.manager.Names()))
	}
	if len(d.Restart) > 0 {
		r.log.Warn("configuration reloaded; some changed settings take effect only after a restart", attrs...)
	} else {
		r.log.Info("configuration reloaded", attrs...)
	}
	return true
}

func (r *reloader) refuse(trigger string, err error) {
	r.reloads.WithLabelValues("refused").Inc()
	r.log.Error("configuration refused; the configuration in force stays", "file", r.file, "trigger", trigger,
		"err", err.Error())
}

// nonNil makes an empty list log as [] rather than null.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
