package router

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/open-autoglm/autoglm/internal/apierr"
	"github.com/open-autoglm/autoglm/internal/backend"
)

// proberFake is a fake backend that also answers the models-list probe.
type proberFake struct {
	fake
	up atomic.Bool
}

func (p *proberFake) Probe(context.Context) error {
	if p.up.Load() {
		return nil
	}
	return errors.New("connection refused")
}

func TestProbeExcludesDownBackends(t *testing.T) {
	a := &proberFake{fake: fake{do: jsonOK}}
	b := &proberFake{fake: fake{do: jsonOK}}
	b.up.Store(true)
	cfgYAML := "models:\n  - name: m\n" + backends("a", "b")
	r := newTestRegistryOf(t, cfgYAML, map[string]backend.Backend{"a": a, "b": b})
	m, _ := r.Lookup("m")

	r.Probe(context.Background(), 0, nil)
	if h := m.Targets[0].Health(); h != HealthDown {
		t.Fatalf("a: %v", h)
	}
	for range 10 {
		if name, _, _, err := call(t, r, "m", chatRequest(false)); err != nil || name != "b" {
			t.Fatalf("served by %s: %v", name, err)
		}
	}
	b.up.Store(false)
	r.Probe(context.Background(), 0, nil)
	if m.Ready() || r.Ready() {
		t.Fatal("a model whose backends are all down reports ready")
	}
	_, _, _, err := call(t, r, "m", chatRequest(false))
	var e *apierr.Error
	if !errors.As(err, &e) || e.Code != "no_backend" || e.Kind.HTTPStatus() != http.StatusServiceUnavailable {
		t.Fatalf("all down: %v", err)
	}
	a.up.Store(true)
	r.Probe(context.Background(), 0, nil)
	if name, _, _, err := call(t, r, "m", chatRequest(false)); err != nil || name != "a" {
		t.Fatalf("after recovery: %s %v", name, err)
	}
}

func TestCompletionProbe(t *testing.T) {
	var code atomic.Int32
	code.Store(200)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/chat/completions" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(int(code.Load()))
		w.Write([]byte(`{"choices":[]}`))
	}))
	defer up.Close()
	f := &fake{do: func(ctx context.Context, req *backend.Request) (*backend.Response, error) {
		hr, _ := http.NewRequestWithContext(ctx, "POST", up.URL+"/v1/chat/completions", nil)
		resp, err := http.DefaultClient.Do(hr)
		if err != nil {
			return nil, err
		}
		return &backend.Response{StatusCode: resp.StatusCode, Header: resp.Header, Body: resp.Body}, nil
	}}
	r := newTestRegistry(t, "models:\n  - name: m\n    health: {probe: completion}\n"+backends("a"), map[string]*fake{"a": f})
	m, _ := r.Lookup("m")
	r.Probe(context.Background(), 0, nil)
	if h := m.Targets[0].Health(); h != HealthUp {
		t.Fatalf("health %v", h)
	}
	code.Store(500)
	r.Probe(context.Background(), 0, nil)
	if h := m.Targets[0].Health(); h != HealthDown {
		t.Fatalf("health after 500: %v", h)
	}
}

func TestModelTotalTimeout(t *testing.T) {
	fakes := map[string]*fake{"a": {do: sse(0, 30e6, 1000, false)}}
	r := newTestRegistry(t, "models:\n  - name: m\n    timeouts: {total: 100ms}\n"+backends("a"), fakes)
	_, _, body, err := call(t, r, "m", chatRequest(true))
	if !errors.Is(err, ErrTotalTimeout) || len(body) == 0 {
		t.Fatalf("err %v after %d bytes", err, len(body))
	}
	st := r.Status()[0].Backends[0]
	if st.Errors["total_timeout"] != 1 || st.Circuit != "closed" || st.Inflight != 0 {
		t.Fatalf("status %+v", st)
	}
}
