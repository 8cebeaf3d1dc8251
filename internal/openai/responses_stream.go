package openai

import (
	"net/http"
	"time"

	"github.com/open-autoglm/autoglm/internal/apierr"
)

// responseStream writes a streamed chat completion as the Responses API's typed events:
// response.created and response.in_progress, then per output item output_item.added, its
// content (content_part.added, output_text.delta…, output_text.done, content_part.done, or
// function_call_arguments.delta… and .done) and output_item.done, and last
// response.completed (response.incomplete when cut by max_output_tokens, response.failed
// when the upstream failed mid-stream). Every event has the next sequence_number.
type responseStream struct {
	h            *Handler
	w            http.ResponseWriter
	c            *responseCall
	writeTimeout time.Duration

	started bool
	seq     int
	items   []item // output items so far
	msg     int    // index in items of the open message, or -1 when none is open
	textBuf string
	tools   map[int]int // tool call number → index in items
	open    []int       // indexes of tool items not yet done
}

func (s *responseStream) event(typ string, fields map[string]any) error {
	fields["type"] = typ
	fields["sequence_number"] = s.seq
	s.seq++
	return writeNamedEvent(s.w, s.writeTimeout, typ, fields)
}

// start writes the stream's headers and first two events, once.
func (s *responseStream) start() error {
	if s.started {
		return nil
	}
	s.started = true
	s.msg = -1
	startEventStream(s.w)
	obj := s.c.obj
	obj.Output = []item{}
	if err := s.event("response.created", map[string]any{"response": &obj}); err != nil {
		return err
	}
	return s.event("response.in_progress", map[string]any{"response": &obj})
}

func (s *responseStream) text(delta string) error {
	if err := s.start(); err != nil {
		return err
	}
	if s.msg < 0 {
		it := item{ID: newID("msg"), Type: "message", Status: "in_progress", Role: "assistant", Content: []contentPart{}}
		s.msg = len(s.items)
		s.items = append(s.items, it)
		s.textBuf = ""
		if err := s.event("response.output_item.added", map[string]any{"output_index": s.msg, "item": it}); err != nil {
			return err
		}
		if err := s.event("response.content_part.added", map[string]any{"item_id": it.ID, "output_index": s.msg, "content_index": 0,
			"part": contentPart{Type: "output_text"}}); err != nil {
			return err
		}
	}
	s.textBuf += delta
	return s.event("response.output_text.delta", map[string]any{"item_id": s.items[s.msg].ID, "output_index": s.msg,
		"content_index": 0, "delta": delta, "logprobs": []any{}})
}

// closeMessage ends the open message item, if any.
func (s *responseStream) closeMessage() error {
	if s.msg < 0 {
		return nil
	}
	i := s.msg
	s.msg = -1
	it := &s.items[i]
	part := contentPart{Type: "output_text", Text: s.textBuf}
	if err := s.event("response.output_text.done", map[string]any{"item_id": it.ID, "output_index": i, "content_index": 0,
		"text": s.textBuf, "logprobs": []any{}}); err != nil {
		return err
	}
	if err := s.event("response.content_part.done", map[string]any{"item_id": it.ID, "output_index": i, "content_index": 0,
		"part": part}); err != nil {
		return err
	}
	it.Status, it.Content = "completed", []contentPart{part}
	return s.event("response.output_item.done", map[string]any{"output_index": i, "item": *it})
}

func (s *responseStream) toolStart(n int, id, name string) error {
	if err := s.start(); err != nil {
		return err
	}
	if err := s.closeMessage(); err != nil {
		return err
	}
	if id == "" {
		id = newID("call")
	}
	it := item{ID: newID("fc"), Type: "function_call", Status: "in_progress", CallID: id, Name: name}
	if s.tools == nil {
		s.tools = make(map[int]int)
	}
	s.tools[n] = len(s.items)
	s.open = append(s.open, len(s.items))
	s.items = append(s.items, it)
	return s.event("response.output_item.added", map[string]any{"output_index": s.tools[n], "item": it})
}

func (s *responseStream) toolArgs(n int, delta string) error {
	i, ok := s.tools[n]
	if !ok {
		return nil
	}
	s.items[i].Arguments += delta
	return s.event("response.function_call_arguments.delta", map[string]any{"item_id": s.items[i].ID, "output_index": i, "delta": delta})
}

func (s *responseStream) done(out *chatOutcome) error {
	if err := s.start(); err != nil {
		return err
	}
	if len(s.items) == 0 {
		// An empty answer is still one (empty) message, as in the non-streamed response.
		if err := s.text(""); err != nil {
			return err
		}
	}
	if err := s.closeMessage(); err != nil {
		return err
	}
	for _, i := range s.open {
		it := &s.items[i]
		if err := s.event("response.function_call_arguments.done", map[string]any{"item_id": it.ID, "output_index": i,
			"name": it.Name, "arguments": it.Arguments}); err != nil {
			return err
		}
		it.Status = "completed"
		if err := s.event("response.output_item.done", map[string]any{"output_index": i, "item": *it}); err != nil {
			return err
		}
	}
	s.open = nil
	s.c.obj.Output = nil
	s.h.finishResponse(s.c, out, s.items)
	typ := "response.completed"
	if s.c.obj.Status == "incomplete" {
		typ = "response.incomplete"
	}
	return s.event(typ, map[string]any{"response": &s.c.obj})
}

func (s *responseStream) fail(e *apierr.Error) error {
	if err := s.start(); err != nil {
		return err
	}
	s.c.obj.Status = "failed"
	s.c.obj.Output = s.items
	s.c.obj.Error = &responseError{Code: e.PublicCode(), Message: e.PublicMessage()}
	s.c.store = false
	return s.event("response.failed", map[string]any{"response": &s.c.obj})
}

var _ chatSink = (*responseStream)(nil)
