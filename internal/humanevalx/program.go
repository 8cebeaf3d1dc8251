package humanevalx

import (
	"fmt"
	"regexp"
	"strings"
)

// Solution returns the complete function a completion body makes with the problem's prompt,
// the way the benchmark's harness assembles it: the prompt, the declaration where the prompt
// does not already end in it (Rust's prompts are the doc comment only), then body. For Go the
// prompt's import block is replaced by imports of the standard packages body refers to (a name followed by a dot outside comments), and a
// package clause is added, as the harness does before compiling.
func (p Problem) Solution(lang, body string) string {
	prompt := p.Prompt
	if sig := squash(lastLine(p.Declaration)); sig != "" && !strings.Contains(squash(prompt), sig) {
		prompt += p.Declaration
	}
	if lang != "go" {
		return prompt + body
	}
	if p.Import != "" {
		prompt = strings.Replace(prompt, strings.TrimRight(p.Import, "\n"), "", 1)
	}
	var imports []string
	for _, pkg := range goHelperPackages {
		name := pkg[strings.LastIndex(pkg, "/")+1:]
		if regexp.MustCompile(`\b` + name + `\.`).MatchString(stripLineComments(prompt) + body) {
			imports = append(imports, fmt.Sprintf("%q", pkg))
		}
	}
	head := "package main\n"
	if len(imports) > 0 {
		head += "\nimport (\n\t" + strings.Join(imports, "\n\t") + "\n)\n"
	}
	return head + prompt + body
}

// goHelperPackages are the standard packages the harness imports for a Go solution that
// refers to them.
var goHelperPackages = []string{"bytes", "crypto/md5", "fmt", "math", "math/rand", "regexp", "sort", "strconv", "strings", "time"}

// Canonical is the problem's canonical solution as a complete function.
func (p Problem) Canonical(lang string) string { return p.Solution(lang, p.CanonicalSolution) }

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	return strings.TrimSpace(s[strings.LastIndexByte(s, '\n')+1:])
}

// squash removes white space, so that signatures compare equal across spacing differences.
func squash(s string) string {
	return strings.Join(strings.Fields(s), "")
}

// stripLineComments drops the // comments of Go source (prompts use no other kind).
func stripLineComments(s string) string {
	var b strings.Builder
	for _, line := range strings.SplitAfter(s, "\n") {
		if i := strings.Index(line, "//"); i >= 0 {
			line = line[:i] + "\n"
		}
		b.WriteString(line)
	}
	return b.String()
}
