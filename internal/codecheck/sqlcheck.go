package codecheck

import (
	"context"
	"reflect"
	"regexp"
	"strconv"

	tidb "github.com/pingcap/tidb/pkg/parser"
	_ "github.com/pingcap/tidb/pkg/parser/test_driver" // the parser's value expressions, without TiDB's types
	pgparser "github.com/wasilibs/go-pgquery/parser"
)

// Versions of the SQL parsers in go.mod; a test keeps them equal.
const (
	tidbParserVersion = "v0.0.0-20260418072757-ce92298d1124"
	pgqueryVersion    = "v0.0.0-20260728010200-155ebad2880e"
)

// sqlChecker parses MySQL with TiDB's parser (a goyacc grammar of MySQL's dialect) and
// PostgreSQL with libpg_query, PostgreSQL's own parser compiled to WebAssembly and run by the
// pure-Go wazero runtime. A block tagged plain sql passes when either dialect accepts it;
// when both reject it, the error of the parser that got further is reported, since that is
// more likely the dialect meant.
type sqlChecker struct{}

func (sqlChecker) name(lang string) (string, string) {
	switch lang {
	case "mysql":
		return "tidb/parser (mysql)", tidbParserVersion
	case "postgresql":
		return "libpg_query (wasm)", pgqueryVersion
	}
	return "tidb/parser (mysql) + libpg_query (postgresql)", tidbParserVersion + " " + pgqueryVersion
}

func (sqlChecker) check(_ context.Context, lang, src string) []Diagnostic {
	switch lang {
	case "mysql":
		return mysqlDiagnostics(src)
	case "postgresql":
		return postgresDiagnostics(src)
	}
	my := mysqlDiagnostics(src)
	if len(my) == 0 {
		return nil
	}
	pg := postgresDiagnostics(src)
	if len(pg) == 0 {
		return nil
	}
	if after(pg[0], my[0]) {
		return pg
	}
	return my
}

func after(a, b Diagnostic) bool {
	return a.Line > b.Line || a.Line == b.Line && a.Column > b.Column
}

var mysqlPos = regexp.MustCompile(`line (\d+) column (\d+)`)

func mysqlDiagnostics(src string) (diags []Diagnostic) {
	// TiDB's parser panics on some input (its stand-in decimal type refuses a numeric literal
	// of more digits than it holds); that is the parser's limit, reported as an error of the
	// block rather than a crash of the request checking it.
	defer func() {
		if v := recover(); v != nil {
			diags = []Diagnostic{{Severity: SeverityError, Message: "mysql: the parser could not read this block (a numeric literal with more digits than it holds?)"}}
		}
	}()
	p := tidb.New()
	_, warns, err := p.ParseSQL(src)
	var out []Diagnostic
	if err != nil {
		d := Diagnostic{Severity: SeverityError, Message: "mysql: " + err.Error()}
		if m := mysqlPos.FindStringSubmatch(err.Error()); m != nil {
			d.Line, _ = strconv.Atoi(m[1])
			d.Column, _ = strconv.Atoi(m[2])
		}
		out = append(out, d)
	}
	for _, w := range warns {
		out = append(out, Diagnostic{Severity: SeverityWarning, Message: "mysql: " + w.Error()})
	}
	return out
}

func postgresDiagnostics(src string) []Diagnostic {
	_, err := pgparser.ParseToJSON(src)
	if err == nil {
		return nil
	}
	d := Diagnostic{Severity: SeverityError, Message: "postgresql: " + err.Error()}
	// libpg_query reports a 1-based character position (Cursorpos) in its error value; the
	// type is internal to the module, so the field is read by name.
	if v := reflect.ValueOf(err); v.Kind() == reflect.Pointer && !v.IsNil() && v.Elem().Kind() == reflect.Struct {
		if f := v.Elem().FieldByName("Cursorpos"); f.IsValid() && f.CanInt() && f.Int() > 0 {
			d.Line, d.Column = lineCol(src, runeOffset(src, int(f.Int())-1))
		}
	}
	return []Diagnostic{d}
}

// runeOffset returns the byte offset of the n-th character of s.
func runeOffset(s string, n int) int {
	i := 0
	for off := range s {
		if i == n {
			return off
		}
		i++
	}
	return len(s)
}
