package codecheck

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/binary"
	"errors"
	"fmt"
	"go/ast"
	"go/format"
	"go/parser"
	"go/scanner"
	"go/token"
	"go/types"
	"runtime"
	"strings"
	"sync"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/tools/go/gcexportdata"
)

//go:generate go run ./internal/stdgen -o stdlib.bin.zst

// stdlibData is the type information of the standard library's public packages (linux/amd64),
// written by internal/stdgen: a zstd stream of (path, export data) records.
//
//go:embed stdlib.bin.zst
var stdlibData []byte

// goChecker parses, formats and type-checks Go. Imports of the standard library are checked
// against the embedded type information; other imports become empty packages, and errors about
// their members are warnings, since the checker cannot know them.
type goChecker struct {
	std *stdImporter
}

func newGoChecker() *goChecker { return &goChecker{std: &stdImporter{}} }

func (g *goChecker) name(string) (string, string) { return "go/types", runtime.Version() }

func (g *goChecker) check(ctx context.Context, _ string, src string) []Diagnostic {
	fset := token.NewFileSet()
	// Answers often omit the package clause, or are a few statements: try the block as a
	// file, then with "package main" added, then as the body of a function. The first form
	// that parses is checked; when none does, the errors of the most likely form are reported.
	type form struct {
		text      string
		lineShift int
	}
	forms := []form{{src, 0}}
	if !hasPackageClause(src) {
		forms = []form{{"package main\n" + src, 1}, {"package main\nfunc _() {\n" + src + "\n}\n", 2}}
	}
	var (
		file  *ast.File
		used  form
		first []Diagnostic
	)
	for i, f := range forms {
		af, err := parser.ParseFile(fset, "main.go", f.text, parser.ParseComments|parser.SkipObjectResolution)
		if err == nil {
			file, used = af, f
			break
		}
		if i == 0 {
			first = parseDiagnostics(err, f.lineShift)
		}
	}
	if file == nil {
		return first
	}
	var diags []Diagnostic
	if out, err := format.Source([]byte(used.text)); err == nil && !bytes.Equal(out, []byte(used.text)) && used.lineShift < 2 {
		diags = append(diags, Diagnostic{Line: 1, Column: 1, Severity: SeverityWarning, Message: "the code is not gofmt-formatted"})
	}
	stubs := map[string]bool{} // names of stubbed (non-standard) imports
	for _, is := range file.Imports {
		path := strings.Trim(is.Path.Value, "\"`")
		if !isStdPath(path) {
			name := path[strings.LastIndex(path, "/")+1:]
			if is.Name != nil {
				name = is.Name.Name
			}
			stubs[name] = true
			p := fset.Position(is.Pos())
			diags = append(diags, Diagnostic{Line: p.Line - used.lineShift, Column: p.Column, Severity: SeverityWarning,
				Message: fmt.Sprintf("package %s is not in the standard library: its uses are not checked", path)})
		}
	}
	conf := types.Config{
		Importer:                 &fileImporter{std: g.std},
		FakeImportC:              true,
		DisableUnusedImportCheck: false,
		Error: func(err error) {
			var te types.Error
			if !errors.As(err, &te) {
				return
			}
			p := fset.Position(te.Pos)
			sev := SeverityError
			if te.Soft && isStubError(te.Msg, stubs) {
				sev = SeverityWarning
			} else if isStubError(te.Msg, stubs) {
				sev = SeverityWarning
			}
			msg := te.Msg
			if name, ok := strings.CutPrefix(msg, "undefined: "); ok && g.std.isPackageName(name) {
				msg += fmt.Sprintf(" (is an import of package %s missing?)", name)
			}
			diags = append(diags, Diagnostic{Line: p.Line - used.lineShift, Column: p.Column, Severity: sev, Message: msg})
		},
	}
	if ctx.Err() != nil {
		return diags
	}
	_, _ = conf.Check("main", fset, []*ast.File{file}, nil)
	return diags
}

// isStubError reports whether a type error is about a member of a stubbed import.
func isStubError(msg string, stubs map[string]bool) bool {
	rest, ok := strings.CutPrefix(msg, "undefined: ")
	if !ok {
		return false
	}
	pkg, _, ok := strings.Cut(rest, ".")
	return ok && stubs[pkg]
}

func hasPackageClause(src string) bool {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "", src, parser.PackageClauseOnly)
	return err == nil && f.Name != nil
}

