// Package openapitest checks live HTTP traffic against the server's OpenAPI document, for
// tests: Middleware wraps a server's handler, records each exchange, and fails the test when
// an answer does not match the document (status, content type, headers and body schema), when
// a request the server accepted does not, or when a route is missing from the document.
//
// Requests the server refused (4xx, 5xx) are not checked against the request schemas: tests
// send invalid requests on purpose, and the document describes valid ones. Their answers are
// still checked. gRPC calls and WebSocket frames are not HTTP exchanges the document
// describes and are passed through.
package openapitest

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
	"github.com/klauspost/compress/zstd"

	"github.com/open-autoglm/autoglm/internal/openapi"
)

// maxBody caps the bytes of a request or answer kept for the check.
const maxBody = 16 << 20

var (
	loadOnce sync.Once
	doc      *openapi3.T
	router   routers.Router
	loadErr  error
)

// textBodies are content types whose body the document describes as a string.
var textBodies = []string{
	"text/event-stream", "text/plain", "text/html", "text/javascript", "text/css", "image/svg+xml",
	"application/octet-stream", "application/jsonl", "application/openmetrics-text",
}

func load() {
	l := openapi3.NewLoader()
	doc, loadErr = l.LoadFromData(openapi.Document())
	if loadErr != nil {
		return
	}
	if loadErr = doc.Validate(context.Background()); loadErr != nil {
		return
	}
	// Match operations on any host and port: tests listen on ephemeral ports.
	doc.Servers = nil
	router, loadErr = legacy.NewRouter(doc)
	for _, ct := range textBodies {
		if openapi3filter.RegisteredBodyDecoder(ct) == nil {
			openapi3filter.RegisterBodyDecoder(ct, func(r io.Reader, _ http.Header, _ *openapi3.SchemaRef, _ openapi3filter.EncodingFn) (any, error) {
				b, err := io.ReadAll(r)
				return string(b), err
			})
		}
	}
}

// Doc returns the parsed document.
func Doc(t testing.TB) *openapi3.T {
	t.Helper()
	loadOnce.Do(load)
	if loadErr != nil {
		t.Fatalf("the OpenAPI document: %v", loadErr)
	}
	return doc
}

// Counter counts the exchanges a Middleware checked, by operation and status.
type Counter struct {
	mu   sync.Mutex
	seen map[seenKey]int
	errs []string
	n    atomic.Int64
}

func (c *Counter) fail(msg string) {
	c.mu.Lock()
	c.errs = append(c.errs, msg)
	c.mu.Unlock()
}

type seenKey struct {
	method, path string
	status       int
}

// Seen returns how often the operation (method and the document's path template) answered
// with status, or with any status when status is 0.
func (c *Counter) Seen(method, path string, status int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for k, v := range c.seen {
		if k.method == method && k.path == path && (status == 0 || k.status == status) {
			n += v
		}
	}
	return n
}

// Take returns the mismatches found so far and forgets them (for tests of the checker).
func (c *Counter) Take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.errs
	c.errs = nil
	return e
}

// Checked is the number of exchanges checked.
func (c *Counter) Checked() int64 { return c.n.Load() }

func (c *Counter) add(method, path string, status int) {
	c.n.Add(1)
	c.mu.Lock()
	if c.seen == nil {
		c.seen = map[seenKey]int{}
	}
	c.seen[seenKey{method, path, status}]++
	c.mu.Unlock()
}

// Middleware returns next wrapped so that every exchange is checked against the document;
// mismatches fail t when the test ends. The Counter it returns tells what was checked.
// Requests whose path starts with one of ignore (routes a test adds for itself) are not
// checked.
func Middleware(t testing.TB, next http.Handler, ignore ...string) (http.Handler, *Counter) {
	t.Helper()
	Doc(t)
	c := &Counter{}
	t.Cleanup(func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, e := range c.errs {
			t.Error(e)
		}
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if skip(r) || slices.ContainsFunc(ignore, func(p string) bool { return strings.HasPrefix(r.URL.Path, p) }) {
			next.ServeHTTP(w, r)
			return
		}
		var reqBody []byte
		if r.Body != nil && r.Body != http.NoBody {
			b, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
			if err != nil {
				next.ServeHTTP(w, r)
				return
			}
			reqBody = b
			r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(b), r.Body))
		}
		// The request as the client sent it: the server's stages may change it.
		sent := r.Clone(context.Background())
		rec := &recorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		if rec.hijacked && rec.status == 0 {
			rec.status = http.StatusSwitchingProtocols
		}
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		if err := check(sent, reqBody, rec, c); err != nil {
			c.fail(fmt.Sprintf("OpenAPI contract: %s %s → %d: %v", r.Method, r.URL.RequestURI(), rec.status, err))
		}
	}), c
}

// skip tells the exchanges the document does not describe: gRPC, gRPC-Web and Connect calls.
func skip(r *http.Request) bool {
	ct := r.Header.Get("Content-Type")
	return strings.HasPrefix(ct, "application/grpc") || strings.HasPrefix(ct, "application/connect") ||
		strings.HasPrefix(r.URL.Path, "/autoglm.v1.") || strings.HasPrefix(r.URL.Path, "/grpc.")
}

