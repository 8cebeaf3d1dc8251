// Package local is the backend that runs GGUF models in-process with the built-in engine. It
// speaks the same OpenAI wire format as an upstream server: it decodes the request, renders
// the model's chat template, generates through the engine's continuous-batching runner and
// writes a chat.completion / text_completion document or an SSE stream of chunks.
package local

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/open-autoglm/autoglm/api"
	"github.com/open-autoglm/autoglm/api/sse"
	"github.com/open-autoglm/autoglm/internal/apierr"
	"github.com/open-autoglm/autoglm/internal/backend"
	"github.com/open-autoglm/autoglm/internal/config"
	"github.com/open-autoglm/autoglm/internal/engine/chat"
	"github.com/open-autoglm/autoglm/internal/engine/model"
	"github.com/open-autoglm/autoglm/internal/engine/runner"
	"github.com/open-autoglm/autoglm/internal/engine/sample"
	"github.com/open-autoglm/autoglm/internal/engine/tokenizer"
	"github.com/open-autoglm/autoglm/internal/telemetry"
)

func init() {
	backend.Register(config.BackendLocal, func(cfg config.Backend) (backend.Backend, error) { return Open(cfg) })
}

// Backend serves one local model.
type Backend struct {
	r     *runner.Runner
	model string // name written in answers
	info  runner.Info
	cons  constraints // grammar-constrained output (grammar.go)
}

var (
	_ backend.Backend        = (*Backend)(nil)
	_ backend.Closer         = (*Backend)(nil)
	_ backend.MemoryReporter = (*Backend)(nil)
)

// Open loads the model in cfg.Path.
func Open(cfg config.Backend) (*Backend, error) { return openWith(cfg, nil) }

// openWith is Open with the model's fault hook (see model.Options.FaultHook), for tests.
func openWith(cfg config.Backend, fault func(worker int)) (*Backend, error) {
	kv, err := model.ParseKVType(cfg.KVCacheType)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	progress := loadProgress(os.Stderr, cfg.Path)
	r, err := runner.Open(cfg.Path, runner.Options{
		ContextLength: cfg.ContextLength,
		Threads:       cfg.Threads,
		Parallel:      cfg.Parallel,
		Template:      cfg.Template,
		KVCacheType:   kv,
		Progress:      progress,
		FaultHook:     fault,
	})
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", cfg.Path, err)
	}
	b := &Backend{r: r, model: cfg.Model, info: r.Info()}
	m := b.Memory()
	slog.Info("local model loaded", "model", cfg.Model, "path", cfg.Path, "arch", b.info.Arch,
		"context", b.info.ContextLength, "seconds", time.Since(start).Seconds(),
		"weights_mapped_mib", mib(m.WeightsMapped), "weights_packed_mib", mib(m.WeightsPacked), "kv_cache_type", m.KVCacheType,
		"kv_cache_max_mib", mib(m.KVCacheMax), "kv_bytes_per_token", b.info.KVBytesPerToken)
	return b, nil
}

var _ backend.EngineReporter = (*Backend)(nil)

// Engine returns the scheduler's counters and load, for the metrics.
func (b *Backend) Engine() backend.Engine {
	c, st := b.r.Counters(), b.r.Stats()
	e := backend.Engine{PromptTokens: c.PromptTokens, CachedTokens: c.CachedTokens, GeneratedTokens: c.GeneratedTokens,
		ForwardSeconds: c.Forward.Seconds(), Steps: c.Steps, BatchSum: c.BatchSum,
		PrefixHits: c.PrefixHits, PrefixMisses: c.PrefixMisses, Running: st.Running, Waiting: st.Waiting,
		KVCacheBytes: b.r.Memory().KVCache}
	var cum uint64
	for i, bound := range runner.BatchBuckets {
		cum += c.Batches[i]
		e.BatchBounds = append(e.BatchBounds, float64(bound))
		e.BatchCounts = append(e.BatchCounts, cum)
	}
	return e
}

