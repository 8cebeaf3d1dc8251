// Package codecheck checks generated code without executing it: each language's parser (and for
// Go the type checker) runs in-process, in pure Go, and reports diagnostics with a position and a
// severity. Languages without a Go parser get a tokenizer-level check that reports only what is
// certainly wrong (an unbalanced bracket, an unterminated string, inconsistent indentation).
//
// Nothing here runs the code or starts a process; see package sandbox for checks that do.
package codecheck

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/open-autoglm/autoglm/api"
)

// The result types are the public api package's, since task results carry them to clients.

// Status is the outcome of checking one block.
type Status = api.CodeCheckStatus

// Statuses.
const (
	// StatusPassed: the checker found no error (warnings may remain).
	StatusPassed = api.CheckPassed
	// StatusFailed: at least one diagnostic has severity error.
	StatusFailed = api.CheckFailed
	// StatusSkipped: the block was not checked (empty, or larger than MaxCodeBytes).
	StatusSkipped = api.CheckSkipped
	// StatusUnsupported: no checker knows the language.
	StatusUnsupported = api.CheckUnsupported
)

// Severity of a diagnostic.
type Severity = api.Severity

// Severities. Only errors make a block fail and count in a repair.
const (
	SeverityError   = api.SeverityError
	SeverityWarning = api.SeverityWarning
)

// Diagnostic is one finding. Line and Column are 1-based (Column counts bytes); 0 means the
// position is unknown.
type Diagnostic = api.CodeDiagnostic

// Result is the outcome of checking one block of code; its Errors method counts the
// diagnostics of severity error.
type Result = api.CodeCheck

// Request is one block to check.
type Request struct {
	Language string
	Code     string
	// FinishReason is the generation's finish_reason when the code was generated; "length"
	// marks the block as truncated for every language.
	FinishReason string
}

// Limits.
const (
	// MaxCodeBytes is the largest block checked; larger ones are skipped.
	MaxCodeBytes = 1 << 20
	// maxDiagnostics caps the diagnostics kept per block.
	maxDiagnostics = 50
)

// checker checks source code of one family of languages. Implementations are safe for
// concurrent use and never execute the code.
type checker interface {
	// check returns the diagnostics for src as lang (a canonical name the checker declared).
	check(ctx context.Context, lang, src string) []Diagnostic
	// name and version of the underlying parser.
	name(lang string) (string, string)
}

// Checker checks blocks in every supported language. The zero value is not usable; use New.
// A Checker is safe for concurrent use and keeps the standard library's Go type information,
// once loaded, for its lifetime.
type Checker struct {
	byLang   map[string]checker
	external External
}

// External is a checker outside the process, such as a compiler run in a sandbox. The
// Checker consults it for a block its own check passed, since a real parser sees what a
// tokenizer cannot.
type External interface {
	// Check checks src as lang (a canonical name). ok is false when the external checker has
	// nothing for lang or could not run; then the in-process result stands.
	Check(ctx context.Context, lang, src string) (diags []Diagnostic, name, version string, ok bool)
}

// WithExternal returns a Checker that also consults e.
func (c *Checker) WithExternal(e External) *Checker {
	cc := *c
	cc.external = e
	return &cc
}

// New returns a Checker for every supported language.
func New() *Checker {
	c := &Checker{byLang: map[string]checker{}}
	add := func(k checker, langs ...string) {
		for _, l := range langs {
			c.byLang[l] = k
		}
	}
	add(newGoChecker(), "go")
	add(esbuildChecker{}, "javascript", "typescript", "jsx", "tsx")
	add(jsonChecker{}, "json")
	add(yamlChecker{}, "yaml")
	add(tomlChecker{}, "toml")
	add(shellChecker{}, "bash", "shell", "zsh")
	add(sqlChecker{}, "sql", "mysql", "postgresql")
	for _, l := range tokenLanguages() {
		add(tokenChecker{}, l)
	}
	return c
}

