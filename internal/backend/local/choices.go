package local

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/open-autoglm/autoglm/api"
	"github.com/open-autoglm/autoglm/api/sse"
	"github.com/open-autoglm/autoglm/internal/apierr"
	"github.com/open-autoglm/autoglm/internal/backend"
	"github.com/open-autoglm/autoglm/internal/engine/chat"
	"github.com/open-autoglm/autoglm/internal/engine/runner"
	"github.com/open-autoglm/autoglm/internal/engine/tokenizer"
	"github.com/open-autoglm/autoglm/internal/telemetry"
)

// multiJob is a generation with the features the simple path does not have: several
// prompts, n > 1, logprobs, echo. Choice p*n+i is choice i of prompt p, as OpenAI numbers
// them.
type multiJob struct {
	chat    bool
	prompts []runner.Request // one per prompt, N set
	n       int
	top     int  // top logprobs per position
	lp      bool // logprobs asked for
	echo    []string
	// finish, when set, turns a choice's text into its message (tool calls).
	finish func(text string) (content string, calls []api.ToolCall)
	// toolStream, when set, starts the parse of a streamed choice's tool calls.
	toolStream func() *chat.ToolStream
}

// choiceOut gathers one choice.
type choiceOut struct {
	text   strings.Builder
	tokens []runner.Event
	finish api.FinishReason
}

// multiEvent is an event of one choice, tagged with its overall index.
type multiEvent struct {
	index int
	ev    runner.Event
}

// useMulti reports whether a request needs the multi path.
func needsMulti(prompts, n int, logprobs, echo bool) bool {
	return prompts > 1 || n > 1 || logprobs || echo
}

