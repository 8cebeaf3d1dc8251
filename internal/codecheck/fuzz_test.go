package codecheck

import (
	"context"
	"testing"
)

// FuzzCheck feeds arbitrary text to every checker: none may panic, every diagnostic must have
// a position inside the input (or none), and a failed result must carry an error.
func FuzzCheck(f *testing.F) {
	seeds := []string{
		"package main\nfunc main() {}\n", "func f( {", "{\"a\": [1,", "a: [", "[x]\ny = ", "if then fi",
		"SELECT * FROM", "def f(:\n\treturn '", "fn f<'a>() { r#\"", "R\"x(", "`${a", "/* ", "\"\"\"",
		"\t  \tx\n  y\n", "import \"C\"\n", "package p; import _ \"unsafe\"", "\x00\xff",
	}
	for _, s := range seeds {
		f.Add(s, uint8(0))
	}
	c := New()
	langs := []string{"go", "javascript", "typescript", "jsx", "tsx", "json", "yaml", "toml", "shell", "zsh",
		"mysql", "python", "cpp", "java", "rust", "csharp", "kotlin", "php", "postgresql"}
	// PostgreSQL seeds carry their expected status, checked whenever they come up: the
	// race-enabled unit tests skip PostgreSQL, and this covers it in CI's fuzz step.
	pg := uint8(len(langs) - 1)
	want := map[string]Status{
		"SELECT 1": StatusPassed, "INSERT INTO t (a) VALUES ($1) ON CONFLICT (a) DO NOTHING RETURNING a": StatusPassed,
		"SELECT a::int FROM t WHERE b ILIKE 'x%'": StatusPassed, "select * from t where": StatusFailed,
		"SELECT id FROM users WHERE name ILIKE 'a%' RETURNING id;": StatusFailed, "'": StatusFailed, "$$": StatusFailed,
	}
	for s := range want {
		f.Add(s, pg)
	}
	// Each checker is started once here, before fuzzing: the first PostgreSQL check compiles
	// libpg_query's WebAssembly, which on a busy machine can take longer than the 10 s the
	// fuzzing worker allows one input before it reports the process as deadlocked.
	for _, lang := range langs {
		c.Check(context.Background(), Request{Language: lang, Code: "x"})
	}
	f.Fuzz(func(t *testing.T, src string, li uint8) {
		lang := langs[int(li)%len(langs)]
		res := c.Check(context.Background(), Request{Language: lang, Code: src})
		if w, ok := want[src]; ok && lang == "postgresql" && res.Status != w {
			t.Errorf("%q: status %s, want %s (%v)", src, res.Status, w, res.Diagnostics)
		}
		lines := 1
		for i := 0; i < len(src); i++ {
			if src[i] == '\n' {
				lines++
			}
		}
		for _, d := range res.Diagnostics {
			if d.Line < 0 || d.Line > lines+2 || d.Column < 0 {
				t.Errorf("%s: diagnostic %v outside the input (%d lines)", lang, d, lines)
			}
		}
		if res.Status == StatusFailed && res.Errors() == 0 {
			t.Errorf("%s: failed without an error", lang)
		}
	})
}
