// Command build bundles the console's sources (web/src) into web/dist with esbuild's Go API.
// It runs under `go generate ./web`, from the web directory, after `npm ci` there has
// installed the npm packages the sources import. The output is deterministic, so a rebuild of
// unchanged sources changes no committed file:
//
//	dist/index.html               the page, naming the entry below, with the sign-in form as
//	                              static markup, the styles, a classic head script (the theme
//	                              before the first frame) and a classic script after the form
//	                              (which makes it usable, then imports the entry) inline: the
//	                              first screen needs no other file
//	dist/csp.json                 the CSP hash sources of the page's inline script and style
//	dist/assets/app-<hash>.js     the application's entry (an ES module): the shell, sign-in
//	                              and the code the pages share with it (Preact among it), in
//	                              one file; fetched after the sign-in form's first frame
//	dist/assets/chunk-<hash>.js   code only pages share
//	dist/assets/<page>-<hash>.js  one file per page, imported when the page is first opened
//	dist/assets/*.gz              gzip copies, served to browsers that accept gzip
//
// The entry imports the pages and the pages import the entry, so <hash> is a hash of the
// whole build (see rename), not of each file's own content.
//
// With -check it writes nothing and fails when web/dist differs from what the sources build
// to: the committed assets are stale.
package main

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path"
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
	common := api.BuildOptions{
		AbsWorkingDir:     root,
		Bundle:            true,
		Outdir:            filepath.Join(root, "dist", "assets"),
		EntryNames:        "[name]-[hash]",
		ChunkNames:        "[name]-[hash]",
		AssetNames:        "[name]-[hash]",
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
		Metafile:          true,
		LogLevel:          api.LogLevelWarning,
	}
	// The application: an ES module whose pages are split into files of their own (each
	// loaded by a dynamic import when first opened), with the code they share in chunks.
	app := common
	app.EntryPoints = []string{"src/app.jsx"}
	app.Format = api.FormatESModule
	app.Splitting = true
	// boot.js: a classic script for the page's head, run before the first frame; first.js:
	// one for the end of the page, which makes the static sign-in form usable and loads the
	// application after the first frame.
	boot := common
	boot.EntryPoints = []string{"src/boot.js"}
	boot.Format = api.FormatIIFE
	first := boot
	first.EntryPoints = []string{"src/first.js"}

	files := map[string][]byte{}
	add := func(res api.BuildResult) error {
		if len(res.Errors) > 0 {
			msgs := api.FormatMessages(res.Errors, api.FormatMessagesOptions{Kind: api.ErrorMessage})
			return fmt.Errorf("esbuild:\n%s", strings.Join(msgs, ""))
		}
		for _, f := range res.OutputFiles {
			files["assets/"+filepath.Base(f.Path)] = f.Contents
		}
		return nil
	}
	appRes := api.Build(app)
	if err := add(appRes); err != nil {
		return nil, err
	}
	bootRes := api.Build(boot)
	if err := add(bootRes); err != nil {
		return nil, err
	}
	script, style, preload, err := entryFiles(appRes.Metafile, app.EntryPoints[0])
	if err != nil {
		return nil, err
	}
	bootScript, _, _, err := entryFiles(bootRes.Metafile, boot.EntryPoints[0])
	if err != nil {
		return nil, err
	}
	firstRes := api.Build(first)
	if err := add(firstRes); err != nil {
		return nil, err
	}
	firstScript, _, _, err := entryFiles(firstRes.Metafile, first.EntryPoints[0])
	if err != nil {
		return nil, err
	}
	// The first screen needs one module: the chunk the entry imports statically (Preact and
	// what the pages share with the shell) goes into the entry, which the pages import
	// instead.
	if len(preload) > 1 {
		return nil, fmt.Errorf("the entry imports %d chunks statically (%s); one is supported", len(preload), strings.Join(preload, ", "))
	}
	if len(preload) == 1 {
		if err := mergeChunk(files, script, preload[0], common); err != nil {
			return nil, err
		}
	}
	if style == "" {
		return nil, fmt.Errorf("esbuild produced no stylesheet")
	}
	page, err := os.ReadFile(filepath.Join(root, "src", "index.html"))
	if err != nil {
		return nil, err
	}
	// The two classic scripts and the styles are carried by the page itself, as inline
	// elements that the Content-Security-Policy allows by the hash of their text (the first
	// screen needs no fetch but the page's); their files are not served.
	var inline csp
	bootText, err := inlined(files, bootScript, "script", &inline.ScriptSrc)
	if err != nil {
		return nil, err
	}
	firstText, err := inlined(files, firstScript, "script", &inline.ScriptSrc)
	if err != nil {
		return nil, err
	}
	styleText, err := inlined(files, style, "style", &inline.StyleSrc)
	if err != nil {
		return nil, err
	}
	// The page names the application's module for first.js to import; the name is an
	// attribute's value, not in the inline script's text, so that the script's hash does not
	// change with the application's.
	for placeholder, value := range map[string]string{
		"{{boot}}":   bootText,
		"{{first}}":  firstText,
		"{{script}}": "/ui/assets/" + script,
		"{{style}}":  styleText,
	} {
		if !bytes.Contains(page, []byte(placeholder)) {
			return nil, fmt.Errorf("src/index.html has no %s", placeholder)
		}
		page = bytes.ReplaceAll(page, []byte(placeholder), []byte(value))
	}
	hashes, err := json.MarshalIndent(inline, "", "  ")
	if err != nil {
		return nil, err
	}
	files["csp.json"] = append(hashes, '\n')
	files["index.html"] = page
	files = rename(files)
	gz := map[string][]byte{}
	for name, b := range files {
		if strings.HasPrefix(name, "assets/") {
			z, err := gzipped(b)
			if err != nil {
				return nil, err
			}
			gz[name+".gz"] = z
		}
	}
	for name, z := range gz {
		files[name] = z
	}
	return files, nil
}

