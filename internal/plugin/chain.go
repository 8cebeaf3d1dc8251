package plugin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/open-autoglm/autoglm/internal/apierr"
	"github.com/open-autoglm/autoglm/internal/config"
)

// SpanFunc starts a trace span named name under ctx and returns the context inside it and
// the function that ends it with the hook's error (nil when it succeeded).
type SpanFunc func(ctx context.Context, name string) (context.Context, func(error))

// Hook names, as metrics and spans label them.
const (
	HookRequest  = "request"
	HookResponse = "response"
	HookChunk    = "chunk"
)

// entry is one provisioned plugin of a chain.
type entry struct {
	name, typ string
	p         Plugin
	req       RequestHook
	resp      ResponseHook
	chunk     ChunkHook
	skip      bool
	blocking  bool
	timeout   time.Duration
	obs       [3]hookObservers // by hookIndex
	spans     [3]string
}

func hookIndex(h string) int {
	switch h {
	case HookRequest:
		return 0
	case HookResponse:
		return 1
	}
	return 2
}

// Chain is a provisioned, immutable list of plugins. Requests hold a reference while they
// use it; a replaced chain is cleaned up when its last request is done.
type Chain struct {
	entries []*entry
	hasReq  bool
	hasResp bool
	hasChk  bool
	log     *slog.Logger
	span    SpanFunc

	refs    atomic.Int64
	retired atomic.Bool
	cleaned atomic.Bool
}

// BuildOptions are what Build needs besides the configuration.
type BuildOptions struct {
	Logger  *slog.Logger
	Metrics *Metrics
	Span    SpanFunc
	// Dir resolves relative paths in plugin sections (the configuration file's directory).
	Dir string
}

// Build provisions every configured plugin, in order. On error the plugins already
// provisioned are cleaned up and the error names the entry at fault.
func Build(ctx context.Context, cfgs []config.Plugin, opt BuildOptions) (*Chain, error) {
	log := opt.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ch := &Chain{log: log, span: opt.Span}
	for i, pc := range cfgs {
		name := pc.Name
		if name == "" {
			name = pc.Type
		}
		info, ok := Lookup(pc.Type)
		if !ok {
			ch.cleanup()
			return nil, fmt.Errorf("plugins[%d].type: unknown plugin type %q (this build has %v)", i, pc.Type, Types())
		}
		p := info.New()
		e := &entry{name: name, typ: pc.Type, p: p, skip: pc.OnError == config.PluginSkip, timeout: pc.Timeout.D()}
		if e.timeout <= 0 {
			e.timeout = config.DefaultPluginTimeout
		}
		ch.entries = append(ch.entries, e) // cleaned up on a later failure, even half provisioned
		env := Env{Name: name, Logger: log.With("plugin", name), Dir: opt.Dir}
		if err := safeProvision(ctx, p, YAMLSection(&pc.Config), env); err != nil {
			ch.cleanup()
			return nil, fmt.Errorf("plugins[%d] (%s): %w", i, name, err)
		}
		if v, ok := p.(Validator); ok {
			if err := v.Validate(); err != nil {
				ch.cleanup()
				return nil, fmt.Errorf("plugins[%d] (%s): %w", i, name, err)
			}
		}
		if b, ok := p.(Blocking); ok {
			e.blocking = b.Blocking()
		}
		e.req, _ = p.(RequestHook)
		e.resp, _ = p.(ResponseHook)
		e.chunk, _ = p.(ChunkHook)
		if hs, ok := p.(HookSet); ok {
			req, resp, chunk := hs.Hooks()
			if !req {
				e.req = nil
			}
			if !resp {
				e.resp = nil
			}
			if !chunk {
				e.chunk = nil
			}
		}
		ch.hasReq = ch.hasReq || e.req != nil
		ch.hasResp = ch.hasResp || e.resp != nil
		ch.hasChk = ch.hasChk || e.chunk != nil
		for _, h := range []string{HookRequest, HookResponse, HookChunk} {
			e.obs[hookIndex(h)] = opt.Metrics.observers(name, h)
			e.spans[hookIndex(h)] = "plugin." + name + "." + h
		}
	}
	return ch, nil
}

func safeProvision(ctx context.Context, p Plugin, s Section, env Env) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic while provisioning: %v", r)
		}
	}()
	return p.Provision(ctx, s, env)
}

// Len is the number of plugins in the chain.
func (ch *Chain) Len() int { return len(ch.entries) }

// Names lists the chain's plugins in order.
func (ch *Chain) Names() []string {
	out := make([]string, len(ch.entries))
	for i, e := range ch.entries {
		out[i] = e.name
	}
	return out
}

func (ch *Chain) acquire() bool {
	ch.refs.Add(1)
	if ch.retired.Load() {
		ch.release()
		return false
	}
	return true
}

func (ch *Chain) release() {
	if ch.refs.Add(-1) == 0 && ch.retired.Load() {
		ch.cleanup()
	}
}

// retire marks the chain replaced: it is cleaned up once no request holds it.
func (ch *Chain) retire() {
	ch.retired.Store(true)
	if ch.refs.Load() == 0 {
		ch.cleanup()
	}
}

func (ch *Chain) cleanup() {
	if !ch.cleaned.CompareAndSwap(false, true) {
		return
	}
	for i := len(ch.entries) - 1; i >= 0; i-- {
		e := ch.entries[i]
		if c, ok := e.p.(Cleaner); ok {
			func() {
				defer func() {
					if r := recover(); r != nil {
						ch.log.Error("plugin cleanup panicked", "plugin", e.name, "panic", fmt.Sprint(r))
					}
				}()
				if err := c.Cleanup(); err != nil {
					ch.log.Warn("plugin cleanup failed", "plugin", e.name, "err", err)
				}
			}()
		}
	}
}

