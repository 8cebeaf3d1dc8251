package plugin

import (
	"bytes"
	"context"
	"errors"
	"io"

	"github.com/open-autoglm/autoglm/api/sse"
)

// maxEventBytes bounds one server-sent event of an upstream stream.
const maxEventBytes = 4 << 20

// streamRewriter runs the chunk hooks over a text/event-stream answer as it is read. Events
// that carry no choice text (usage, keep-alive comments) pass through unchanged.
type streamRewriter struct {
	ctx   context.Context
	ch    *Chain
	c     *Call
	src   io.ReadCloser
	buf   []byte // read from src, not yet handled
	sp    sse.Splitter
	eof   bool
	n     int
	outer string
	inner string

	out   bytes.Buffer
	err   error
	seen  []int // choice indexes seen, in order
	ended bool
}

func newStreamRewriter(ctx context.Context, ch *Chain, c *Call, src io.ReadCloser, n int) *streamRewriter {
	outer, inner := textKey(c.Req.Op, true)
	return &streamRewriter{ctx: ctx, ch: ch, c: c, src: src, n: n, outer: outer, inner: inner}
}

func (s *streamRewriter) Close() error { return s.src.Close() }

func (s *streamRewriter) Read(p []byte) (int, error) {
	for s.out.Len() == 0 && s.err == nil {
		s.err = s.next()
	}
	if s.out.Len() > 0 {
		return s.out.Read(p)
	}
	return 0, s.err
}

// nextBlock returns the next event of the stream as it was sent, up to and including the
// blank line that ends it (the last one may lack it when the stream ends), cut where
// sse.Splitter cuts; io.EOF once nothing is left.
func (s *streamRewriter) nextBlock() ([]byte, error) {
	for {
		if n := s.sp.Cut(s.buf); n >= 0 {
			b := s.buf[:n:n]
			s.buf = s.buf[n:]
			return b, nil
		}
		if s.eof {
			if len(s.buf) == 0 {
				return nil, io.EOF
			}
			b := s.buf
			s.buf, s.sp = nil, sse.Splitter{}
			return b, nil
		}
		if len(s.buf) > maxEventBytes {
			return nil, errors.New("plugin: stream event too large")
		}
		if cap(s.buf)-len(s.buf) < 4<<10 {
			// A new array: the blocks handed out keep the old one.
			nb := make([]byte, len(s.buf), max(2*len(s.buf), 16<<10))
			copy(nb, s.buf)
			s.buf = nb
		}
		n, err := s.src.Read(s.buf[len(s.buf):cap(s.buf)])
		s.buf = s.buf[:len(s.buf)+n]
		switch {
		case errors.Is(err, io.EOF):
			s.eof = true
		case err != nil:
			return nil, err
		}
	}
}

// next reads one event and writes what the client gets for it to s.out.
func (s *streamRewriter) next() error {
	block, err := s.nextBlock()
	if errors.Is(err, io.EOF) {
		if e := s.end(); e != nil {
			return e
		}
		return io.EOF
	}
	if err != nil {
		return err
	}
	ev, hasData := sse.Parse(block)
	if !hasData {
		s.out.Write(block)
		return nil
	}
	data := ev.Data
	if string(data) == "[DONE]" {
		if err := s.end(); err != nil {
			return err
		}
		s.out.Write(block)
		return nil
	}
	d, ok := decodeDoc(data)
	if !ok {
		s.out.Write(block)
		return nil
	}
	changed, emptied := false, true
	for i := range d.choices {
		idx, text, has, finish := d.text(i, s.outer, s.inner)
		if !has && finish == "" {
			emptied = false
			continue
		}
		s.note(idx)
		k := Chunk{Index: idx, Text: text, Finish: finish}
		if err := s.ch.runChunk(s.ctx, s.c, &k, s.n); err != nil {
			return err
		}
		switch {
		case k.Drop:
			d.setText(i, s.outer, s.inner, "", true)
			changed = true
		case k.Text != text || (!has && k.Text != ""):
			d.setText(i, s.outer, s.inner, k.Text, false)
			changed = true
		}
		if !k.Drop || finish != "" {
			emptied = false
		}
	}
	if u, ok := d.top["usage"]; ok && string(u) != "null" {
		emptied = false
	}
	if !changed {
		s.out.Write(block)
		return nil
	}
	if emptied {
		return nil // every choice's text was dropped and nothing else is in the chunk
	}
	s.out.WriteString("data: ")
	s.out.Write(d.encode())
	s.out.WriteString("\n\n")
	return nil
}

func (s *streamRewriter) note(idx int) {
	for _, i := range s.seen {
		if i == idx {
			return
		}
	}
	s.seen = append(s.seen, idx)
}

// end makes the End call for every choice seen and writes the text it releases.
func (s *streamRewriter) end() error {
	if s.ended {
		return nil
	}
	s.ended = true
	for _, idx := range s.seen {
		k := Chunk{Index: idx, End: true}
		if err := s.ch.runChunk(s.ctx, s.c, &k, s.n); err != nil {
			return err
		}
		if k.Text != "" && !k.Drop {
			s.out.Write(flushChunk(s.c.Req.Op, idx, k.Text))
		}
	}
	return nil
}
