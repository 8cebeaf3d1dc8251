package plugin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"os"
	"time"

	"github.com/open-autoglm/autoglm/internal/config"
)

// Reloader puts a configuration file's plugin chain in force again whenever the file
// changes (its content is checked every interval) or Trigger is called (SIGHUP). The new file
// is parsed and validated in full, and its chain built, before anything changes: a bad file
// leaves the chain in force and the reason in the log.
type Reloader struct {
	path     string
	manager  *Manager
	interval time.Duration
	env      config.LookupEnv
	onReload func(err error)

	sum     [32]byte
	trigger chan struct{}
}

// NewReloader watches path for m, checking it every interval (0: only on Trigger). The
// file's present content is taken as the one in force.
func NewReloader(path string, m *Manager, interval time.Duration) *Reloader {
	r := &Reloader{path: path, manager: m, interval: interval, env: os.LookupEnv, trigger: make(chan struct{}, 1)}
	if b, err := os.ReadFile(path); err == nil {
		r.sum = sha256.Sum256(b)
	}
	return r
}

// OnReload sets a function told the outcome of every reload (nil: the new chain is in
// force). Call it before Run.
func (r *Reloader) OnReload(f func(err error)) { r.onReload = f }

// Trigger asks for a reload now, whether or not the file changed; it never blocks.
func (r *Reloader) Trigger() {
	select {
	case r.trigger <- struct{}{}:
	default:
	}
}

// Run watches until ctx is done.
func (r *Reloader) Run(ctx context.Context) {
	var tick <-chan time.Time
	if r.interval > 0 {
		t := time.NewTicker(r.interval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.trigger:
			r.reload(ctx, true)
		case <-tick:
			r.reload(ctx, false)
		}
	}
}

// reload loads the file when forced or when its content changed since the last attempt.
func (r *Reloader) reload(ctx context.Context, force bool) {
	data, err := os.ReadFile(r.path)
	if err != nil {
		r.done(err)
		return
	}
	sum := sha256.Sum256(data)
	if !force && bytes.Equal(sum[:], r.sum[:]) {
		return
	}
	r.sum = sum
	cfg, err := config.Parse(data, r.env)
	if err == nil {
		err = r.manager.Load(ctx, cfg.Plugins)
	}
	r.done(err)
}

func (r *Reloader) done(err error) {
	m := r.manager
	m.opt.Metrics.reload(err == nil)
	if err != nil {
		m.log.Error("configuration reload failed; the previous configuration stays in force", "file", r.path, "err", err)
	} else {
		m.log.Info("configuration reloaded: plugins in force (other sections take effect on restart)", "file", r.path, "plugins", m.Names())
	}
	if r.onReload != nil {
		r.onReload(err)
	}
}
