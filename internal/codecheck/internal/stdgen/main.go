// Command stdgen writes the type information of the Go standard library's public packages as
// one compressed file, so that the Go checker can type-check imports of the standard library
// without a Go installation at run time.
//
// It asks the go command for the compiler's export data of every public standard package,
// reads each with the gc importer and writes it again with gcexportdata.Write, which keeps
// declarations and drops function bodies. The output is a zstd stream of records:
//
//	uvarint(len(path)) path uvarint(len(data)) data
//
// Run through go generate in internal/codecheck.
package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"go/importer"
	"go/token"
	"go/types"
	"io"
	"log"
	"os"
	"os/exec"
	"sort"
	"strings"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/tools/go/gcexportdata"
)

func main() {
	out := flag.String("o", "stdlib.bin.zst", "output file")
	flag.Parse()
	if err := run(*out); err != nil {
		log.Fatal(err)
	}
}

func run(out string) error {
	cmd := exec.Command("go", "list", "-export", "-f", "{{.ImportPath}}\t{{.Export}}", "std")
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH=amd64", "CGO_ENABLED=0")
	cmd.Stderr = os.Stderr
	listing, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("go list: %w", err)
	}
	exports := map[string]string{}
	var public []string
	for _, line := range strings.Split(strings.TrimSpace(string(listing)), "\n") {
		path, file, ok := strings.Cut(line, "\t")
		if !ok || file == "" {
			continue
		}
		exports[path] = file
		if isPublic(path) {
			public = append(public, path)
		}
	}
	sort.Strings(public)

	fset := token.NewFileSet()
	imp := importer.ForCompiler(fset, "gc", func(path string) (io.ReadCloser, error) {
		f, ok := exports[path]
		if !ok {
			return nil, fmt.Errorf("no export data for %s", path)
		}
		return os.Open(f)
	})
	var raw bytes.Buffer
	for _, path := range public {
		pkg, err := imp.(types.ImporterFrom).ImportFrom(path, "", 0)
		if err != nil {
			return fmt.Errorf("import %s: %w", path, err)
		}
		var data bytes.Buffer
		if err := gcexportdata.Write(&data, fset, pkg); err != nil {
			return fmt.Errorf("export %s: %w", path, err)
		}
		raw.Write(binary.AppendUvarint(nil, uint64(len(path))))
		raw.WriteString(path)
		raw.Write(binary.AppendUvarint(nil, uint64(data.Len())))
		raw.Write(data.Bytes())
	}

	f, err := os.Create(out)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	enc, err := zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedBestCompression))
	if err != nil {
		return err
	}
	if _, err := enc.Write(raw.Bytes()); err != nil {
		return err
	}
	if err := enc.Close(); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return err
	}
	log.Printf("%d packages, %d bytes raw", len(public), raw.Len())
	return f.Close()
}

// isPublic reports whether path is a standard package a program may import.
func isPublic(path string) bool {
	if strings.HasPrefix(path, "vendor/") || strings.HasPrefix(path, "cmd/") {
		return false
	}
	for _, el := range strings.Split(path, "/") {
		if el == "internal" {
			return false
		}
	}
	return true
}
