package router

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/open-autoglm/autoglm/internal/backend"
	"github.com/open-autoglm/autoglm/internal/config"
)

// closing is a fake backend that records when it is closed.
type closing struct {
	*fake
	closed atomic.Bool
}

func (c *closing) Close() error { c.closed.Store(true); return nil }

// reloadable is a registry over a set of closing fakes the test can add to.
type reloadable struct {
	mu    sync.Mutex
	fakes map[string]*closing
	built []string // backend names, in the order they were built
}

func (rb *reloadable) add(name string, do func(context.Context, *backend.Request) (*backend.Response, error)) *closing {
	rb.mu.Lock()
	defer rb.mu.Unlock()
	c := &closing{fake: &fake{do: do}}
	rb.fakes[name] = c
	return c
}

func (rb *reloadable) newBackend(bc config.Backend) (backend.Backend, error) {
	rb.mu.Lock()
	defer rb.mu.Unlock()
	f, ok := rb.fakes[bc.Name]
	if !ok {
		return nil, fmt.Errorf("no fake named %s", bc.Name)
	}
	rb.built = append(rb.built, bc.Name)
	return f, nil
}

func parseModels(t *testing.T, yaml string) []config.Model {
	t.Helper()
	cfg, err := config.Parse([]byte(yaml), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return cfg.Models
}

func modelNamesOf(r *Registry) []string {
	var out []string
	for _, m := range r.Models() {
		out = append(out, m.Name)
	}
	return out
}

func TestReloadAddsRemovesAndChangesModels(t *testing.T) {
	rb := &reloadable{fakes: map[string]*closing{}}
	a := rb.add("a", jsonOK)
	b := rb.add("b", jsonOK)
	r, err := build(parseModels(t, "models:\n  - name: one\n"+backends("a")+"  - name: two\n"+backends("b")), rb.newBackend)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, _, _, err := call(t, r, "one", chatRequest(false)); err != nil {
		t.Fatal(err)
	}
	oneBefore, _ := r.Lookup("one")
	c := rb.add("c", jsonOK)

	// one: unchanged; two: removed; three: added, with an alias.
	res, err := r.Reload(parseModels(t, "models:\n  - name: one\n"+backends("a")+"  - name: three\n    aliases: [tres]\n"+backends("c")))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Added, []string{"three"}) || !slices.Equal(res.Removed, []string{"two"}) || len(res.Changed) != 0 {
		t.Fatalf("result = %+v", res)
	}
	if got := modelNamesOf(r); !slices.Equal(got, []string{"one", "three"}) {
		t.Fatalf("models = %v", got)
	}
	if _, ok := r.Lookup("two"); ok {
		t.Fatal("a removed model is still found")
	}
	if name, _, _, err := call(t, r, "tres", chatRequest(false)); err != nil || name != "c" {
		t.Fatalf("the added model (by alias) answered from %q, %v", name, err)
	}
	// The unchanged backend is the same target, with its figures, and was not built again.
	oneAfter, _ := r.Lookup("one")
	if oneAfter.Targets[0] != oneBefore.Targets[0] || oneAfter.Targets[0].Status().Requests != 1 {
		t.Fatalf("the unchanged backend was not kept: %+v", oneAfter.Targets[0].Status())
	}
	if oneAfter.Status().Requests != 1 {
		t.Fatalf("the unchanged model's counters restarted: %+v", oneAfter.Status())
	}
	if got := strings.Join(rb.built, ","); got != "a,b,c" {
		t.Fatalf("backends built: %s", got)
	}
	// The removed backend is closed once idle; the others are not.
	waitFor(t, "the removed backend to close", b.closed.Load)
	if a.closed.Load() || c.closed.Load() {
		t.Fatal("a backend in force was closed")
	}
}

