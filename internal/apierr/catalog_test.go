package apierr

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

func TestCatalogue(t *testing.T) {
	snake := regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)
	for _, c := range Codes() {
		info := catalogue[c]
		if !snake.MatchString(string(c)) {
			t.Errorf("code %q is not snake_case", c)
		}
		if info.message == "" || int(info.kind) >= len(kindNames) {
			t.Errorf("code %q: kind %v, message %q", c, info.kind, info.message)
		}
		if c.Kind() != info.kind || c.Message() != info.message {
			t.Errorf("code %q: accessors disagree with the catalogue", c)
		}
	}
	if Code("no_such_code").Kind() != Internal || Code("no_such_code").Message() != "" {
		t.Error("a code outside the catalogue is not Internal")
	}
}

// TestErrorIsPublic: an error's text is what a client may read, never its cause.
func TestErrorIsPublic(t *testing.T) {
	cause := os.ErrPermission
	for _, e := range []*Error{
		{Kind: Internal, Err: cause},
		Wrap(Upstream, cause, "the model failed"),
		{Kind: Invalid, Code: CodeInvalidJSON, Err: cause},
		From(cause),
	} {
		if strings.Contains(e.Error(), cause.Error()) {
			t.Errorf("Error() %q carries the cause", e.Error())
		}
		if !strings.Contains(e.Error(), e.PublicMessage()) {
			t.Errorf("Error() %q lacks the public message %q", e.Error(), e.PublicMessage())
		}
		if Unwrap := e.Unwrap(); Unwrap != cause {
			t.Errorf("Unwrap() = %v, want the cause", Unwrap)
		}
	}
	if got := New(CodeModelNotFound, "").PublicMessage(); got != CodeModelNotFound.Message() {
		t.Errorf("empty message: %q, want the catalogue's", got)
	}
	if e := New(CodeRateLimitExceeded, "slow down"); e.Kind != RateLimited || e.HTTPStatus() != 429 {
		t.Errorf("New takes its kind from the catalogue: %v %d", e.Kind, e.HTTPStatus())
	}
}

// kindByName names the kinds as the source writes them (apierr.RateLimited).
var kindByName = map[string]Kind{
	"Internal": Internal, "Invalid": Invalid, "TooLarge": TooLarge, "Unauthenticated": Unauthenticated,
	"PermissionDenied": PermissionDenied, "NotFound": NotFound, "MethodNotAllowed": MethodNotAllowed,
	"Conflict": Conflict, "RateLimited": RateLimited, "QuotaExceeded": QuotaExceeded, "Timeout": Timeout,
	"Canceled": Canceled, "Unavailable": Unavailable, "Upstream": Upstream,
}

