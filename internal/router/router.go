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
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/open-autoglm/autoglm/internal/backend"
	"github.com/open-autoglm/autoglm/internal/config"
	"github.com/open-autoglm/autoglm/internal/evloop"
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

// OnLoop reports whether a request for the model may be served on an event loop to its end:
// every backend it may reach, its fallbacks' and its split's included, implements
// backend.OnLoop and says yes.
func (m *Model) OnLoop() bool { return m.onLoop(0) }

func (m *Model) onLoop(depth int) bool {
	if depth > 8 {
		return false // fallbacks deeper than any configuration needs: take the safe answer
	}
	for _, e := range m.split {
		if !e.model.onLoop(depth + 1) {
			return false
		}
	}
	for _, t := range m.Targets {
		if ol, ok := t.Backend.(backend.OnLoop); !ok || !ol.OnLoop() {
			return false
		}
	}
	for _, f := range m.fallbacks {
		if !f.onLoop(depth + 1) {
			return false
		}
	}
	return true
}

// Options configure a Registry.
type Options struct {
	// Logger receives retries, circuit changes and probe results. Default: discarded.
	Logger *slog.Logger
}

// Registry resolves model names and aliases and schedules requests. Its model table can be
// replaced while requests run (Reload): each request keeps the *Model it looked up, with that
// model's backends, fallbacks and split, until it ends.
type Registry struct {
	tab        atomic.Pointer[table]
	newBackend func(config.Backend) (backend.Backend, error)
	log        *slog.Logger
	hook       atomic.Pointer[Hook]

	mu      sync.Mutex // serialises Reload and Close
	closed  bool
	stop    chan struct{}  // closed by Close: retiring backends are closed at once
	retires sync.WaitGroup // one goroutine per backend waiting for its requests to end
}

// table is one generation of the model table. It is never changed once published.
type table struct {
	version uint64 // 1 for the first table, one more for each reload
	models  []*Model
	byName  map[string]*Model
	// replaced is closed when a newer table takes this one's place.
	replaced chan struct{}
}

// New builds the registry and every backend in it. On error, backends already built are
// closed. models must have passed config's WithDefaults and Validate.
func New(models []config.Model, opts ...Options) (*Registry, error) {
	return build(models, backend.New, opts...)
}