// Memory reports the model's memory (the admin API shows it).
func (b *Backend) Memory() backend.Memory {
	m := b.r.Memory()
	return backend.Memory{WeightsMapped: m.Weights, WeightsPacked: m.Packed, KVCacheType: m.KVCacheType, KVCache: m.KVCache,
		KVCacheMax: m.KVCacheMax, Scratch: m.Scratch}
}

func mib(n int64) float64 { return math.Round(float64(n)/(1<<20)*10) / 10 }

// loadProgress reports the reading of the weights at load: a bar redrawn in place when w is
// a terminal, otherwise a log line every quarter.
func loadProgress(w *os.File, path string) func(done, total int64) {
	name := filepath.Base(path)
	if st, err := w.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
		return func(done, total int64) {
			const width = 30
			frac := 1.0
			if total > 0 {
				frac = float64(done) / float64(total)
			}
			filled := int(frac * width)
			fmt.Fprintf(w, "\rloading %s [%s%s] %3.0f%% %.0f/%.0f MiB", name, strings.Repeat("=", filled),
				strings.Repeat(" ", width-filled), 100*frac, mib(done), mib(total))
			if done >= total {
				fmt.Fprint(w, "\r\x1b[K")
			}
		}
	}
	quarter := int64(-1)
	return func(done, total int64) {
		q := int64(4)
		if total > 0 {
			q = 4 * done / total
		}
		if q > quarter {
			quarter = q
			slog.Info("loading local model", "path", path, "read_mib", mib(done), "total_mib", mib(total))
		}
	}
}

// Close unloads the model.
func (b *Backend) Close() error { return b.r.Close() }

// Runner exposes the engine runner (for tokenizing usage counts, the admin API).
func (b *Backend) Runner() *runner.Runner { return b.r }

// Do serves one request. Problems with the request become 400 answers in OpenAI's error shape,
// like an upstream would send; Do returns an error only when the context ends first.
func (b *Backend) Do(ctx context.Context, req *backend.Request) (*backend.Response, error) {
	var (
		resp *backend.Response
		err  error
	)
	switch req.Op {
	case backend.OpChat:
		resp, err = b.chat(ctx, req)
	case backend.OpCompletion:
		resp, err = b.completion(ctx, req)
	case backend.OpEmbedding:
		resp, err = b.embeddings(ctx, req)
	default:
		err = apierr.New(apierr.CodeUnsupportedOperation, "this operation is not supported by local models")
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return errorResponse(ctx, err), nil
	}
	return resp, nil
}

func invalid(param, format string, args ...any) error {
	return &apierr.Error{Kind: apierr.Invalid, Code: apierr.CodeInvalidRequest, Param: param, Message: fmt.Sprintf(format, args...)}
}

// errorResponse renders err as an upstream would: status and OpenAI error body.
func errorResponse(ctx context.Context, err error) *backend.Response {
	e := apierr.From(err)
	switch {
	case errors.Is(err, runner.ErrContextLength):
		e = &apierr.Error{Kind: apierr.Invalid, Code: apierr.CodeContextLengthExceeded, Param: "messages", Message: err.Error(), Err: err} // its text is written for clients
	case errors.Is(err, runner.ErrClosed):
		e = &apierr.Error{Kind: apierr.Unavailable, Code: apierr.CodeModelUnloaded, Message: "the model is shutting down", Err: err}
	case errors.Is(err, runner.ErrQueueFull):
		// 503 lets the scheduling layer try another backend of the model before the client
		// sees it; Retry-After tells the client when this one may have room.
		e = &apierr.Error{Kind: apierr.Unavailable, Code: apierr.CodeModelBusy, RetryAfter: time.Second,
			Message: "the model's queue is full; retry shortly", Err: err}
	case errors.Is(err, runner.ErrInvalidRequest):
		e = &apierr.Error{Kind: apierr.Invalid, Code: apierr.CodeInvalidRequest, Message: err.Error(), Err: err} // its text is written for clients
	case errors.Is(err, runner.ErrInternal):
		// A panic in the engine: the client learns only that it failed.
		logEngineFailure(ctx, err)
		e = &apierr.Error{Kind: apierr.Internal, Code: apierr.CodeEngineError, Message: "the model failed to generate", Err: err}
	}
	body := apierr.AppendOpenAIError(nil, e, telemetry.TraceID(ctx))
	h := http.Header{"Content-Type": {"application/json"}}
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(int((e.RetryAfter+time.Second-1)/time.Second)))
	}
	return &backend.Response{StatusCode: e.HTTPStatus(), Header: h, Body: io.NopCloser(bytes.NewReader(body))}
}

