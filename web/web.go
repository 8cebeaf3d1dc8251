// Package web is the console: a single-page application served by `autoglm serve` at / and
// /ui/, for admins and users alike. The server decides what each caller may do; the console
// only hides what the caller's role cannot do.
//
// The sources are in web/src (Preact components in JSX, plain CSS). `go generate ./web` bundles
// them with esbuild's Go API into web/dist, which is committed and embedded in the binary, so
// `go build` needs no Node and the console works offline: every asset comes from the binary.
// Regenerating needs the npm packages once: `cd web && npm ci`.
//
// For a fast first screen the page itself carries the sign-in form (kept here only with
// authentication on) and the anonymous answer of GET /v1/me; a small classic script in the
// head sets the theme before the first frame, the styles are inline too, and a classic script
// after the form makes it usable and imports the application's entry after the first frame;
// each page is a file of its own, imported when first opened (see web/build). The head holds
// rendering (<link rel="expect" href="#end" blocking="render">) until the element after that
// last script has been parsed, so that the first frame drawn is the usable form: without it,
// Chromium's parser yields once the body has begun (its time budget is spent on the head) and
// draws a frame of the form with its button still disabled, and the first screen waits for
// the frame after.
//
// Every console response carries a strict Content-Security-Policy (default-src 'self'; the
// page's inline head script and styles allowed by their hashes only, no 'unsafe-inline'). The console signs in with an API key or a JWT kept in the
// browser tab's sessionStorage and sent as a bearer token; it uses no cookies, so there is
// nothing for a cross-site request to ride on.
package web

//go:generate go run ./build

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"html"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/open-autoglm/autoglm/internal/apierr"
	"github.com/open-autoglm/autoglm/internal/auth"
	"github.com/open-autoglm/autoglm/internal/httpapi"
	"github.com/open-autoglm/autoglm/internal/httphead"
	"github.com/open-autoglm/autoglm/internal/router"
)

//go:embed dist
var dist embed.FS

// contentSecurityPolicy is sent with every console response: scripts, styles and requests
// only from the server itself, no frames, no plugins; the only inline code allowed is the
// page's own head script and styles, each by the hash of its text (from the build's
// csp.json), never by 'unsafe-inline'.
func contentSecurityPolicy(scriptHashes, styleHashes []string) string {
	src := func(hashes []string) string {
		return strings.Join(append([]string{"'self'"}, hashes...), " ")
	}
	return "default-src 'self'; script-src " + src(scriptHashes) + "; style-src " + src(styleHashes) + "; img-src 'self' data:; " +
		"connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
}

// Options configure the console.
type Options struct {
	// Auth is the server's authenticator; nil when authentication is off.
	Auth *auth.Authenticator
	// Registry (the model table in force) describes the in-process engine's models for
	// GET /v1/admin/engine; without a registry that route lists none.
	Registry *router.Registry
}

// Console serves the console's files, GET /v1/me and GET /v1/admin/engine. It is safe for concurrent use.
type Console struct {
	auth  *auth.Authenticator
	reg   *router.Registry
	files fs.FS
	index []byte
	// indexGz is the page gzipped (another representation, with its own ETag): 13 KB become
	// about 4 KB, well inside the first round trip of a new connection.
	indexGz []byte
	// etags[gzipped][coop] is the page's ETag for each representation: plain or gzipped, with
	// or without Cross-Origin-Opener-Policy. A copy cached without the header is revalidated
	// by a navigation that gets it into a full answer, never a 304 that would leave the
	// copy's headers in force (and the other way round).
	etags  [2][2]string
	csp    string
	loaded time.Time
}

// New returns the console over the embedded build.
func New(opts Options) *Console {
	c, err := newConsole(opts, dist)
	if err != nil {
		// The build is embedded at compile time; a build without index.html is broken.
		panic("web: " + err.Error())
	}
	return c
}

