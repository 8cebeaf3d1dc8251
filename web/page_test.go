package web

import (
	"bytes"
	"testing"
	"testing/fstest"
)

// A build whose page lacks the mount point or the sign-in form's markers is refused when
// the console is made, not served half-working.
func TestBrokenBuildRefused(t *testing.T) {
	good := `<div id="app"><!--signin--><main class="signin" data-static></main><!--/signin--></div>`
	for name, page := range map[string]string{
		"no mount":       `<div id="main"><!--signin--><!--/signin--></div>`,
		"no form marker": `<div id="app"></div>`,
		"unclosed form":  `<div id="app"><!--signin--><main></main></div>`,
	} {
		fsys := fstest.MapFS{"dist/index.html": {Data: []byte(page)}}
		if _, err := newConsole(Options{}, fsys); err == nil {
			t.Errorf("%s: a console over %q", name, page)
		}
	}
	c, err := newConsole(Options{}, fstest.MapFS{"dist/index.html": {Data: []byte(good)}})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(c.index, []byte("signin")) {
		t.Errorf("authentication off: the page keeps the sign-in form: %s", c.index)
	}
}
