// Command build bundles the console's sources (web/src) into web/dist with esbuild's Go API.
// It runs under `go generate ./web`, from the web directory, after `npm ci` there has
// installed the npm packages the sources import. The output is deterministic, so a rebuild of
// unchanged sources changes no committed file:
//
//	dist/index.html               the page, naming the assets below
//	dist/assets/app-<hash>.js     the application, minified, with its npm packages
//	dist/assets/app-<hash>.css    the styles
//	dist/assets/*.gz              gzip copies, served to browsers that accept gzip
//
// With -check it writes nothing and fails when web/dist differs from what the sources build
// to: the committed assets are stale.
package main

import (
	"bytes"
	"compress/gzip"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/evanw/esbuild/pkg/api"
)

func main() {
	check := flag.Bool("check", false, "fail if web/dist differs from a fresh build; write nothing")
	flag.Parse()
	if err := run(*check); err != nil {
		fmt.Fprintln(os.Stderr, "web build:", err)
		os.Exit(1)
	}
}

func run(check bool) error {
	root, err := os.Getwd()
	if err != nil {
		return err
	}
	files, err := build(root)
	if err != nil {
		return err
	}
	out := filepath.Join(root, "dist")
	if check {
		return compare(out, files)
	}
	if err := os.RemoveAll(out); err != nil {
		return err
	}
	names := make([]string, 0, len(files))
	for name, b := range files {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(out, name)), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(out, name), b, 0o644); err != nil {
			return err
		}
		if !strings.HasSuffix(name, ".gz") {
			names = append(names, fmt.Sprintf("%s (%d bytes)", name, len(b)))
		}
	}
	sort.Strings(names)
	fmt.Println("web build:", strings.Join(names, ", "))
	return nil
}

// compare reports the differences between the files under dir and want.
func compare(dir string, want map[string][]byte) error {
	var diffs []string
	have := map[string]bool{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		rel = filepath.ToSlash(rel)
		have[rel] = true
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		w, ok := want[rel]
		switch {
		case !ok:
			diffs = append(diffs, "extra "+rel)
		case !bytes.Equal(b, w):
			diffs = append(diffs, "changed "+rel)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for name := range want {
		if !have[name] {
			diffs = append(diffs, "missing "+name)
		}
	}
	if len(diffs) > 0 {
		sort.Strings(diffs)
		return fmt.Errorf("web/dist is not what the sources build to (%s): run `go generate ./web` and commit web/dist", strings.Join(diffs, ", "))
	}
	fmt.Println("web build: web/dist is up to date")
	return nil
}

// build bundles the sources and returns the files of dist, by slash-separated name.
func build(root string) (map[string][]byte, error) {
	if _, err := os.Stat(filepath.Join(root, "node_modules", "preact")); err != nil {
		return nil, fmt.Errorf("the npm packages are missing: run `npm ci` in %s first", root)
	}
	res := api.Build(api.BuildOptions{
		AbsWorkingDir:     root,
		EntryPoints:       []string{"src/app.jsx"},
		Bundle:            true,
		Outdir:            filepath.Join(root, "dist", "assets"),
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
		Write:             false,
		LogLevel:          api.LogLevelWarning,
	})
	if len(res.Errors) > 0 {
		msgs := api.FormatMessages(res.Errors, api.FormatMessagesOptions{Kind: api.ErrorMessage})
		return nil, fmt.Errorf("esbuild:\n%s", strings.Join(msgs, ""))
	}
	files := map[string][]byte{}
	var js, css string
	for _, f := range res.OutputFiles {
		name := filepath.Base(f.Path)
		switch filepath.Ext(name) {
		case ".js":
			js = name
		case ".css":
			css = name
		}
		gz, err := gzipped(f.Contents)
		if err != nil {
			return nil, err
		}
		files["assets/"+name] = f.Contents
		files["assets/"+name+".gz"] = gz
	}
	if js == "" || css == "" {
		return nil, fmt.Errorf("esbuild produced no script or no stylesheet")
	}
	page, err := os.ReadFile(filepath.Join(root, "src", "index.html"))
	if err != nil {
		return nil, err
	}
	page = bytes.ReplaceAll(page, []byte("{{script}}"), []byte("/ui/assets/"+js))
	page = bytes.ReplaceAll(page, []byte("{{style}}"), []byte("/ui/assets/"+css))
	files["index.html"] = page
	return files, nil
}

// gzipped compresses b with a fixed header, so that the output does not change between
// builds.
func gzipped(b []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(b); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
