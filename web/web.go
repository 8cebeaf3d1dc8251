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
	etag  string
	// indexGz is the page gzipped, with its own ETag (another representation): 13 KB become
	// about 4 KB, well inside the first round trip of a new connection.
	indexGz []byte
	etagGz  string
	csp     string
	loaded  time.Time
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
	c.index, c.etag = index, `"`+hex.EncodeToString(sum[:8])+`"`
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
	c.indexGz, c.etagGz = gz.Bytes(), `"`+hex.EncodeToString(sum[:8])+`-gzip"`
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

func (c *Console) securityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", c.csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	// Kept although it costs the first navigation of a fresh tab a renderer process start
	// in Chromium ('same-origin-allow-popups' and 'noopener-allow-popups' alike; a visit from
	// another site's tab changes process anyway and pays nothing for it; docs/BENCHMARKS.md):
	// without it, a page of another
	// site that opened the console (a link with target=_blank, window.open) keeps a handle
	// on the window that holds the credential (it can navigate it away, message it, and
	// observe its frames and history).
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
}

// serveIndex answers the application's page. It is revalidated on every load (its asset
// names change with their content, so the assets themselves are cached for good).
func (c *Console) serveIndex(w http.ResponseWriter, r *http.Request) error {
	h := w.Header()
	c.securityHeaders(h)
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Add("Vary", "Accept-Encoding")
	body, etag := c.index, c.etag
	if acceptsGzip(r) {
		body, etag = c.indexGz, c.etagGz
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
	c.securityHeaders(h)
	ctype := mime.TypeByExtension(path.Ext(name))
	if ctype == "" {
		ctype = "application/octet-stream"
	}
	h.Set("Content-Type", ctype)
	// Asset names carry a hash of their content: a changed file is a new name.
	h.Set("Cache-Control", "public, max-age=31536000, immutable")
	h.Add("Vary", "Accept-Encoding")
	if acceptsGzip(r) {
		if gz, err := fs.ReadFile(c.files, name+".gz"); err == nil {
			h.Set("Content-Encoding", "gzip")
			b = gz
		}
	}
	http.ServeContent(w, r, "", c.loaded, bytes.NewReader(b))
	return nil
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