// streamError is the error event that ends a stream whose generation failed after its
// headers were sent: engine_error for a panic in the engine (logged with its stack), as
// before the stream starts.
func streamError(ctx context.Context, err error) *apierr.Error {
	if errors.Is(err, runner.ErrInternal) {
		logEngineFailure(ctx, err)
		return &apierr.Error{Kind: apierr.Internal, Code: apierr.CodeEngineError, Message: "the model failed to generate", Err: err}
	}
	return &apierr.Error{Kind: apierr.Internal, Code: apierr.CodeGenerationFailed, Message: "generation failed", Err: err}
}

// logEngineFailure logs an engine panic (its value and stack) with the request's trace id.
func logEngineFailure(ctx context.Context, err error) {
	slog.ErrorContext(ctx, "local model failed", "trace_id", telemetry.TraceID(ctx), "err", err)
}

// sampling holds what chat and completion requests share.
type sampling struct {
	maxTokens                        int
	temperature, topP                *float64
	presencePenalty, frequencyPenalt *float64
	seed                             *int64
	stop                             []string
	n                                int
}

func (b *Backend) generationRequest(prompt []int32, s sampling, extraStops []string) (runner.Request, error) {
	if s.n < 0 || s.n > b.r.Parallel() {
		return runner.Request{}, invalid("n", "n must be between 1 and %d for this model (the sequences it decodes together)", b.r.Parallel())
	}
	if s.maxTokens < 0 {
		return runner.Request{}, invalid("max_tokens", "max_tokens must not be negative")
	}
	if len(s.stop) > 4 {
		return runner.Request{}, invalid("stop", "at most 4 stop sequences are allowed")
	}
	if len(prompt)+1 > b.info.ContextLength {
		return runner.Request{}, &apierr.Error{Kind: apierr.Invalid, Code: apierr.CodeContextLengthExceeded, Param: "messages",
			Message: fmt.Sprintf("the prompt is %d tokens; this model's context is %d tokens", len(prompt), b.info.ContextLength)}
	}
	p := sample.Params{Temperature: 1, TopP: 1}
	if s.temperature != nil {
		if *s.temperature < 0 || *s.temperature > 2 {
			return runner.Request{}, invalid("temperature", "temperature must be between 0 and 2")
		}
		p.Temperature = float32(*s.temperature)
	}
	if s.topP != nil {
		if *s.topP <= 0 || *s.topP > 1 {
			return runner.Request{}, invalid("top_p", "top_p must be in (0, 1]")
		}
		p.TopP = float32(*s.topP)
	}
	if s.presencePenalty != nil {
		p.PresencePenalty = float32(*s.presencePenalty)
	}
	if s.frequencyPenalt != nil {
		p.FrequencyPenalty = float32(*s.frequencyPenalt)
	}
	if s.seed != nil {
		p.Seed = *s.seed
	}
	stops := append(append([]string(nil), s.stop...), extraStops...)
	return runner.Request{Prompt: prompt, MaxTokens: s.maxTokens, Sample: p, Stop: stops, N: s.n}, nil
}

