package eval

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/open-autoglm/autoglm/internal/humanevalx"
	"github.com/open-autoglm/autoglm/internal/sandbox"
)

// entryName returns the name of the function a problem asks for, from its declaration.
func entryName(p humanevalx.Problem) string {
	sig := lastDeclLine(p.Declaration)
	if i := strings.Index(sig, "("); i > 0 {
		f := strings.Fields(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(sig[:i]), "=")))
		if len(f) > 0 {
			name := f[len(f)-1]
			name = strings.TrimLeft(name, "*&")
			if j := strings.LastIndex(name, "::"); j >= 0 {
				name = name[j+2:]
			}
			return name
		}
	}
	return ""
}

func lastDeclLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], "(") {
			return lines[i]
		}
	}
	return ""
}

var (
	goPackage    = regexp.MustCompile(`(?m)^package\s+\w+\s*$`)
	goImportLine = regexp.MustCompile(`(?m)^import\s+(\w+\s+)?"[^"]+"\s*$`)
	goImportBlk  = regexp.MustCompile(`(?ms)^import\s*\((.*?)\)\s*$`)
	goImportPath = regexp.MustCompile(`"([^"]+)"`)
)

// Assemble turns a model's code into the program the tests run against. When code defines the
// entry function itself, it replaces the prompt's declaration and body (the prompt's text
// before the declaration — imports, helpers — is kept); otherwise code is taken as the body
// that completes the prompt.
func Assemble(lang string, p humanevalx.Problem, code string) string {
	name := entryName(p)
	if name == "" || !definesEntry(lang, code, name) {
		return p.Solution(lang, code)
	}
	head := p.Prompt
	if sig := strings.TrimSpace(lastDeclLine(p.Declaration)); sig != "" {
		if i := strings.Index(head, sig); i >= 0 {
			head = head[:i]
		} else if i := strings.LastIndex(head, name+"("); i >= 0 {
			head = head[:strings.LastIndex(head[:i], "\n")+1]
		}
	}
	if lang != "go" {
		return head + code + "\n"
	}
	// Go: one package clause and one import block, from the model's imports and the
	// standard packages the code refers to.
	var imports []string
	collect := func(s string) string {
		s = goImportBlk.ReplaceAllStringFunc(s, func(blk string) string {
			for _, m := range goImportPath.FindAllStringSubmatch(blk, -1) {
				imports = append(imports, m[1])
			}
			return ""
		})
		return goImportLine.ReplaceAllStringFunc(s, func(line string) string {
			imports = append(imports, goImportPath.FindStringSubmatch(line)[1])
			return ""
		})
	}
	code = collect(goPackage.ReplaceAllString(code, ""))
	head = collect(head)
	sol := humanevalx.Problem{Prompt: head}.Solution("go", code)
	return addGoImports(sol, imports)
}

// addGoImports adds paths to the import block of a Go file written by Solution.
func addGoImports(src string, paths []string) string {
	if len(paths) == 0 {
		return src
	}
	have := map[string]bool{}
	body, rest, hasBlock := strings.Cut(src, "import (\n")
	if hasBlock {
		end := strings.Index(rest, ")")
		for _, m := range goImportPath.FindAllStringSubmatch(rest[:end], -1) {
			have[m[1]] = true
		}
	}
	var add []string
	for _, p := range paths {
		if !have[p] {
			have[p] = true
			add = append(add, fmt.Sprintf("\t%q\n", p))
		}
	}
	if len(add) == 0 {
		return src
	}
	if hasBlock {
		return body + "import (\n" + strings.Join(add, "") + rest
	}
	pkg, after, _ := strings.Cut(src, "\n")
	return pkg + "\n\nimport (\n" + strings.Join(add, "") + ")\n" + after
}

func definesEntry(lang, code, name string) bool {
	q := regexp.QuoteMeta(name)
	var re string
	switch lang {
	case "go":
		re = `(?m)^func\s+` + q + `\s*[\[(]`
	case "python":
		re = `(?m)^def\s+` + q + `\s*\(`
	case "js":
		re = `(?m)^\s*(function\s+` + q + `\s*\(|(const|let|var)\s+` + q + `\s*=)`
	default: // C++, Java, Rust: a definition with a body
		re = `\b` + q + `\s*\([^;]*\)\s*[^;]*\{`
	}
	return regexp.MustCompile(re).MatchString(code)
}

