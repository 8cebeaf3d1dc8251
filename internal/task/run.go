package task

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/open-autoglm/autoglm/api/sse"
	"github.com/open-autoglm/autoglm/internal/apierr"
	"github.com/open-autoglm/autoglm/internal/backend"
	"github.com/open-autoglm/autoglm/internal/router"
	"github.com/open-autoglm/autoglm/internal/usage"
	"github.com/open-autoglm/autoglm/internal/wire"
)

// maxResponseBytes bounds a non-streamed upstream answer a task keeps (embeddings).
const maxResponseBytes = 64 << 20

// runSpec runs one attempt of a task through the registry and returns its result. Generated
// text goes to ev as it arrives.
// It also returns the name of the backend that answered, when one did.
func (s *Service) runSpec(ctx context.Context, m *router.Model, sp Spec, ev *emitter) (*Result, string, error) {
	switch sp.Kind {
	case KindCode:
		body, err := chatBody(sp.Model, nil, codeMessages(sp), sp.MaxTokens, sp.Temperature)
		if err != nil {
			return nil, "", err
		}
		start := time.Now()
		res, be, err := s.streamChat(ctx, m, body, map[string]string{"route": "task", "task.kind": KindCode, "code.language": sp.Language}, ev)
		if err != nil {
			return nil, be, err
		}
		res.Code = ExtractCode(res.Text, sp.Language)
		if res.Code == nil {
			res.Code = []CodeBlock{}
		}
		if s.checksOn(sp) {
			return s.checkAndRepair(ctx, m, sp, res, time.Since(start), be, ev)
		}
		return res, be, nil
	case KindChat:
		body, err := chatBody(sp.Model, sp.Input, nil, sp.MaxTokens, nil)
		if err != nil {
			return nil, "", err
		}
		return s.streamChat(ctx, m, body, map[string]string{"route": "task", "task.kind": KindChat}, ev)
	case KindEmbeddings:
		return s.embed(ctx, m, sp)
	}
	return nil, "", apierr.New(apierr.CodeUnknownKind, "unknown task kind "+sp.Kind)
}

// runAccount is whom the model calls of a run are charged to; execute puts it in the run's
// context, so that every call of the run (repair rounds too) is recorded the same way.
type runAccount struct{ keyID, userID, taskID string }

type runAccountKey struct{}

// record hands the outcome of one model call of a task run to Options.Usage, as the request
// path does for HTTP requests: the same sink settles quotas, writes the usage record and
// counts the call and its tokens in the metrics. The status is the one a client would have
// seen; the task id stands in for the trace id.
func (s *Service) record(ctx context.Context, m *router.Model, op backend.Op, stream bool, backendName string, start time.Time,
	tokens usage.Tokens, err error) {
	if s.usage == nil {
		return
	}
	o := usage.Outcome{Model: m.Name, Backend: backendName, Op: op, Stream: stream, Status: http.StatusOK, Usage: tokens,
		Latency: time.Since(start)}
	if err != nil {
		o.Status = apierr.From(err).HTTPStatus()
	}
	if a, ok := ctx.Value(runAccountKey{}).(runAccount); ok {
		o.KeyID, o.UserID, o.TraceID = a.keyID, a.userID, a.taskID
	}
	s.usage(ctx, o)
}

// tokensOf is the accounting view of a result's usage, which the caller has filled in (by
// estimate when the upstream reported none).
func tokensOf(res *Result, estimated bool) usage.Tokens {
	if res == nil || res.Usage == nil {
		return usage.Tokens{Estimated: estimated}
	}
	t := usage.Tokens{PromptTokens: int64(res.Usage.PromptTokens), CompletionTokens: int64(res.Usage.CompletionTokens),
		Estimated: estimated}
	if d := res.Usage.PromptTokensDetails; d != nil {
		t.CachedTokens = int64(d.CachedTokens)
	}
	return t
}

// estimated is the usage of a call whose upstream reported none, in the result's shape.
func (s *Service) estimated(body []byte, answer string, fallbackCompletion int64) *Usage {
	t := s.count.Estimate(body, answer, fallbackCompletion)
	return &Usage{PromptTokens: int(t.PromptTokens), CompletionTokens: int(t.CompletionTokens), TotalTokens: int(t.Total())}
}

