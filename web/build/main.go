// Command build bundles the console's sources (web/src) into web/dist with esbuild's Go API.
// It runs under `go generate ./web`, from the web directory, after `npm ci` there has
// installed the npm packages the sources import. The output is deterministic, so a rebuild of
// unchanged sources changes no committed file:
//
//	dist/index.html               the page, naming the assets below
//	dist/assets/app-<hash>.js     the application, minified, with its npm packages
//	dist/assets/app-<hash>.css    the styles
//	dist/assets/*.gz              gzip copies, served to browsers that accept gzip
package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/evanw/esbuild/pkg/api"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "web build:", err)
		os.Exit(1)
	}
}

func run() error {
	root, err := os.Getwd()
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(root, "node_modules", "preact")); err != nil {
		return fmt.Errorf("the npm packages are missing: run `npm ci` in %s first", root)
	}
	out := filepath.Join(root, "dist")
	res := api.Build(api.BuildOptions{
		AbsWorkingDir:     root,
		EntryPoints:       []string{"src/app.jsx"},
		Bundle:            true,
		Outdir:            filepath.Join(out, "assets"),
		EntryNames:        "[name]-[hash]",
		AssetNames:        "[name]-[hash]",
		Format:            api.FormatESModule,
		Target:            api.ES2020,
		Platform:          api.PlatformBrowser,
		JSX:               api.JSXAutomatic,
		JSXImportSource:   "preact",
		MinifyWhitespace:  true,
		MinifyIdentifiers: true,
		MinifySyntax:      true,
		LegalComments:     api.LegalCommentsEndOfFile,
		Charset:           api.CharsetUTF8,
		Loader:            map[string]api.Loader{".svg": api.LoaderFile},
		Write:             false,
		LogLevel:          api.LogLevelWarning,
	})
	if len(res.Errors) > 0 {
		msgs := api.FormatMessages(res.Errors, api.FormatMessagesOptions{Kind: api.ErrorMessage})
		return fmt.Errorf("esbuild:\n%s", strings.Join(msgs, ""))
	}
	if err := os.RemoveAll(out); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(out, "assets"), 0o755); err != nil {
		return err
	}
	var js, css string
	for _, f := range res.OutputFiles {
		name := filepath.Base(f.Path)
		switch filepath.Ext(name) {
		case ".js":
			js = name
		case ".css":
			css = name
		}
		if err := write(filepath.Join(out, "assets", name), f.Contents); err != nil {
			return err
		}
	}
	if js == "" || css == "" {
		return fmt.Errorf("esbuild produced no script or no stylesheet")
	}
	page, err := os.ReadFile(filepath.Join(root, "src", "index.html"))
	if err != nil {
		return err
	}
	page = bytes.ReplaceAll(page, []byte("{{script}}"), []byte("/ui/assets/"+js))
	page = bytes.ReplaceAll(page, []byte("{{style}}"), []byte("/ui/assets/"+css))
	if err := os.WriteFile(filepath.Join(out, "index.html"), page, 0o644); err != nil {
		return err
	}
	names := make([]string, 0, len(res.OutputFiles))
	for _, f := range res.OutputFiles {
		names = append(names, fmt.Sprintf("%s (%d bytes)", filepath.Base(f.Path), len(f.Contents)))
	}
	sort.Strings(names)
	fmt.Println("web build:", strings.Join(names, ", "))
	return nil
}

// write writes a file and, for text assets, a gzip copy with a fixed header so that the
// output does not change between builds.
func write(path string, b []byte) error {
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return err
	}
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return err
	}
	if _, err := zw.Write(b); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return os.WriteFile(path+".gz", buf.Bytes(), 0o644)
}