func (b *Backend) chat(ctx context.Context, req *backend.Request) (*backend.Response, error) {
	var cr api.ChatCompletionRequest
	if err := json.Unmarshal(req.Body, &cr); err != nil {
		return nil, invalid("", "could not decode the request: %v", jsonProblem(err))
	}
	if len(cr.Messages) == 0 {
		return nil, invalid("messages", "messages must contain at least one message")
	}
	text, plan, err := b.renderChat(&cr)
	if err != nil {
		return nil, err
	}
	tmpl := b.r.Template()
	tok := b.r.Tokenizer()
	prompt := tok.Encode(text, tokenizer.EncodeOptions{AddSpecial: true, ParseSpecial: true})
	maxTokens := cr.MaxTokens
	if cr.MaxCompletionTokens > 0 {
		maxTokens = cr.MaxCompletionTokens
	}
	gr, err := b.generationRequest(prompt, sampling{
		maxTokens: maxTokens, temperature: cr.Temperature, topP: cr.TopP,
		presencePenalty: cr.PresencePenalty, frequencyPenalt: cr.FrequencyPenalty,
		seed: cr.Seed, stop: cr.Stop, n: cr.N,
	}, tmpl.StopStrings())
	if err != nil {
		return nil, err
	}
	cons, err := b.constraintFor(cr.ResponseFormat)
	if err != nil {
		return nil, err
	}
	if cons != nil {
		if plan.constraint != nil {
			return nil, invalid("response_format", "response_format cannot be combined with a required tool call")
		}
		gr.Constraint = cons
	}
	if plan.constraint != nil {
		gr.Constraint = plan.constraint
	}
	includeUsage := cr.StreamOptions != nil && cr.StreamOptions.IncludeUsage
	top := 0
	if cr.TopLogprobs != nil {
		if !cr.Logprobs || *cr.TopLogprobs < 0 || *cr.TopLogprobs > 20 {
			return nil, invalid("top_logprobs", "top_logprobs must be between 0 and 20, with logprobs true")
		}
		top = *cr.TopLogprobs
	}
	if needsMulti(1, cr.N, cr.Logprobs, false) || plan.active {
		gr.Logprobs, gr.TopLogprobs = cr.Logprobs, top
		mj := &multiJob{chat: true, prompts: []runner.Request{gr}, n: max(1, cr.N), lp: cr.Logprobs, top: top}
		if plan.active {
			mj.finish = b.finishCalls(plan)
			tmpl := b.r.Template()
			mj.toolStream = func() *chat.ToolStream { return tmpl.NewToolStream(plan.prefix, plan.names) }
		}
		return b.runMulti(ctx, mj, cr.Stream, includeUsage)
	}
	return b.generate(ctx, gr, cr.Stream, includeUsage, chatWriter{})
}

func (b *Backend) completion(ctx context.Context, req *backend.Request) (*backend.Response, error) {
	var cr api.CompletionRequest
	if err := json.Unmarshal(req.Body, &cr); err != nil {
		return nil, invalid("", "could not decode the request: %v", jsonProblem(err))
	}
	if cr.Prompt.Len() == 0 {
		return nil, invalid("prompt", "prompt must not be empty")
	}
	if cr.Prompt.Len() > maxPrompts {
		return nil, invalid("prompt", "at most %d prompts per request", maxPrompts)
	}
	prompts, echoes, err := b.completionPrompts(cr.Prompt)
	if err != nil {
		return nil, err
	}
	if cr.Suffix != "" {
		if cr.Echo {
			return nil, invalid("echo", "echo cannot be combined with suffix")
		}
		if prompts, err = b.fimPrompts(cr.Prompt, cr.Suffix); err != nil {
			return nil, err
		}
	}
	prompt := prompts[0]
	maxTokens := cr.MaxTokens
	if maxTokens == 0 {
		maxTokens = 16 // the completions API's documented default
	}
	gr, err := b.generationRequest(prompt, sampling{
		maxTokens: maxTokens, temperature: cr.Temperature, topP: cr.TopP,
		presencePenalty: cr.PresencePenalty, frequencyPenalt: cr.FrequencyPenalty,
		seed: cr.Seed, stop: cr.Stop, n: cr.N,
	}, nil)
	if err != nil {
		return nil, err
	}
	includeUsage := cr.StreamOptions != nil && cr.StreamOptions.IncludeUsage
	if cr.Logprobs != nil && (*cr.Logprobs < 0 || *cr.Logprobs > 20) {
		return nil, invalid("logprobs", "logprobs must be between 0 and 20")
	}
	if needsMulti(len(prompts), cr.N, cr.Logprobs != nil, cr.Echo) {
		mj := &multiJob{n: max(1, cr.N), lp: cr.Logprobs != nil}
		if mj.lp {
			mj.top = *cr.Logprobs
		}
		if cr.Echo {
			mj.echo = echoes
		}
		for _, p := range prompts {
			r := gr
			r.Prompt = p
			if len(p)+1 > b.info.ContextLength {
				return nil, &apierr.Error{Kind: apierr.Invalid, Code: apierr.CodeContextLengthExceeded, Param: "prompt",
					Message: fmt.Sprintf("a prompt is %d tokens; this model's context is %d tokens", len(p), b.info.ContextLength)}
			}
			r.Logprobs, r.TopLogprobs, r.PromptLogprobs = mj.lp, mj.top, mj.lp && cr.Echo
			mj.prompts = append(mj.prompts, r)
		}
		return b.runMulti(ctx, mj, cr.Stream, includeUsage)
	}
	return b.generate(ctx, gr, cr.Stream, includeUsage, completionWriter{})
}