// chatBody builds a streamed chat completion request: input's fields (a chat task's body) or
// msgs, with model, stream and usage reporting set by the task system.
func chatBody(model string, input json.RawMessage, msgs []Message, maxTokens int, temp *float64) ([]byte, error) {
	obj := map[string]any{}
	if len(input) > 0 {
		var raw map[string]json.RawMessage
		if err := json.Unmarshal(input, &raw); err != nil {
			return nil, apierr.Wrap(apierr.Invalid, err, "input is not a JSON object")
		}
		for k, v := range raw {
			obj[k] = v
		}
	}
	if msgs != nil {
		obj["messages"] = msgs
	}
	obj["model"] = model
	obj["stream"] = true
	obj["stream_options"] = map[string]bool{"include_usage": true}
	if maxTokens > 0 {
		obj["max_tokens"] = maxTokens
	}
	if temp != nil {
		obj["temperature"] = *temp
	}
	return json.Marshal(obj)
}

// upstreamStatus turns an upstream's error answer into an API error: 429 and 5xx are worth
// retrying, other statuses are the request's fault.
func upstreamStatus(resp *backend.Response) error {
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	var oe struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	text := strings.TrimSpace(string(msg))
	if json.Unmarshal(msg, &oe) == nil && oe.Error.Message != "" {
		text = oe.Error.Message
	}
	kind := apierr.Invalid
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		kind = apierr.RateLimited
	case resp.StatusCode >= 500:
		kind = apierr.Upstream
	}
	return &apierr.Error{Kind: kind, Code: apierr.CodeUpstreamStatus, Message: fmt.Sprintf("the model answered %d: %s", resp.StatusCode, text)}
}

// streamChat sends a streamed chat completion and gathers its text, handing each piece to ev,
// and records the call. When the upstream reported no usage, the result's usage is estimated.
// meta tells the plugins what the request is (router.Request.Meta): the route "task", the
// task kind and a code task's language.
func (s *Service) streamChat(ctx context.Context, m *router.Model, body []byte, meta map[string]string, ev *emitter) (*Result, string, error) {
	start := time.Now()
	res, chunks, be, err := s.streamChatCall(ctx, m, body, meta, ev)
	estimated := false
	if res != nil && res.Usage == nil {
		res.Usage, estimated = s.estimated(body, res.Text, int64(chunks)), true
	}
	// A stream cut off (the task's time limit, a broken connection) still used the tokens
	// it streamed: they are recorded, as the request path records an interrupted stream's.
	s.record(ctx, m, backend.OpChat, true, be, start, tokensOf(res, estimated), err)
	if err != nil {
		return nil, be, err
	}
	return res, be, err
}

// streamChatCall is streamChat's call: the result (without usage when the upstream sent
// none) and the count of text chunks. When the stream fails once it has begun, the result
// holds what arrived before the failure, for the accounting.
func (s *Service) streamChatCall(ctx context.Context, m *router.Model, body []byte, meta map[string]string, ev *emitter) (*Result, int, string, error) {
	fields, err := wire.Peek(body)
	if err != nil {
		return nil, 0, "", apierr.Wrap(apierr.Invalid, err, "the request body is not valid")
	}
	resp, target, err := s.reg.Do(ctx, m, &router.Request{Op: backend.OpChat, Body: body, Fields: fields, Stream: true, Meta: meta})
	if err != nil {
		return nil, 0, "", err
	}
	be := target.Name
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return nil, 0, be, upstreamStatus(resp)
	}
	var (
		text    strings.Builder
		res     Result
		chunks  int
		sawDone bool
	)
	// partial is what arrived before a failure.
	partial := func() *Result { return &Result{Text: text.String(), Usage: res.Usage} }
	events := sse.NewReader(resp.Body)
	events.SetMaxEventSize(maxEventBytes)
