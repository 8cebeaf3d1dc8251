package codecheck

import (
	"context"

	"github.com/evanw/esbuild/pkg/api"
)

// esbuildVersion is the version of github.com/evanw/esbuild in go.mod; a test keeps them equal.
const esbuildVersion = "v0.28.2"

// esbuildChecker parses JavaScript, TypeScript, JSX and TSX with esbuild's parser (a transform
// with no output options: nothing is minified, bundled or run).
type esbuildChecker struct{}

func (esbuildChecker) name(string) (string, string) { return "esbuild", esbuildVersion }

func (esbuildChecker) check(_ context.Context, lang, src string) []Diagnostic {
	loaders := map[string][]api.Loader{
		// Blocks tagged javascript or typescript often hold JSX (React components): when the
		// plain loader fails, the JSX variant gets a chance before an error is reported.
		"javascript": {api.LoaderJS, api.LoaderJSX},
		"jsx":        {api.LoaderJSX},
		"typescript": {api.LoaderTS, api.LoaderTSX},
		"tsx":        {api.LoaderTSX},
	}[lang]
	var first []Diagnostic
	for i, l := range loaders {
		res := api.Transform(src, api.TransformOptions{Loader: l, Sourcefile: "input", LogLevel: api.LogLevelSilent})
		diags := esbuildDiagnostics(res)
		if len(res.Errors) == 0 {
			return diags
		}
		if i == 0 {
			first = diags
		}
	}
	return first
}

func esbuildDiagnostics(res api.TransformResult) []Diagnostic {
	var out []Diagnostic
	add := func(msgs []api.Message, sev Severity) {
		for _, m := range msgs {
			d := Diagnostic{Severity: sev, Message: m.Text}
			if m.Location != nil {
				d.Line, d.Column = m.Location.Line, m.Location.Column+1
			}
			out = append(out, d)
		}
	}
	add(res.Errors, SeverityError)
	add(res.Warnings, SeverityWarning)
	return out
}