// jsonProblem describes a decoding error without echoing request content at length.
func jsonProblem(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("field %q has the wrong type (%s)", te.Field, te.Value)
	}
	s := err.Error()
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

func newID(prefix string) string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// generate runs the request, answering a document or a stream.
func (b *Backend) generate(ctx context.Context, gr runner.Request, stream, includeUsage bool, w answerWriter) (*backend.Response, error) {
	id, created := newID(w.idPrefix()), time.Now().Unix()
	if !stream {
		var text strings.Builder
		res, err := b.r.Generate(ctx, gr, func(ev runner.Event) error {
			text.WriteString(ev.Text)
			return nil
		})
		if err != nil {
			return nil, err
		}
		body, err := json.Marshal(w.document(id, created, b.model, text.String(), api.FinishReason(res.FinishReason), usageOf(res)))
		if err != nil {
			return nil, err
		}
		return &backend.Response{StatusCode: http.StatusOK, Header: http.Header{"Content-Type": {"application/json"}},
			Body: io.NopCloser(bytes.NewReader(body))}, nil
	}

	pr, pw := io.Pipe()
	go func() {
		send := func(v any) error { return writeData(pw, v) }
		if first := w.firstChunk(id, created, b.model); first != nil {
			if err := send(first); err != nil {
				pw.CloseWithError(err)
				return
			}
		}
		res, err := b.r.Generate(ctx, gr, func(ev runner.Event) error {
			if ev.Text == "" {
				return nil
			}
			return send(w.chunk(id, created, b.model, ev.Text, ""))
		})
		if err != nil {
			if ctx.Err() == nil {
				// Headers are out: end the stream with an error event a client can recognise.
				e := streamError(ctx, err)
				ev, _ := sse.AppendEvent(nil, sse.Event{Data: apierr.AppendOpenAIError(nil, e, telemetry.TraceID(ctx))})
				_, _ = pw.Write(ev)
			}
			pw.CloseWithError(err)
			return
		}
		if err := send(w.chunk(id, created, b.model, "", api.FinishReason(res.FinishReason))); err != nil {
			pw.CloseWithError(err)
			return
		}
		if includeUsage {
			if err := send(w.usageChunk(id, created, b.model, usageOf(res))); err != nil {
				pw.CloseWithError(err)
				return
			}
		}
		_, _ = pw.Write(doneEvent())
		pw.Close()
	}()
	return &backend.Response{StatusCode: http.StatusOK, Header: http.Header{"Content-Type": {"text/event-stream"}}, Body: pr}, nil
}

// usageOf is a generation's usage object. prompt_tokens_details.cached_tokens
// counts the prompt tokens found in the KV cache of an earlier request.
func usageOf(res runner.Result) *api.Usage {
	return &api.Usage{PromptTokens: res.PromptTokens, CompletionTokens: res.CompletionTokens,
		TotalTokens:         res.PromptTokens + res.CompletionTokens,
		PromptTokensDetails: &api.PromptTokensDetails{CachedTokens: res.CachedTokens}}
}

// answerWriter builds the documents of one API (chat or completions).
type answerWriter interface {
	idPrefix() string
	document(id string, created int64, model, text string, finish api.FinishReason, usage *api.Usage) any
	firstChunk(id string, created int64, model string) any
	chunk(id string, created int64, model, text string, finish api.FinishReason) any
	usageChunk(id string, created int64, model string, usage *api.Usage) any
}

