// Package router is the scheduling layer: the registry of public model names, aliases and
// canary splits, the choice of backend for each request, retries and fallbacks, timeouts,
// back-pressure, and what is known about each backend's health.
//
// Registry.Do sends one request: it picks a backend by the model's strategy among those
// whose circuit is not open, that no probe found down and that no Retry-After asked to wait,
// takes an in-flight slot (waiting in a bounded queue when the backend is at its cap), and
// retries elsewhere only while nothing has reached the client. The returned body enforces
// the idle-gap and total timeouts and, when closed, accounts the outcome to the backend.
// docs/ROUTING.md states the semantics of every setting.
//
// Locks: Model.mu guards the round-robin counters only; breaker.mu guards breaker
// transitions; window.mu guards one window's buckets. No code holds two of them at once.
package router

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/open-autoglm/autoglm/internal/backend"
	"github.com/open-autoglm/autoglm/internal/config"
)

// splitEntry is one model of a canary split.
type splitEntry struct {
	model  *Model
	weight int
}

// Model is a public model: its backends, or the models it splits its traffic across.
type Model struct {
	Name    string
	Aliases []string
	// Targets are the model's backends in configuration order; empty for a split model.
	Targets []*Target

	cfg       config.Model
	strategy  string
	split     []splitEntry
	splitSum  int
	fallbacks []*Model

	mu sync.Mutex // guards the Targets' round-robin counters

	budget        window // a: requests, b: retries
	requests      atomic.Uint64
	retries       atomic.Uint64
	budgetDenied  atomic.Uint64
	queueRefusals atomic.Uint64
}

// Strategy returns the model's balancing strategy.
func (m *Model) Strategy() string { return m.strategy }

// Ready reports whether the model can take a request now: one of its backends is not down
// by probe and its circuit is not open, or, for a split model, one of the split's models is
// ready.
func (m *Model) Ready() bool {
	if len(m.split) > 0 {
		for _, e := range m.split {
			if e.model.Ready() {
				return true
			}
		}
		return false
	}
	now := time.Now().UnixNano()
	for _, t := range m.Targets {
		if t.Health() != HealthDown && t.br.circuit(now) != CircuitOpen {
			return true
		}
	}
	return false
}

// Options configure a Registry.
type Options struct {
	// Logger receives retries, circuit changes and probe results. Default: discarded.
	Logger *slog.Logger
}

// Registry resolves model names and aliases and schedules requests.
type Registry struct {
	models []*Model
	byName map[string]*Model
	log    *slog.Logger
	hook   atomic.Pointer[Hook]
}

// New builds the registry and every backend in it. On error, backends already built are
// closed. models must have passed config's WithDefaults and Validate.
func New(models []config.Model, opts ...Options) (*Registry, error) {
	return build(models, backend.New, opts...)
}

