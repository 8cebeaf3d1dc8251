package plugin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/open-autoglm/autoglm/internal/apierr"
	"github.com/open-autoglm/autoglm/internal/auth"
	"github.com/open-autoglm/autoglm/internal/backend"
	"github.com/open-autoglm/autoglm/internal/config"
	"github.com/open-autoglm/autoglm/internal/router"
	"github.com/open-autoglm/autoglm/internal/telemetry"
	"github.com/open-autoglm/autoglm/internal/wire"
)

// maxAnswerBytes bounds a non-streamed answer read for the response hooks.
const maxAnswerBytes = 64 << 20

// Options configure a Manager.
type Options struct {
	// Registry looks up the model a plugin routes a request to. Required.
	Registry *router.Registry
	Logger   *slog.Logger
	// Metrics, when set, counts every hook call.
	Metrics *Metrics
	// Span, when set, wraps every hook call in a trace span.
	Span SpanFunc
	// Dir resolves relative paths in plugin sections.
	Dir string
}

// Manager holds the chain in force and is the router's Hook. Load replaces the chain
// atomically: a request keeps the chain it started with until its answer is closed.
type Manager struct {
	opt Options
	log *slog.Logger
	cur atomic.Pointer[Chain]
	mu  sync.Mutex // serialises Load
}

var _ router.Hook = (*Manager)(nil)

// NewManager returns a Manager with an empty chain.
func NewManager(opt Options) *Manager {
	log := opt.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Manager{opt: opt, log: log}
}

// Load builds a chain from cfgs and puts it in force. On error the chain in force stays.
func (m *Manager) Load(ctx context.Context, cfgs []config.Plugin) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	ch, err := Build(ctx, cfgs, BuildOptions{Logger: m.log, Metrics: m.opt.Metrics, Span: m.opt.Span, Dir: m.opt.Dir})
	if err != nil {
		return err
	}
	if old := m.cur.Swap(ch); old != nil {
		old.retire()
	}
	return nil
}

// Names lists the plugins in force, in order.
func (m *Manager) Names() []string {
	if ch := m.cur.Load(); ch != nil {
		return ch.Names()
	}
	return nil
}

// Close retires the chain in force; it is cleaned up when its last request is done.
func (m *Manager) Close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if old := m.cur.Swap(nil); old != nil {
		old.retire()
	}
}

// chain returns the chain in force with a reference held, or nil.
func (m *Manager) chain() *Chain {
	for {
		ch := m.cur.Load()
		if ch == nil {
			return nil
		}
		if ch.acquire() {
			return ch
		}
	}
}

// Do implements router.Hook: it runs the chain around next.
func (m *Manager) Do(ctx context.Context, model *router.Model, req *router.Request, next router.DoFunc) (*backend.Response, *router.Target, error) {
	ch := m.chain()
	if ch == nil {
		return next(ctx, model, req)
	}
	if len(ch.entries) == 0 {
		ch.release()
		return next(ctx, model, req)
	}
	resp, t, err := m.run(ctx, ch, model, req, next)
	if err != nil || resp == nil {
		ch.release()
		return resp, t, err
	}
	resp.Body = &releasing{ReadCloser: resp.Body, release: ch.release}
	return resp, t, nil
}

// NewRequest is the normalised form of a router request, as the chain builds it.
func NewRequest(ctx context.Context, req *router.Request) (*Request, error) {
	r := &Request{Op: req.Op.String(), Stream: req.Stream, Header: req.Client}
	if err := r.decodeBody(req.Body); err != nil {
		return nil, err
	}
	if p, ok := auth.FromContext(ctx); ok {
		r.KeyID, r.KeyName, r.User, r.Role = p.KeyID, p.KeyPrefix, p.UserID, p.Role
	}
	if info := telemetry.Info(ctx); info != nil {
		r.Route = info.Route()
	}
	for k, v := range req.Meta {
		if k == "route" {
			if r.Route == "" {
				r.Route = v
			}
			continue
		}
		if r.Metadata == nil {
			r.Metadata = make(map[string]string, len(req.Meta))
		}
		r.Metadata[k] = v
	}
	return r, nil
}