// jsSeededRandom replaces Math.random before a JavaScript problem's tests run with a
// generator of fixed seed (xorshift32), so that a run's verdict does not depend on chance.
// The Python tests of the benchmark seed their generator (random.Random(42)); the JavaScript
// port of problem 32 draws its random polynomials from Math.random, and with some draws the
// dataset's own canonical solution misses its 1e-4 bound.
const jsSeededRandom = `Math.random = (() => { let s = 42; return () => { s ^= s << 13; s ^= s >>> 17; s ^= s << 5; return (s >>> 0) / 4294967296; }; })();
`

// TestSpec returns the sandbox run of a program's tests, or ok=false for languages whose tests
// are not run here (Java, Rust).
func TestSpec(lang string, p humanevalx.Problem, program string) (sandbox.Spec, bool) {
	switch lang {
	case "python":
		return sandbox.Spec{Files: map[string][]byte{"main.py": []byte(program + "\n\n" + p.Test + "\n")},
			Command: []string{"/usr/bin/python3", "main.py"}}, true
	case "js":
		// console.assert prints and goes on: an assertion failure makes the run fail here.
		return sandbox.Spec{Files: map[string][]byte{"main.js": []byte(program + "\n\n" + jsSeededRandom + p.Test + "\n")},
			Command: []string{"/bin/sh", "-c", `node main.js 2>err.txt; s=$?; cat err.txt >&2; if grep -q "Assertion failed" err.txt; then exit 1; fi; exit $s`}}, true
	case "cpp":
		return sandbox.Spec{Files: map[string][]byte{"main.cpp": []byte(program + "\n\n" + p.Test + "\n")},
			Command: []string{"/bin/sh", "-c", "g++ -std=c++17 -O0 -o main main.cpp && ./main"},
			Limits:  sandbox.Limits{MemoryBytes: 2 << 30}}, true
	case "go":
		// The tests import testify's assert; a minimal stand-in (Equal through
		// reflect.DeepEqual, as testify compares) is provided as a local module.
		src := strings.Replace(program, "package main\n", p.TestSetup, 1)
		src = mergeGoImportBlocks(src)
		return sandbox.Spec{
			Files: map[string][]byte{
				"go.mod":                   []byte("module humaneval\n\ngo 1.21\n\nrequire github.com/stretchr/testify v1.0.0\n\nreplace github.com/stretchr/testify => ./testify\n"),
				"testify/go.mod":           []byte("module github.com/stretchr/testify\n\ngo 1.21\n"),
				"testify/assert/assert.go": []byte(assertShim),
				"main_test.go":             []byte(src + "\n\n" + p.Test + "\n"),
			},
			Command: []string{"go", "test", "-count=1", "."},
			Env:     []string{"GOFLAGS=-mod=mod", "GOPROXY=off", "GOTOOLCHAIN=local", "GOTELEMETRY=off", "CGO_ENABLED=0", "GOPATH=/tmp/work/gopath"},
			Limits:  sandbox.Limits{MemoryBytes: 8 << 30, Timeout: 120 * time.Second},
		}, true
	}
	return sandbox.Spec{}, false
}

// mergeGoImportBlocks joins the import blocks of a Go file into the first (the test setup's and
// the solution's).
func mergeGoImportBlocks(src string) string {
	blocks := goImportBlk.FindAllStringSubmatchIndex(src, -1)
	if len(blocks) < 2 {
		return src
	}
	var paths []string
	seen := map[string]bool{}
	for _, b := range blocks {
		for _, m := range goImportPath.FindAllStringSubmatch(src[b[2]:b[3]], -1) {
			if !seen[m[1]] {
				seen[m[1]] = true
				paths = append(paths, fmt.Sprintf("\t%q\n", m[1]))
			}
		}
	}
	var out strings.Builder
	last := 0
	for i, b := range blocks {
		out.WriteString(src[last:b[0]])
		if i == 0 {
			out.WriteString("import (\n" + strings.Join(paths, "") + ")\n")
		}
		last = b[1]
	}
	out.WriteString(src[last:])
	return out.String()
}

const assertShim = `// Package assert is a minimal stand-in for testify's assert, enough for HumanEval-X's tests.
package assert

import (
	"bytes"
	"reflect"
	"testing"
)

type Assertions struct{ t *testing.T }

func New(t *testing.T) *Assertions { return &Assertions{t: t} }

func equal(a, b any) bool {
	if x, ok := a.([]byte); ok {
		if y, ok := b.([]byte); ok {
			return bytes.Equal(x, y)
		}
	}
	return reflect.DeepEqual(a, b)
}

func (a *Assertions) Equal(expected, actual any, msg ...any) bool {
	a.t.Helper()
	if !equal(expected, actual) {
		a.t.Errorf("not equal: expected %#v, actual %#v %v", expected, actual, msg)
		return false
	}
	return true
}
`
