package task

import (
	"bufio"
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

	"github.com/open-autoglm/autoglm/internal/apierr"
	"github.com/open-autoglm/autoglm/internal/backend"
	"github.com/open-autoglm/autoglm/internal/router"
	"github.com/open-autoglm/autoglm/internal/store"
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
	return nil, "", apierr.New(apierr.Invalid, "unknown_kind", "unknown task kind "+sp.Kind)
}

// recordUsage hands one usage record per run to Options.Usage: tokens from the upstream's
// usage, the status a client would have seen, and the task id as the trace id.
func (s *Service) recordUsage(c *claimed, backendName string, res *Result, err error, d time.Duration) {
	if s.usage == nil {
		return
	}
	r := store.UsageRecord{Time: time.Now().UTC(), KeyID: c.keyID, UserID: c.userID, Model: c.spec.Model,
		Backend: backendName, Latency: d, Status: http.StatusOK, TraceID: c.id}
	if err != nil {
		r.Status = apierr.From(err).HTTPStatus()
	}
	if res != nil && res.Usage != nil {
		r.PromptTokens = int64(res.Usage.PromptTokens)
		r.CompletionTokens = int64(res.Usage.CompletionTokens)
	}
	s.usage(r)
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
	return apierr.New(kind, "upstream_status", fmt.Sprintf("the model answered %d: %s", resp.StatusCode, text))
}

// streamChat sends a streamed chat completion and gathers its text, handing each piece to ev.
// meta tells the plugins what the request is (router.Request.Meta): the route "task", the
// task kind and a code task's language.
func (s *Service) streamChat(ctx context.Context, m *router.Model, body []byte, meta map[string]string, ev *emitter) (*Result, string, error) {
	fields, err := wire.Peek(body)
	if err != nil {
		return nil, "", apierr.Wrap(apierr.Invalid, err, "the request body is not valid")
	}
	resp, target, err := s.reg.Do(ctx, m, &router.Request{Op: backend.OpChat, Body: body, Fields: fields, Stream: true, Meta: meta})
	if err != nil {
		return nil, "", err
	}
	be := target.Name
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return nil, be, upstreamStatus(resp)
	}
	var (
		text    strings.Builder
		res     Result
		chunks  int
		sawDone bool
	)
	br := bufio.NewReaderSize(resp.Body, 32<<10)
	for {
		line, err := readLine(br, maxLineBytes)
		if errors.Is(err, errLineTooLong) {
			return nil, be, apierr.New(apierr.Upstream, "upstream_answer", "the model sent a stream chunk larger than the gateway accepts")
		}
		if len(line) > 0 {
			line = bytes.TrimRight(line, "\r\n")
			payload, ok := bytes.CutPrefix(line, []byte("data:"))
			if ok {
				payload = bytes.TrimSpace(payload)
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
					return nil, be, apierr.Wrap(apierr.Upstream, jerr, "the model sent a malformed stream chunk")
				}
				if chunk.Error != nil {
					return nil, be, apierr.New(apierr.Upstream, "upstream_stream_error", "the model reported an error mid-stream: "+chunk.Error.Message)
				}
				for _, c := range chunk.Choices {
					if c.Delta.Content != "" {
						if text.Len()+len(c.Delta.Content) > maxResponseBytes {
							return nil, be, apierr.New(apierr.Upstream, "upstream_answer", "the model's answer is larger than the gateway accepts")
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
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			if ctx.Err() != nil {
				return nil, be, ctx.Err()
			}
			return nil, be, apierr.Wrap(apierr.Upstream, err, "the model's stream broke off")
		}
	}
	if !sawDone && ctx.Err() != nil {
		return nil, be, ctx.Err()
	}
	res.Text = text.String()
	if res.Usage == nil {
		res.Usage = &Usage{CompletionTokens: chunks, TotalTokens: chunks}
	}
	return &res, be, nil
}

// maxLineBytes bounds one line of a streamed answer: far above any real chunk, low enough
// that a worker reading an upstream that never ends its line holds little.
const maxLineBytes = 16 << 20

// errLineTooLong: a line of a stream is longer than readLine's limit.
var errLineTooLong = errors.New("task: stream line too long")

// readLine reads one line (with its newline, if any) of at most limit bytes; a longer line
// is errLineTooLong, found before more than limit bytes are held.
func readLine(br *bufio.Reader, limit int) ([]byte, error) {
	var line []byte
	for {
		part, err := br.ReadSlice('\n')
		if len(line)+len(part) > limit {
			return nil, errLineTooLong
		}
		if err == bufio.ErrBufferFull {
			line = append(line, part...)
			continue
		}
		if line == nil {
			return part, err // part is only valid until the next read: the caller uses it first
		}
		return append(line, part...), err
	}
}

// embed runs an embeddings task: one non-streamed request whose JSON answer is the result.
func (s *Service) embed(ctx context.Context, m *router.Model, sp Spec) (*Result, string, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(sp.Input, &obj); err != nil {
		return nil, "", apierr.Wrap(apierr.Invalid, err, "input is not a JSON object")
	}
	obj["model"], _ = json.Marshal(sp.Model)
	delete(obj, "stream")
	body, err := json.Marshal(obj)
	if err != nil {
		return nil, "", err
	}
	fields, err := wire.Peek(body)
	if err != nil {
		return nil, "", apierr.Wrap(apierr.Invalid, err, "the request body is not valid")
	}
	resp, target, err := s.reg.Do(ctx, m, &router.Request{Op: backend.OpEmbedding, Body: body, Fields: fields,
		Meta: map[string]string{"route": "task", "task.kind": KindEmbeddings}})
	if err != nil {
		return nil, "", err
	}
	be := target.Name
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return nil, be, upstreamStatus(resp)
	}
	out, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return nil, be, apierr.Wrap(apierr.Upstream, err, "the model's answer broke off")
	}
	if len(out) > maxResponseBytes || !json.Valid(out) {
		return nil, be, apierr.New(apierr.Upstream, "upstream_answer", "the model's answer is not JSON or is too large")
	}
	var usage struct {
		Usage *Usage `json:"usage"`
	}
	_ = json.Unmarshal(out, &usage)
	return &Result{Response: out, Usage: usage.Usage}, be, nil
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
		var seq int64
		var cancelReq int
		err := tx.QueryRowContext(ctx, s.db.q(`UPDATE tasks SET last_seq = last_seq + 1, progress_tokens = ?, lease_until = ?, updated_at = ?
			WHERE id = ? AND status = 'running' AND lease_owner = ? RETURNING last_seq, cancel_requested`),
			tokens, now+s.cfg.Lease.D().Microseconds(), now, e.c.id, s.instance).Scan(&seq, &cancelReq)
		if errors.Is(err, sql.ErrNoRows) {
			lost = true
			return nil
		}
		if err != nil {
			return err
		}
		if cancelReq != 0 {
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
		var cancelReq int
		err := s.db.W.QueryRowContext(ctx, s.db.q(`UPDATE tasks SET lease_until = ? WHERE id = ? AND status = 'running' AND lease_owner = ?
			RETURNING cancel_requested`), now+s.cfg.Lease.D().Microseconds(), e.c.id, s.instance).Scan(&cancelReq)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			e.cancel(errLeaseLost)
			return
		case err != nil:
			if ctx.Err() == nil {
				s.log.Warn("task heartbeat failed", "task", e.c.id, "err", err)
			}
		case cancelReq != 0:
			e.cancel(errCanceled)
			return
		}
	}
}