func newConsole(opts Options, fsys fs.FS) (*Console, error) {
	files, err := fs.Sub(fsys, "dist")
	if err != nil {
		return nil, err
	}
	index, err := fs.ReadFile(files, "index.html")
	if err != nil {
		return nil, err
	}
	var hashes struct {
		ScriptSrc []string `json:"script-src"`
		StyleSrc  []string `json:"style-src"`
	}
	b, err := fs.ReadFile(files, "csp.json")
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &hashes); err != nil {
		return nil, errors.New("csp.json: " + err.Error())
	}
	for _, h := range append(append([]string{}, hashes.ScriptSrc...), hashes.StyleSrc...) {
		if !strings.HasPrefix(h, "'sha256-") || !strings.HasSuffix(h, "'") || strings.ContainsAny(h, " ;,") {
			return nil, errors.New("csp.json: not a hash source: " + h)
		}
	}
	if err := inlineAllowed(index, hashes.ScriptSrc, hashes.StyleSrc); err != nil {
		return nil, err
	}
	a := opts.Auth
	if a != nil && !a.Enabled() {
		a = nil
	}
	c := &Console{auth: a, reg: opts.Registry, files: files, loaded: time.Now(),
		csp: contentSecurityPolicy(hashes.ScriptSrc, hashes.StyleSrc)}
	// The page carries the anonymous answer of GET /v1/me, so that a first visit (no token
	// yet) draws the sign-in screen without waiting for a request. It is an attribute, not an
	// inline script: the Content-Security-Policy stays script-src 'self'.
	me, err := json.Marshal(c.anonymous())
	if err != nil {
		return nil, err
	}
	const mount = `<div id="app">`
	if !bytes.Contains(index, []byte(mount)) {
		return nil, errors.New("index.html has no " + mount)
	}
	index = bytes.Replace(index, []byte(mount), []byte(`<div id="app" data-me="`+html.EscapeString(string(me))+`">`), 1)
	// The page carries the sign-in form as static markup, drawn before any script has run;
	// with authentication off there is no sign-in, and the first screen is the application's.
	index, err = signInForm(index, a != nil)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(index)
	c.index = index
	tag := hex.EncodeToString(sum[:8])
	c.etags = [2][2]string{{`"` + tag + `-u"`, `"` + tag + `"`}, {`"` + tag + `-gzip-u"`, `"` + tag + `-gzip"`}}
	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(index); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	c.indexGz = gz.Bytes()
	return c, nil
}

// inlineAllowed checks that each inline <script> and <style> element of the page has its
// hash among the sources the policy will allow: a page the policy would block is a broken
// build, refused when the console is made.
func inlineAllowed(index []byte, scriptHashes, styleHashes []string) error {
	allowed := map[string][]string{"script": scriptHashes, "style": styleHashes}
	for element, hashes := range allowed {
		open, end := []byte("<"+element+">"), []byte("</"+element+">")
		rest := index
		for {
			_, after, ok := bytes.Cut(rest, open)
			if !ok {
				break
			}
			text, tail, ok := bytes.Cut(after, end)
			if !ok {
				return errors.New("index.html: an unclosed <" + element + ">")
			}
			sum := sha256.Sum256(text)
			if src := "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"; !slices.Contains(hashes, src) {
				return errors.New("index.html: an inline " + element + " whose hash is not in csp.json: rebuild the console")
			}
			rest = tail
		}
	}
	return nil
}

// signInForm keeps (keep) or removes the page's static sign-in form, the markup between
// <!--signin--> and <!--/signin-->, and the two markers.
func signInForm(index []byte, keep bool) ([]byte, error) {
	const open, end = "<!--signin-->", "<!--/signin-->"
	before, rest, ok := bytes.Cut(index, []byte(open))
	form, after, ok2 := bytes.Cut(rest, []byte(end))
	if !ok || !ok2 {
		return nil, errors.New("index.html has no " + open + " … " + end)
	}
	out := append([]byte{}, before...)
	if keep {
		out = append(out, form...)
	}
	return append(out, after...), nil
}

