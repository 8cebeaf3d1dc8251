// Package usage is the accounting of model calls. Every call the gateway makes to a model,
// whether for an OpenAI-compatible request or for a task run, ends in one Outcome, and every
// Outcome goes to one Sink. The server's sink, a Recorder, settles the caller's token
// reservation (quota counters), queues a usage record for the store (usage reports and the
// quotas read from them) and updates the Prometheus figures, so HTTP and task traffic are
// counted the same way.
package usage

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"time"

	tiktoken "github.com/tiktoken-go/tokenizer"

	"github.com/open-autoglm/autoglm/api"
	"github.com/open-autoglm/autoglm/internal/auth"
	"github.com/open-autoglm/autoglm/internal/backend"
	"github.com/open-autoglm/autoglm/internal/ratelimit"
	"github.com/open-autoglm/autoglm/internal/store"
	"github.com/open-autoglm/autoglm/internal/telemetry"
)

// Tokens is what one model call consumed.
type Tokens struct {
	PromptTokens, CompletionTokens int64
	// CachedTokens is the part of PromptTokens the upstream served from its prompt cache,
	// when it said so.
	CachedTokens int64
	// Estimated is set when the upstream reported no usage: the counts are then taken with a
	// Counter on the request's text and the answer's text (or, if even that fails, from
	// sizes).
	Estimated bool
}

// Total is prompt plus completion tokens.
func (t Tokens) Total() int64 { return t.PromptTokens + t.CompletionTokens }

// Outcome describes one finished model call, for accounting.
type Outcome struct {
	Model   string // public model name
	Backend string // backend that answered; "" for a cache hit or when none was reached
	Op      backend.Op
	Stream  bool
	// KeyID and UserID are whom the call is charged to. Left empty, the Recorder takes them
	// from the principal of the call's context (an HTTP request's).
	KeyID, UserID string
	// TraceID ties the usage record to logs: the request's trace id, or a task's id. Left
	// empty, the Recorder takes the context's trace id.
	TraceID string
	// Status is the HTTP status the caller got (499 when it went away), or for a task run
	// the status an HTTP client would have got.
	Status  int
	Usage   Tokens
	Latency time.Duration
	// Cache is the X-AutoGLM-Cache value: "", "hit", "miss" or "bypass". A hit consumed no
	// upstream tokens; its Usage is zero.
	Cache string
	// TTFT is the time from the request's arrival to the first text event of a stream, and
	// TokenGap the mean time between its TextEvents text events after that (measured when
	// there are two or more). All are zero for an answer that is not a stream, a cache hit,
	// or a failed request.
	TTFT, TokenGap time.Duration
	TextEvents     int64
}

// Sink receives the Outcome of every model call. It runs on the caller's path and must not
// block; it may be called from many goroutines at once.
type Sink func(ctx context.Context, o Outcome)

// Recorder is the server's Sink: quota settlement, usage records and metrics from one place.
type Recorder struct {
	batcher *store.Batcher
	observe func(ctx context.Context, o Outcome)
}

// NewRecorder returns a Recorder that queues usage records in b (when not nil) and hands
// every Outcome to observe (when not nil: the metrics).
func NewRecorder(b *store.Batcher, observe func(ctx context.Context, o Outcome)) *Recorder {
	return &Recorder{batcher: b, observe: observe}
}

// Record accounts for one model call: it settles the token reservation the rate limiter made
// for the call's context (if any) with what the call really used, queues its usage record,
// and updates the metrics. All three are in memory.
func (r *Recorder) Record(ctx context.Context, o Outcome) {
	ratelimit.Settle(ctx, o.Usage.Total())
	if o.KeyID == "" && o.UserID == "" {
		if p, ok := auth.FromContext(ctx); ok && p != nil {
			o.KeyID, o.UserID = p.KeyID, p.UserID
		}
	}
	if o.TraceID == "" {
		o.TraceID = telemetry.TraceID(ctx)
	}
	if r.batcher != nil {
		r.batcher.Usage(store.UsageRecord{
			Time:             time.Now(),
			KeyID:            o.KeyID,
			UserID:           o.UserID,
			Model:            o.Model,
			Backend:          o.Backend,
			PromptTokens:     o.Usage.PromptTokens,
			CompletionTokens: o.Usage.CompletionTokens,
			Latency:          o.Latency,
			Status:           o.Status,
			TraceID:          o.TraceID,
		})
	}
	if r.observe != nil {
		r.observe(ctx, o)
	}
}

// Counter counts tokens of text for upstreams that report no usage. It uses the cl100k_base
// encoding (GPT-3.5/GPT-4's), loaded on first use: the model's own tokenizer is unknown for a
// remote upstream, and cl100k is within a few percent of most modern BPE vocabularies on
// English and code. Local models always report exact usage, so they never need it. The zero
// Counter is ready; it is safe for concurrent use.
type Counter struct {
	once  sync.Once
	codec tiktoken.Codec
}

// Count returns the number of tokens of s, and false when the encoding is not available.
func (c *Counter) Count(s string) (int64, bool) {
	if s == "" {
		return 0, true
	}
	c.once.Do(func() {
		c.codec, _ = tiktoken.Get(tiktoken.Cl100kBase)
	})
	if c.codec == nil {
		return 0, false
	}
	n, err := c.codec.Count(s)
	if err != nil {
		return 0, false
	}
	return int64(n), true
}

// Estimate is the usage of a call whose upstream reported none: the tokens of the request
// body's text and of the answer's text, counted by c. Where the encoding is not available it
// falls back to sizes: 4 bytes a token for the request, and fallbackCompletion for the
// answer (callers pass a chunk count or a size).
func (c *Counter) Estimate(body []byte, answer string, fallbackCompletion int64) Tokens {
	t := Tokens{Estimated: true}
	var ok bool
	if t.PromptTokens, ok = c.Count(RequestText(body)); !ok {
		t.PromptTokens = int64(len(body)+3) / 4
	}
	if t.CompletionTokens, ok = c.Count(answer); !ok {
		t.CompletionTokens = fallbackCompletion
	}
	return t
}

// RequestText is the text of an OpenAI-shaped request body that the model reads: message
// contents, a completion prompt, or embedding inputs.
func RequestText(body []byte) string {
	var req struct {
		Messages []struct {
			Content api.Content `json:"content"`
		} `json:"messages"`
		Prompt api.Input `json:"prompt"`
		Input  api.Input `json:"input"`
	}
	if json.Unmarshal(body, &req) != nil {
		return ""
	}
	var b strings.Builder
	for _, m := range req.Messages {
		b.WriteString(m.Content.String())
		b.WriteByte('\n')
	}
	for _, t := range req.Prompt.Texts {
		b.WriteString(t)
	}
	for _, t := range req.Input.Texts {
		b.WriteString(t)
	}
	return b.String()
}
