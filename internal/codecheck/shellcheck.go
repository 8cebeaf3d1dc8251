package codecheck

import (
	"context"
	"errors"
	"strings"

	"mvdan.cc/sh/v3/syntax"
)

// shVersion is the version of mvdan.cc/sh/v3 in go.mod; a test keeps them equal.
const shVersion = "v3.14.1"

// shellChecker parses shell scripts with mvdan.cc/sh. Blocks tagged shell or sh are parsed as
// Bash, the most permissive dialect the parser knows, so that Bash-isms in a block tagged sh
// are not reported as errors.
type shellChecker struct{}

func (shellChecker) name(string) (string, string) { return "mvdan.cc/sh/v3/syntax", shVersion }

func (shellChecker) check(_ context.Context, lang, src string) []Diagnostic {
	variant := syntax.LangBash
	if lang == "zsh" {
		variant = syntax.LangZsh
	}
	p := syntax.NewParser(syntax.Variant(variant), syntax.KeepComments(false))
	_, err := p.Parse(strings.NewReader(src), "")
	if err == nil {
		return nil
	}
	d := Diagnostic{Severity: SeverityError, Message: err.Error()}
	var pe syntax.ParseError
	if errors.As(err, &pe) {
		d.Line, d.Column, d.Message = int(pe.Pos.Line()), int(pe.Pos.Col()), pe.Text
	}
	var le syntax.LangError
	if errors.As(err, &le) {
		d.Line, d.Column = int(le.Pos.Line()), int(le.Pos.Col())
	}
	return []Diagnostic{d}
}