read:
	for {
		e, err := events.Next()
		switch {
		case errors.Is(err, io.EOF):
			break read
		case errors.Is(err, sse.ErrTooLarge):
			return partial(), chunks, be, apierr.New(apierr.CodeUpstreamAnswerTooLarge, "the model sent a stream chunk larger than the gateway accepts")
		case err != nil:
			if ctx.Err() != nil {
				return partial(), chunks, be, ctx.Err()
			}
			return partial(), chunks, be, apierr.Wrap(apierr.Upstream, err, "the model's stream broke off")
		}
		payload := bytes.TrimSpace(e.Data)
		if string(payload) == "[DONE]" {
			sawDone = true
			break
		}
		var chunk struct {
			Choices []struct {
				Delta struct {
					Content string `json:"content"`
				} `json:"delta"`
				FinishReason *string `json:"finish_reason"`
			} `json:"choices"`
			Usage *Usage `json:"usage"`
			Error *struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		if jerr := json.Unmarshal(payload, &chunk); jerr != nil {
			return partial(), chunks, be, apierr.Wrap(apierr.Upstream, jerr, "the model sent a malformed stream chunk")
		}
		if chunk.Error != nil {
			return partial(), chunks, be, apierr.New(apierr.CodeUpstreamStreamError, "the model reported an error mid-stream: "+chunk.Error.Message)
		}
		for _, c := range chunk.Choices {
			if c.Delta.Content != "" {
				if text.Len()+len(c.Delta.Content) > maxResponseBytes {
					return partial(), chunks, be, apierr.New(apierr.CodeUpstreamAnswerTooLarge, "the model's answer is larger than the gateway accepts")
				}
				text.WriteString(c.Delta.Content)
				chunks++
				ev.token(ctx, c.Delta.Content)
			}
			if c.FinishReason != nil && *c.FinishReason != "" {
				res.FinishReason = *c.FinishReason
			}
		}
		if chunk.Usage != nil {
			res.Usage = chunk.Usage
		}
	}
	if !sawDone && ctx.Err() != nil {
		return partial(), chunks, be, ctx.Err()
	}
	res.Text = text.String()
	return &res, chunks, be, nil
}

// maxEventBytes bounds one event of a streamed answer: far above any real chunk, low enough
// that a worker reading an upstream that never ends its event holds little.
const maxEventBytes = 16 << 20

// embed runs an embeddings task: one non-streamed request whose JSON answer is the result.
func (s *Service) embed(ctx context.Context, m *router.Model, sp Spec) (*Result, string, error) {
	start := time.Now()
	res, body, be, err := s.embedCall(ctx, m, sp)
	estimated := false
	if err == nil && res.Usage == nil {
		res.Usage, estimated = s.estimated(body, "", 0), true
	}
	if body != nil {
		s.record(ctx, m, backend.OpEmbedding, false, be, start, tokensOf(res, estimated), err)
	}
	return res, be, err
}

// embedCall is embed's call; it returns the request body it sent (nil when the input was
// refused before any call).
func (s *Service) embedCall(ctx context.Context, m *router.Model, sp Spec) (*Result, []byte, string, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(sp.Input, &obj); err != nil {
		return nil, nil, "", apierr.Wrap(apierr.Invalid, err, "input is not a JSON object")
	}
	obj["model"], _ = json.Marshal(sp.Model)
	delete(obj, "stream")
	body, err := json.Marshal(obj)
	if err != nil {
		return nil, nil, "", err
	}
	fields, err := wire.Peek(body)
	if err != nil {
		return nil, nil, "", apierr.Wrap(apierr.Invalid, err, "the request body is not valid")
	}
	resp, target, err := s.reg.Do(ctx, m, &router.Request{Op: backend.OpEmbedding, Body: body, Fields: fields,
		Meta: map[string]string{"route": "task", "task.kind": KindEmbeddings}})
	if err != nil {
		return nil, body, "", err
	}
	be := target.Name
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return nil, body, be, upstreamStatus(resp)
	}
	out, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return nil, body, be, apierr.Wrap(apierr.Upstream, err, "the model's answer broke off")
	}
	if len(out) > maxResponseBytes || !json.Valid(out) {
		return nil, body, be, apierr.New(apierr.CodeUpstreamBadAnswer, "the model's answer is not JSON or is too large")
	}
	var u struct {
		Usage *Usage `json:"usage"`
	}
	_ = json.Unmarshal(out, &u)
	return &Result{Response: out, Usage: u.Usage}, body, be, nil
}