type chatWriter struct{}

func (chatWriter) idPrefix() string { return "chatcmpl-" }

// nullJSON is an explicit JSON null: OpenAI's answers carry "logprobs": null in every choice
// when no log probabilities were asked for, and clients and schemas expect the key.
var nullJSON = json.RawMessage("null")

// chatDocument is a chat completion as OpenAI sends it: api.ChatCompletion, with a message
// that carries "refusal": null (api.Message is also a request type, where the key is absent).
type chatDocument struct {
	ID      string          `json:"id"`
	Object  string          `json:"object"`
	Created int64           `json:"created"`
	Model   string          `json:"model"`
	Choices []chatDocChoice `json:"choices"`
	Usage   *api.Usage      `json:"usage,omitempty"`
}

type chatDocChoice struct {
	Index        int              `json:"index"`
	Message      answerMessage    `json:"message"`
	Logprobs     json.RawMessage  `json:"logprobs"`
	FinishReason api.FinishReason `json:"finish_reason"`
}

type answerMessage struct {
	Role    string  `json:"role"`
	Content string  `json:"content"`
	Refusal *string `json:"refusal"`
}

func (chatWriter) document(id string, created int64, model, text string, finish api.FinishReason, usage *api.Usage) any {
	return &chatDocument{ID: id, Object: "chat.completion", Created: created, Model: model,
		Choices: []chatDocChoice{{Index: 0, Message: answerMessage{Role: api.RoleAssistant, Content: text}, Logprobs: nullJSON, FinishReason: finish}},
		Usage:   usage}
}

func (chatWriter) firstChunk(id string, created int64, model string) any {
	return &api.ChatCompletionChunk{ID: id, Object: "chat.completion.chunk", Created: created, Model: model,
		Choices: []api.ChunkChoice{{Index: 0, Delta: api.Delta{Role: api.RoleAssistant}, Logprobs: nullJSON}}}
}

func (chatWriter) chunk(id string, created int64, model, text string, finish api.FinishReason) any {
	return &api.ChatCompletionChunk{ID: id, Object: "chat.completion.chunk", Created: created, Model: model,
		Choices: []api.ChunkChoice{{Index: 0, Delta: api.Delta{Content: text}, Logprobs: nullJSON, FinishReason: finish}}}
}

func (chatWriter) usageChunk(id string, created int64, model string, usage *api.Usage) any {
	return &api.ChatCompletionChunk{ID: id, Object: "chat.completion.chunk", Created: created, Model: model,
		Choices: []api.ChunkChoice{}, Usage: usage}
}

type completionWriter struct{}

func (completionWriter) idPrefix() string { return "cmpl-" }

func (completionWriter) document(id string, created int64, model, text string, finish api.FinishReason, usage *api.Usage) any {
	return &api.Completion{ID: id, Object: "text_completion", Created: created, Model: model,
		Choices: []api.CompletionChoice{{Index: 0, Text: text, Logprobs: nullJSON, FinishReason: finish}}, Usage: usage}
}

func (completionWriter) firstChunk(string, int64, string) any { return nil }

func (completionWriter) chunk(id string, created int64, model, text string, finish api.FinishReason) any {
	return &api.Completion{ID: id, Object: "text_completion", Created: created, Model: model,
		Choices: []api.CompletionChoice{{Index: 0, Text: text, Logprobs: nullJSON, FinishReason: finish}}}
}

func (completionWriter) usageChunk(id string, created int64, model string, usage *api.Usage) any {
	return &api.Completion{ID: id, Object: "text_completion", Created: created, Model: model,
		Choices: []api.CompletionChoice{}, Usage: usage}
}

