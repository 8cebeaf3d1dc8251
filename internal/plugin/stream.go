package plugin

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
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
	br    *bufio.Reader
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
	return &streamRewriter{ctx: ctx, ch: ch, c: c, src: src, br: bufio.NewReaderSize(src, 16<<10), n: n, outer: outer, inner: inner}
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

// next reads one event and writes what the client gets for it to s.out.
func (s *streamRewriter) next() error {
	var ev bytes.Buffer
	var data []byte
	hasData := false
	for {
		line, err := s.br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// A long line: gather it whole.
			rest, err2 := s.br.ReadBytes('\n')
			line = append(append([]byte{}, line...), rest...)
			err = err2
		}
		if ev.Len()+len(line) > maxEventBytes {
			return errors.New("plugin: stream event too large")
		}
		if len(line) > 0 {
			ev.Write(line)
			trimmed := bytes.TrimRight(line, "\r\n")
			if len(trimmed) == 0 {
				break // end of event
			}
			if d, ok := bytes.CutPrefix(trimmed, []byte("data:")); ok {
				if hasData {
					data = append(data, '\n')
				}
				data = append(data, bytes.TrimPrefix(d, []byte(" "))...)
				hasData = true
			}
		}
		if err != nil {
			if err == io.EOF {
				if ev.Len() > 0 {
					break
				}
				if e := s.end(); e != nil {
					return e
				}
			}
			return err
		}
	}
	if !hasData {
		s.out.Write(ev.Bytes())
		return nil
	}
	if string(data) == "[DONE]" {
		if err := s.end(); err != nil {
			return err
		}
		s.out.Write(ev.Bytes())
		return nil
	}
	d, ok := decodeDoc(data)
	if !ok {
		s.out.Write(ev.Bytes())
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
		s.out.Write(ev.Bytes())
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