func (b *Backend) runMulti(ctx context.Context, mj *multiJob, stream, includeUsage bool) (*backend.Response, error) {
	id := newID("cmpl-")
	if mj.chat {
		id = newID("chatcmpl-")
	}
	created := time.Now().Unix()
	total := len(mj.prompts) * mj.n
	outs := make([]choiceOut, total)
	// prompt_tokens_details.cached_tokens counts the prompt tokens found in a KV cache, as
	// on the simple path.
	usage := api.Usage{PromptTokensDetails: &api.PromptTokensDetails{}}
	var promptLP [][]runner.TokenLogprob = make([][]runner.TokenLogprob, len(mj.prompts))

	// run generates every prompt concurrently, handing events to sink in order per choice.
	run := func(sink func(multiEvent) error) error {
		var (
			wg       sync.WaitGroup
			mu       sync.Mutex
			firstErr error
		)
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		for p, req := range mj.prompts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var oc runner.Outcome
				req.Outcome = &oc
				var tm runner.Timing
				if trace.SpanFromContext(ctx).IsRecording() {
					req.Timing = &tm
				}
				res, err := b.r.Generate(cctx, req, func(ev runner.Event) error {
					mu.Lock()
					defer mu.Unlock()
					return sink(multiEvent{index: p*mj.n + ev.Index, ev: ev})
				})
				if req.Timing != nil {
					engineSpans(ctx, tm, res, err)
				}
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					if firstErr == nil {
						firstErr = err
					}
					cancel()
					return
				}
				usage.PromptTokens += res.PromptTokens
				usage.CompletionTokens += res.CompletionTokens
				usage.PromptTokensDetails.CachedTokens += res.CachedTokens
				for i, c := range oc.Choices {
					outs[p*mj.n+i].finish = api.FinishReason(c.FinishReason)
				}
				promptLP[p] = oc.PromptLogprobs
			}()
		}
		wg.Wait()
		usage.TotalTokens = usage.PromptTokens + usage.CompletionTokens
		return firstErr
	}

	if !stream {
		err := run(func(me multiEvent) error {
			o := &outs[me.index]
			o.text.WriteString(me.ev.Text)
			o.tokens = append(o.tokens, me.ev)
			return nil
		})
		if err != nil {
			return nil, err
		}
		var doc any
		if mj.chat {
			cc := &api.ChatCompletion{ID: id, Object: "chat.completion", Created: created, Model: b.model, Usage: &usage}
			for i := range outs {
				msg := api.Message{Role: api.RoleAssistant, Content: api.Text(outs[i].text.String())}
				finish := outs[i].finish
				if mj.finish != nil {
					content, calls := mj.finish(outs[i].text.String())
					msg.Content, msg.ToolCalls = api.Text(content), calls
					if len(calls) > 0 {
						finish = api.FinishReason("tool_calls")
					}
				}
				ch := api.ChatChoice{Index: i, Message: msg, FinishReason: finish}
				if mj.lp {
					ch.Logprobs = b.chatLogprobs(outs[i].tokens, mj.top)
				}
				cc.Choices = append(cc.Choices, ch)
			}
			doc = cc
		} else {
			c := &api.Completion{ID: id, Object: "text_completion", Created: created, Model: b.model, Usage: &usage}
			for i := range outs {
				p := i / mj.n
				text := outs[i].text.String()
				ch := api.CompletionChoice{Index: i, FinishReason: outs[i].finish}
				var echoText string
				var echoLP []runner.TokenLogprob
				var echoIDs []int32
				if mj.echo != nil {
					echoText, echoLP, echoIDs = mj.echo[p], promptLP[p], mj.prompts[p].Prompt
				}
				ch.Text = echoText + text
				if mj.lp {
					ch.Logprobs = b.completionLogprobs(echoIDs, echoLP, outs[i].tokens, mj.top, 0)
				}
				c.Choices = append(c.Choices, ch)
			}
			doc = c
		}
		body, err := json.Marshal(doc)
		if err != nil {
			return nil, err
		}
		return &backend.Response{StatusCode: http.StatusOK, Header: http.Header{"Content-Type": {"application/json"}},
			Body: io.NopCloser(bytes.NewReader(body))}, nil
	}

	pr, pw := io.Pipe()
	go func() {
		send := func(v any) error { return writeData(pw, v) }
		chunk := func(index int, text string, lp json.RawMessage, finish api.FinishReason) any {
			if mj.chat {
				return &api.ChatCompletionChunk{ID: id, Object: "chat.completion.chunk", Created: created, Model: b.model,
					Choices: []api.ChunkChoice{{Index: index, Delta: api.Delta{Content: text}, Logprobs: lp, FinishReason: finish}}}
			}
			return &api.Completion{ID: id, Object: "text_completion", Created: created, Model: b.model,
				Choices: []api.CompletionChoice{{Index: index, Text: text, Logprobs: lp, FinishReason: finish}}}
		}
		offsets := make([]int, total)
		var err error
		if mj.chat {
			for i := 0; i < total && err == nil; i++ {
				err = send(&api.ChatCompletionChunk{ID: id, Object: "chat.completion.chunk", Created: created, Model: b.model,
					Choices: []api.ChunkChoice{{Index: i, Delta: api.Delta{Role: api.RoleAssistant}}}})
			}
		} else if mj.echo != nil {
			// The prompt goes first; its logprobs need the prompt's computation, so they
			// are not streamed.
			for i := 0; i < total && err == nil; i++ {
				offsets[i] = len(mj.echo[i/mj.n])
				err = send(chunk(i, mj.echo[i/mj.n], nil, ""))
			}
		}
		if err == nil && mj.toolStream != nil {
			// Text and tool calls go out as they are generated: a call by name once the
			// model has written it, then its arguments fragment by fragment; only what might
			// open a call is held back.
			streams := make([]*chat.ToolStream, total)
			lpEvents := make([][]runner.Event, total)
			emit := func(i int, ds []chat.ToolDelta) error {
				for _, d := range ds {
					var err error
					switch {
					case d.Name != "":
						idx := d.Call
						err = send(&api.ChatCompletionChunk{ID: id, Object: "chat.completion.chunk", Created: created, Model: b.model,
							Choices: []api.ChunkChoice{{Index: i, Delta: api.Delta{ToolCalls: []api.ToolCall{{Index: &idx, ID: newID("call_")[:29], Type: "function",
								Function: api.FunctionCall{Name: d.Name}}}}}}})
					case d.Args != "":
						idx := d.Call
						err = send(&api.ChatCompletionChunk{ID: id, Object: "chat.completion.chunk", Created: created, Model: b.model,
							Choices: []api.ChunkChoice{{Index: i, Delta: api.Delta{ToolCalls: []api.ToolCall{{Index: &idx,
								Function: api.FunctionCall{Arguments: d.Args}}}}}}})
					default:
						var lp json.RawMessage
						if mj.lp {
							lp = b.chatLogprobs(lpEvents[i], mj.top)
							lpEvents[i] = nil
						}
						err = send(chunk(i, d.Content, lp, ""))
					}
					if err != nil {
						return err
					}
				}
				return nil
			}
			err = run(func(me multiEvent) error {
				s := streams[me.index]
				if s == nil {
					s = mj.toolStream()
					streams[me.index] = s
				}
				if mj.lp {
					lpEvents[me.index] = append(lpEvents[me.index], me.ev)
				}
				return emit(me.index, s.Write(me.ev.Text))
			})
			for i := 0; i < total && err == nil; i++ {
				if streams[i] != nil {
					err = emit(i, streams[i].Close())
					if streams[i].Calls() > 0 {
						outs[i].finish = "tool_calls"
					}
				}
			}
		} else if err == nil {
			err = run(func(me multiEvent) error {
				if me.ev.Text == "" && !mj.lp {
					return nil
				}
				var lp json.RawMessage
				if mj.lp {
					if mj.chat {
						lp = b.chatLogprobs([]runner.Event{me.ev}, mj.top)
					} else {
						lp = b.completionLogprobs(nil, nil, []runner.Event{me.ev}, mj.top, offsets[me.index])
					}
				}
				offsets[me.index] += len(me.ev.Text)
				return send(chunk(me.index, me.ev.Text, lp, ""))
			})
		}
		if err != nil {
			if ctx.Err() == nil {
				e := streamError(ctx, err)
				if ae := apierr.From(err); ae.Kind == apierr.Invalid {
					e = ae
				}
				ev, _ := sse.AppendEvent(nil, sse.Event{Data: apierr.AppendOpenAIError(nil, e, telemetry.TraceID(ctx))})
				_, _ = pw.Write(ev)
			}
			pw.CloseWithError(err)
			return
		}
		for i := 0; i < total; i++ {
			if err := send(chunk(i, "", nil, outs[i].finish)); err != nil {
				pw.CloseWithError(err)
				return
			}
		}
		if includeUsage {
			var u any
			if mj.chat {
				u = &api.ChatCompletionChunk{ID: id, Object: "chat.completion.chunk", Created: created, Model: b.model, Choices: []api.ChunkChoice{}, Usage: &usage}
			} else {
				u = &api.Completion{ID: id, Object: "text_completion", Created: created, Model: b.model, Choices: []api.CompletionChoice{}, Usage: &usage}
			}
			if err := send(u); err != nil {
				pw.CloseWithError(err)
				return
			}
		}
		_, _ = pw.Write(doneEvent())
		pw.Close()
	}()
	return &backend.Response{StatusCode: http.StatusOK, Header: http.Header{"Content-Type": {"text/event-stream"}}, Body: pr}, nil
}