// TestCodesComeFromTheCatalogue reads every non-test Go file of the module and fails on an
// error code written as a string literal (in an apierr.Error literal, or as apierr.New's code)
// and on an error literal whose constant kind is not its code's kind in the catalogue.
func TestCodesComeFromTheCatalogue(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Skip("module root not found")
	}
	codeByName := map[string]Code{}
	fset := token.NewFileSet()
	cat, err := parser.ParseFile(fset, "catalog.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range cat.Decls {
		if g, ok := d.(*ast.GenDecl); ok && g.Tok == token.CONST {
			for _, s := range g.Specs {
				vs := s.(*ast.ValueSpec)
				if lit, ok := vs.Values[0].(*ast.BasicLit); ok {
					v, _ := strconv.Unquote(lit.Value)
					codeByName[vs.Names[0].Name] = Code(v)
				}
			}
		}
	}
	if len(codeByName) != len(catalogue) {
		t.Fatalf("%d code constants, %d catalogue entries", len(codeByName), len(catalogue))
	}
	files := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case "gen", "testdata", "node_modules", ".git":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		files++
		inApierr := f.Name.Name == "apierr"
		isApierr := func(e ast.Expr, name string) bool {
			switch x := e.(type) {
			case *ast.Ident:
				return inApierr && x.Name == name
			case *ast.SelectorExpr:
				id, ok := x.X.(*ast.Ident)
				return ok && id.Name == "apierr" && x.Sel.Name == name
			}
			return false
		}
		constName := func(e ast.Expr) string {
			switch x := e.(type) {
			case *ast.Ident:
				if inApierr {
					return x.Name
				}
			case *ast.SelectorExpr:
				if id, ok := x.X.(*ast.Ident); ok && id.Name == "apierr" {
					return x.Sel.Name
				}
			}
			return ""
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch x := n.(type) {
			case *ast.CompositeLit:
				if !isApierr(x.Type, "Error") {
					// Any other error type with a Code (a failed task's api.TaskError, a
					// batch line's error) carries a catalogue code too.
					if isErrorType(x.Type) {
						for _, el := range x.Elts {
							if kv, ok := el.(*ast.KeyValueExpr); ok && isIdent(kv.Key, "Code") && isStringLit(kv.Value) {
								t.Errorf("%s: error code written as a string; use the catalogue", fset.Position(kv.Pos()))
							}
						}
					}
					return true
				}
				var kind, code string
				for _, el := range x.Elts {
					kv, ok := el.(*ast.KeyValueExpr)
					if !ok {
						continue
					}
					switch kv.Key.(*ast.Ident).Name {
					case "Code":
						if _, ok := kv.Value.(*ast.BasicLit); ok {
							t.Errorf("%s: code written as a string; use the catalogue", fset.Position(kv.Pos()))
						}
						code = constName(kv.Value)
					case "Kind":
						kind = constName(kv.Value)
					}
				}
				k, kok := kindByName[kind]
				c, cok := codeByName[code]
				if kok && cok && catalogue[c].kind != k {
					t.Errorf("%s: kind %s with code %s, whose kind is %v", fset.Position(x.Pos()), kind, c, catalogue[c].kind)
				}
			case *ast.AssignStmt:
				for i, lhs := range x.Lhs {
					if sel, ok := lhs.(*ast.SelectorExpr); ok && sel.Sel.Name == "Code" && i < len(x.Rhs) && isStringLit(x.Rhs[i]) {
						t.Errorf("%s: error code written as a string; use the catalogue", fset.Position(x.Pos()))
					}
				}
			case *ast.CallExpr:
				if isApierr(x.Fun, "New") && len(x.Args) > 0 {
					if _, ok := x.Args[0].(*ast.BasicLit); ok {
						t.Errorf("%s: code written as a string; use the catalogue", fset.Position(x.Pos()))
					}
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 100 {
		t.Fatalf("read only %d files: is the walk rooted at the module?", files)
	}
}

// isErrorType reports whether a composite literal's type is named like an error type
// (Error, TaskError, lineError, api.TaskError, or a pointer to one).
func isErrorType(e ast.Expr) bool {
	switch x := e.(type) {
	case *ast.Ident:
		return strings.HasSuffix(strings.ToLower(x.Name), "error")
	case *ast.SelectorExpr:
		return strings.HasSuffix(strings.ToLower(x.Sel.Name), "error")
	case *ast.StarExpr:
		return isErrorType(x.X)
	}
	return false
}

func isIdent(e ast.Expr, name string) bool {
	id, ok := e.(*ast.Ident)
	return ok && id.Name == name
}

// isStringLit reports whether e is a string literal, or a conversion of one (Code("x")).
func isStringLit(e ast.Expr) bool {
	switch x := e.(type) {
	case *ast.BasicLit:
		return x.Kind == token.STRING
	case *ast.CallExpr:
		return len(x.Args) == 1 && isStringLit(x.Args[0])
	case *ast.ParenExpr:
		return isStringLit(x.X)
	}
	return false
}

// TestCatalogueDocumented: docs/API_ERRORS.md lists every code with its HTTP status.
func TestCatalogueDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/API_ERRORS.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range Codes() {
		row := "| `" + string(c) + "` | " + strconv.Itoa(c.Kind().HTTPStatus()) + " |"
		if !strings.Contains(string(doc), row) {
			t.Errorf("docs/API_ERRORS.md has no row %q", row)
		}
	}
}
