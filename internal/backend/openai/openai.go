// Package openai is the backend for any OpenAI-compatible upstream: vLLM, SGLang, TGI,
// Ollama, llama-server and hosted APIs. It forwards the request body as is and hands the
// upstream's answer back unread, so streams pass through byte for byte.
package openai

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/open-autoglm/autoglm/internal/backend"
	"github.com/open-autoglm/autoglm/internal/config"
	"github.com/open-autoglm/autoglm/internal/httphead"
	"github.com/open-autoglm/autoglm/internal/telemetry"
)

func init() {
	backend.Register(config.BackendOpenAI, func(cfg config.Backend) (backend.Backend, error) {
		return New(cfg, nil)
	})
}

// Client is an OpenAI-compatible upstream.
type Client struct {
	base    string   // API root without a trailing slash
	auth    []string // {"Bearer <key>"}, or nil without a key
	headers http.Header
	// rt sends each request as it is: no http.Client in between. A client's redirect
	// bookkeeping copies every request's headers to replay them on a redirect, and an
	// upstream's redirect is not followed anyway (Do): a proxy passes on what the address
	// it was given answers, as nginx's proxy_pass does.
	rt http.RoundTripper

	// The direct head, when rt is this package's Transport and base a plain-HTTP address
	// (direct is then that Transport): Do writes the request's head itself from heads, the
	// request line, Host and the fixed fields of each operation made once, rather than
	// building an http.Request and a header map for Transport to write out again. probe is a
	// request to base, never sent: the proxy settings are asked about it on every request, as
	// Transport asks about each request it is given.
	direct *Transport
	addr   string
	probe  *http.Request
	heads  [backend.OpResponses + 1][]byte
}

// Header values every request carries, shared by all requests and never written to.
var (
	jsonValue = []string{"application/json"}
	sseValue  = []string{"text/event-stream"}
)

var _ backend.Backend = (*Client)(nil)
var _ backend.OnLoop = (*Client)(nil)

// OnLoop reports whether requests to this upstream take the direct path, whose connections
// belong to the request's event loop: a plain-HTTP upstream reached without a proxy.
func (c *Client) OnLoop() bool { return c.direct != nil && !c.proxied() }

// proxied reports whether the proxy settings send requests to base through a proxy (or
// cannot say); c.direct is set.
func (c *Client) proxied() bool {
	if c.direct.Proxy == nil {
		return false
	}
	u, err := c.direct.Proxy(c.probe)
	return err != nil || u != nil
}

var _ backend.Prober = (*Client)(nil)
var _ backend.Closer = (*Client)(nil)

// Close closes the client's idle upstream connections.
func (c *Client) Close() error {
	if ci, ok := c.rt.(interface{ CloseIdleConnections() }); ok {
		ci.CloseIdleConnections()
	}
	return nil
}

// NewTransport returns the HTTP transport tuned for upstream model servers: many keep-alive
// connections per host (a gateway talks to few hosts, a lot), HTTP/2 where the upstream offers
// it over TLS, and no transparent compression (SSE must not be buffered by a decompressor,
// and JSON bodies are passed through as they come). Connection buffers keep Go's 4 KiB
// default: LLM answers arrive in small chunks, and with thousands of open streams larger
// buffers cost tens of kilobytes per stream (measured: 32 KiB buffers doubled the RSS of
// 2,000 concurrent streams). Plain-HTTP upstreams without a proxy take Transport's direct
// path; the rest goes through net/http's Transport.
func NewTransport() *Transport { return newTransport(10 * time.Second) }

// newTransport is NewTransport with connect bounding the TCP dial and the TLS handshake.
func newTransport(connect time.Duration) *Transport {
	dial := (&net.Dialer{
		Timeout:   connect,
		KeepAlive: 30 * time.Second,
	}).DialContext
	return &Transport{
		Std: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           dial,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          1024,
			MaxIdleConnsPerHost:   256,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   connect,
			ExpectContinueTimeout: time.Second,
			DisableCompression:    true,
		},
		Dial:           dial,
		ConnectTimeout: connect,
		Proxy:          http.ProxyFromEnvironment,
		MaxIdlePerHost: 256,
		IdleTimeout:    90 * time.Second,
	}
}

