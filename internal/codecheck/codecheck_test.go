package codecheck

import (
	"context"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
)

func check(t testing.TB, c *Checker, lang, code string) Result {
	t.Helper()
	return c.Check(context.Background(), Request{Language: lang, Code: code})
}

func TestCheckers(t *testing.T) {
	c := New()
	tests := []struct {
		lang, code string
		status     Status
		line, col  int    // of the first error, when failed
		msg        string // part of the first error's message
	}{
		{"go", "package main\n\nfunc main() {}\n", StatusPassed, 0, 0, ""},
		{"go", "func Add(a, b int) int { return a + b }", StatusPassed, 0, 0, ""},
		{"golang", "x := 1\nfmt.Println(x)", StatusFailed, 2, 1, "undefined: fmt"},
		{"go", "package main\n\nfunc f() int {\n\treturn \"s\"\n}\n", StatusFailed, 4, 9, "cannot use"},
		{"go", "package main\n\nfunc f() {\n\tif true {\n}\n", StatusFailed, 5, 3, "expected '}'"},
		{"go", "package main\n\nimport \"strings\"\n\nfunc f() []string { return strings.Fields(\"a b\") }\n", StatusPassed, 0, 0, ""},
		{"go", "package main\n\nimport \"net/http\"\n\nvar _ http.Handler = http.NotFoundHandler()\n", StatusPassed, 0, 0, ""},
		{"go", "package main\n\nimport \"github.com/stretchr/testify/assert\"\n\nfunc f() { assert.New(nil) }\n", StatusPassed, 0, 0, ""},
		{"go", "package main\n\nimport \"os\"\n", StatusFailed, 3, 8, "imported and not used"},
		{"go", "package main\n\nfunc f() { x := strings.ToUpper(\"a\"); _ = x }\n", StatusFailed, 3, 17, "import of package strings missing"},
		{"javascript", "const f = (a) => a + 1;\nconsole.log(f(1));\n", StatusPassed, 0, 0, ""},
		{"js", "function f( {\n  return 1;\n}\n", StatusFailed, 2, 10, ""},
		{"javascript", "const App = () => <div>hi</div>;\n", StatusPassed, 0, 0, ""},
		{"typescript", "function f(a: number): string { return String(a) }\n", StatusPassed, 0, 0, ""},
		{"ts", "let x: = 1;\n", StatusFailed, 1, 8, ""},
		{"tsx", "const C = (p: {n: number}) => <b>{p.n}</b>;\n", StatusPassed, 0, 0, ""},
		{"json", "{\"a\": [1, 2, {\"b\": null}]}", StatusPassed, 0, 0, ""},
		{"json", "{\"a\": 1,\n \"b\": }", StatusFailed, 2, 7, "invalid character"},
		{"json", "{\"a\": [1, 2", StatusFailed, 1, 12, "unexpected end"},
		{"yaml", "a: 1\nb:\n  - x\n  - y\n---\nc: d\n", StatusPassed, 0, 0, ""},
		{"yml", "a: 1\n b: 2\n", StatusFailed, 2, 0, "mapping values"},
		{"toml", "[server]\nport = 8080\nname = \"x\"\n", StatusPassed, 0, 0, ""},
		{"toml", "[server]\nport = = 8080\n", StatusFailed, 2, 8, ""},
		{"bash", "set -euo pipefail\nfor f in *.go; do\n  echo \"$f\"\ndone\n", StatusPassed, 0, 0, ""},
		{"sh", "if [ -f x ]; then\n  echo y\n", StatusFailed, 1, 1, "must end with"},
		{"mysql", "SELECT id, name FROM users WHERE id = 1 LIMIT 10;", StatusPassed, 0, 0, ""},
		{"mysql", "SELECT id FROM users WHERE;", StatusFailed, 1, 27, "mysql"},
		{"postgresql", "SELECT id FROM users WHERE name ILIKE 'a%' RETURNING id;", StatusFailed, 1, 44, "postgresql"},
		{"postgresql", "INSERT INTO t (a) VALUES (1) ON CONFLICT (a) DO NOTHING RETURNING a;", StatusPassed, 0, 0, ""},
		{"sql", "SELECT 1::int;", StatusPassed, 0, 0, ""},
		{"sql", "SELECT a FROM t WHERE a IN (1, 2;", StatusFailed, 1, 0, ""},
		{"python", "def f(x):\n    return [x for x in range(3)]\n", StatusPassed, 0, 0, ""},
		{"python", "def f(x):\n    return (x + 1\n", StatusFailed, 2, 12, "never closed"},
		{"python", "s = 'abc\nprint(s)\n", StatusFailed, 1, 5, "not terminated"},
		{"python", "if x:\n        a = 1\n    b = 2\n", StatusFailed, 3, 1, "unindent"},
		{"python", "if x:\n\ta = 1\n        b = 2\n", StatusFailed, 3, 1, "inconsistent use of tabs"},
		{"python", "x = f\"{d['k']}\"\ny = '''a\n(b\n'''\n", StatusPassed, 0, 0, ""},
		{"rust", "fn f<'a>(s: &'a str) -> char { let c = '}'; c }\n", StatusPassed, 0, 0, ""},
		{"rust", "fn f() { let s = r#\"a \"}\" b\"#; }\n", StatusPassed, 0, 0, ""},
		{"rust", "fn f() { let v = vec![1, 2; }\n", StatusFailed, 1, 29, "unexpected"},
		{"cpp", "int main() { auto s = R\"x(a)\" b)x\"; char c = '{'; int n = 1'000; }\n", StatusPassed, 0, 0, ""},
		{"cpp", "int main() { /* } */ return 0;\n", StatusFailed, 1, 12, "never closed"},
		{"java", "class A { String s = \"\"\"\n  {\n  \"\"\"; }\n", StatusPassed, 0, 0, ""},
		{"cobol", "DISPLAY 'HELLO'.", StatusUnsupported, 0, 0, ""},
		{"go", "  \n", StatusSkipped, 0, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.lang+"/"+strings.SplitN(tt.code, "\n", 2)[0], func(t *testing.T) {
			if raceEnabled && (tt.lang == "postgresql" || tt.lang == "sql") {
				// libpg_query runs in wazero, whose compiler takes over a minute under the
				// race detector on two cores; these cases run without it (FuzzCheck's
				// PostgreSQL seeds check the same in the fuzz step of CI).
				t.Skip("PostgreSQL parser under the race detector")
			}
			res := check(t, c, tt.lang, tt.code)
			if res.Status != tt.status {
				t.Fatalf("status %s, want %s; diagnostics %v", res.Status, tt.status, res.Diagnostics)
			}
			if tt.status == StatusPassed && res.Errors() != 0 {
				t.Fatalf("passed with errors: %v", res.Diagnostics)
			}
			if tt.status == StatusPassed || tt.status == StatusFailed {
				if res.Checker == "" || res.Version == "" {
					t.Errorf("checker %q version %q: both must be set", res.Checker, res.Version)
				}
			}
			if tt.status != StatusFailed {
				return
			}
			var first *Diagnostic
			for i := range res.Diagnostics {
				if res.Diagnostics[i].Severity == SeverityError {
					first = &res.Diagnostics[i]
					break
				}
			}
			if first == nil {
				t.Fatalf("failed without an error: %v", res.Diagnostics)
			}
			if tt.line != 0 && first.Line != tt.line || tt.col != 0 && first.Column != tt.col {
				t.Errorf("first error at %d:%d, want %d:%d (%v)", first.Line, first.Column, tt.line, tt.col, res.Diagnostics)
			}
			if !strings.Contains(first.Message, tt.msg) {
				t.Errorf("first error %q, want it to contain %q", first.Message, tt.msg)
			}
		})
	}
}

