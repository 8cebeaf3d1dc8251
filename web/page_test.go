package web

import (
	"bytes"
	"strings"
	"testing"
	"testing/fstest"
)

const noHashes = `{"script-src":[],"style-src":[]}`

// build is a console build of page and csp.json.
func build(page, csp string) fstest.MapFS {
	return fstest.MapFS{"dist/index.html": {Data: []byte(page)}, "dist/csp.json": {Data: []byte(csp)}}
}

// A build whose page lacks the mount point or the sign-in form's markers is refused when
// the console is made, not served half-working.
func TestBrokenBuildRefused(t *testing.T) {
	good := `<div id="app"><!--signin--><main class="signin" data-static></main><!--/signin--></div>`
	for name, page := range map[string]string{
		"no mount":       `<div id="main"><!--signin--><!--/signin--></div>`,
		"no form marker": `<div id="app"></div>`,
		"unclosed form":  `<div id="app"><!--signin--><main></main></div>`,
	} {
		if _, err := newConsole(Options{}, build(page, noHashes)); err == nil {
			t.Errorf("%s: a console over %q", name, page)
		}
	}
	// The page's inline elements must be allowed by the hashes of csp.json; a csp.json that
	// is missing, or names something other than hash sources, is refused too.
	script := `<script>document.documentElement.dataset.theme="dark"</script>`
	hashed := `{"script-src":["'sha256-zTSXYZ/r74pY7Te+wyYtgDRsO/hpzo1oFZH8wmJQwSA='"],"style-src":[]}`
	for name, fsys := range map[string]fstest.MapFS{
		"inline script, no hash":   build(script+good, noHashes),
		"inline script, changed":   build(strings.Replace(script, "dark", "light", 1)+good, hashed),
		"unclosed inline style":    build(`<style>a{}`+good, noHashes),
		"no csp.json":              {"dist/index.html": {Data: []byte(good)}},
		"csp.json not hashes":      build(good, `{"script-src":["'unsafe-inline'"]}`),
		"csp.json adds directives": build(good, `{"script-src":["'sha256-a'; img-src *"]}`),
	} {
		if _, err := newConsole(Options{}, fsys); err == nil {
			t.Errorf("%s: a console over it", name)
		}
	}
	if _, err := newConsole(Options{}, build(script+good, hashed)); err != nil {
		t.Errorf("an inline script allowed by its hash: %v", err)
	}
	c, err := newConsole(Options{}, build(good, noHashes))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(c.index, []byte("signin")) {
		t.Errorf("authentication off: the page keeps the sign-in form: %s", c.index)
	}
}
