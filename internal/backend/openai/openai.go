// Package openai is the backend for any OpenAI-compatible upstream: vLLM, SGLang, TGI,
// Ollama, llama-server and hosted APIs. It forwards the request body as is and hands the
// upstream's answer back unread, so streams pass through byte for byte.
package openai

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
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
}

// Header values every request carries, shared by all requests and never written to.
var (
	jsonValue = []string{"application/json"}
	sseValue  = []string{"text/event-stream"}
)

var _ backend.Backend = (*Client)(nil)
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
	return c, nil
}

// Do forwards req upstream.
func (c *Client) Do(ctx context.Context, req *backend.Request) (*backend.Response, error) {
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
