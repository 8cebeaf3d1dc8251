package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/open-autoglm/autoglm/api/sse"
)

// Client calls an OpenAI-compatible server: autoglm itself, or any
// upstream that speaks the same API. It is safe for concurrent use; create
// one and reuse it, so that connections are reused.
type Client struct {
	base   string
	hc     *http.Client
	apiKey string
	header http.Header
}

// NewClient returns a client for the server at baseURL, for example
// "http://127.0.0.1:8080". A trailing "/v1" is accepted and ignored, so the
// base URLs written for OpenAI's SDKs work too.
//
// If hc is nil the client uses its own transport with connect, TLS and idle
// timeouts but no overall request timeout, which would cut long streams
// short: bound each call with its context instead.
func NewClient(baseURL string, hc *http.Client) *Client {
	base := strings.TrimRight(baseURL, "/")
	base = strings.TrimSuffix(base, "/v1")
	if hc == nil {
		hc = defaultHTTPClient()
	}
	return &Client{base: base, hc: hc}
}

func defaultHTTPClient() *http.Client {
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Client{Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   32,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}}
}

// WithAPIKey returns a copy of c that sends "Authorization: Bearer key".
func (c *Client) WithAPIKey(key string) *Client {
	c2 := *c
	c2.apiKey = key
	return &c2
}

// WithHeader returns a copy of c that sends the header key: value on every
// request, replacing any value it had.
func (c *Client) WithHeader(key, value string) *Client {
	c2 := *c
	c2.header = c.header.Clone()
	if c2.header == nil {
		c2.header = make(http.Header)
	}
	c2.header.Set(key, value)
	return &c2
}

// Chat sends a chat completion request and waits for the whole answer.
// req.Stream is ignored (sent as false); req is not modified.
func (c *Client) Chat(ctx context.Context, req *ChatCompletionRequest) (*ChatCompletion, error) {
	r := *req
	r.Stream, r.StreamOptions = false, nil
	var out ChatCompletion
	if err := c.call(ctx, http.MethodPost, "/v1/chat/completions", &r, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ChatStream sends a chat completion request with streaming and calls fn
// for every chunk, in order, until the server sends [DONE]; fn may keep the
// chunk. req.Stream is sent as true; req is not modified.
//
// ChatStream returns nil after [DONE]; the error of fn, which stops the
// stream; a *StatusError for a refused request or an error reported
// mid-stream; or, if the stream ends without [DONE], an error wrapping
// [io.ErrUnexpectedEOF].
func (c *Client) ChatStream(ctx context.Context, req *ChatCompletionRequest, fn func(*ChatCompletionChunk) error) error {
	r := *req
	r.Stream = true
	return stream(ctx, c, "/v1/chat/completions", &r, fn)
}

// Completions sends a text completion request and waits for the answer.
// req.Stream is sent as false; req is not modified.
func (c *Client) Completions(ctx context.Context, req *CompletionRequest) (*Completion, error) {
	r := *req
	r.Stream, r.StreamOptions = false, nil
	var out Completion
	if err := c.call(ctx, http.MethodPost, "/v1/completions", &r, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// CompletionsStream is [Client.ChatStream] for text completions: each
// chunk has the shape of a Completion.
func (c *Client) CompletionsStream(ctx context.Context, req *CompletionRequest, fn func(*Completion) error) error {
	r := *req
	r.Stream = true
	return stream(ctx, c, "/v1/completions", &r, fn)
}

// Embeddings embeds req.Input. Vectors arrive decoded whether the server
// sent floats or base64.
func (c *Client) Embeddings(ctx context.Context, req *EmbeddingRequest) (*EmbeddingResponse, error) {
	var out EmbeddingResponse
	if err := c.call(ctx, http.MethodPost, "/v1/embeddings", req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Models lists the models the server offers.
func (c *Client) Models(ctx context.Context) (*ModelList, error) {
	var out ModelList
	if err := c.call(ctx, http.MethodGet, "/v1/models", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Model describes one model. Ids may contain slashes ("org/name").
func (c *Client) Model(ctx context.Context, id string) (*Model, error) {
	segs := strings.Split(id, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	var out Model
	if err := c.call(ctx, http.MethodGet, "/v1/models/"+strings.Join(segs, "/"), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// send performs a request and returns the response of a 2xx answer, or a
// *StatusError.
func (c *Client) send(ctx context.Context, method, path string, in any, accept string, hdr http.Header) (*http.Response, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("api: encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	for k, v := range c.header {
		req.Header[k] = v
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", accept)
	if c.apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+c.apiKey)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, errorFromResponse(resp)
	}
	return resp, nil
}

// call performs a request with a JSON answer decoded into out.
func (c *Client) call(ctx context.Context, method, path string, in, out any) error {
	return c.callWith(ctx, method, path, nil, in, out)
}

// callWith is call with extra request headers.
func (c *Client) callWith(ctx context.Context, method, path string, hdr http.Header, in, out any) error {
	resp, err := c.send(ctx, method, path, in, "application/json", hdr)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("api: decode %s answer: %w", path, err)
	}
	return nil
}

// stream performs a streaming request and hands every decoded event to fn.
func stream[T any](ctx context.Context, c *Client, path string, in any, fn func(*T) error) error {
	resp, err := c.send(ctx, http.MethodPost, path, in, "text/event-stream", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	traceID := resp.Header.Get("X-Trace-Id")
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt == "application/json" {
		// The server answered in one piece: an error, or it ignored "stream".
		body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		if isErrorObject(body) {
			return streamError(body, traceID)
		}
		return fmt.Errorf("api: %s: expected an event stream, got %s", path, mt)
	}
	events := sse.NewReader(resp.Body)
	for {
		ev, err := events.Next()
		data := ev.Data
		switch {
		case err == io.EOF:
			return fmt.Errorf("api: %s: stream ended without [DONE]: %w", path, io.ErrUnexpectedEOF)
		case err != nil:
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("api: %s: read stream: %w", path, err)
		case ev.Type == "error" || isErrorObject(data):
			return streamError(data, traceID)
		case string(bytes.TrimSpace(data)) == "[DONE]":
			return nil
		}
		v := new(T)
		if err := json.Unmarshal(data, v); err != nil {
			return fmt.Errorf("api: %s: decode event %.100q: %w", path, data, err)
		}
		if err := fn(v); err != nil {
			return err
		}
	}
}