// mergeChunk bundles the chunk into the entry (both by their names in files): the entry
// becomes one module holding the chunk's code first and its own after, exporting what the
// chunk exported; the files that imported the chunk import the entry instead, and the
// chunk is removed. A second esbuild pass over the first one's output does the merge, so
// that the two files' top-level names are kept apart and the exports stay live bindings.
func mergeChunk(files map[string][]byte, entry, chunk string, opts api.BuildOptions) error {
	load := map[string]bool{entry: true, chunk: true}
	plugin := api.Plugin{Name: "dist", Setup: func(b api.PluginBuild) {
		b.OnResolve(api.OnResolveOptions{Filter: `.*`}, func(a api.OnResolveArgs) (api.OnResolveResult, error) {
			name := path.Base(a.Path)
			if a.Kind == api.ResolveEntryPoint || (load[name] && a.Kind == api.ResolveJSImportStatement) {
				return api.OnResolveResult{Path: name, Namespace: "dist"}, nil
			}
			if strings.HasPrefix(a.Path, "./") && files["assets/"+name] != nil && a.Kind == api.ResolveJSDynamicImport {
				return api.OnResolveResult{Path: a.Path, External: true}, nil
			}
			return api.OnResolveResult{}, fmt.Errorf("unexpected import %q (%v) in the build's output", a.Path, a.Kind)
		})
		b.OnLoad(api.OnLoadOptions{Filter: `.*`, Namespace: "dist"}, func(a api.OnLoadArgs) (api.OnLoadResult, error) {
			if a.Path == "merged" {
				text := fmt.Sprintf("export * from \"./%s\";\nimport \"./%s\";\n", chunk, entry)
				return api.OnLoadResult{Contents: &text, Loader: api.LoaderJS}, nil
			}
			text := string(files["assets/"+a.Path])
			return api.OnLoadResult{Contents: &text, Loader: api.LoaderJS}, nil
		})
	}}
	opts.EntryPoints = []string{"merged"}
	opts.Format = api.FormatESModule
	opts.Splitting = false
	opts.Metafile = false
	opts.Outdir = ""
	opts.Outfile = "merged.js"
	opts.Plugins = []api.Plugin{plugin}
	res := api.Build(opts)
	if len(res.Errors) > 0 {
		msgs := api.FormatMessages(res.Errors, api.FormatMessagesOptions{Kind: api.ErrorMessage})
		return fmt.Errorf("esbuild (merging %s into %s):\n%s", chunk, entry, strings.Join(msgs, ""))
	}
	if len(res.OutputFiles) != 1 {
		return fmt.Errorf("merging %s into %s: %d files out", chunk, entry, len(res.OutputFiles))
	}
	delete(files, "assets/"+chunk)
	for name, b := range files {
		files[name] = bytes.ReplaceAll(b, []byte(`"./`+chunk+`"`), []byte(`"./`+entry+`"`))
	}
	files["assets/"+entry] = res.OutputFiles[0].Contents
	return nil
}