func (m *Manager) run(ctx context.Context, ch *Chain, model *router.Model, req *router.Request, next router.DoFunc) (*backend.Response, *router.Target, error) {
	preq, err := NewRequest(ctx, req)
	if err != nil {
		// Not a JSON object the plugins could read: the backend answers it as it would.
		return next(ctx, model, req)
	}
	c := newCall(preq, len(ch.entries))
	n := len(ch.entries)
	if ch.hasReq {
		var err error
		n, err = ch.runRequest(ctx, c)
		if err != nil {
			return nil, nil, err
		}
		if c.replied {
			return m.replied(ctx, ch, c, req, n)
		}
		// The body is checked again only when a plugin put raw JSON of its own in it.
		body, f, checked := preq.encodeBody(req.Body, req.Fields)
		if !checked {
			if f, err = wire.Peek(body); err != nil {
				return nil, nil, &apierr.Error{Kind: apierr.Internal, Code: apierr.CodePluginFailed, Message: "a plugin left the request unreadable", Err: err}
			}
		}
		if preq.Model != model.Name && preq.Model != req.Fields.Model {
			to, ok := m.opt.Registry.Lookup(preq.Model)
			if !ok {
				return nil, nil, &apierr.Error{Kind: apierr.Internal, Code: apierr.CodePluginFailed,
					Message: "a plugin routed the request to a model that is not configured", Err: fmt.Errorf("model %q", preq.Model)}
			}
			// The credential's model allow-list applies to the model actually used, as it
			// would to a request that named it.
			if p, ok := auth.FromContext(ctx); ok && !p.AllowsModel(preq.Model) && !p.AllowsModel(to.Name) {
				return nil, nil, p.CheckModel(preq.Model)
			}
			model = to
			if info := telemetry.Info(ctx); info != nil {
				info.SetModel(to.Name)
			}
		}
		nr := *req
		nr.Body, nr.Fields = body, f
		req = &nr
	}
	resp, t, err := next(ctx, model, req)
	if err != nil {
		return resp, t, err
	}
	resp, err = m.answer(ctx, ch, c, resp, n)
	return resp, t, err
}

// answer puts the response and chunk hooks of entries[:n] on a backend's answer. A whole
// answer is read and rewritten here, so a failing hook is a clean error; a stream is
// rewritten as the caller reads it.
func (m *Manager) answer(ctx context.Context, ch *Chain, c *Call, resp *backend.Response, n int) (*backend.Response, error) {
	if resp.StatusCode != http.StatusOK || (c.Req.Op != "chat" && c.Req.Op != "completion") {
		return resp, nil
	}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		if ch.hasChunkIn(n) {
			resp.Body = newStreamRewriter(ctx, ch, c, resp.Body, n)
		}
		return resp, nil
	}
	if !ch.hasResponseIn(n) {
		return resp, nil
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes+1))
	resp.Body.Close()
	if err != nil {
		return nil, apierr.From(err)
	}
	if len(b) > maxAnswerBytes {
		return nil, apierr.New(apierr.CodeUpstreamAnswerTooLarge, "the model's answer is too large")
	}
	out, err := rewriteDoc(ctx, ch, c, b, n)
	if err != nil {
		return nil, err
	}
	resp.Header = resp.Header.Clone()
	resp.Header.Set("Content-Length", strconv.Itoa(len(out)))
	resp.Body = io.NopCloser(bytes.NewReader(out))
	return resp, nil
}

// rewriteDoc runs the response hooks on a whole answer.
func rewriteDoc(ctx context.Context, ch *Chain, c *Call, b []byte, n int) ([]byte, error) {
	d, ok := decodeDoc(b)
	if !ok {
		return b, nil
	}
	outer, inner := textKey(c.Req.Op, false)
	r := &Response{Choices: make([]Choice, len(d.choices))}
	if v, ok := d.top["model"]; ok {
		_ = json.Unmarshal(v, &r.Model)
	}
	orig := make([]string, len(d.choices))
	for i := range d.choices {
		idx, text, _, finish := d.text(i, outer, inner)
		r.Choices[i] = Choice{Index: idx, Text: text, Finish: finish}
		orig[i] = text
	}
	if err := ch.runResponse(ctx, c, r, n); err != nil {
		return nil, err
	}
	changed := false
	for i := range d.choices {
		if i < len(r.Choices) && r.Choices[i].Text != orig[i] {
			d.setText(i, outer, inner, r.Choices[i].Text, false)
			changed = true
		}
	}
	if !changed {
		return b, nil
	}
	return d.encode(), nil
}

// replied builds the answer a request hook gave, in the shape the request asked for, with
// the response hooks of the plugins before it applied.
func (m *Manager) replied(ctx context.Context, ch *Chain, c *Call, req *router.Request, n int) (*backend.Response, *router.Target, error) {
	target := &router.Target{Name: "plugin." + ch.entries[n].name, Type: "plugin", Model: c.Req.Model}
	op := c.Req.Op
	if op != "chat" && op != "completion" {
		return nil, nil, &apierr.Error{Kind: apierr.Internal, Code: apierr.CodePluginFailed,
			Message: fmt.Sprintf("plugin %q answered a request that cannot be answered by a plugin", ch.entries[n].name)}
	}
	h := http.Header{}
	if req.Stream {
		h.Set("Content-Type", "text/event-stream")
		usage := req.Fields.IncludeUsage
		body := io.NopCloser(bytes.NewReader(replyStream(op, c.Req.Model, c.reply, usage)))
		resp, err := m.answer(ctx, ch, c, &backend.Response{StatusCode: http.StatusOK, Header: h, Body: body}, n)
		return resp, target, err
	}
	h.Set("Content-Type", "application/json")
	resp, err := m.answer(ctx, ch, c, &backend.Response{StatusCode: http.StatusOK, Header: h, Body: io.NopCloser(bytes.NewReader(replyDoc(op, c.Req.Model, c.reply)))}, n)
	return resp, target, err
}

// releasing releases the chain reference once, when the answer is closed.
type releasing struct {
	io.ReadCloser
	once    sync.Once
	release func()
}

func (r *releasing) Close() error {
	err := r.ReadCloser.Close()
	r.once.Do(r.release)
	return err
}
