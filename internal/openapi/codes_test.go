package openapi

import (
	"bytes"
	"flag"
	"fmt"
	"go/ast"
	"go/format"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/open-autoglm/autoglm/internal/apierr"
)

// emittedCodes scans the module's Go sources (tests excluded) for the error codes the server
// can answer with: the code argument of apierr.New, the Code field of apierr.Error literals,
// the codes the admin API's storeError composes from its noun argument, and the name of
// every kind (the code of an error that sets none).
func emittedCodes(t *testing.T) []string {
	t.Helper()
	root := filepath.Join("..", "..")
	set := map[string]bool{}
	for k := apierr.Kind(0); ; k++ {
		name := k.String()
		if strings.HasPrefix(name, "kind(") {
			break
		}
		set[name] = true
	}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case "testdata", "node_modules", ".git", "shared":
				return filepath.SkipDir
			}
			// Another module (its own go.mod) is not part of the server.
			if path != root {
				if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil {
					return filepath.SkipDir
				}
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		inApierr := f.Name.Name == "apierr"
		isApierr := func(e ast.Expr, name string) bool {
			switch x := e.(type) {
			case *ast.SelectorExpr:
				id, ok := x.X.(*ast.Ident)
				return ok && id.Name == "apierr" && x.Sel.Name == name
			case *ast.Ident:
				return inApierr && x.Name == name
			}
			return false
		}
		lit := func(e ast.Expr) {
			if b, ok := e.(*ast.BasicLit); ok && b.Kind == token.STRING {
				if s, err := strconv.Unquote(b.Value); err == nil && s != "" {
					set[s] = true
				}
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch x := n.(type) {
			case *ast.CallExpr:
				if isApierr(x.Fun, "New") && len(x.Args) == 3 {
					lit(x.Args[1])
				}
				// The admin API's storeError composes its codes from a noun.
				if id, ok := x.Fun.(*ast.Ident); ok && id.Name == "storeError" && len(x.Args) == 2 {
					if b, ok := x.Args[1].(*ast.BasicLit); ok && b.Kind == token.STRING {
						noun, _ := strconv.Unquote(b.Value)
						set[noun+"_not_found"] = true
						set[noun+"_exists"] = true
					}
				}
			case *ast.CompositeLit:
				if x.Type != nil && isApierr(x.Type, "Error") {
					for _, el := range x.Elts {
						if kv, ok := el.(*ast.KeyValueExpr); ok {
							if k, ok := kv.Key.(*ast.Ident); ok && k.Name == "Code" {
								lit(kv.Value)
							}
						}
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
	out := make([]string, 0, len(set))
	for c := range set {
		out = append(out, c)
	}
	slices.Sort(out)
	return out
}

// TestCodesComplete: the ErrorCode enum of the document lists exactly the codes the code
// base can produce, so that a new code cannot ship undocumented and a removed one does not
// linger.
func TestCodesComplete(t *testing.T) {
	found := emittedCodes(t)
	if *update {
		writeCodes(t, found)
		return
	}
	if diff := cmp.Diff(found, Codes()); diff != "" {
		t.Errorf("codes the server can answer with (-) differ from the document's ErrorCode enum (+); "+
			"run go test ./internal/openapi -update:\n%s", diff)
	}
}

// update rewrites codes.go and docs/openapi.json from the sources.
var update = flag.Bool("update", false, "rewrite codes.go and docs/openapi.json")

// writeCodes rewrites the list in codes.go.
func writeCodes(t *testing.T, codes []string) {
	src, err := os.ReadFile("codes.go")
	if err != nil {
		t.Fatal(err)
	}
	start := bytes.Index(src, []byte("var codes = []string{"))
	end := bytes.Index(src[start:], []byte("\n}\n"))
	if start < 0 || end < 0 {
		t.Fatal("codes.go: no list to rewrite")
	}
	var b bytes.Buffer
	b.Write(src[:start])
	b.WriteString("var codes = []string{\n")
	for _, c := range codes {
		fmt.Fprintf(&b, "\t%q,\n", c)
	}
	b.WriteString("}\n")
	b.Write(src[start+end+3:])
	out, err := format.Source(b.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, src) {
		if err := os.WriteFile("codes.go", out, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Log("codes.go rewritten: run the tests with -update once more to refresh docs/openapi.json")
	}
}