// tokenText is a token's own text (its bytes; invalid UTF-8 is replaced when encoded as a
// JSON string, which is why chat logprobs carry the bytes too).
func (b *Backend) tokenText(id int32) string {
	return b.r.Tokenizer().DecodeWith([]int32{id}, tokenizer.DecodeOptions{Continuation: true, Special: true})
}

// finite keeps -Inf (a token masked out) encodable: OpenAI's convention is -9999.
func finite(v float32) float64 {
	if math.IsInf(float64(v), -1) || v != v {
		return -9999
	}
	return float64(v)
}

type chatTop struct {
	Token   string  `json:"token"`
	Logprob float64 `json:"logprob"`
	Bytes   []int   `json:"bytes"`
}

type chatLP struct {
	chatTop
	TopLogprobs []chatTop `json:"top_logprobs"`
}

func byteList(s string) []int {
	out := make([]int, len(s))
	for i := 0; i < len(s); i++ {
		out[i] = int(s[i])
	}
	return out
}

// chatLogprobs writes the chat API's {"content":[...]} for events.
func (b *Backend) chatLogprobs(evs []runner.Event, top int) json.RawMessage {
	content := make([]chatLP, 0, len(evs))
	for _, ev := range evs {
		t := b.tokenText(ev.Token)
		e := chatLP{chatTop: chatTop{Token: t, Logprob: finite(ev.Logprob), Bytes: byteList(t)}, TopLogprobs: []chatTop{}}
		for _, alt := range ev.Top[:min(top, len(ev.Top))] {
			at := b.tokenText(alt.Token)
			e.TopLogprobs = append(e.TopLogprobs, chatTop{Token: at, Logprob: finite(alt.Logprob), Bytes: byteList(at)})
		}
		content = append(content, e)
	}
	data, _ := json.Marshal(map[string]any{"content": content})
	return data
}

