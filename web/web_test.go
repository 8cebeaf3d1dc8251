package web_test

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/open-autoglm/autoglm/internal/admin"
	"github.com/open-autoglm/autoglm/internal/admin/admintest"
	"github.com/open-autoglm/autoglm/internal/auth"
	"github.com/open-autoglm/autoglm/internal/config"
	"github.com/open-autoglm/autoglm/internal/openapi/openapitest"
	"github.com/open-autoglm/autoglm/internal/router"
	"github.com/open-autoglm/autoglm/internal/server"
	"github.com/open-autoglm/autoglm/internal/telemetry"
	"github.com/open-autoglm/autoglm/web"

	// The local backend, for the engine route.
	_ "github.com/open-autoglm/autoglm/internal/backend/local"
)

const adminKey = "web-test-bootstrap-admin-key"

// newServer starts a server with the console; with authOn, also with authentication and the
// admin API, and returns a user key too.
func newServer(t *testing.T, authOn bool) (url, userKey string) {
	t.Helper()
	cfg, err := config.Parse([]byte(`server: {addr: 127.0.0.1:0}
models:
  - name: stories
    backends: [{type: local, path: ../models/stories260K.gguf, context_length: 256}]
`), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	reg, err := router.New(cfg.Models)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	log := telemetry.NewLogger(io.Discard, telemetry.ParseLevel("error"))
	// Every exchange is checked against the API description.
	opts := server.Options{Outer: func(h http.Handler) http.Handler { h, _ = openapitest.Middleware(t, h); return h }}
	var a *auth.Authenticator
	var api *admin.API
	if authOn {
		cfg.Auth.Enabled = true
		st := admintest.NewStore()
		a, err = auth.New(auth.Options{Config: cfg.Auth, Keys: admin.KeyFeed(st), AdminKey: adminKey})
		if err != nil {
			t.Fatal(err)
		}
		api = admin.New(admin.Options{Store: st, Roles: a.Roles(), Logger: log, KeysChanged: a.Refresh})
		opts.Auth, opts.Denied, opts.Routes = a, api.Denied, api.Routes()
	}
	opts.Routes = append(opts.Routes, web.New(web.Options{Auth: a, Registry: reg}).Routes()...)
	srv := server.NewWith(cfg.Server, reg, log, opts)
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	if authOn {
		var k admin.CreatedKey
		call(t, ts.URL, adminKey, "POST", "/v1/admin/keys", `{"name":"u","models":["glm"]}`, &k)
		userKey = k.Secret
	}
	return ts.URL, userKey
}

func call(t *testing.T, base, key, method, path, body string, out any) int {
	t.Helper()
	req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var env struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(env.Data, out); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode
}

func get(t *testing.T, url string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	// The default transport would ask for gzip and undo it; ask explicitly instead.
	tr := &http.Transport{DisableCompression: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// cspOf returns the Content-Security-Policy that url is served with.
func cspOf(t *testing.T, url string) string {
	t.Helper()
	resp, _ := get(t, url)
	return resp.Header.Get("Content-Security-Policy")
}

func TestPageAndAssets(t *testing.T) {
	for _, authOn := range []bool{false, true} {
		base, _ := newServer(t, authOn)
		var index []byte
		for _, path := range []string{"/", "/ui/", "/ui/keys"} {
			resp, b := get(t, base+path)
			if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
				t.Fatalf("auth %v: GET %s: %d %s", authOn, path, resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			csp := resp.Header.Get("Content-Security-Policy")
			for _, want := range []string{"default-src 'self'", "script-src 'self' 'sha256-", "style-src 'self' 'sha256-", "frame-ancestors 'none'"} {
				if !strings.Contains(csp, want) {
					t.Errorf("GET %s: CSP %q lacks %q", path, csp, want)
				}
			}
			if strings.Contains(csp, "unsafe") {
				t.Errorf("GET %s: CSP allows unsafe code: %q", path, csp)
			}
			if resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("Set-Cookie") != "" {
				t.Errorf("GET %s: headers %v", path, resp.Header)
			}
			index = b
		}
		// Inline code is only the head script, the styles and the script after the form,
		// each allowed by the CSP through the hash of its text (so an injected or altered
		// element would not run); no inline event handlers or style attributes, which a hash
		// cannot allow.
		csp := map[string]bool{}
		for _, directive := range strings.Split(cspOf(t, base+"/ui/"), ";") {
			name, sources, _ := strings.Cut(strings.TrimSpace(directive), " ")
			for _, src := range strings.Fields(sources) {
				csp[name+" "+src] = true
			}
		}
		inline := regexp.MustCompile(`(?s)<(script|style)>(.*?)</(?:script|style)>`).FindAllSubmatch(index, -1)
		if len(inline) != 3 || string(inline[0][1]) != "script" || string(inline[1][1]) != "style" || string(inline[2][1]) != "script" {
			t.Errorf("the page has %d inline elements, want its head script, its styles and the script after the form:\n%s", len(inline), index)
		}
		for _, m := range inline {
			sum := sha256.Sum256(m[2])
			src := string(m[1]) + "-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
			if !csp[src] {
				t.Errorf("the page's inline %s is not allowed by the CSP (no %s)", m[1], src)
			}
		}
		if n := strings.Count(cspOf(t, base+"/ui/"), "'sha256-"); n != 3 {
			t.Errorf("the CSP allows %d hashes, want the 3 of the page's inline elements", n)
		}
		if regexp.MustCompile(`<script[^>]*\ssrc=|\sstyle=|\son[a-z]+=|<link rel="(?:stylesheet|modulepreload)"`).Match(index) {
			t.Errorf("the page has inline code besides its scripts and styles, or a file to fetch before its first screen:\n%s", index)
		}
		// The page fetches nothing before its first screen: it names the application's
		// module for its last script to import after the first frame; it is served.
		assets := regexp.MustCompile(`<meta name="autoglm-app" content="(/ui/assets/app-[^"]+)">`).FindAllSubmatch(index, -1)
		if len(assets) != 1 {
			t.Fatalf("the page names %d application modules, want 1:\n%s", len(assets), index)
		}
		if i := bytes.Index(index, []byte("</div>\n<script>")); i < 0 || bytes.LastIndex(index, []byte("<script>")) < i {
			t.Errorf("the page's last script is not after the application's element (and its form):\n%s", index)
		}
		// No frame before the first screen is whole: the head holds rendering until the
		// element #end, which follows the last script, has been parsed.
		head, body, _ := bytes.Cut(index, []byte("</head>"))
		if !bytes.Contains(head, []byte(`<link rel="expect" href="#end" blocking="render">`)) {
			t.Errorf("the page's head does not hold rendering until #end:\n%s", index)
		}
		if end := bytes.Index(body, []byte(`id="end"`)); end < 0 || end < bytes.LastIndex(body, []byte("</script>")) {
			t.Errorf("the page has no element #end after its last script:\n%s", index)
		}
		// With authentication on, the first screen, the sign-in form, is in the page itself,
		// its button disabled until the script that handles it has run; with it off there
		// is no form.
		form := regexp.MustCompile(`<main class="signin" data-static><form [^>]*>.*<input type="password" name="token"[^>]*>.*<button class="btn primary" type="submit" disabled>Sign in</button></form></main>`)
		if form.Match(index) != authOn {
			t.Errorf("auth %v: the page has the static sign-in form: %v, want %v:\n%s", authOn, !authOn, authOn, index)
		}
		if bytes.Contains(index, []byte("<!--")) {
			t.Errorf("auth %v: the page keeps the sign-in form's markers:\n%s", authOn, index)
		}
		for _, m := range assets {
			path := string(m[1])
			resp, plain := get(t, base+path)
			wantType := map[bool]string{true: "text/javascript", false: "text/css"}[strings.HasSuffix(path, ".js")]
			if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), wantType) || len(plain) < 100 {
				t.Errorf("GET %s: %d %q, %d bytes", path, resp.StatusCode, resp.Header.Get("Content-Type"), len(plain))
			}
			if !strings.Contains(resp.Header.Get("Cache-Control"), "immutable") || resp.Header.Get("Content-Encoding") != "" {
				t.Errorf("GET %s: headers %v", path, resp.Header)
			}
			resp, gz := get(t, base+path, "Accept-Encoding", "br;q=1, gzip;q=0.8")
			if resp.Header.Get("Content-Encoding") != "gzip" {
				t.Fatalf("GET %s with gzip accepted: Content-Encoding %q", path, resp.Header.Get("Content-Encoding"))
			}
			zr, err := gzip.NewReader(bytes.NewReader(gz))
			if err != nil {
				t.Fatal(err)
			}
			if unz, _ := io.ReadAll(zr); !bytes.Equal(unz, plain) || len(gz) >= len(plain) {
				t.Errorf("GET %s: the gzip copy (%d bytes) is not the file (%d bytes) compressed", path, len(gz), len(plain))
			}
			if resp, _ := get(t, base+path, "Accept-Encoding", "gzip;q=0"); resp.Header.Get("Content-Encoding") != "" {
				t.Errorf("GET %s: gzip sent to a client that refused it", path)
			}
		}
		for _, path := range []string{"/ui/assets/nope.js", "/ui/assets/../../web.go", "/ui/assets/" + strings.TrimPrefix(string(assets[0][1]), "/ui/assets/") + ".gz"} {
			resp, b := get(t, base+path)
			if resp.StatusCode != 404 || !bytes.Contains(b, []byte(`"success":false`)) {
				t.Errorf("GET %s: %d %s", path, resp.StatusCode, b)
			}
		}
		// The page carries the answer GET /v1/me gives without a credential, so that a first
		// visit draws its first screen without a request.
		m := regexp.MustCompile(`<div id="app" data-me="([^"]*)">`).FindSubmatch(index)
		if m == nil {
			t.Fatalf("auth %v: the page has no data-me:\n%s", authOn, index)
		}
		_, anon := get(t, base+"/v1/me")
		var env struct{ Data json.RawMessage }
		if err := json.Unmarshal(anon, &env); err != nil {
			t.Fatal(err)
		}
		if got := html.UnescapeString(string(m[1])); got != string(env.Data) {
			t.Errorf("auth %v: data-me %s, GET /v1/me without a credential %s", authOn, got, env.Data)
		}
		// The page revalidates cheaply.
		resp, _ := get(t, base+"/")
		if r2, _ := get(t, base+"/", "If-None-Match", resp.Header.Get("ETag")); r2.StatusCode != http.StatusNotModified {
			t.Errorf("conditional GET /: %d", r2.StatusCode)
		}
		// It goes gzipped to a browser that accepts gzip: the same page, smaller, under an
		// ETag of its own (a cached plain copy does not stand for it).
		zresp, zb := get(t, base+"/ui/", "Accept-Encoding", "gzip, deflate, br")
		if zresp.Header.Get("Content-Encoding") != "gzip" || !strings.Contains(zresp.Header.Get("Vary"), "Accept-Encoding") {
			t.Fatalf("GET /ui/ with gzip accepted: headers %v", zresp.Header)
		}
		zr, err := gzip.NewReader(bytes.NewReader(zb))
		if err != nil {
			t.Fatal(err)
		}
		if unz, _ := io.ReadAll(zr); !bytes.Equal(unz, index) || len(zb) >= len(index)/2 {
			t.Errorf("GET /ui/ gzipped: %d bytes, not the page (%d bytes) compressed", len(zb), len(index))
		}
		if zresp.Header.Get("ETag") == resp.Header.Get("ETag") || zresp.Header.Get("ETag") == "" {
			t.Errorf("the gzipped page's ETag %q, the plain page's %q", zresp.Header.Get("ETag"), resp.Header.Get("ETag"))
		}
		if r2, _ := get(t, base+"/ui/", "Accept-Encoding", "gzip", "If-None-Match", zresp.Header.Get("ETag")); r2.StatusCode != http.StatusNotModified {
			t.Errorf("conditional GET /ui/ gzipped: %d", r2.StatusCode)
		}
		if r2, _ := get(t, base+"/ui/", "If-None-Match", zresp.Header.Get("ETag")); r2.StatusCode != http.StatusOK || r2.Header.Get("Content-Encoding") != "" {
			t.Errorf("GET /ui/ without gzip, with the gzipped page's ETag: %d %v", r2.StatusCode, r2.Header)
		}
		// Other paths keep answering the API's not-found error.
		if resp, b := get(t, base+"/nope"); resp.StatusCode != 404 || !bytes.Contains(b, []byte("route_not_found")) {
			t.Errorf("GET /nope: %d %s", resp.StatusCode, b)
		}
	}
}

func TestMe(t *testing.T) {
	base, _ := newServer(t, false)
	var me web.Me
	if st := call(t, base, "", "GET", "/v1/me", "", &me); st != 200 || me.Auth || me.Authenticated || !slices.Contains(me.Permissions, "admin.backends") {
		t.Errorf("authentication off: %d %+v", st, me)
	}

	base, userKey := newServer(t, true)
	me = web.Me{}
	if st := call(t, base, "", "GET", "/v1/me", "", &me); st != 200 || !me.Auth || me.Authenticated || len(me.Permissions) != 0 {
		t.Errorf("no credential: %d %+v", st, me)
	}
	me = web.Me{}
	if st := call(t, base, adminKey, "GET", "/v1/me", "", &me); st != 200 || !me.Authenticated || me.Role != "admin" || me.Method != "admin_key" ||
		!slices.Contains(me.Permissions, "admin.keys") || !slices.Contains(me.Roles["user"], "models.use") || slices.Contains(me.Roles["guest"], "models.use") {
		t.Errorf("admin: %d %+v", st, me)
	}
	me = web.Me{}
	if st := call(t, base, userKey, "GET", "/v1/me", "", &me); st != 200 || me.Role != "user" || me.KeyID == "" || me.KeyPrefix == "" ||
		!slices.Equal(me.Models, []string{"glm"}) || me.Roles != nil {
		t.Errorf("user: %d %+v", st, me)
	}
	for _, p := range me.Permissions {
		if strings.HasPrefix(p, "admin.") {
			t.Errorf("a user is told it holds %s", p)
		}
	}
	if st := call(t, base, "agk-not-a-key", "GET", "/v1/me", "", nil); st != 401 {
		t.Errorf("a bad key: %d, want 401", st)
	}
}

func TestEngine(t *testing.T) {
	st, err := os.Stat("../models/stories260K.gguf")
	if err != nil {
		t.Fatal(err)
	}
	base, userKey := newServer(t, true)
	var e web.Engine
	if code := call(t, base, adminKey, "GET", "/v1/admin/engine", "", &e); code != 200 || len(e.Models) != 1 {
		t.Fatalf("engine: %d %+v", code, e)
	}
	m := e.Models[0]
	if m.Model != "stories" || m.Arch != "llama" || m.ContextLength != 256 || m.VocabSize == 0 || m.FileBytes != st.Size() || m.Running != 0 {
		t.Errorf("engine model %+v", m)
	}
	if e.Process.SysBytes == 0 || e.Process.Goroutines == 0 {
		t.Errorf("process %+v", e.Process)
	}
	if code := call(t, base, userKey, "GET", "/v1/admin/engine", "", nil); code != 403 {
		t.Errorf("a user read the engine: %d", code)
	}
}

// TestOpenerPolicy: the page leaves out Cross-Origin-Opener-Policy only for a navigation the
// user started in the browser (Sec-Fetch-Site: none); every other way of arriving keeps it, a
// cached copy is never reused or revalidated across the two, and the assets always carry it.
func TestOpenerPolicy(t *testing.T) {
	base, _ := newServer(t, true)
	nav := func(site string) []string {
		h := []string{"Sec-Fetch-Mode", "navigate", "Sec-Fetch-Dest", "document"}
		if site != "" {
			h = append(h, "Sec-Fetch-Site", site)
		}
		return h
	}
	cases := []struct {
		name string
		hdr  []string
		coop bool
	}{
		{"typed address, bookmark, reload", nav("none"), false},
		{"from the console's own origin", nav("same-origin"), true},
		{"from another site", nav("cross-site"), true},
		{"from the same site, another origin", nav("same-site"), true},
		{"no Sec-Fetch-Site", nav(""), true},
		{"an unknown Sec-Fetch-Site", nav("None"), true},
		{"none, not a navigation", []string{"Sec-Fetch-Site", "none", "Sec-Fetch-Mode", "no-cors"}, true},
		{"none, no Sec-Fetch-Mode", []string{"Sec-Fetch-Site", "none"}, true},
		{"no Sec-Fetch headers at all", nil, true},
	}
	for _, path := range []string{"/", "/ui/", "/ui/keys"} {
		for _, gz := range []string{"identity", "gzip"} {
			etags := map[bool]string{}
			for _, tc := range cases {
				hdr := append([]string{"Accept-Encoding", gz}, tc.hdr...)
				resp, _ := get(t, base+path, hdr...)
				coop := resp.Header.Get("Cross-Origin-Opener-Policy")
				if resp.StatusCode != 200 || (coop == "same-origin") != tc.coop || (coop != "" && coop != "same-origin") {
					t.Errorf("GET %s (%s, %s): %d, Cross-Origin-Opener-Policy %q, want it: %v", path, gz, tc.name, resp.StatusCode, coop, tc.coop)
				}
				// One Vary line naming each header once, though both the server's compression
				// stage and the page vary on Accept-Encoding.
				vary := strings.Join(resp.Header.Values("Vary"), ", ")
				if len(resp.Header.Values("Vary")) != 1 || !sameTokens(vary, "Accept-Encoding", "Sec-Fetch-Site", "Sec-Fetch-Mode") {
					t.Errorf("GET %s (%s, %s): Vary %q", path, gz, tc.name, resp.Header.Values("Vary"))
				}
				if resp.Header.Get("Content-Security-Policy") == "" || resp.Header.Get("X-Frame-Options") != "DENY" || resp.Header.Get("Cross-Origin-Resource-Policy") != "same-origin" {
					t.Errorf("GET %s (%s, %s): the other security headers are missing: %v", path, gz, tc.name, resp.Header)
				}
				etag := resp.Header.Get("ETag")
				if prev, ok := etags[tc.coop]; ok && prev != etag {
					t.Errorf("GET %s (%s): two ETags %q and %q for one representation", path, gz, prev, etag)
				}
				etags[tc.coop] = etag
				// A revalidation of the same kind: a 304 with the same headers.
				r2, _ := get(t, base+path, append(hdr, "If-None-Match", etag)...)
				if r2.StatusCode != http.StatusNotModified || r2.Header.Get("Cross-Origin-Opener-Policy") != coop ||
					strings.Join(r2.Header.Values("Vary"), ", ") != vary || r2.Header.Get("ETag") != etag || r2.Header.Get("Content-Security-Policy") == "" {
					t.Errorf("GET %s (%s, %s) revalidated: %d, headers %v; the 200's COOP %q, Vary %q", path, gz, tc.name, r2.StatusCode, r2.Header, coop, vary)
				}
			}
			if etags[true] == etags[false] {
				t.Errorf("GET %s (%s): the page with and without COOP share the ETag %q", path, gz, etags[true])
			}
			// A copy cached from a typed visit, revalidated by a navigation from another site:
			// a full answer with the header, not a 304 that would keep the copy's headers;
			// and the other way round.
			for _, from := range []bool{false, true} {
				hdr := append([]string{"Accept-Encoding", gz, "If-None-Match", etags[from]}, nav(map[bool]string{false: "cross-site", true: "none"}[from])...)
				resp, b := get(t, base+path, hdr...)
				if resp.StatusCode != 200 || len(b) == 0 || (resp.Header.Get("Cross-Origin-Opener-Policy") == "same-origin") == from {
					t.Errorf("GET %s (%s) with the ETag of the copy with COOP %v, from the other kind of navigation: %d, COOP %q",
						path, gz, from, resp.StatusCode, resp.Header.Get("Cross-Origin-Opener-Policy"))
				}
			}
		}
	}
	// Every other answer a browser navigates to carries the header too (the server's chain
	// sets it), so that no page of the origin without it can sit in a window another site
	// opened when the user navigates that window to the console; API calls do not get it.
	for _, path := range []string{"/readyz", "/v1/me", "/nope"} {
		for _, dest := range []string{"document", "empty", ""} {
			hdr := []string{"Sec-Fetch-Site", "cross-site", "Sec-Fetch-Mode", "navigate"}
			if dest != "" {
				hdr = append(hdr, "Sec-Fetch-Dest", dest)
			}
			resp, _ := get(t, base+path, hdr...)
			if got := resp.Header.Get("Cross-Origin-Opener-Policy"); (got == "same-origin") != (dest == "document") || (got != "" && got != "same-origin") {
				t.Errorf("GET %s (Sec-Fetch-Dest %q): Cross-Origin-Opener-Policy %q", path, dest, got)
			}
		}
	}
	// The assets carry the header whatever the request (it means nothing on them, and costs
	// nothing).
	_, index := get(t, base+"/ui/")
	app := regexp.MustCompile(`<meta name="autoglm-app" content="(/ui/assets/app-[^"]+)">`).FindSubmatch(index)
	if app == nil {
		t.Fatal("the page names no application module")
	}
	if resp, _ := get(t, base+string(app[1]), nav("none")...); resp.StatusCode != 200 || resp.Header.Get("Cross-Origin-Opener-Policy") != "same-origin" {
		t.Errorf("GET %s (Sec-Fetch-Site none): %d, COOP %q", app[1], resp.StatusCode, resp.Header.Get("Cross-Origin-Opener-Policy"))
	}
}

// sameTokens reports whether the comma-separated list holds exactly the tokens given, each
// once, in any order.
func sameTokens(list string, tokens ...string) bool {
	var got []string
	for _, e := range strings.Split(list, ",") {
		got = append(got, strings.TrimSpace(e))
	}
	slices.Sort(got)
	want := slices.Clone(tokens)
	slices.Sort(want)
	return slices.Equal(got, want)
}