// New returns a client for the upstream in cfg that sends its requests with rt. A nil rt is
// NewTransport's, with cfg.Timeouts.Connect (when set) bounding the dial and TLS handshake;
// there is no overall timeout because streams may run for minutes; requests are bounded by
// their contexts.
func New(cfg config.Backend, rt http.RoundTripper) (*Client, error) {
	if cfg.BaseURL == "" {
		return nil, fmt.Errorf("backend %s: base_url is required", cfg.Name)
	}
	if rt == nil {
		connect := cfg.Timeouts.Connect.D()
		if connect <= 0 {
			connect = 10 * time.Second
		}
		rt = newTransport(connect)
	}
	c := &Client{
		base:    strings.TrimRight(cfg.BaseURL, "/"),
		headers: make(http.Header, len(cfg.Headers)),
		rt:      rt,
	}
	if cfg.APIKey != "" {
		c.auth = []string{"Bearer " + cfg.APIKey}
	}
	for k, v := range cfg.Headers {
		c.headers.Set(k, v)
	}
	if cfg.Organization != "" {
		c.headers.Set("OpenAI-Organization", cfg.Organization)
	}
	if cfg.Project != "" {
		c.headers.Set("OpenAI-Project", cfg.Project)
	}
	if t, ok := rt.(*Transport); ok {
		c.directHead(t)
	}
	return c, nil
}

// directHead prepares the direct head (see Client) for t, when base allows it: plain HTTP,
// no user in the address, and no configured header that Transport leaves to net/http.
func (c *Client) directHead(t *Transport) {
	u, err := url.Parse(c.base)
	if err != nil || u.Scheme != "http" || u.Host == "" || u.User != nil || passedToStd(c.headers) {
		return
	}
	probe, err := http.NewRequest(http.MethodPost, c.base, nil)
	if err != nil {
		return
	}
	var heads [len(c.heads)][]byte
	for op := range heads {
		pu, err := url.Parse(c.base + backend.Op(op).Path())
		if err != nil {
			return
		}
		var b bytes.Buffer
		w := bufio.NewWriter(&b)
		w.WriteString("POST " + pu.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host + "\r\nContent-Type: application/json\r\n")
		if c.auth != nil {
			writeField(w, "Authorization", c.auth[0])
		}
		writeHeader(w, c.headers)
		_ = w.Flush()
		heads[op] = b.Bytes()
	}
	c.direct, c.probe, c.heads = t, probe, heads
	c.addr = u.Host
	if u.Port() == "" {
		c.addr = net.JoinHostPort(u.Hostname(), "80")
	}
}

// passedToStd reports whether h holds a field for which Transport sends a request through
// net/http rather than its direct path.
func passedToStd(h http.Header) bool {
	for _, k := range stdFields {
		if _, ok := h[k]; ok {
			return true
		}
	}
	return false
}

// doDirect sends req with the direct head, or reports false when req must go the general way:
// tracing is on (the propagator writes the trace fields), a client header is one Transport
// leaves to net/http, or the upstream is reached through a proxy.
//
// The upstream sees what the general way sends: the fixed fields, Content-Length, Accept,
// the client's headers less those refused (ClientHeaderRefused) and those the backend sets
// itself, a default User-Agent when there is none, and X-Trace-Id unless one is set already.
func (c *Client) doDirect(ctx context.Context, req *backend.Request) (*http.Response, bool, error) {
	if telemetry.CarriesSpan(ctx) || passedToStd(req.Header) || int(req.Op) >= len(c.heads) {
		return nil, false, nil
	}
	if c.proxied() {
		return nil, false, nil
	}
	resp, err := c.direct.exchange(ctx, c.addr, http.MethodPost, func(w *bufio.Writer) error {
		w.Write(c.heads[req.Op])
		w.WriteString("Content-Length: ")
		w.Write(strconv.AppendInt(w.AvailableBuffer(), int64(len(req.Body)), 10))
		if req.Stream {
			w.WriteString("\r\nAccept: text/event-stream\r\n")
		} else {
			w.WriteString("\r\nAccept: application/json\r\n")
		}
		id := telemetry.TraceID(ctx)
		if id != "" && c.value(req.Header, telemetry.TraceHeader) != "" {
			id = "" // the request has its own
		}
		for k, vs := range req.Header {
			if c.setsItself(k) || ClientHeaderRefused(k) || (id != "" && k == telemetry.TraceHeader) {
				continue
			}
			for _, v := range vs {
				writeField(w, k, v)
			}
		}
		if _, ok := c.headers["User-Agent"]; !ok {
			if _, ok := req.Header["User-Agent"]; !ok {
				w.WriteString("User-Agent: Go-http-client/1.1\r\n")
			}
		}
		if id != "" {
			writeField(w, telemetry.TraceHeader, id)
		}
		w.WriteString("\r\n")
		_, err := w.Write(req.Body)
		return err
	})
	return resp, true, err
}

