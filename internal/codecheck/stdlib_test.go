package codecheck

import (
	"os/exec"
	"sort"
	"strings"
	"testing"
)

// TestEmbeddedStdlibMatchesToolchain compares the embedded type information's packages with
// the public standard packages of the Go toolchain running the test: a toolchain that adds or
// drops packages needs `go generate ./internal/codecheck`.
func TestEmbeddedStdlibMatchesToolchain(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	out, err := exec.Command(goBin, "list", "std").Output()
	if err != nil {
		t.Skipf("go list std: %v", err)
	}
	var want []string
	for _, p := range strings.Fields(string(out)) {
		// builtin is documentation, unsafe is go/types' own, and runtime/cgo has no export
		// data in the cgo-free build the information is generated from.
		if p != "builtin" && p != "unsafe" && p != "runtime/cgo" && !strings.HasPrefix(p, "vendor/") && !strings.HasPrefix(p, "cmd/") && !strings.Contains("/"+p+"/", "/internal/") {
			want = append(want, p)
		}
	}
	s := &stdImporter{}
	s.once.Do(s.load)
	if s.err != nil {
		t.Fatal(s.err)
	}
	var got []string
	for p := range s.index {
		got = append(got, p)
	}
	sort.Strings(got)
	sort.Strings(want)
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("embedded standard library differs from this toolchain's; run go generate ./internal/codecheck\nembedded: %d packages\ntoolchain: %d packages", len(got), len(want))
	}
}