// parseDiagnostics turns a go/parser error list into diagnostics.
func parseDiagnostics(err error, shift int) []Diagnostic {
	var list scanner.ErrorList
	if !errors.As(err, &list) {
		return []Diagnostic{{Severity: SeverityError, Message: err.Error()}}
	}
	var out []Diagnostic
	for _, e := range list {
		line := e.Pos.Line - shift
		if line < 1 {
			line = 1
		}
		out = append(out, Diagnostic{Line: line, Column: e.Pos.Column, Severity: SeverityError, Message: e.Msg})
	}
	return out
}

// isStdPath reports whether an import path names a standard package: its first element has
// no dot, as the go command decides.
func isStdPath(path string) bool {
	first, _, _ := strings.Cut(path, "/")
	return !strings.Contains(first, ".") && path != "C"
}

// fileImporter imports for one type-check: standard packages from the shared stdImporter,
// anything else as an empty, complete package.
type fileImporter struct {
	std   *stdImporter
	stubs map[string]*types.Package
}

func (f *fileImporter) Import(path string) (*types.Package, error) {
	if isStdPath(path) {
		if p, err := f.std.Import(path); err == nil {
			return p, nil
		} else if !errors.Is(err, errNotStd) {
			return nil, err
		}
		return nil, fmt.Errorf("package %s is not in the standard library", path)
	}
	if p, ok := f.stubs[path]; ok {
		return p, nil
	}
	name := path[strings.LastIndex(path, "/")+1:]
	name = strings.TrimSuffix(strings.TrimPrefix(name, "go-"), ".go")
	if i := strings.IndexAny(name, ".-"); i > 0 {
		name = name[:i]
	}
	if len(name) > 1 && name[0] == 'v' && strings.Trim(name[1:], "0123456789") == "" {
		// A major-version suffix (".../v3"): the package is named by the element before.
		prev := strings.TrimSuffix(path, "/"+name)
		name = prev[strings.LastIndex(prev, "/")+1:]
	}
	p := types.NewPackage(path, name)
	p.MarkComplete()
	if f.stubs == nil {
		f.stubs = map[string]*types.Package{}
	}
	f.stubs[path] = p
	return p, nil
}

var errNotStd = errors.New("not a standard package")

// stdImporter reads standard packages from the embedded export data. Packages are read once
// and shared by every check (a types.Package is not changed by type-checking code that
// imports it).
type stdImporter struct {
	once  sync.Once
	index map[string][]byte // path → export data
	err   error

	mu       sync.Mutex
	packages map[string]*types.Package
	fset     *token.FileSet
}

func (s *stdImporter) load() {
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
	if err != nil {
		s.err = err
		return
	}
	defer dec.Close()
	raw, err := dec.DecodeAll(stdlibData, nil)
	if err != nil {
		s.err = fmt.Errorf("standard library type information: %w", err)
		return
	}
	s.index = map[string][]byte{}
	for len(raw) > 0 {
		n, k := binary.Uvarint(raw)
		if k <= 0 || uint64(len(raw)-k) < n {
			s.err = errors.New("standard library type information is corrupt")
			return
		}
		path := string(raw[k : k+int(n)])
		raw = raw[k+int(n):]
		n, k = binary.Uvarint(raw)
		if k <= 0 || uint64(len(raw)-k) < n {
			s.err = errors.New("standard library type information is corrupt")
			return
		}
		s.index[path] = raw[k : k+int(n) : k+int(n)]
		raw = raw[k+int(n):]
	}
	s.packages = map[string]*types.Package{}
	s.fset = token.NewFileSet()
}

// isPackageName reports whether name is the last element of a standard package's path.
func (s *stdImporter) isPackageName(name string) bool {
	s.once.Do(s.load)
	for path := range s.index {
		if path == name || strings.HasSuffix(path, "/"+name) {
			return true
		}
	}
	return false
}

// Import returns the standard package path, or an error wrapping errNotStd.
func (s *stdImporter) Import(path string) (*types.Package, error) {
	s.once.Do(s.load)
	if s.err != nil {
		return nil, s.err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.packages[path]; ok && p.Complete() {
		return p, nil
	}
	data, ok := s.index[path]
	if !ok {
		return nil, fmt.Errorf("%s: %w", path, errNotStd)
	}
	p, err := gcexportdata.Read(bytes.NewReader(data), s.fset, s.packages, path)
	if err != nil {
		return nil, fmt.Errorf("read type information of %s: %w", path, err)
	}
	return p, nil
}