// emitter writes a running task's generated text as "tokens" events, EventFlush apart, and
// keeps its lease alive. Every write is conditional on this process still holding the lease:
// when another process took the task over, the run is stopped (errLeaseLost).
type emitter struct {
	s      *Service
	c      *claimed
	cancel context.CancelCauseFunc

	mu      sync.Mutex
	pending strings.Builder
	tokens  int
	last    time.Time
}

func newEmitter(s *Service, c *claimed, cancel context.CancelCauseFunc) *emitter {
	return &emitter{s: s, c: c, cancel: cancel, last: time.Now()}
}

// token adds one generated piece and writes the pending text when EventFlush has passed.
func (e *emitter) token(ctx context.Context, text string) {
	if e == nil {
		return
	}
	e.mu.Lock()
	e.pending.WriteString(text)
	e.tokens++
	due := time.Since(e.last) >= e.s.cfg.EventFlush.D()
	e.mu.Unlock()
	if due {
		if err := e.flush(ctx); err != nil && !errors.Is(err, errLeaseLost) && ctx.Err() == nil {
			e.s.log.Warn("task event write failed; kept for the next one", "task", e.c.id, "err", err)
		}
	}
}

// flush writes the pending text as one event, with the progress count and a renewed lease.
func (e *emitter) flush(ctx context.Context) error {
	e.mu.Lock()
	text := e.pending.String()
	tokens := e.tokens
	e.pending.Reset()
	e.last = time.Now()
	e.mu.Unlock()
	if text == "" {
		return nil
	}
	data, _ := json.Marshal(tokensEvent{Text: text, Tokens: tokens})
	err := e.write(ctx, EventTokens, data, tokens)
	if err != nil && !errors.Is(err, errLeaseLost) {
		// Keep the text for the next write so the event log has no gap.
		e.mu.Lock()
		rest := e.pending.String()
		e.pending.Reset()
		e.pending.WriteString(text + rest)
		e.mu.Unlock()
	}
	return err
}

// event writes one event of another type (after any pending text, so the log keeps order).
// A nil emitter writes nothing.
func (e *emitter) event(ctx context.Context, typ string, v any) error {
	if e == nil {
		return nil
	}
	if err := e.flush(ctx); err != nil {
		return err
	}
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	e.mu.Lock()
	tokens := e.tokens
	e.mu.Unlock()
	return e.write(ctx, typ, data, tokens)
}

// write appends one event to the task's log with the progress count and a renewed lease.
func (e *emitter) write(ctx context.Context, typ string, data []byte, tokens int) error {
	s := e.s
	now := time.Now().UnixMicro()
	lost := false
	err := s.db.inTx(ctx, func(tx *sql.Tx) error {
		seq, cancelReq, ok, err := s.db.recordProgress(ctx, tx, e.c.id, s.instance, tokens, now+s.cfg.Lease.D().Microseconds(), now)
		if err != nil {
			return err
		}
		if !ok {
			lost = true
			return nil
		}
		if cancelReq {
			e.cancel(errCanceled)
		}
		if err := s.db.insertEvent(ctx, tx, e.c.id, seq, typ, data, now); err != nil {
			return err
		}
		return s.db.notify(ctx, tx, taskTopic(e.c.id))
	})
	if lost {
		e.cancel(errLeaseLost)
		return errLeaseLost
	}
	if err != nil {
		return err
	}
	s.hub.notify(taskTopic(e.c.id))
	return nil
}

// heartbeat renews the lease every third of it until ctx ends, and stops the run when the
// task was canceled elsewhere or the lease was lost.
func (e *emitter) heartbeat(ctx context.Context) {
	s := e.s
	t := time.NewTicker(s.cfg.Lease.D() / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now().UnixMicro()
		cancelReq, ok, err := s.db.renewLease(ctx, s.db.W, e.c.id, s.instance, now+s.cfg.Lease.D().Microseconds())
		switch {
		case err != nil:
			if ctx.Err() == nil {
				s.log.Warn("task heartbeat failed", "task", e.c.id, "err", err)
			}
		case !ok:
			e.cancel(errLeaseLost)
			return
		case cancelReq:
			e.cancel(errCanceled)
			return
		}
	}
}