// Routes returns the console's routes; their permissions are in auth's route table.
func (c *Console) Routes() []httpapi.Route {
	env := apierr.ShapeEnvelope
	return []httpapi.Route{
		{Method: "GET", Pattern: "/{$}", Shape: env, Permission: httpapi.Public, Handler: c.serveIndex},
		{Method: "GET", Pattern: "/ui/{path...}", Shape: env, Permission: httpapi.Public, Handler: c.serveUI},
		{Method: "GET", Pattern: "/v1/me", Shape: env, Permission: httpapi.Public, Handler: c.me},
		{Method: "GET", Pattern: "/v1/admin/engine", Shape: env, Permission: auth.AdminBackends, Handler: c.engine},
	}
}

// securityHeaders sets the headers every console answer carries. coop is whether it carries
// Cross-Origin-Opener-Policy: same-origin; every answer does except the page's, for a
// navigation the user started (see severOpener).
func (c *Console) securityHeaders(h http.Header, coop bool) {
	h.Set("Content-Security-Policy", c.csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	if coop {
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
	} else {
		// The server's chain sets it on every browser navigation.
		h.Del("Cross-Origin-Opener-Policy")
	}
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
}

// severOpener reports whether the page's answer to r carries Cross-Origin-Opener-Policy:
// same-origin, which cuts the handle a page of another site holds on the console's window
// when it opened it (a link with target=_blank and an opener, window.open): with that handle
// it could navigate the window that holds the credential to a look-alike sign-in page,
// message it, and count its frames. frame-ancestors 'none' and X-Frame-Options cover framing,
// not openers.
//
// The header has a price in Chromium: a navigation to a page that carries it in a tab whose
// document does not (a new tab's blank page) goes to a new browsing context group, so the page
// is moved into another renderer process once its answer has arrived, in series with it
// (about 100 ms of a first visit's 200-270 ms on a quiet machine; docs/BENCHMARKS.md).
//
// So it is left out for exactly one kind of request: a navigation the user started in the
// browser itself (the address bar, a bookmark, a new tab, a reload), which the browser marks
// Sec-Fetch-Site: none (and Sec-Fetch-Mode: navigate). No page can start such a navigation.
// In a window that another site opened (the user typing the console's address into a popup),
// browsers sever the opener on a manual navigation to another origin with or without the
// header (Chromium as tests/console/opener.mjs shows: no message arrives, no navigation, no
// frames counted, the console's window.opener is null; Safari since 2023, WebKit's "Sever
// window opener on manual navigation", saying other browsers already did). They keep it on a
// manual navigation within one origin, so the handle would survive where the window's
// previous page was of the console's origin and without the header (opener.mjs shows that
// too): the server's chain sends the header on every page a browser navigates to
// (Sec-Fetch-Dest: document, any route), so such a page is not served. A page of the same
// origin served by something else (another application behind the same host and port)
// would reopen that gap; the README (the console) says so.
//
// Every other request keeps the header: one from another site (a link, window.open), one
// with Sec-Fetch-Site or Sec-Fetch-Mode missing or unknown (a browser that does not send
// them), and one from the console's own origin (same-origin): a page of the origin without
// the header, in a window another site opened, could navigate to the console and the opener
// would keep its handle (opener.mjs), and the console itself makes no such navigation (its
// pages change the fragment only), so leaving the header out there would buy nothing.
func severOpener(r *http.Request) bool {
	site, mode := r.Header.Values("Sec-Fetch-Site"), r.Header.Values("Sec-Fetch-Mode")
	return len(site) != 1 || site[0] != "none" || len(mode) != 1 || mode[0] != "navigate"
}

// serveIndex answers the application's page. It is revalidated on every load (its asset
// names change with their content, so the assets themselves are cached for good).
func (c *Console) serveIndex(w http.ResponseWriter, r *http.Request) error {
	h := w.Header()
	coop := severOpener(r)
	c.securityHeaders(h, coop)
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	// The answer's headers depend on these request headers: a copy kept for one kind of
	// navigation must not stand for another.
	httphead.AddVary(h, "Accept-Encoding", "Sec-Fetch-Site", "Sec-Fetch-Mode")
	gz := acceptsGzip(r)
	body, etag := c.index, c.etags[b2i(gz)][b2i(coop)]
	if gz {
		body = c.indexGz
		h.Set("Content-Encoding", "gzip")
	}
	h.Set("ETag", etag)
	http.ServeContent(w, r, "index.html", c.loaded, bytes.NewReader(body))
	return nil
}

// serveUI answers /ui/assets/<file> with the file and every other /ui/ path with the
// application's page, whose router reads the rest of the address.
func (c *Console) serveUI(w http.ResponseWriter, r *http.Request) error {
	p := r.PathValue("path")
	if !strings.HasPrefix(p, "assets/") {
		return c.serveIndex(w, r)
	}
	name := path.Clean(p)
	if !fs.ValidPath(name) || strings.HasSuffix(name, ".gz") {
		return apierr.New(apierr.CodeAssetNotFound, "no such console file")
	}
	b, err := fs.ReadFile(c.files, name)
	if err != nil {
		return apierr.New(apierr.CodeAssetNotFound, "no such console file")
	}
	h := w.Header()
	c.securityHeaders(h, true)
	ctype := mime.TypeByExtension(path.Ext(name))
	if ctype == "" {
		ctype = "application/octet-stream"
	}
	h.Set("Content-Type", ctype)
	// Asset names carry a hash of their content: a changed file is a new name.
	h.Set("Cache-Control", "public, max-age=31536000, immutable")
	httphead.AddVary(h, "Accept-Encoding")
	if acceptsGzip(r) {
		if gz, err := fs.ReadFile(c.files, name+".gz"); err == nil {
			h.Set("Content-Encoding", "gzip")
			b = gz
		}
	}
	http.ServeContent(w, r, "", c.loaded, bytes.NewReader(b))
	return nil
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(enc), "gzip") {
			return strings.ReplaceAll(q, " ", "") != "q=0"
		}
	}
	return false
}