// build is New with the backend constructor as a parameter, so tests can supply fakes.
func build(models []config.Model, newBackend func(config.Backend) (backend.Backend, error), opts ...Options) (*Registry, error) {
	r := &Registry{byName: make(map[string]*Model)}
	for _, o := range opts {
		if o.Logger != nil {
			r.log = o.Logger
		}
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	for _, mc := range models {
		if len(mc.Backends) > config.MaxBackends {
			r.Close()
			return nil, fmt.Errorf("model %s: more than %d backends", mc.Name, config.MaxBackends)
		}
		m := &Model{Name: mc.Name, Aliases: mc.Aliases, cfg: mc, strategy: mc.Strategy,
			budget: newWindow(int64(budgetWindow))}
		for i, bc := range mc.Backends {
			b, err := newBackend(bc)
			if err != nil {
				r.Close()
				return nil, fmt.Errorf("model %s, backend %s: %w", mc.Name, bc.Name, err)
			}
			m.Targets = append(m.Targets, newTarget(i, mc, bc, b))
		}
		r.models = append(r.models, m)
		r.byName[m.Name] = m
		for _, a := range m.Aliases {
			r.byName[a] = m
		}
	}
	// Splits and fallbacks name other models: resolve them once all exist.
	for _, m := range r.models {
		for _, e := range m.cfg.Split {
			to, ok := r.byName[e.Model]
			if !ok || len(to.split) > 0 || to == m {
				r.Close()
				return nil, fmt.Errorf("model %s: split to %q: not a model with backends", m.Name, e.Model)
			}
			m.split = append(m.split, splitEntry{model: to, weight: e.Weight})
			m.splitSum += e.Weight
		}
		for _, f := range m.cfg.Fallbacks {
			to, ok := r.byName[f]
			if !ok || to == m {
				r.Close()
				return nil, fmt.Errorf("model %s: fallback %q: no such model", m.Name, f)
			}
			m.fallbacks = append(m.fallbacks, to)
		}
	}
	return r, nil
}

func newTarget(i int, mc config.Model, bc config.Backend, b backend.Backend) *Target {
	t := &Target{Name: bc.Name, Type: bc.Type, Model: bc.Model, Weight: max(bc.Weight, 1), Backend: b,
		idx: i, timeouts: bc.Timeouts, maxInflight: bc.MaxInflight, queue: bc.Queue,
		queueTimeout: mc.QueueTimeout.D(),
		br: newBreaker(max(mc.Breaker.Failures, 1), mc.Breaker.FailureRatio,
			int64(max(mc.Breaker.Window.D(), time.Second)), int64(max(mc.Breaker.OpenFor.D(), time.Millisecond)))}
	if t.queueTimeout <= 0 {
		t.queueTimeout = config.DefaultQueueTimeout
	}
	t.NativeResponses = bc.Responses == config.ResponsesNative
	if bc.MaxInflight > 0 {
		t.slots = make(chan struct{}, bc.MaxInflight)
	}
	return t
}

// NativeResponses reports whether every backend of m serves the Responses API itself, so
// that Responses requests can be passed through rather than translated.
func (m *Model) NativeResponses() bool {
	if len(m.Targets) == 0 {
		return false
	}
	for _, t := range m.Targets {
		if !t.NativeResponses {
			return false
		}
	}
	return true
}

// Lookup finds a model by name or alias.
func (r *Registry) Lookup(name string) (*Model, bool) {
	m, ok := r.byName[name]
	return m, ok
}

// Models lists the models in configuration order.
func (r *Registry) Models() []*Model { return r.models }

// Ready reports whether every model with backends can take a request.
func (r *Registry) Ready() bool {
	for _, m := range r.models {
		if !m.Ready() {
			return false
		}
	}
	return true
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

// chooseSplit orders a split model's entries for one request: the entry chosen by weight
// (or by the sticky key) first, then the others by decreasing weight as fallbacks.
func (m *Model) chooseSplit(key uint64, sticky bool, out []*Model) []*Model {
	first := 0
	if sticky {
		best := -1.0
		for i, e := range m.split {
			if e.weight == 0 {
				continue
			}
			if s := rendezvous(key, uint64(i), e.weight); s > best {
				first, best = i, s
			}
		}
	} else if m.splitSum > 0 {
		n := rand.IntN(m.splitSum)
		for i, e := range m.split {
			if n < e.weight {
				first = i
				break
			}
			n -= e.weight
		}
	}
	out = append(out, m.split[first].model)
	start := len(out)
	for i, e := range m.split {
		if i == first {
			continue
		}
		// Insertion by decreasing weight; splits are short.
		out = append(out, e.model)
		for k := len(out) - 1; k > start && weightIn(m, out[k-1]) < e.weight; k-- {
			out[k-1], out[k] = out[k], out[k-1]
		}
	}
	return out
}

func weightIn(m *Model, x *Model) int {
	for _, e := range m.split {
		if e.model == x {
			return e.weight
		}
	}
	return 0
}

// stickyKey extracts the client identity sticky routing hashes, from the client's own
// request headers.
func (m *Model) stickyKey(h http.Header) (uint64, bool) {
	var v string
	switch m.cfg.Sticky.By {
	case "api_key":
		v = h.Get("Authorization")
		if k, ok := strings.CutPrefix(v, "Bearer "); ok {
			v = k
		}
	case "header":
		v = h.Get(m.cfg.Sticky.Header)
	default:
		return 0, false
	}
	if v == "" {
		return 0, false
	}
	return hashKey(v), true
}

// drain reads a little of a body we are abandoning so that its connection can be reused,
// then closes it.
func drain(rc io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(rc, 64<<10))
	_ = rc.Close()
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
