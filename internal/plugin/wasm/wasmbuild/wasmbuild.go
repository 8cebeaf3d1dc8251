// Package wasmbuild compiles Go packages to WebAssembly plugin modules for tests: GOOS=wasip1
// GOARCH=wasm, built as a WASI reactor (-buildmode=c-shared), once per test process.
package wasmbuild

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var (
	mu    sync.Mutex
	built = map[string]string{}
	dir   string
)

// Module builds the package at pkg (a path relative to the module root, such as
// "./examples/wasm-rewrite") and returns the .wasm file. The file lives in a directory of
// the test process, removed by Cleanup.
func Module(t testing.TB, pkg string) string {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if f, ok := built[pkg]; ok {
		return f
	}
	root, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	if dir == "" {
		if dir, err = os.MkdirTemp("", "autoglm-wasm-"); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(dir, strings.NewReplacer("/", "_", ".", "_").Replace(pkg)+".wasm")
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", out, pkg)
	cmd.Dir = filepath.Dir(strings.TrimSpace(string(root)))
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building %s for wasip1: %v\n%s", pkg, err, b)
	}
	built[pkg] = out
	return out
}

// Cleanup removes the built modules; call it from TestMain after the tests ran.
func Cleanup() {
	mu.Lock()
	defer mu.Unlock()
	if dir != "" {
		os.RemoveAll(dir)
	}
}