// Call is one request's passage through the chain.
type Call struct {
	// Req is the request; request hooks may change it.
	Req *Request

	reply   string
	replied bool
	states  []any
	cur     int
	buf     [4]any // states of a short chain, without an allocation of their own
}

// newCall returns a Call for r with a state slot for each of n plugins.
func newCall(r *Request, n int) *Call {
	c := &Call{Req: r}
	if n <= len(c.buf) {
		c.states = c.buf[:n]
	} else {
		c.states = make([]any, n)
	}
	return c
}

// Reply answers the request with text instead of sending it to a model: no later request
// hook runs, and the response hooks of the plugins before this one run on the answer.
func (c *Call) Reply(text string) {
	c.reply, c.replied = text, true
}

// State is the calling plugin's own slot for this request (nil at first), for chunk hooks
// that carry something from one chunk to the next.
func (c *Call) State() *any { return &c.states[c.cur] }

var errTimeout = errors.New("hook ran past its time limit")

// invoke runs one hook of the entry at pos with its time limit, panic recovery, metrics and
// span: the request hook (hi 0), the response hook on r (1) or the chunk hook on k (2). It
// returns nil when the hook succeeded or failed with on_error: skip, a client-ready
// *apierr.Error otherwise.
func (ch *Chain) invoke(ctx context.Context, c *Call, pos, hi int, r *Response, k *Chunk) (err error) {
	e := ch.entries[pos]
	c.cur = pos
	start := time.Now()
	hctx := ctx
	if e.blocking {
		var cancel context.CancelFunc
		hctx, cancel = context.WithTimeout(ctx, e.timeout)
		defer cancel()
	}
	var end func(error)
	if ch.span != nil {
		hctx, end = ch.span(hctx, e.spans[hi])
	}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v\n%s", p, debug.Stack())
		}
		d := time.Since(start)
		if err == nil && d > e.timeout {
			err = errTimeout
		}
		if end != nil {
			end(err)
		}
		e.obs[hi].observe(d, err != nil && !isRefusal(err))
		if err != nil {
			err = ch.failure(ctx, e, hookNames[hi], err)
		}
	}()
	switch hi {
	case 0:
		return e.req.OnRequest(hctx, c)
	case 1:
		return e.resp.OnResponse(hctx, c, r)
	default:
		return e.chunk.OnChunk(hctx, c, k)
	}
}

var hookNames = [3]string{HookRequest, HookResponse, HookChunk}

func isRefusal(err error) bool {
	var r *Refusal
	return errors.As(err, &r)
}

// failure turns a hook's error into what the request gets.
func (ch *Chain) failure(ctx context.Context, e *entry, hook string, err error) error {
	var ref *Refusal
	if errors.As(err, &ref) {
		return &apierr.Error{Kind: apierr.Invalid, Code: apierr.CodeRequestRefused, Message: ref.Message, Err: err}
	}
	timedOut := errors.Is(err, errTimeout) || errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil
	if ctx.Err() != nil {
		return apierr.From(ctx.Err())
	}
	if e.skip {
		ch.log.WarnContext(ctx, "plugin failed; skipped for this request (on_error: skip)", "plugin", e.name, "hook", hook, "err", err)
		return nil
	}
	ch.log.ErrorContext(ctx, "plugin failed; request failed (on_error: fail)", "plugin", e.name, "hook", hook, "err", err)
	if timedOut {
		return &apierr.Error{Kind: apierr.Timeout, Code: apierr.CodePluginTimeout,
			Message: fmt.Sprintf("the request was stopped: plugin %q ran past its time limit", e.name), Err: err}
	}
	return &apierr.Error{Kind: apierr.Internal, Code: apierr.CodePluginFailed,
		Message: fmt.Sprintf("the request could not be processed: plugin %q failed", e.name), Err: err}
}

// runRequest runs the request hooks in order. It returns how many entries were passed
// (all of them, or up to and excluding the one that answered) and the request's error.
func (ch *Chain) runRequest(ctx context.Context, c *Call) (int, error) {
	for i, e := range ch.entries {
		if e.req == nil {
			continue
		}
		if err := ch.invoke(ctx, c, i, 0, nil, nil); err != nil {
			return i, err
		}
		if c.replied {
			return i, nil
		}
	}
	return len(ch.entries), nil
}

// runResponse runs the response hooks of entries[:n] in reverse order.
func (ch *Chain) runResponse(ctx context.Context, c *Call, r *Response, n int) error {
	for i := n - 1; i >= 0; i-- {
		if ch.entries[i].resp == nil {
			continue
		}
		if err := ch.invoke(ctx, c, i, 1, r, nil); err != nil {
			return err
		}
	}
	return nil
}

// runChunk runs the chunk hooks of entries[:n] in reverse order.
func (ch *Chain) runChunk(ctx context.Context, c *Call, k *Chunk, n int) error {
	for i := n - 1; i >= 0; i-- {
		if ch.entries[i].chunk == nil {
			continue
		}
		if err := ch.invoke(ctx, c, i, 2, nil, k); err != nil {
			return err
		}
		if k.Drop {
			return nil
		}
	}
	return nil
}

func (ch *Chain) hasChunkIn(n int) bool {
	for _, e := range ch.entries[:n] {
		if e.chunk != nil {
			return true
		}
	}
	return false
}

func (ch *Chain) hasResponseIn(n int) bool {
	for _, e := range ch.entries[:n] {
		if e.resp != nil {
			return true
		}
	}
	return false
}

// NewTestCall returns a Call for r with state slots for n plugins, for testing a plugin's
// hooks without a chain.
func NewTestCall(r *Request, n int) *Call {
	return newCall(r, max(n, 1))
}