// rename gives every asset a name whose hash is of the whole build. Once the pages import
// the entry and the entry imports the pages, no file's name can be a hash of its own
// content (each would depend on the other's); a hash of everything still gives each
// name one content for good, which is what lets the server have them cached forever.
func rename(files map[string][]byte) map[string][]byte {
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	all := sha256.New()
	for _, name := range names {
		fmt.Fprintf(all, "%s %d\n", name, len(files[name]))
		all.Write(files[name])
	}
	build := all.Sum(nil)
	renamed := map[string]string{}
	for _, name := range names {
		base := path.Base(name)
		stem, hash, ok := strings.Cut(strings.TrimSuffix(base, ".js"), "-")
		if !strings.HasPrefix(name, "assets/") || !ok || hash == "" {
			continue
		}
		sum := sha256.Sum256(append(append([]byte{}, build...), base...))
		renamed[base] = stem + "-" + strings.ToUpper(base32.StdEncoding.EncodeToString(sum[:])[:8]) + ".js"
	}
	out := map[string][]byte{}
	for _, name := range names {
		b := files[name]
		for old, newName := range renamed {
			b = bytes.ReplaceAll(b, []byte("/"+old+`"`), []byte("/"+newName+`"`))
		}
		if n, ok := renamed[path.Base(name)]; ok {
			name = "assets/" + n
		}
		out[name] = b
	}
	return out
}

// csp is dist/csp.json: the sources, by the hash of their text, of the page's inline script
// and style elements, for the server to add to its Content-Security-Policy.
type csp struct {
	ScriptSrc []string `json:"script-src"`
	StyleSrc  []string `json:"style-src"`
}

// inlined takes the built asset name out of files (with its gzip copy) and returns its text
// for an inline element of the page, adding the text's CSP hash source to hashes.
func inlined(files map[string][]byte, name, element string, hashes *[]string) (string, error) {
	b := bytes.TrimSpace(files["assets/"+name])
	delete(files, "assets/"+name)
	delete(files, "assets/"+name+".gz")
	if len(b) == 0 {
		return "", fmt.Errorf("%s is empty", name)
	}
	if bytes.Contains(bytes.ToLower(b), []byte("</"+element)) {
		return "", fmt.Errorf("%s holds </%s and cannot be inlined", name, element)
	}
	sum := sha256.Sum256(b)
	*hashes = append(*hashes, "'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'")
	return string(b), nil
}

// entryFiles reads esbuild's metafile: the file built from the entry point src (pages
// imported dynamically are entry points of their own in the metafile), its stylesheet, and the chunks it imports statically (directly or through another chunk), in
// a stable order.
func entryFiles(metafile, src string) (script, style string, chunks []string, err error) {
	var meta struct {
		Outputs map[string]struct {
			EntryPoint string `json:"entryPoint"`
			CSSBundle  string `json:"cssBundle"`
			Imports    []struct {
				Path     string `json:"path"`
				Kind     string `json:"kind"`
				External bool   `json:"external"`
			} `json:"imports"`
		} `json:"outputs"`
	}
	if err := json.Unmarshal([]byte(metafile), &meta); err != nil {
		return "", "", nil, fmt.Errorf("esbuild metafile: %w", err)
	}
	var entry string
	for out, o := range meta.Outputs {
		if o.EntryPoint == src && strings.HasSuffix(out, ".js") {
			entry = out
		}
	}
	if entry == "" {
		return "", "", nil, fmt.Errorf("esbuild produced no script for %s", src)
	}
	seen := map[string]bool{entry: true}
	queue := []string{entry}
	for len(queue) > 0 {
		out := queue[0]
		queue = queue[1:]
		for _, imp := range meta.Outputs[out].Imports {
			if imp.Kind != "import-statement" || imp.External || seen[imp.Path] {
				continue
			}
			seen[imp.Path] = true
			chunks = append(chunks, path.Base(imp.Path))
			queue = append(queue, imp.Path)
		}
	}
	sort.Strings(chunks)
	if css := meta.Outputs[entry].CSSBundle; css != "" {
		style = path.Base(css)
	}
	return path.Base(entry), style, chunks, nil
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
