package plugin_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	_ "github.com/open-autoglm/autoglm/internal/plugin/wasm"
	"github.com/open-autoglm/autoglm/internal/plugin/wasm/wasmbuild"
)

func TestMain(m *testing.M) {
	code := m.Run()
	wasmbuild.Cleanup()
	os.Exit(code)
}

// skipUnderRace skips the tests that compile a Wasm module: wazero's compiler, instrumented
// by the race detector, takes minutes per module on two cores. scripts/test.sh runs these
// tests again without the detector ("Wasm plugins" step).
func skipUnderRace(t *testing.T) {
	if raceEnabled {
		t.Skip("compiles a Wasm module: run without -race (scripts/test.sh does)")
	}
}

func TestWasmExampleRewritesRequest(t *testing.T) {
	skipUnderRace(t)
	mod := wasmbuild.Module(t, "./examples/wasm-rewrite")
	g := startGateway(t, fmt.Sprintf(`
plugins:
  - type: wasm
    name: rewrite
    timeout: 2s
    config:
      path: %s
      config: {prefix: "[checked] ", refuse: "weather", signature: " -- sent via autoglm"}
`, mod))
	status, doc := g.call(t, "/v1/chat/completions", `{"model":"glm-4","messages":[{"role":"system","content":"s"},{"role":"user","content":"hello"}]}`)
	if status != 200 {
		t.Fatalf("status %d: %v", status, doc)
	}
	if got := messages(g.up.last(t)); got[1][1] != "[checked] hello" || got[0][1] != "s" {
		t.Errorf("the upstream got %q", got)
	}
	if got := answerText(t, doc); got != "[checked] hello -- sent via autoglm" {
		t.Errorf("answer %q", got)
	}
	// The module splices its prefix into the JSON as it stands: escapes, other messages and
	// their fields come through unchanged, and only the last user message gets it.
	status, doc = g.call(t, "/v1/chat/completions", `{"model":"glm-4","messages":[{"role":"user","content":"first"},{"role":"assistant","content":"ok","name":"bot"},{"role":"user","content":"say \"hi\"\n\u00e9t\u00e9 \ud83d\ude00"}]}`)
	if status != 200 {
		t.Fatalf("status %d: %v", status, doc)
	}
	if diff := cmp.Diff([][2]string{{"user", "first"}, {"assistant", "ok"}, {"user", "[checked] say \"hi\"\nété 😀"}}, messages(g.up.last(t))); diff != "" {
		t.Errorf("the upstream got (-want +got):\n%s", diff)
	}
	status, doc = g.call(t, "/v1/chat/completions", `{"model":"glm-4","messages":[{"role":"user","content":"What is the Weather?"}]}`)
	if code, msg := errorCode(doc); status != 400 || code != "request_refused" || !strings.Contains(msg, "weather") {
		t.Errorf("refusal: %d %q %q", status, code, msg)
	}
}

func TestWasmLimits(t *testing.T) {
	skipUnderRace(t)
	mod := wasmbuild.Module(t, "./internal/plugin/wasm/testdata/misbehave")
	mount := t.TempDir()
	if err := os.WriteFile(filepath.Join(mount, "note.txt"), []byte("granted"), 0o600); err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, fmt.Sprintf(`
plugins:
  - type: wasm
    name: sandboxed
    timeout: 3s
    config: {path: %[1]s, memory_pages: 320, instances: 2}
  - type: wasm
    name: mounted
    timeout: 2s
    config: {path: %[1]s, mounts: {/data: %[2]s}}
`, mod, mount))
	ask := func(text string) (int, string, string) {
		t.Helper()
		status, doc := g.call(t, "/v1/chat/completions", `{"model":"glm-4","messages":[{"role":"user","content":"`+text+`"}]}`)
		code, _ := errorCode(doc)
		if status == 200 {
			return status, "", answerText(t, doc)
		}
		return status, code, ""
	}
	if status, code, _ := ask("loop"); status != 504 || code != "plugin_timeout" {
		t.Errorf("a looping module: %d %q, want 504 plugin_timeout", status, code)
	}
	if status, code, _ := ask("hog"); status != 500 || code != "plugin_failed" {
		t.Errorf("a module exceeding its memory: %d %q, want 500 plugin_failed", status, code)
	}
	if status, code, _ := ask("trap"); status != 500 || code != "plugin_failed" {
		t.Errorf("a module that traps: %d %q, want 500 plugin_failed", status, code)
	}
	// After each failure the instance is replaced: the module answers again.
	if status, _, text := ask("hi"); status != 200 || text != "fine" {
		t.Errorf("after the failures: %d %q", status, text)
	}
	// No file system unless mounted: the first module sees nothing (and answers first).
	if _, _, text := ask("read /data/note.txt"); !strings.HasPrefix(text, "error:") {
		t.Errorf("a module without mounts read a file: %q", text)
	}
	cfg := parseConfig(t, models+fmt.Sprintf(`
plugins:
  - {type: wasm, name: mounted, config: {path: %s, mounts: {/data: %s}}}
`, mod, mount), "http://127.0.0.1:1/v1")
	if err := g.manager.Load(t.Context(), cfg.Plugins); err != nil {
		t.Fatal(err)
	}
	if _, _, text := ask("read /data/note.txt"); text != "read: granted" {
		t.Errorf("a module with a read-only mount: %q", text)
	}
}
