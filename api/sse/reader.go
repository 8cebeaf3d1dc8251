package sse

import (
	"bufio"
	"bytes"
	"io"
	"time"
)

// Reader reads events from a stream. It is not safe for concurrent use.
type Reader struct {
	br      *bufio.Reader
	max     int
	started bool // the byte-order mark check is done
	skipLF  bool // the last line ended in CR: an LF next belongs to it
	line    []byte
	data    []byte
	typ     []byte
	idBuf   []byte
	lastID  string
	retry   time.Duration
}

// NewReader returns a reader of the events of r, with the maximum event size
// [DefaultMaxEventSize].
func NewReader(r io.Reader) *Reader {
	return &Reader{br: bufio.NewReaderSize(r, 8<<10), max: DefaultMaxEventSize}
}

// SetMaxEventSize sets the largest event data, and the longest line, the
// reader accepts; larger ones are [ErrTooLarge]. n <= 0 restores the default.
func (r *Reader) SetMaxEventSize(n int) {
	if n <= 0 {
		n = DefaultMaxEventSize
	}
	r.max = n
}

// LastEventID is the latest "id" the stream set in a dispatched event or a
// blank-line-ended block: what a client sends as Last-Event-ID to resume.
func (r *Reader) LastEventID() string { return r.lastID }

// Retry is the latest reconnection time the stream set, or 0.
func (r *Reader) Retry() time.Duration { return r.retry }

// Next returns the next event. Its Data is valid until the following call.
// At the end of input it returns [io.EOF]; an event open at that point is
// returned first. A read error is returned as it is; an event or line
// larger than the maximum is [ErrTooLarge], after which the reader is not
// usable.
func (r *Reader) Next() (Event, error) {
	r.data = r.data[:0]
	r.typ = r.typ[:0]
	hasData := false
	var retry time.Duration
	idSet := false
	for {
		line, err := r.readLine()
		if err != nil {
			if err == io.EOF && hasData {
				if idSet {
					r.lastID = string(r.idBuf)
				}
				return Event{Type: string(r.typ), ID: r.lastID, Data: r.data, Retry: retry}, nil
			}
			return Event{}, err
		}
		if len(line) == 0 {
			if idSet {
				r.lastID = string(r.idBuf)
				idSet = false
			}
			if hasData {
				return Event{Type: string(r.typ), ID: r.lastID, Data: r.data, Retry: retry}, nil
			}
			r.typ = r.typ[:0]
			retry = 0
			continue
		}
		if line[0] == ':' {
			continue
		}
		name, value := field(line)
		switch string(name) {
		case "data":
			if hasData {
				r.data = append(r.data, '\n')
			}
			if len(r.data)+len(value) > r.max {
				return Event{}, ErrTooLarge
			}
			r.data = append(r.data, value...)
			hasData = true
		case "event":
			r.typ = append(r.typ[:0], value...)
		case "id":
			if bytes.IndexByte(value, 0) < 0 {
				r.idBuf = append(r.idBuf[:0], value...)
				idSet = true
			}
		case "retry":
			if d, ok := retryValue(value); ok {
				r.retry, retry = d, d
			}
		}
	}
}

// readLine returns the next line without its terminator; the last line of
// the input needs none. It is valid until the next call.
func (r *Reader) readLine() ([]byte, error) {
	if !r.started {
		r.started = true
		if b, _ := r.br.Peek(1); len(b) == 1 && b[0] == bom[0] {
			if b, _ := r.br.Peek(len(bom)); bytes.Equal(b, bom) {
				_, _ = r.br.Discard(len(bom))
			}
		}
	}
	r.line = r.line[:0]
	for {
		if r.br.Buffered() == 0 {
			if _, err := r.br.Peek(1); err != nil {
				if err == io.EOF && len(r.line) > 0 {
					return r.line, nil
				}
				return nil, err
			}
		}
		b, _ := r.br.Peek(r.br.Buffered())
		if r.skipLF {
			r.skipLF = false
			if b[0] == '\n' {
				_, _ = r.br.Discard(1)
				continue
			}
		}
		j := lineEnd(b)
		if j < 0 {
			if len(r.line)+len(b) > r.max+maxFieldName {
				return nil, ErrTooLarge
			}
			r.line = append(r.line, b...)
			_, _ = r.br.Discard(len(b))
			continue
		}
		if len(r.line)+j > r.max+maxFieldName {
			return nil, ErrTooLarge
		}
		r.line = append(r.line, b[:j]...)
		r.skipLF = b[j] == '\r'
		_, _ = r.br.Discard(j + 1)
		return r.line, nil
	}
}

// maxFieldName is the room a line has beyond the maximum event size, so
// that a data line of the maximum size fits with its field name.
const maxFieldName = 16

// Writer writes events to w, each with one Write call. Flushing (of an
// http.ResponseWriter, say) is the caller's.
type Writer struct {
	w   io.Writer
	buf []byte
}

// NewWriter returns a writer of events to w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

// WriteEvent writes one event; see [AppendEvent].
func (w *Writer) WriteEvent(ev Event) error {
	b, err := AppendEvent(w.buf[:0], ev)
	if err != nil {
		return err
	}
	w.buf = b
	_, err = w.w.Write(b)
	return err
}

// WriteComment writes a comment line, such as a keep-alive.
func (w *Writer) WriteComment(text string) error {
	w.buf = AppendComment(w.buf[:0], text)
	_, err := w.w.Write(w.buf)
	return err
}