// Me is the answer to GET /v1/me: who the caller is and what its role may do, for the
// console to show only what the caller can use. The server enforces the same permissions on
// every route; this is a description, not a grant.
type Me struct {
	// Auth is false when authentication is off: every route is open, and the admin API
	// (keys, users, usage records, audit) is not served.
	Auth bool `json:"auth"`
	// Authenticated is false for a request without a credential.
	Authenticated bool   `json:"authenticated"`
	Method        string `json:"method,omitempty"`
	UserID        string `json:"user_id,omitempty"`
	KeyID         string `json:"key_id,omitempty"`
	KeyPrefix     string `json:"key_prefix,omitempty"`
	Role          string `json:"role,omitempty"`
	// Models is the caller's model allow-list; empty allows every model.
	Models      []string `json:"models"`
	Permissions []string `json:"permissions"`
	// Roles lists every role with its permissions, for callers that manage keys or users.
	Roles map[string][]string `json:"roles,omitempty"`
}

// anonymous is the answer to GET /v1/me without a credential: every permission with
// authentication off, none with it on.
func (c *Console) anonymous() Me {
	me := Me{Models: []string{}, Permissions: []string{}}
	if c.auth == nil {
		for _, p := range auth.Permissions() {
			me.Permissions = append(me.Permissions, string(p))
		}
		return me
	}
	me.Auth = true
	return me
}

func (c *Console) me(w http.ResponseWriter, r *http.Request) error {
	me := c.anonymous()
	p, ok := auth.FromContext(r.Context())
	if c.auth == nil || !ok || p == nil {
		return httpapi.WriteData(w, r, http.StatusOK, me)
	}
	me.Authenticated = true
	me.Method, me.UserID, me.KeyID, me.KeyPrefix, me.Role = string(p.Method), p.UserID, p.KeyID, p.KeyPrefix, p.Role
	if len(p.Models) > 0 {
		me.Models = p.Models
	}
	for _, perm := range auth.Permissions() {
		if p.Can(perm) {
			me.Permissions = append(me.Permissions, string(perm))
		}
	}
	if p.Can(auth.AdminKeys) || p.Can(auth.AdminUsers) {
		roles := c.auth.Roles()
		me.Roles = map[string][]string{}
		for _, name := range roles.Names() {
			perms := []string{}
			for _, perm := range auth.Permissions() {
				if roles.Allows(name, perm) {
					perms = append(perms, string(perm))
				}
			}
			me.Roles[name] = perms
		}
	}
	return httpapi.WriteData(w, r, http.StatusOK, me)
}