func TestStubbedImportsAreWarnings(t *testing.T) {
	res := check(t, New(), "go", "package main\n\nimport (\n\t\"github.com/google/uuid\"\n\tyaml \"go.yaml.in/yaml/v3\"\n)\n\nfunc f() (string, error) {\n\t_, err := yaml.Marshal(1)\n\treturn uuid.NewString(), err\n}\n")
	if res.Status != StatusPassed {
		t.Fatalf("status %s: %v", res.Status, res.Diagnostics)
	}
	warned := map[string]bool{}
	for _, d := range res.Diagnostics {
		if d.Severity == SeverityWarning {
			warned[d.Message] = true
		}
	}
	for _, want := range []string{"undefined: uuid.NewString", "undefined: yaml.Marshal"} {
		if !warned[want] {
			t.Errorf("no warning %q in %v", want, res.Diagnostics)
		}
	}
}

func TestTruncationFlaggedForEveryLanguage(t *testing.T) {
	c := New()
	for _, lang := range append(c.Languages(), "cobol") {
		res := c.Check(context.Background(), Request{Language: lang, Code: "x", FinishReason: "length"})
		if !res.Truncated || res.Status != StatusFailed {
			t.Errorf("%s: truncated %v status %s, want truncated and failed", lang, res.Truncated, res.Status)
		}
		if res.Errors() == 0 || !strings.Contains(res.Diagnostics[len(res.Diagnostics)-1].Message, "length") {
			t.Errorf("%s: no truncation error in %v", lang, res.Diagnostics)
		}
	}
	if res := check(t, c, "go", "package main\n"); res.Truncated {
		t.Error("truncated without finish_reason length")
	}
}

// TestConcurrentGoChecks type-checks programs importing overlapping standard packages from
// many goroutines; with -race this proves the shared importer is safe.
func TestConcurrentGoChecks(t *testing.T) {
	c := New()
	srcs := []string{
		"package main\nimport (\"io\"; \"os\")\nvar _ io.Reader = os.Stdin\n",
		"package main\nimport (\"net/http\"; \"io\")\nfunc f(r *http.Request) io.ReadCloser { return r.Body }\n",
		"package main\nimport \"bufio\"\nimport \"strings\"\nvar _ = bufio.NewScanner(strings.NewReader(\"\"))\n",
		"package main\nimport \"encoding/json\"\nimport \"bytes\"\nvar _ = json.NewDecoder(new(bytes.Buffer))\n",
	}
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			if res := check(t, c, "go", srcs[i%len(srcs)]); res.Status != StatusPassed {
				t.Errorf("%s: %v", srcs[i%len(srcs)], res.Diagnostics)
			}
		})
	}
	wg.Wait()
}

// TestParserVersions keeps the versions reported with each result equal to go.mod's.
func TestParserVersions(t *testing.T) {
	mod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	for path, v := range map[string]string{
		"github.com/evanw/esbuild":           esbuildVersion,
		"go.yaml.in/yaml/v3":                 yamlVersion,
		"github.com/pelletier/go-toml/v2":    tomlVersion,
		"mvdan.cc/sh/v3":                     shVersion,
		"github.com/pingcap/tidb/pkg/parser": tidbParserVersion,
		"github.com/wasilibs/go-pgquery":     pgqueryVersion,
	} {
		if !strings.Contains(string(mod), path+" "+v+"\n") && !strings.Contains(string(mod), path+" "+v+" ") {
			t.Errorf("go.mod does not require %s %s: update the constant", path, v)
		}
	}
	if _, ok := debug.ReadBuildInfo(); !ok {
		t.Log("no build info")
	}
}
