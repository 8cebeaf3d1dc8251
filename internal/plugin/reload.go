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
// changes (polled) or Trigger is called (SIGHUP). The new file is parsed and validated in
// full, and its chain built, before anything changes: a bad file leaves the chain in force
// and the reason in the log.
type Reloader struct {
	// Path is the configuration file.
	Path string
	// Manager receives the new chain.
	Manager *Manager
	// Interval is how often the file is checked for a change; 0 turns polling off.
	Interval time.Duration
	// Env expands ${NAME} references; nil uses the process environment.
	Env config.LookupEnv
	// OnReload, when set, is told the outcome of every reload (nil error: in force).
	OnReload func(err error)

	sum     [32]byte
	trigger chan struct{}
}

// Trigger asks for a reload now; it never blocks.
func (r *Reloader) Trigger() {
	select {
	case r.trig() <- struct{}{}:
	default:
	}
}

func (r *Reloader) trig() chan struct{} {
	if r.trigger == nil {
		r.trigger = make(chan struct{}, 1)
	}
	return r.trigger
}

// Prime records the file's present content as the one in force, so Run reloads only when it
// changes. Call it before Run, after loading the chain the server started with.
func (r *Reloader) Prime() {
	if b, err := os.ReadFile(r.Path); err == nil {
		r.sum = sha256.Sum256(b)
	}
	r.trig()
}

// Run watches until ctx is done.
func (r *Reloader) Run(ctx context.Context) {
	trig := r.trig()
	var tick <-chan time.Time
	if r.Interval > 0 {
		t := time.NewTicker(r.Interval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-trig:
			r.reload(ctx, true)
		case <-tick:
			r.reload(ctx, false)
		}
	}
}

// reload loads the file when forced or when its content changed since the last attempt.
func (r *Reloader) reload(ctx context.Context, force bool) {
	data, err := os.ReadFile(r.Path)
	if err != nil {
		r.done(err)
		return
	}
	sum := sha256.Sum256(data)
	if !force && bytes.Equal(sum[:], r.sum[:]) {
		return
	}
	r.sum = sum
	env := r.Env
	if env == nil {
		env = os.LookupEnv
	}
	cfg, err := config.Parse(data, env)
	if err == nil {
		err = r.Manager.Load(ctx, cfg.Plugins)
	}
	r.done(err)
}

func (r *Reloader) done(err error) {
	m := r.Manager
	m.opt.Metrics.reload(err == nil)
	if err != nil {
		m.log.Error("configuration reload failed; the previous configuration stays in force", "file", r.Path, "err", err)
	} else {
		m.log.Info("configuration reloaded", "file", r.Path, "plugins", m.Names())
	}
	if r.OnReload != nil {
		r.OnReload(err)
	}
}