// build is New with the backend constructor as a parameter, so tests can supply fakes.
func build(models []config.Model, newBackend func(config.Backend) (backend.Backend, error), opts ...Options) (*Registry, error) {
	r := &Registry{newBackend: newBackend, stop: make(chan struct{})}
	for _, o := range opts {
		if o.Logger != nil {
			r.log = o.Logger
		}
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	t, err := r.buildTable(models, nil)
	if err != nil {
		return nil, err
	}
	t.version = 1
	r.tab.Store(t)
	return r, nil
}

// buildTable builds a model table from models. A backend of old whose configuration is the
// same (the backend's own section and its model's breaker and queue timeout) is taken over
// with its health, circuit and figures; a backend whose section alone is the same keeps its
// connection (backend.Backend) under new settings. On error every backend built here (and
// none taken over) is closed.
func (r *Registry) buildTable(models []config.Model, old *table) (*table, error) {
	t := &table{byName: make(map[string]*Model), replaced: make(chan struct{})}
	var built []backend.Backend
	fail := func(err error) (*table, error) {
		for _, b := range built {
			if c, ok := b.(backend.Closer); ok {
				_ = c.Close()
			}
		}
		return nil, err
	}
	for _, mc := range models {
		if len(mc.Backends) > config.MaxBackends {
			return fail(fmt.Errorf("model %s: more than %d backends", mc.Name, config.MaxBackends))
		}
		var prev *Model
		if old != nil {
			prev = old.byName[mc.Name]
			if prev != nil && prev.Name != mc.Name {
				prev = nil // the old name was an alias of another model
			}
		}
		m := &Model{Name: mc.Name, Aliases: mc.Aliases, cfg: mc, strategy: mc.Strategy,
			budget: newWindow(int64(budgetWindow))}
		for i, bc := range mc.Backends {
			if pt := prev.target(i); pt != nil && sameTarget(prev.cfg, pt, mc, bc) {
				m.Targets = append(m.Targets, pt)
				continue
			}
			var b backend.Backend
			if pt := prev.targetNamed(bc.Name); pt != nil && reflect.DeepEqual(pt.cfg, bc) && !t.uses(pt.Backend) {
				b = pt.Backend
			} else {
				var err error
				if b, err = r.newBackend(bc); err != nil {
					return fail(fmt.Errorf("model %s, backend %s: %w", mc.Name, bc.Name, err))
				}
				built = append(built, b)
			}
			m.Targets = append(m.Targets, newTarget(i, mc, bc, b))
		}
		if prev != nil && sameModel(prev.cfg, mc) {
			// The same model: its counters go on (its retry budget starts afresh).
			m.requests.Store(prev.requests.Load())
			m.retries.Store(prev.retries.Load())
			m.budgetDenied.Store(prev.budgetDenied.Load())
			m.queueRefusals.Store(prev.queueRefusals.Load())
		}
		t.models = append(t.models, m)
		t.byName[m.Name] = m
		for _, a := range m.Aliases {
			t.byName[a] = m
		}
	}
	// Splits and fallbacks name other models: resolve them once all exist.
	for _, m := range t.models {
		for _, e := range m.cfg.Split {
			to, ok := t.byName[e.Model]
			if !ok || len(to.split) > 0 || to == m {
				return fail(fmt.Errorf("model %s: split to %q: not a model with backends", m.Name, e.Model))
			}
			m.split = append(m.split, splitEntry{model: to, weight: e.Weight})
			m.splitSum += e.Weight
		}
		for _, f := range m.cfg.Fallbacks {
			to, ok := t.byName[f]
			if !ok || to == m {
				return fail(fmt.Errorf("model %s: fallback %q: no such model", m.Name, f))
			}
			m.fallbacks = append(m.fallbacks, to)
		}
	}
	return t, nil
}

// uses reports whether some target of t already holds b.
func (t *table) uses(b backend.Backend) bool {
	for _, m := range t.models {
		for _, x := range m.Targets {
			if x.Backend == b {
				return true
			}
		}
	}
	return false
}

// target returns m's i-th target, or nil.
func (m *Model) target(i int) *Target {
	if m == nil || i >= len(m.Targets) {
		return nil
	}
	return m.Targets[i]
}

// targetNamed returns m's target named name, or nil.
func (m *Model) targetNamed(name string) *Target {
	if m == nil {
		return nil
	}
	for _, t := range m.Targets {
		if t.Name == name {
			return t
		}
	}
	return nil
}

// sameTarget reports whether target pt of the old model oc can serve unchanged as the same
// position of the new model mc with backend section bc.
func sameTarget(oc config.Model, pt *Target, mc config.Model, bc config.Backend) bool {
	return reflect.DeepEqual(pt.cfg, bc) && reflect.DeepEqual(oc.Breaker, mc.Breaker) && oc.QueueTimeout == mc.QueueTimeout
}

// sameModel reports whether two configurations of a model schedule the same way, so that the
// model's counters carry over.
func sameModel(a, b config.Model) bool { return reflect.DeepEqual(a, b) }

// ReloadResult says what a Reload changed, by model name.
type ReloadResult struct {
	Added, Removed, Changed []string
}

// Reload replaces the model table with one built from models (which must have passed
// config's WithDefaults and Validate), atomically: a request that already looked up its model
// goes on with the old table's model and backends. Backends whose configuration did not
// change are kept, with their health, circuit, figures and connections. A backend no longer
// in the table is closed once its in-flight and queued requests have ended. On error nothing
// changes.
func (r *Registry) Reload(models []config.Model) (ReloadResult, error) {
	p, err := r.Prepare(models)
	if err != nil {
		return ReloadResult{}, err
	}
	return p.Commit()
}

// Pending is a model table built by Prepare and not yet in force. Exactly one of Commit
// and Discard must be called.
type Pending struct {
	r        *Registry
	old, tab *table
}

// Prepare builds the table Reload would put in force, with its new backends, without
// changing anything, so that a caller can prepare other parts of a change before committing
// them all.
func (r *Registry) Prepare(models []config.Model) (*Pending, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, errors.New("the registry is closed")
	}
	old := r.tab.Load()
	t, err := r.buildTable(models, old)
	if err != nil {
		return nil, err
	}
	return &Pending{r: r, old: old, tab: t}, nil
}