// completionLogprobs writes the completions API's logprobs object: the echoed prompt's
// tokens first (the first without a logprob), then the generated ones; offset is the text
// offset of the first token.
func (b *Backend) completionLogprobs(promptIDs []int32, promptLP []runner.TokenLogprob, evs []runner.Event, top, offset int) json.RawMessage {
	type lpDoc struct {
		Tokens        []string             `json:"tokens"`
		TokenLogprobs []*float64           `json:"token_logprobs"`
		TopLogprobs   []map[string]float64 `json:"top_logprobs"`
		TextOffset    []int                `json:"text_offset"`
	}
	d := lpDoc{Tokens: []string{}, TokenLogprobs: []*float64{}, TopLogprobs: []map[string]float64{}, TextOffset: []int{}}
	add := func(t string, lp *float64, alts map[string]float64) {
		d.Tokens = append(d.Tokens, t)
		d.TokenLogprobs = append(d.TokenLogprobs, lp)
		d.TopLogprobs = append(d.TopLogprobs, alts)
		d.TextOffset = append(d.TextOffset, offset)
		offset += len(t)
	}
	// The echoed prompt is decoded as the prompt's text (not as a continuation), so that
	// its tokens spell exactly the echoed text.
	tok := b.r.Tokenizer()
	dec := tok.NewDecoder()
	for i, id := range promptIDs {
		if i == 0 && tok.AddBOS() && id == tok.BOS() {
			continue // not part of the echoed text
		}
		var lp *float64
		if i > 0 && i-1 < len(promptLP) {
			v := finite(promptLP[i-1].Logprob)
			lp = &v
		}
		add(dec.Add(id), lp, nil)
	}
	for _, ev := range evs {
		v := finite(ev.Logprob)
		var alts map[string]float64
		if top > 0 {
			alts = map[string]float64{}
			for _, alt := range ev.Top[:min(top, len(ev.Top))] {
				alts[b.tokenText(alt.Token)] = finite(alt.Logprob)
			}
		}
		add(b.tokenText(ev.Token), &v, alts)
	}
	data, _ := json.Marshal(d)
	return data
}

// maxPrompts bounds the prompts of one completions request.
const maxPrompts = 64

// completionPrompts tokenizes a completions prompt: texts or token arrays. echoes are the
// prompts' texts, for echo.
func (b *Backend) completionPrompts(in api.Input) (prompts [][]int32, echoes []string, err error) {
	tok := b.r.Tokenizer()
	for _, t := range in.Texts {
		prompts = append(prompts, tok.Encode(t, tokenizer.EncodeOptions{AddSpecial: true}))
		echoes = append(echoes, t)
	}
	for _, ts := range in.Tokens {
		ids := make([]int32, 0, len(ts))
		for _, id := range ts {
			if id < 0 || id >= tok.VocabSize() {
				return nil, nil, invalid("prompt", "token %d is outside the vocabulary (size %d)", id, tok.VocabSize())
			}
			ids = append(ids, int32(id))
		}
		if len(ids) == 0 {
			return nil, nil, invalid("prompt", "a prompt is empty")
		}
		prompts = append(prompts, ids)
		echoes = append(echoes, tok.Decode(ids))
	}
	return prompts, echoes, nil
}