func (b *Backend) embeddings(ctx context.Context, req *backend.Request) (*backend.Response, error) {
	var er api.EmbeddingRequest
	if err := json.Unmarshal(req.Body, &er); err != nil {
		return nil, invalid("input", "could not decode the request: %v", jsonProblem(err))
	}
	n := er.Input.Len()
	if n == 0 {
		return nil, invalid("input", "input must not be empty")
	}
	if n > 2048 {
		return nil, invalid("input", "at most 2048 inputs per request")
	}
	switch er.EncodingFormat {
	case "", "float", "base64":
	default:
		return nil, invalid("encoding_format", "encoding_format must be float or base64")
	}
	if er.Dimensions < 0 || er.Dimensions > b.info.EmbeddingDim {
		return nil, invalid("dimensions", "dimensions must be between 1 and %d for this model", b.info.EmbeddingDim)
	}
	tok := b.r.Tokenizer()
	inputs := make([][]int32, 0, n)
	total := 0
	for _, t := range er.Input.Texts {
		ids := tok.Encode(t, tokenizer.EncodeOptions{AddSpecial: true})
		if len(ids) == 0 {
			return nil, invalid("input", "an input is empty")
		}
		inputs = append(inputs, ids)
	}
	for _, ts := range er.Input.Tokens {
		ids := make([]int32, len(ts))
		for i, id := range ts {
			if id < 0 || id >= tok.VocabSize() {
				return nil, invalid("input", "token %d is outside the vocabulary (size %d)", id, tok.VocabSize())
			}
			ids[i] = int32(id)
		}
		if len(ids) == 0 {
			return nil, invalid("input", "an input is empty")
		}
		inputs = append(inputs, ids)
	}
	for _, in := range inputs {
		if len(in) > b.info.ContextLength {
			return nil, &apierr.Error{Kind: apierr.Invalid, Code: apierr.CodeContextLengthExceeded, Param: "input",
				Message: fmt.Sprintf("an input is %d tokens; this model's context is %d tokens", len(in), b.info.ContextLength)}
		}
		total += len(in)
	}
	vecs, err := b.r.Embed(ctx, inputs)
	if err != nil {
		return nil, err
	}
	out := api.EmbeddingResponse{Object: "list", Model: b.model, Usage: api.Usage{PromptTokens: total, TotalTokens: total}}
	var b64 []string
	for i, v := range vecs {
		if er.Dimensions > 0 && er.Dimensions < len(v) {
			v = renormalise(v[:er.Dimensions])
		}
		if er.EncodingFormat == "base64" {
			b64 = append(b64, encodeBase64(v))
			continue
		}
		out.Data = append(out.Data, api.Embedding{Object: "embedding", Index: i, Embedding: api.Vector(v)})
	}
	var body []byte
	if b64 != nil {
		// api.Vector encodes as an array; base64 answers are written with their own shape.
		type b64Embedding struct {
			Object    string `json:"object"`
			Index     int    `json:"index"`
			Embedding string `json:"embedding"`
		}
		data := make([]b64Embedding, len(b64))
		for i, s := range b64 {
			data[i] = b64Embedding{"embedding", i, s}
		}
		body, err = json.Marshal(struct {
			Object string         `json:"object"`
			Data   []b64Embedding `json:"data"`
			Model  string         `json:"model"`
			Usage  api.Usage      `json:"usage"`
		}{"list", data, b.model, out.Usage})
	} else {
		body, err = json.Marshal(out)
	}
	if err != nil {
		return nil, err
	}
	return &backend.Response{StatusCode: http.StatusOK, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(bytes.NewReader(body))}, nil
}

func renormalise(v []float32) []float32 {
	out := make([]float32, len(v))
	var s float64
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	n := float32(math.Sqrt(s))
	if n == 0 {
		return out
	}
	for i, x := range v {
		out[i] = x / n
	}
	return out
}

func encodeBase64(v []float32) string {
	buf := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(x))
	}
	return base64.StdEncoding.EncodeToString(buf)
}

// writeData writes v as one "data: JSON" server-sent event to w.
func writeData(w io.Writer, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	buf, err := sse.AppendEvent(make([]byte, 0, len(data)+8), sse.Event{Data: data})
	if err != nil {
		return err
	}
	_, err = w.Write(buf)
	return err
}

// doneEvent is the event that ends an OpenAI-compatible stream.
func doneEvent() []byte {
	b, _ := sse.AppendEvent(nil, sse.Event{Data: []byte("[DONE]")})
	return b
}