// setsItself reports whether the backend writes the field k whatever the client sent.
func (c *Client) setsItself(k string) bool {
	switch k {
	case "Content-Type", "Accept", "Authorization", "Host", "Content-Length":
		return true
	}
	_, ok := c.headers[k]
	return ok
}

// value is the first value of the field k on a request with the client headers h: the
// backend's own, else the client's unless refused.
func (c *Client) value(h http.Header, k string) string {
	if vs, ok := c.headers[k]; ok {
		return vs[0]
	}
	if vs := h[k]; len(vs) > 0 && !ClientHeaderRefused(k) {
		return vs[0]
	}
	return ""
}

// Do forwards req upstream.
func (c *Client) Do(ctx context.Context, req *backend.Request) (*backend.Response, error) {
	if c.direct != nil {
		resp, ok, err := c.doDirect(ctx, req)
		if ok {
			if err == nil {
				resp, err = refuseRedirect(resp)
			}
			if err != nil {
				return nil, err
			}
			return &backend.Response{StatusCode: resp.StatusCode, Header: resp.Header, Body: resp.Body}, nil
		}
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+req.Op.Path(), bytes.NewReader(req.Body))
	if err != nil {
		return nil, err
	}
	h := hr.Header
	for k, vs := range req.Header {
		if !ClientHeaderRefused(k) {
			h[k] = vs
		}
	}
	for k, vs := range c.headers {
		h[k] = vs
	}
	// Fixed values are shared, read-only slices: one allocation fewer per header and request.
	h["Content-Type"] = jsonValue
	if req.Stream {
		h["Accept"] = sseValue
	} else {
		h["Accept"] = jsonValue
	}
	if c.auth != nil {
		h["Authorization"] = c.auth
	}
	telemetry.InjectUpstream(ctx, h)
	resp, err := c.send(hr)
	if err != nil {
		return nil, err
	}
	return &backend.Response{StatusCode: resp.StatusCode, Header: resp.Header, Body: resp.Body}, nil
}

// ErrRedirect is what Do and Probe return for an upstream that answers with a redirect. It
// is not followed: base_url must name the API itself.
var ErrRedirect = errors.New("the upstream answered with a redirect; base_url must be the final address of its API")

// send sends hr with the client's round tripper and refuses a redirect (3xx other than 304).
func (c *Client) send(hr *http.Request) (*http.Response, error) {
	resp, err := c.rt.RoundTrip(hr)
	if err != nil {
		return nil, err
	}
	return refuseRedirect(resp)
}

// refuseRedirect passes resp on unless it is a redirect, which it closes and reports.
func refuseRedirect(resp *http.Response) (*http.Response, error) {
	if resp.StatusCode/100 == 3 && resp.StatusCode != http.StatusNotModified {
		_ = resp.Body.Close()
		return nil, fmt.Errorf("%w (status %d to %q)", ErrRedirect, resp.StatusCode, resp.Header.Get("Location"))
	}
	return resp, nil
}

// ClientHeaderRefused reports whether a header that came from a client must never be sent
// upstream: credentials, and headers that choose whose account an upstream bills. The
// backend's own key, organization and project (and its configured headers) are what the
// upstream sees instead. The list: Authorization, Proxy-Authorization, Cookie, Api-Key,
// X-Api-Key, X-Goog-Api-Key, Ocp-Apim-Subscription-Key, and every OpenAI-*, Anthropic-*,
// X-Amz-* and X-Goog-* header. name is compared case-insensitively.
func ClientHeaderRefused(name string) bool {
	for _, r := range refusedNames {
		if httphead.EqualFold(name, r) {
			return true
		}
	}
	for _, p := range refusedPrefixes {
		if len(name) >= len(p) && httphead.EqualFold(name[:len(p)], p) {
			return true
		}
	}
	return false
}

// refusedNames and refusedPrefixes are ClientHeaderRefused's lists, compared by ASCII case
// folding, so that a header name costs no lower-cased copy.
var (
	refusedNames    = []string{"authorization", "proxy-authorization", "cookie", "api-key", "x-api-key", "ocp-apim-subscription-key"}
	refusedPrefixes = []string{"openai-", "anthropic-", "x-amz-", "x-goog-"}
)

// Probe asks the upstream for its model list. Any HTTP answer counts as reachable: a 401
// means the server is up and the key is wrong, which requests will report on their own.
func (c *Client) Probe(ctx context.Context) error {
	hr, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/models", nil)
	if err != nil {
		return err
	}
	if c.auth != nil {
		hr.Header["Authorization"] = c.auth
	}
	resp, err := c.send(hr)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	return resp.Body.Close()
}
