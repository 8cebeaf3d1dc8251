package sandbox

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/open-autoglm/autoglm/internal/codecheck"
)

// External runs parse-only checks by real compilers and interpreters in the sandbox:
// python3 (ast.parse), node --check, gcc and g++ -fsyntax-only. It implements
// codecheck.External; a tool missing from the machine is skipped.
type External struct {
	sb    *Sandbox
	once  sync.Once
	tools map[string]tool // by language
}

type tool struct {
	name, version string
	file          string   // the file the source is written to ("" = stdin)
	cmd           []string // the command
	parse         func(out string) []codecheck.Diagnostic
}

var _ codecheck.External = (*External)(nil)

// NewExternal returns the external checkers of sb.
func NewExternal(sb *Sandbox) *External { return &External{sb: sb} }

// pyCheck parses stdin and prints "line:col:message" for a syntax error.
const pyCheck = `import ast, sys
try:
    ast.parse(sys.stdin.read())
except SyntaxError as e:
    print("%d:%d:%s" % (e.lineno or 0, e.offset or 0, e.msg))
    sys.exit(1)
`

var (
	gccLine  = regexp.MustCompile(`(?m)^[^:\n]+:(\d+):(\d+): (error|fatal error|warning): (.*)$`)
	nodeLine = regexp.MustCompile(`(?m)^[^:\n]+\.js:(\d+)\n`)
)

func (x *External) probe(ctx context.Context) {
	x.tools = map[string]tool{}
	version := func(cmd ...string) string {
		res, err := x.sb.Run(ctx, Spec{Command: cmd})
		if err != nil || !res.Passed() {
			return ""
		}
		out := strings.TrimSpace(string(res.Stdout) + string(res.Stderr))
		line, _, _ := strings.Cut(out, "\n")
		return line
	}
	if v := version("/usr/bin/python3", "--version"); v != "" {
		x.tools["python"] = tool{name: "python3 ast.parse", version: v, cmd: []string{"/usr/bin/python3", "-c", pyCheck},
			parse: func(out string) []codecheck.Diagnostic {
				first, _, _ := strings.Cut(strings.TrimSpace(out), "\n")
				parts := strings.SplitN(first, ":", 3)
				d := codecheck.Diagnostic{Severity: codecheck.SeverityError, Message: "python3: " + first}
				if len(parts) == 3 {
					d.Line, _ = strconv.Atoi(parts[0])
					d.Column, _ = strconv.Atoi(parts[1])
					d.Message = "python3: " + parts[2]
				}
				return []codecheck.Diagnostic{d}
			}}
	}
	if v := version("node", "--version"); v != "" {
		x.tools["javascript"] = tool{name: "node --check", version: v, file: "main.js", cmd: []string{"node", "--check", "main.js"},
			parse: func(out string) []codecheck.Diagnostic {
				d := codecheck.Diagnostic{Severity: codecheck.SeverityError, Message: "node: syntax error"}
				if m := nodeLine.FindStringSubmatch(out); m != nil {
					d.Line, _ = strconv.Atoi(m[1])
				}
				for _, l := range strings.Split(out, "\n") {
					if strings.HasPrefix(l, "SyntaxError:") {
						d.Message = "node: " + l
					}
				}
				return []codecheck.Diagnostic{d}
			}}
	}
	gcc := func(lang, bin, file string, flags ...string) {
		if v := version(bin, "--version"); v != "" {
			x.tools[lang] = tool{name: bin + " -fsyntax-only", version: v, file: file,
				cmd: append(append([]string{bin, "-fsyntax-only"}, flags...), file), parse: parseGCC(bin)}
		}
	}
	gcc("c", "gcc", "main.c", "-std=c11")
	gcc("cpp", "g++", "main.cpp", "-std=c++17")
}

func parseGCC(bin string) func(string) []codecheck.Diagnostic {
	return func(out string) []codecheck.Diagnostic {
		var diags []codecheck.Diagnostic
		for _, m := range gccLine.FindAllStringSubmatch(out, 20) {
			line, _ := strconv.Atoi(m[1])
			col, _ := strconv.Atoi(m[2])
			sev := codecheck.SeverityError
			if m[3] == "warning" {
				sev = codecheck.SeverityWarning
			}
			diags = append(diags, codecheck.Diagnostic{Line: line, Column: col, Severity: sev, Message: bin + ": " + m[4]})
		}
		if len(diags) == 0 {
			diags = append(diags, codecheck.Diagnostic{Severity: codecheck.SeverityError, Message: bin + ": " + firstLine(out)})
		}
		return diags
	}
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return l
}

// Check implements codecheck.External.
func (x *External) Check(ctx context.Context, lang, src string) ([]codecheck.Diagnostic, string, string, bool) {
	if x.sb.Available() != nil {
		return nil, "", "", false
	}
	x.once.Do(func() { x.probe(context.WithoutCancel(ctx)) })
	t, ok := x.tools[lang]
	if !ok {
		return nil, "", "", false
	}
	sp := Spec{Command: t.cmd}
	if t.file == "" {
		sp.Stdin = []byte(src)
	} else {
		sp.Files = map[string][]byte{t.file: []byte(src)}
	}
	res, err := x.sb.Run(ctx, sp)
	if err != nil || res.TimedOut || res.OutputExceeded {
		return nil, "", "", false
	}
	if res.ExitCode == 0 {
		return nil, t.name, t.version, true
	}
	return t.parse(string(res.Stdout) + string(res.Stderr)), t.name, t.version, true
}