// Discard closes the backends Prepare built.
func (p *Pending) Discard() {
	for _, m := range p.tab.models {
		for _, x := range m.Targets {
			if c, ok := x.Backend.(backend.Closer); ok && !p.old.uses(x.Backend) {
				_ = c.Close()
			}
		}
	}
}

// Commit puts the prepared table in force. It fails, discarding the table, when another
// table was put in force since Prepare or the registry was closed.
func (p *Pending) Commit() (ReloadResult, error) {
	r := p.r
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || r.tab.Load() != p.old {
		p.Discard()
		return ReloadResult{}, errors.New("the model table changed while a reload was prepared")
	}
	old, t := p.old, p.tab
	t.version = old.version + 1
	r.tab.Store(t)
	close(old.replaced)
	var res ReloadResult
	for _, m := range t.models {
		switch pm, ok := old.byName[m.Name]; {
		case !ok || pm.Name != m.Name:
			res.Added = append(res.Added, m.Name)
		case !sameModel(pm.cfg, m.cfg):
			res.Changed = append(res.Changed, m.Name)
		}
	}
	for _, m := range old.models {
		if nm, ok := t.byName[m.Name]; !ok || nm.Name != m.Name {
			res.Removed = append(res.Removed, m.Name)
		}
		for _, x := range m.Targets {
			if !t.uses(x.Backend) {
				r.retire(x)
			}
		}
	}
	return res, nil
}

// retireCheck is how often a retired backend is checked for requests still using it.
const retireCheck = 50 * time.Millisecond

// retire closes x's backend once no request has used it for two checks in a row: a request
// that looked its model up just before the swap takes its slot within microseconds, and the
// backend's in-flight count covers a request until its answer's body is closed.
func (r *Registry) retire(x *Target) {
	c, ok := x.Backend.(backend.Closer)
	if !ok {
		return
	}
	r.retires.Go(func() {
		tk := time.NewTicker(retireCheck)
		defer tk.Stop()
		idle := 0
		for idle < 2 {
			select {
			case <-r.stop:
				idle = 2
			case <-tk.C:
				if x.inflight.Load() == 0 && x.queued.Load() == 0 {
					idle++
				} else {
					idle = 0
				}
			}
		}
		if err := c.Close(); err != nil {
			r.log.Warn("closing a removed backend failed", "backend", x.Name, "err", err)
		}
	})
}

// Version numbers the model table in force: 1 at start, one more after each reload, so that
// what is derived from the table can be cached and rebuilt when it changes.
func (r *Registry) Version() uint64 { return r.tab.Load().version }

// Changed returns a channel closed when the model table in force now is replaced.
func (r *Registry) Changed() <-chan struct{} { return r.tab.Load().replaced }

func newTarget(i int, mc config.Model, bc config.Backend, b backend.Backend) *Target {
	t := &Target{cfg: bc, Name: bc.Name, Type: bc.Type, Model: bc.Model, Weight: max(bc.Weight, 1), Backend: b,
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
	m, ok := r.tab.Load().byName[name]
	return m, ok
}

// Models lists the models in force, in configuration order.
func (r *Registry) Models() []*Model { return r.tab.Load().models }

// Ready reports whether every model with backends can take a request.
func (r *Registry) Ready() bool {
	for _, m := range r.Models() {
		if !m.Ready() {
			return false
		}
	}
	return true
}

// Close releases every backend that holds resources, those of models a reload removed
// included, and waits until they are closed. Reload fails after Close.
func (r *Registry) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	close(r.stop)
	r.mu.Unlock()
	r.retires.Wait()
	var errs []error
	for _, m := range r.Models() {
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
	var err error
	evloop.Block(ctx, func() { // off an event loop, whose other requests go on meanwhile
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			err = ctx.Err()
		case <-t.C:
		}
	})
	return err
}
