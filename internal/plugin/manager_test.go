package plugin_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/open-autoglm/autoglm/internal/apierr"
	"github.com/open-autoglm/autoglm/internal/auth"
	"github.com/open-autoglm/autoglm/internal/backend"
	"github.com/open-autoglm/autoglm/internal/plugin"
	"github.com/open-autoglm/autoglm/internal/router"
	"github.com/open-autoglm/autoglm/internal/wire"
)

// The task system calls Registry.Do itself, with what it knows in Meta; the caller's key and
// role come from the context. Rules match on both.
func TestHookSeesCallerAndTaskMeta(t *testing.T) {
	cfg := parseConfig(t, models+`
plugins:
  - type: rules
    config:
      rules:
        - match: {roles: [intern], keys: ["sk-ab*"]}
          refuse: "interns cannot use this"
        - match: {routes: [task], metadata: {task.kind: code}}
          inject: {system: "task {{index .Metadata \"code.language\"}}"}
  - type: code_templates
    config:
      languages: {go: {prompt: "In Go: {{.Prompt}}"}}
`, "http://127.0.0.1:1/v1")
	reg, err := router.New(cfg.Models)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	m := plugin.NewManager(plugin.Options{Registry: reg})
	if err := m.Load(context.Background(), cfg.Plugins); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	model, _ := reg.Lookup("glm-4")
	var sent []byte
	next := func(_ context.Context, _ *router.Model, req *router.Request) (*backend.Response, *router.Target, error) {
		sent = req.Body
		return &backend.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}},
			Body: io.NopCloser(strings.NewReader(`{"choices":[{"index":0,"message":{"role":"assistant","content":"ok"}}]}`))}, nil, nil
	}
	body := []byte(`{"model":"glm-4","messages":[{"role":"user","content":"sort"}]}`)
	f, _ := wire.Peek(body)

	ctx := auth.NewContext(context.Background(), &auth.Principal{KeyID: "k1", KeyPrefix: "sk-abc", Role: "intern"})
	_, _, err = m.Do(ctx, model, &router.Request{Op: backend.OpChat, Body: body, Fields: f}, next)
	if err == nil || !strings.Contains(err.Error(), "interns cannot use this") {
		t.Errorf("intern key: err %v", err)
	}
	resp, _, err := m.Do(context.Background(), model, &router.Request{Op: backend.OpChat, Body: body, Fields: f,
		Meta: map[string]string{"route": "task", "task.kind": "code", "code.language": "go"}}, next)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	want := `{"model":"glm-4","messages":[{"role":"system","content":"task go"},{"role":"user","content":"In Go: sort"}]}`
	if string(sent) != want {
		t.Errorf("sent\n %s\nwant\n %s", sent, want)
	}
}

// TestRerouteKeepsAllowList: a rule that routes a request to another model cannot carry a
// credential past its model allow-list: the request is refused as one that named that model
// would be, and a credential allowed both models is routed.
func TestRerouteKeepsAllowList(t *testing.T) {
	cfg := parseConfig(t, models+`
plugins:
  - type: rules
    config:
      rules:
        - match: {}
          route: glm-small
`, "http://127.0.0.1:1/v1")
	reg, err := router.New(cfg.Models)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	m := plugin.NewManager(plugin.Options{Registry: reg})
	if err := m.Load(context.Background(), cfg.Plugins); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	model, _ := reg.Lookup("glm-4")
	var sentTo string
	next := func(_ context.Context, to *router.Model, _ *router.Request) (*backend.Response, *router.Target, error) {
		sentTo = to.Name
		return &backend.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}},
			Body: io.NopCloser(strings.NewReader(`{"choices":[{"index":0,"message":{"role":"assistant","content":"ok"}}]}`))}, nil, nil
	}
	body := []byte(`{"model":"glm-4","messages":[{"role":"user","content":"hi"}]}`)
	f, _ := wire.Peek(body)
	do := func(p *auth.Principal) error {
		sentTo = ""
		ctx := auth.NewContext(context.Background(), p)
		resp, _, err := m.Do(ctx, model, &router.Request{Op: backend.OpChat, Body: body, Fields: f}, next)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}

	p := &auth.Principal{KeyID: "k1", Role: "user", Models: []string{"glm-4"}}
	err = do(p)
	want := p.CheckModel("glm-small")
	var ae, we *apierr.Error
	if !errors.As(err, &ae) || !errors.As(want, &we) || ae.Kind != we.Kind || ae.Code != we.Code || ae.Message != we.Message || sentTo != "" {
		t.Fatalf("key limited to glm-4, rerouted to glm-small: err %v (want %v), sent to %q", err, want, sentTo)
	}
	if err := do(&auth.Principal{KeyID: "k2", Role: "user", Models: []string{"glm-4", "glm-small"}}); err != nil || sentTo != "glm-small" {
		t.Fatalf("key allowed both: err %v, sent to %q", err, sentTo)
	}
	if err := do(&auth.Principal{KeyID: "k3", Role: "user"}); err != nil || sentTo != "glm-small" {
		t.Fatalf("key without an allow-list: err %v, sent to %q", err, sentTo)
	}
}