// aliases maps common names and fence tags to the canonical language names.
var aliases = map[string]string{
	"golang": "go", "js": "javascript", "node": "javascript", "nodejs": "javascript", "mjs": "javascript",
	"cjs": "javascript", "ecmascript": "javascript", "ts": "typescript", "mts": "typescript", "cts": "typescript",
	"yml": "yaml", "sh": "shell", "posix": "shell", "ksh": "shell", "console": "shell", "jsonc": "json", "json5": "json",
	"postgres": "postgresql", "psql": "postgresql", "pgsql": "postgresql", "plpgsql": "postgresql", "mariadb": "mysql",
	"tidb": "mysql", "sqlite": "sql", "sqlite3": "sql", "py": "python", "python3": "python", "py3": "python",
	"c++": "cpp", "cxx": "cpp", "cc": "cpp", "hpp": "cpp", "h": "c", "rs": "rust", "kt": "kotlin", "kts": "kotlin",
	"cs": "csharp", "c#": "csharp", "rb": "ruby", "golang-test": "go",
}

// Canonical returns the canonical name of a language name or fence tag (lower-cased, aliases
// resolved). It does not say whether the language is supported.
func Canonical(lang string) string {
	l := strings.ToLower(strings.TrimSpace(lang))
	if a, ok := aliases[l]; ok {
		return a
	}
	return l
}

// Languages lists the canonical names the Checker supports, sorted.
func (c *Checker) Languages() []string {
	out := make([]string, 0, len(c.byLang))
	for l := range c.byLang {
		out = append(out, l)
	}
	sort.Strings(out)
	return out
}

// Supports reports whether lang (any alias) has a checker.
func (c *Checker) Supports(lang string) bool {
	_, ok := c.byLang[Canonical(lang)]
	return ok
}

// Check checks one block. It never runs the code.
func (c *Checker) Check(ctx context.Context, req Request) Result {
	lang := Canonical(req.Language)
	res := Result{Language: lang, Diagnostics: []Diagnostic{}}
	if req.FinishReason == "length" {
		res.Truncated = true
	}
	k, ok := c.byLang[lang]
	switch {
	case !ok:
		res.Status, res.Reason = StatusUnsupported, fmt.Sprintf("no checker for language %q", lang)
	case strings.TrimSpace(req.Code) == "":
		res.Status, res.Reason = StatusSkipped, "empty block"
	case len(req.Code) > MaxCodeBytes:
		res.Status, res.Reason = StatusSkipped, fmt.Sprintf("block larger than %d bytes", MaxCodeBytes)
	default:
		res.Checker, res.Version = k.name(lang)
		res.Diagnostics = k.check(ctx, lang, req.Code)
		sort.SliceStable(res.Diagnostics, func(i, j int) bool {
			a, b := res.Diagnostics[i], res.Diagnostics[j]
			if a.Line != b.Line {
				return a.Line < b.Line
			}
			return a.Column < b.Column
		})
		// A checker may count lines its own way (YAML breaks lines at a lone \r too); a
		// position past the last line of the block points at its last line.
		lines := strings.Count(req.Code, "\n") + 1
		for i := range res.Diagnostics {
			if res.Diagnostics[i].Line > lines {
				res.Diagnostics[i].Line, res.Diagnostics[i].Column = lines, 0
			}
		}
		if len(res.Diagnostics) > maxDiagnostics {
			res.Diagnostics = res.Diagnostics[:maxDiagnostics]
		}
		if res.Diagnostics == nil {
			res.Diagnostics = []Diagnostic{}
		}
		if c.external != nil && res.Errors() == 0 {
			if diags, name, version, ok := c.external.Check(ctx, lang, req.Code); ok {
				res.Checker += " + " + name
				res.Version += " + " + version
				res.Diagnostics = append(res.Diagnostics, diags...)
			}
		}
		res.Status = StatusPassed
		if res.Errors() > 0 {
			res.Status = StatusFailed
		}
	}
	if res.Truncated {
		line := strings.Count(req.Code, "\n") + 1
		res.Diagnostics = append(res.Diagnostics, Diagnostic{Line: line, Severity: SeverityError,
			Message: "the generation stopped at its length limit (finish_reason: length); the code is probably cut off"})
		res.Status = StatusFailed
	}
	return res
}

// lineCol converts a byte offset in src to a 1-based line and column.
func lineCol(src string, off int) (int, int) {
	if off < 0 {
		return 0, 0
	}
	if off > len(src) {
		off = len(src)
	}
	line := 1 + strings.Count(src[:off], "\n")
	col := off + 1
	if i := strings.LastIndexByte(src[:off], '\n'); i >= 0 {
		col = off - i
	}
	return line, col
}
