package hello_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/open-autoglm/autoglm/internal/backend"
	"github.com/open-autoglm/autoglm/internal/config"
	"github.com/open-autoglm/autoglm/internal/plugin"
	"github.com/open-autoglm/autoglm/internal/router"
	"github.com/open-autoglm/autoglm/internal/wire"

	_ "github.com/open-autoglm/autoglm/examples/plugin-hello"
	_ "github.com/open-autoglm/autoglm/internal/backend/openai"
)

func TestRegisteredAndAnswers(t *testing.T) {
	if _, ok := plugin.Lookup("hello"); !ok {
		t.Fatal("importing the package did not register the hello plugin")
	}
	cfg, err := config.Parse([]byte(`
models:
  - name: m
    backends: [{type: openai, base_url: "http://127.0.0.1:1/v1", model: m}]
plugins:
  - {type: hello, config: {greeting: "Hi from {{.Model}}", signature: " (ok)"}}
`), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
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
	model, _ := reg.Lookup("m")
	upstream := func(_ context.Context, _ *router.Model, _ *router.Request) (*backend.Response, *router.Target, error) {
		return &backend.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}},
			Body: io.NopCloser(strings.NewReader(`{"choices":[{"index":0,"message":{"role":"assistant","content":"model says"}}]}`))}, nil, nil
	}
	for _, tc := range []struct{ say, want string }{{"Hello", "Hi from m"}, {"what time is it", "model says (ok)"}} {
		body := []byte(`{"model":"m","messages":[{"role":"user","content":"` + tc.say + `"}]}`)
		f, _ := wire.Peek(body)
		resp, _, err := m.Do(context.Background(), model, &router.Request{Op: backend.OpChat, Body: body, Fields: f}, upstream)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(b), `"content":"`+tc.want+`"`) {
			t.Errorf("%q: answer %s, want %q", tc.say, b, tc.want)
		}
	}
}

// TestOneImportLineBuild builds the stock autoglm command with one more file holding the
// blank import, as a team would, and checks that the binary lists the plugin.
func TestOneImportLineBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the whole command")
	}
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Dir(strings.TrimSpace(string(gomod)))
	dir := t.TempDir()
	extra := filepath.Join(dir, "hello_import.go")
	if err := os.WriteFile(extra, []byte("package main\n\nimport _ \"github.com/open-autoglm/autoglm/examples/plugin-hello\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	overlay := filepath.Join(dir, "overlay.json")
	target := filepath.Join(root, "cmd", "autoglm", "hello_import.go")
	if err := os.WriteFile(overlay, []byte(`{"Replace":{`+quote(target)+`:`+quote(extra)+`}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "autoglm")
	build := exec.Command("go", "build", "-overlay", overlay, "-o", bin, "./cmd/autoglm")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "plugins").Output()
	if err != nil {
		t.Fatal(err)
	}
	types := strings.Fields(string(out))
	for _, want := range []string{"hello", "redact", "wasm"} {
		found := false
		for _, ty := range types {
			found = found || ty == want
		}
		if !found {
			t.Errorf("autoglm plugins lists %q, missing %q", types, want)
		}
	}
}

func quote(s string) string { return `"` + strings.ReplaceAll(s, `\`, `\\`) + `"` }