func TestReloadChangedBackendSettings(t *testing.T) {
	rb := &reloadable{fakes: map[string]*closing{}}
	a := rb.add("a", jsonOK)
	r, err := build(parseModels(t, "models:\n  - name: m\n    backends:\n      - {type: openai, name: a, base_url: \"http://127.0.0.1:9/v1\", weight: 1}\n"), rb.newBackend)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// A new weight is a new target (the scheduling settings change); a new base URL is a new
	// backend, and the old one is closed.
	a2 := rb.add("a", jsonOK)
	res, err := r.Reload(parseModels(t, "models:\n  - name: m\n    backends:\n      - {type: openai, name: a, base_url: \"http://127.0.0.1:10/v1\", weight: 3}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Changed, []string{"m"}) {
		t.Fatalf("result = %+v", res)
	}
	m, _ := r.Lookup("m")
	if m.Targets[0].Weight != 3 || m.Targets[0].Backend != backend.Backend(a2) {
		t.Fatalf("target = %+v", m.Targets[0])
	}
	waitFor(t, "the replaced backend to close", a.closed.Load)
	if a2.closed.Load() {
		t.Fatal("the new backend was closed")
	}
}

func TestReloadRefusedLeavesTableAndClosesWhatItBuilt(t *testing.T) {
	rb := &reloadable{fakes: map[string]*closing{}}
	a := rb.add("a", jsonOK)
	r, err := build(parseModels(t, "models:\n  - name: m\n"+backends("a")), rb.newBackend)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	before := r.Changed()
	n := rb.add("n", jsonOK)
	// The second new backend cannot be built: nothing changes, and the first is closed.
	if _, err := r.Reload(parseModels(t, "models:\n  - name: m\n"+backends("a")+"  - name: x\n"+backends("n", "missing"))); err == nil {
		t.Fatal("a reload whose backend fails to build succeeded")
	}
	if got := modelNamesOf(r); !slices.Equal(got, []string{"m"}) {
		t.Fatalf("models = %v", got)
	}
	if !n.closed.Load() || a.closed.Load() {
		t.Fatalf("closed: new %v, in force %v", n.closed.Load(), a.closed.Load())
	}
	select {
	case <-before:
		t.Fatal("a refused reload announced a new table")
	default:
	}
	if _, _, _, err := call(t, r, "m", chatRequest(false)); err != nil {
		t.Fatal(err)
	}
}

// TestReloadKeepsInFlightStream: a stream that started on a backend a reload removes ends
// intact, and the backend is closed only after it has.
func TestReloadKeepsInFlightStream(t *testing.T) {
	rb := &reloadable{fakes: map[string]*closing{}}
	old := rb.add("old", sse(0, 30*time.Millisecond, 12, false))
	rb.add("new", jsonOK)
	r, err := build(parseModels(t, "models:\n  - name: m\n"+backends("old")), rb.newBackend)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	m, _ := r.Lookup("m")
	resp, _, err := r.Do(context.Background(), m, chatRequest(true))
	if err != nil {
		t.Fatal(err)
	}
	changed := r.Changed()
	if _, err := r.Reload(parseModels(t, "models:\n  - name: m\n"+backends("new"))); err != nil {
		t.Fatal(err)
	}
	<-changed
	if name, _, _, err := call(t, r, "m", chatRequest(false)); err != nil || name != "new" {
		t.Fatalf("a request after the reload went to %q, %v", name, err)
	}
	if old.closed.Load() {
		t.Fatal("the backend was closed while its stream ran")
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || strings.Count(string(body), "data: {") != 12 || !strings.HasSuffix(string(body), "data: [DONE]\n\n") {
		t.Fatalf("stream: %v\n%s", err, body)
	}
	waitFor(t, "the removed backend to close", old.closed.Load)
}

func TestCloseClosesRetiringBackends(t *testing.T) {
	rb := &reloadable{fakes: map[string]*closing{}}
	old := rb.add("old", sse(0, time.Hour, 2, false))
	rb.add("new", jsonOK)
	r, err := build(parseModels(t, "models:\n  - name: m\n"+backends("old")), rb.newBackend)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := r.Lookup("m")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resp, _, err := r.Do(ctx, m, chatRequest(true))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if _, err := r.Reload(parseModels(t, "models:\n  - name: m\n"+backends("new"))); err != nil {
		t.Fatal(err)
	}
	// The stream still holds the old backend; Close does not wait for it.
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if !old.closed.Load() {
		t.Fatal("Close left a retiring backend open")
	}
	if _, err := r.Reload(parseModels(t, "models:\n  - name: m\n"+backends("new"))); err == nil {
		t.Fatal("Reload after Close succeeded")
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestPrepareDiscard: a prepared table changes nothing until committed; discarding it closes
// only the backends it built; a commit after another reload is refused.
func TestPrepareDiscard(t *testing.T) {
	rb := &reloadable{fakes: map[string]*closing{}}
	a := rb.add("a", jsonOK)
	r, err := build(parseModels(t, "models:\n  - name: m\n"+backends("a")), rb.newBackend)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	n := rb.add("n", jsonOK)
	p, err := r.Prepare(parseModels(t, "models:\n  - name: m\n"+backends("a")+"  - name: x\n"+backends("n")))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := r.Lookup("x"); ok || r.Version() != 1 {
		t.Fatalf("a prepared table is in force (version %d)", r.Version())
	}
	p.Discard()
	if !n.closed.Load() || a.closed.Load() {
		t.Fatalf("discard closed: built %v, in force %v", n.closed.Load(), a.closed.Load())
	}

	n2 := rb.add("n", jsonOK)
	stale, err := r.Prepare(parseModels(t, "models:\n  - name: m\n"+backends("a")+"  - name: x\n"+backends("n")))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Reload(parseModels(t, "models:\n  - name: m\n"+backends("a")+"  - name: y\n"+backends("a"))); err != nil {
		t.Fatal(err)
	}
	if _, err := stale.Commit(); err == nil {
		t.Fatal("a table prepared before another reload was committed")
	}
	if !n2.closed.Load() || r.Version() != 2 {
		t.Fatalf("the refused commit: its backend closed %v, version %d", n2.closed.Load(), r.Version())
	}
	if _, ok := r.Lookup("y"); !ok {
		t.Fatal("the reload in between is not in force")
	}
}
