package plugin_test

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/open-autoglm/autoglm/internal/plugin"
)

// reloads records the outcome of each reload.
type reloads struct {
	mu   sync.Mutex
	errs []error
}

func (r *reloads) add(err error) {
	r.mu.Lock()
	r.errs = append(r.errs, err)
	r.mu.Unlock()
}

// wait waits for the n-th reload and returns its error.
func (r *reloads) wait(t *testing.T, n int) error {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r.mu.Lock()
		if len(r.errs) >= n {
			err := r.errs[n-1]
			r.mu.Unlock()
			return err
		}
		r.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("reload %d did not happen", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestReloadFromFile(t *testing.T) {
	up := &upstream{}
	g := startGatewayWith(t, up, "")
	path := filepath.Join(t.TempDir(), "autoglm.yaml")
	write := func(s string) {
		t.Helper()
		// Write a new file and rename it over the old one, as editors and config managers do.
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, []byte(models+s), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	write("")
	rl := plugin.NewReloader(path, g.manager, 10*time.Millisecond)
	t.Setenv("UP", "http://127.0.0.1:1/v1")
	var got reloads
	rl.OnReload(got.add)
	done := make(chan struct{})
	ctx, cancel := contextWithCancel()
	go func() { rl.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	system := func() string {
		t.Helper()
		g.call(t, "/v1/chat/completions", `{"model":"glm-4","messages":[{"role":"user","content":"hi"}]}`)
		m := messages(up.last(t))
		if m[0][0] == "system" {
			return m[0][1]
		}
		return ""
	}
	if s := system(); s != "" {
		t.Fatalf("system %q before any plugin", s)
	}
	write(`
plugins:
  - {type: instructions, config: {rules: [{system: "v1"}]}}
`)
	if err := got.wait(t, 1); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if s := system(); s != "v1" {
		t.Errorf("after the edit: system %q, want v1", s)
	}
	// A bad file: the old chain stays, and the reason is given.
	write(`
plugins:
  - {type: instructions, config: {rules: [{sytem: "v2"}]}}
`)
	err := got.wait(t, 2)
	if err == nil || !strings.Contains(err.Error(), `unknown key "sytem"`) {
		t.Errorf("bad file: %v", err)
	}
	if !strings.Contains(g.logs.String(), "the previous configuration stays in force") {
		t.Error("the failed reload was not logged")
	}
	if s := system(); s != "v1" {
		t.Errorf("after a bad file: system %q, want the old v1", s)
	}
	write("models: [{name: x}]\n")
	if err := got.wait(t, 3); err == nil {
		t.Error("a file that fails the whole configuration's validation was accepted")
	}
	// SIGHUP (Trigger) reloads even when polling would not notice.
	write(`
plugins:
  - {type: instructions, config: {rules: [{system: "v3"}]}}
`)
	rl.Trigger()
	deadline := time.Now().Add(10 * time.Second)
	for system() != "v3" {
		if time.Now().After(deadline) {
			t.Fatal("the chain never became v3")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
