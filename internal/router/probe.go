package router

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/open-autoglm/autoglm/internal/backend"
	"github.com/open-autoglm/autoglm/internal/config"
)

// Probe checks every probeable backend once, concurrently. Each model's health.timeout
// bounds its probes; timeout applies to models that do not set one. log may be nil (the
// registry's logger is used).
func (r *Registry) Probe(ctx context.Context, timeout time.Duration, log *slog.Logger) {
	var wg sync.WaitGroup
	for _, m := range r.Models() {
		wg.Go(func() { r.probeModel(ctx, m, timeout, log) })
	}
	wg.Wait()
}

// RunHealth probes each model's backends every health.interval (interval for models that do
// not set one) until ctx is done. When a reload replaces the model table, the probes of the
// new table start at once (so an added backend's health is known early) and the old ones stop.
func (r *Registry) RunHealth(ctx context.Context, interval, timeout time.Duration, log *slog.Logger) {
	for ctx.Err() == nil {
		tab := r.tab.Load()
		gctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		for _, m := range tab.models {
			if len(m.Targets) == 0 || m.cfg.Health.Probe == config.ProbeNone {
				continue
			}
			every := m.cfg.Health.Interval.D()
			if every <= 0 {
				every = interval
			}
			wg.Go(func() {
				tk := time.NewTicker(every)
				defer tk.Stop()
				for {
					select {
					case <-gctx.Done():
						return
					case <-tk.C:
						r.probeModel(gctx, m, timeout, log)
					}
				}
			})
		}
		select {
		case <-ctx.Done():
		case <-tab.replaced:
		}
		cancel()
		wg.Wait()
		if ctx.Err() == nil {
			r.probeNew(ctx, tab, timeout, log)
		}
	}
}

// probeNew probes once the models of the table that replaced old that were not in old.
func (r *Registry) probeNew(ctx context.Context, old *table, timeout time.Duration, log *slog.Logger) {
	var wg sync.WaitGroup
	for _, m := range r.Models() {
		if pm, ok := old.byName[m.Name]; ok && pm.Name == m.Name {
			continue
		}
		wg.Go(func() { r.probeModel(ctx, m, timeout, log) })
	}
	wg.Wait()
}

func (r *Registry) probeModel(ctx context.Context, m *Model, timeout time.Duration, log *slog.Logger) {
	if log == nil {
		log = r.log
	}
	if d := m.cfg.Health.Timeout.D(); d > 0 {
		timeout = d
	}
	var wg sync.WaitGroup
	for _, t := range m.Targets {
		wg.Go(func() {
			pctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			err, probed := probeTarget(pctx, m.cfg.Health, t)
			if !probed {
				return
			}
			if ctx.Err() != nil {
				return // shutting down: the probe's failure says nothing about the backend
			}
			next := HealthUp
			if err != nil {
				next = HealthDown
			}
			if prev := Health(t.health.Swap(int32(next))); prev != next {
				if err != nil {
					log.Warn("backend probe failed", "model", m.Name, "backend", t.Name, "err", err)
				} else if prev == HealthDown {
					log.Info("backend probe succeeds again", "model", m.Name, "backend", t.Name)
				}
			}
		})
	}
	wg.Wait()
}

// probeTarget runs the configured probe against t. probed is false when t is not probed
// (probe none); a backend that cannot be probed by the models list (an in-process one) is up.
func probeTarget(ctx context.Context, h config.Health, t *Target) (err error, probed bool) {
	switch h.Probe {
	case config.ProbeNone:
		return nil, false
	case config.ProbeCompletion:
		if t.Type == config.BackendLocal {
			return nil, true
		}
		return probeCompletion(ctx, t, h.Stream), true
	default:
		p, ok := t.Backend.(backend.Prober)
		if !ok {
			return nil, true
		}
		return p.Probe(ctx), true
	}
}

// probeCompletion asks for one token. A 2xx answer (for a stream, with a first byte) is up.
func probeCompletion(ctx context.Context, t *Target, stream bool) error {
	body := []byte(`{"model":` + strconv.Quote(t.Model) + `,"messages":[{"role":"user","content":"ping"}],"max_tokens":1,"stream":` + strconv.FormatBool(stream) + `}`)
	resp, err := t.Backend.Do(ctx, &backend.Request{Op: backend.OpChat, Body: body, Stream: stream})
	if err != nil {
		return err
	}
	defer drain(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("probe answered with status %d", resp.StatusCode)
	}
	var one [1]byte
	if _, err := io.ReadFull(resp.Body, one[:]); err != nil {
		return errors.New("probe answer is empty")
	}
	return nil
}
