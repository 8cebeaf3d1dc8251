// Package router is the scheduling layer: the registry of public model names and aliases,
// the choice of backend for each request, and what is known about each backend's health.
//
// This first version balances by smooth weighted round-robin and fails over to the next
// backend when one cannot be reached; docs/ROUTING.md describes the semantics.
package router

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/open-autoglm/autoglm/internal/backend"
	"github.com/open-autoglm/autoglm/internal/config"
)

// Health is what the last probe of a backend found.
type Health int32

const (
	HealthUnknown Health = iota // not probed yet, or the backend cannot be probed
	HealthUp
	HealthDown
)

func (h Health) String() string {
	switch h {
	case HealthUp:
		return "up"
	case HealthDown:
		return "down"
	}
	return "unknown"
}

// Target is one backend of one model.
type Target struct {
	// Name labels the backend in logs and the admin API.
	Name string
	// Type is the backend type ("openai", "local").
	Type string
	// Model is the model name the backend knows.
	Model string
	// Weight is the backend's share of traffic.
	Weight int
	// Backend does the work.
	Backend backend.Backend

	health atomic.Int32
	// current is the smooth weighted round-robin counter, guarded by the model's mutex.
	current int
}

// Health returns the latest probe result.
func (t *Target) Health() Health { return Health(t.health.Load()) }

// Model is a public model and its backends.
type Model struct {
	Name    string
	Aliases []string
	Targets []*Target

	mu    sync.Mutex
	total int // sum of weights
}

// Order returns the model's backends in the order a request should try them: the smooth
// weighted round-robin pick first, then the others in configuration order. Over any window
// of sum(weights) requests, each backend is first exactly weight times, evenly interleaved.
func (m *Model) Order() []*Target {
	if len(m.Targets) == 1 {
		return m.Targets
	}
	m.mu.Lock()
	best := 0
	for i, t := range m.Targets {
		t.current += t.Weight
		if t.current > m.Targets[best].current {
			best = i
		}
	}
	m.Targets[best].current -= m.total
	m.mu.Unlock()
	out := make([]*Target, 0, len(m.Targets))
	out = append(out, m.Targets[best])
	for i, t := range m.Targets {
		if i != best {
			out = append(out, t)
		}
	}
	return out
}

// Ready reports whether at least one backend is not known to be down.
func (m *Model) Ready() bool {
	for _, t := range m.Targets {
		if t.Health() != HealthDown {
			return true
		}
	}
	return false
}

// Registry resolves model names and aliases.
type Registry struct {
	models []*Model
	byName map[string]*Model
}

// New builds the registry and every backend in it. On error, backends already built are
// closed.
func New(models []config.Model) (*Registry, error) {
	r := &Registry{byName: make(map[string]*Model)}
	for _, mc := range models {
		m := &Model{Name: mc.Name, Aliases: mc.Aliases}
		for _, bc := range mc.Backends {
			b, err := backend.New(bc)
			if err != nil {
				r.Close()
				return nil, fmt.Errorf("model %s, backend %s: %w", mc.Name, bc.Name, err)
			}
			m.Targets = append(m.Targets, &Target{Name: bc.Name, Type: bc.Type, Model: bc.Model, Weight: bc.Weight, Backend: b})
			m.total += bc.Weight
		}
		r.models = append(r.models, m)
		r.byName[m.Name] = m
		for _, a := range m.Aliases {
			r.byName[a] = m
		}
	}
	return r, nil
}

// Lookup finds a model by name or alias.
func (r *Registry) Lookup(name string) (*Model, bool) {
	m, ok := r.byName[name]
	return m, ok
}

// Models lists the models in configuration order.
func (r *Registry) Models() []*Model { return r.models }

// Ready reports whether every model has a backend that is not known to be down.
func (r *Registry) Ready() bool {
	for _, m := range r.models {
		if !m.Ready() {
			return false
		}
	}
	return true
}

// Probe checks every probeable backend once, concurrently, each within timeout.
func (r *Registry) Probe(ctx context.Context, timeout time.Duration, log *slog.Logger) {
	var wg sync.WaitGroup
	for _, m := range r.models {
		for _, t := range m.Targets {
			p, ok := t.Backend.(backend.Prober)
			if !ok {
				t.health.Store(int32(HealthUp)) // in-process backends are up when loaded
				continue
			}
			wg.Go(func() {
				pctx, cancel := context.WithTimeout(ctx, timeout)
				defer cancel()
				err := p.Probe(pctx)
				next := HealthUp
				if err != nil {
					next = HealthDown
				}
				if prev := Health(t.health.Swap(int32(next))); prev != next && log != nil {
					if err != nil {
						log.Warn("backend unreachable", "model", m.Name, "backend", t.Name, "err", err)
					} else if prev == HealthDown {
						log.Info("backend reachable again", "model", m.Name, "backend", t.Name)
					}
				}
			})
		}
	}
	wg.Wait()
}

// RunHealth probes every interval until ctx is done.
func (r *Registry) RunHealth(ctx context.Context, interval, timeout time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.Probe(ctx, timeout, log)
		}
	}
}

// Close releases every backend that holds resources.
func (r *Registry) Close() error {
	var errs []error
	for _, m := range r.models {
		for _, t := range m.Targets {
			if c, ok := t.Backend.(backend.Closer); ok {
				errs = append(errs, c.Close())
			}
		}
	}
	return errors.Join(errs...)
}
