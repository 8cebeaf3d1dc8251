package sandbox

import (
	"context"
	"strings"
	"testing"

	"github.com/open-autoglm/autoglm/internal/codecheck"
)

// TestExternalCheckers: a block the tokenizer-level check passes is caught by the real parser
// run in the sandbox, with its position.
func TestExternalCheckers(t *testing.T) {
	sb := need(t, Options{})
	c := codecheck.New().WithExternal(NewExternal(sb))
	ctx := context.Background()
	tests := []struct {
		lang, good, bad string
		line            int
	}{
		{"python", "def f(x):\n    return x + 1\n", "def f(x):\n    return x +\n", 2},
		{"cpp", "#include <vector>\nint f() { std::vector<int> v; return (int)v.size(); }\n", "#include <vector>\nint f() { std::vector<int> v; return v.sizee(); }\n", 2},
		{"c", "int f(void) { return 1; }\n", "int f(void) { return undefined_name; }\n", 1},
	}
	for _, tt := range tests {
		t.Run(tt.lang, func(t *testing.T) {
			if res := c.Check(ctx, codecheck.Request{Language: tt.lang, Code: tt.good}); res.Status != codecheck.StatusPassed {
				t.Fatalf("good code: %+v", res)
			}
			plain := codecheck.New().Check(ctx, codecheck.Request{Language: tt.lang, Code: tt.bad})
			res := c.Check(ctx, codecheck.Request{Language: tt.lang, Code: tt.bad})
			if plain.Status != codecheck.StatusPassed {
				t.Fatalf("the in-process check already fails this: %+v", plain)
			}
			if res.Status != codecheck.StatusFailed || res.Diagnostics[0].Line != tt.line || !strings.Contains(res.Checker, "+") {
				t.Fatalf("external check: %+v", res)
			}
		})
	}
}