func check(r *http.Request, reqBody []byte, rec *recorder, c *Counter) error {
	// The route as the document sees it: HEAD is described by GET.
	find := r.Clone(context.Background())
	if find.Method == http.MethodHead {
		find.Method = http.MethodGet
	}
	route, params, err := findRoute(find)
	if err != nil {
		// Paths no route serves answer 404 (or 405) in an error shape; anything else
		// is a route the document lacks.
		if rec.status == http.StatusNotFound || rec.status == http.StatusMethodNotAllowed {
			return nil
		}
		return errors.New("no operation in the document: " + err.Error())
	}
	c.add(r.Method, route.Path, rec.status)
	in := &openapi3filter.RequestValidationInput{
		Request:    find,
		PathParams: params,
		Route:      route,
		Options: &openapi3filter.Options{
			AuthenticationFunc: openapi3filter.NoopAuthenticationFunc,
			MultiError:         true,
		},
	}
	if rec.status < 300 && rec.status != http.StatusSwitchingProtocols && !emptyRest(route, params) {
		// The server reads a JSON body sent without a Content-Type, as OpenAI's API does.
		if len(reqBody) > 0 && find.Header.Get("Content-Type") == "" {
			find.Header.Set("Content-Type", "application/json")
		}
		plain, err := decode(find.Header.Get("Content-Encoding"), reqBody)
		if err != nil {
			return fmt.Errorf("request body: %w", err)
		}
		find.Body = io.NopCloser(bytes.NewReader(plain))
		if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
			return errors.New("the accepted request does not match: " + err.Error())
		}
	}
	if rec.status == http.StatusSwitchingProtocols || rec.status == http.StatusNotModified {
		return checkStatus(route, rec.status)
	}
	body, err := rec.decoded()
	if err != nil {
		return err
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 rec.status,
		Header:                 rec.Header(),
		Options: &openapi3filter.Options{
			IncludeResponseStatus: true,
			MultiError:            true,
			ExcludeResponseBody:   r.Method == http.MethodHead,
		},
	}
	out.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		return errors.New("the answer does not match: " + err.Error())
	}
	return nil
}

// findRoute finds the operation of a request as ServeMux does: literal segments before
// parameters, and a parameter named by x-rest-parameter takes the rest of the path.
func findRoute(r *http.Request) (*routers.Route, map[string]string, error) {
	if route, params, err := router.FindRoute(r); err == nil {
		return route, params, nil
	}
	segs := strings.Split(r.URL.Path, "/")
	for path, item := range doc.Paths.Map() {
		op := item.GetOperation(r.Method)
		if op == nil {
			continue
		}
		rest, _ := op.Extensions["x-rest-parameter"].(string)
		if rest == "" {
			continue
		}
		tmpl := strings.Split(path, "/")
		if len(segs) < len(tmpl) {
			continue
		}
		params := map[string]string{}
		ok := true
		for i, t := range tmpl {
			switch {
			case t == "{"+rest+"}":
				params[rest] = strings.Join(segs[i:], "/")
			case strings.HasPrefix(t, "{"):
				params[strings.Trim(t, "{}")] = segs[i]
			case t != segs[i]:
				ok = false
			}
			if !ok {
				break
			}
		}
		if ok {
			return &routers.Route{Spec: doc, Path: path, PathItem: item, Method: r.Method, Operation: op}, params, nil
		}
	}
	return nil, nil, errors.New("no matching operation")
}

// emptyRest tells a request whose rest-of-path parameter is empty ("/ui/"): ServeMux matches
// it, and OpenAPI cannot describe an empty path parameter.
func emptyRest(route *routers.Route, params map[string]string) bool {
	rest, _ := route.Operation.Extensions["x-rest-parameter"].(string)
	return rest != "" && params[rest] == ""
}

// checkStatus checks that an answer without a body has a documented status.
func checkStatus(route *routers.Route, status int) error {
	if route.Operation.Responses.Status(status) == nil {
		return errors.New("undocumented status")
	}
	return nil
}

// recorder passes an answer through and keeps a copy.
type recorder struct {
	http.ResponseWriter
	status   int
	body     bytes.Buffer
	hijacked bool
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 && code >= 200 || code == http.StatusSwitchingProtocols {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	if r.body.Len() < maxBody {
		r.body.Write(p)
	}
	return r.ResponseWriter.Write(p)
}

func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (r *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	r.hijacked = true
	return http.NewResponseController(r.ResponseWriter).Hijack()
}

// Unwrap lets http.ResponseController reach the connection (deadlines).
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// decoded is the answer's body without its content coding.
func (r *recorder) decoded() ([]byte, error) {
	return decode(r.Header().Get("Content-Encoding"), r.body.Bytes())
}

// decode removes a content coding.
func decode(coding string, b []byte) ([]byte, error) {
	switch coding {
	case "", "identity":
		return b, nil
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			return nil, err
		}
		return io.ReadAll(zr)
	case "zstd":
		zr, err := zstd.NewReader(bytes.NewReader(b))
		if err != nil {
			return nil, err
		}
		defer zr.Close()
		return io.ReadAll(zr)
	default:
		return nil, errors.New("unknown Content-Encoding " + coding)
	}
}
